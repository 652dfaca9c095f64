"""How far the prefix cache moves llama.cpp's outputs, beside how far llama.cpp moves them by itself.

On the first 20 arithmetic level 1-2 prompts (4-shot), embedded model: identical greedy completions
(32 tokens) with vs without the cache, one prompt at a time; and, without any cache, the same prompts
batched in reverse order, and batched vs one at a time. Then the largest change of a top-10 next-token
log-probability over the first 8 prompts (+2 grown ones): cache vs none, and n_batch 64 vs 512 with none.

    python benchmarks/cache_agreement.py
"""

from __future__ import annotations

from selfimprove.core.types import Prompt, Sampling
from selfimprove.engines.llama_cpp import LlamaCppEngine
from selfimprove.tasks.arithmetic import ArithmeticTask


def texts(rows) -> list[str]:
    return [row[0].text for row in rows]


def same(a: list[str], b: list[str]) -> int:
    return sum(x == y for x, y in zip(a, b))


def spread(a: list[dict[str, float]], b: list[dict[str, float]]) -> tuple[float, float]:
    """(largest |Δ| over the shared top-10 tokens, largest |Δ| of the top-1 token), over all prompts."""
    wide = max(max(abs(x[k] - y[k]) for k in set(x) & set(y)) for x, y in zip(a, b))
    top = max(abs(x[next(iter(x))] - y.get(next(iter(x)), float("inf"))) for x, y in zip(a, b))
    return wide, top


def main() -> None:
    task = ArithmeticTask(level="1-2")
    prompts = [Prompt(task.format_prompt(p)) for p in task.problems(limit=20)]
    greedy = Sampling(max_tokens=32, stop=task.stop)
    grown = [p.content + " Leo starts with 16 marbles. 16 - 4 =" for p in prompts[:2]]
    scored = [p.content for p in prompts[:8]] + grown

    plain = LlamaCppEngine(n_ctx=4096, max_parallel=16, prefix_cache=0)
    batched = texts(plain.generate(prompts, 1, greedy))
    reversed_order = texts(plain.generate(prompts[::-1], 1, greedy))[::-1]
    one_at_a_time = [texts(plain.generate([p], 1, greedy))[0] for p in prompts]
    reference = [plain.next_token_logprobs(t) for t in scored]
    plain.close()
    small = LlamaCppEngine(n_ctx=4096, max_parallel=16, prefix_cache=0, n_batch=64)
    other_shape = [small.next_token_logprobs(t) for t in scored]
    small.close()
    cached = LlamaCppEngine(n_ctx=4096, max_parallel=16, prefix_cache=3000)
    cached_one = [texts(cached.generate([p], 1, greedy))[0] for p in prompts]
    through_cache = [cached.next_token_logprobs(t) for t in scored]
    cached.close()

    n = len(prompts)
    print(f"identical greedy completions of {n}:")
    print(f"  cache vs none, one prompt at a time        {same(one_at_a_time, cached_one):>2}")
    print(f"  none, batched vs batched in reverse order  {same(batched, reversed_order):>2}")
    print(f"  none, batched vs one at a time             {same(batched, one_at_a_time):>2}")
    print(f"largest change of a top-10 log-probability (top-1's), {len(scored)} prompts:")
    for label, other in (("cache vs none", through_cache), ("none, n_batch 64 vs 512", other_shape)):
        wide, top = spread(reference, other)
        print(f"  {label:<28} {wide:.4f} ({top:.4f})")


if __name__ == "__main__":
    main()
