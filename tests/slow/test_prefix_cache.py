"""The llama-cpp engine's prefix cache on the real embedded model: the same model computed (next-token
log-probabilities as close as llama.cpp's own across batch shapes), and only the prompts' new tokens evaluated.

Bitwise-identical samples with and without the cache are not something llama.cpp's CPU kernels give: a
prompt's logits depend on the shape of the batch it is decoded in (n_batch 64 against 512 moves top-10
log-probabilities by up to ~0.6 nats here, with no cache at all), so a greedy path can flip at a near tie
either way. docs/engines.md has the measured agreement (benchmarks/cache_agreement.py)."""

import pytest

from selfimprove.core.types import Prompt, Sampling
from selfimprove.tasks.arithmetic import ArithmeticTask

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engines(embedded_model):
    from selfimprove.engines.llama_cpp import LlamaCppEngine

    plain = LlamaCppEngine(model=str(embedded_model), n_ctx=4096, max_parallel=16, prefix_cache=0)
    cached = LlamaCppEngine(model=str(embedded_model), n_ctx=4096, max_parallel=16, prefix_cache=4000)
    yield plain, cached
    plain.close()
    cached.close()


def test_the_cache_computes_the_same_model_as_llama_cpp_across_batch_shapes(engines, embedded_model):
    from selfimprove.engines.llama_cpp import LlamaCppEngine

    plain, cached = engines
    task = ArithmeticTask(level="1-2")
    texts = [task.format_prompt(p) for p in task.problems(limit=6)]
    texts.append(texts[0] + " Ben starts with 17 marbles. 17 + 8 =")  # a prompt growing from a cached one
    small_batches = LlamaCppEngine(model=str(embedded_model), n_ctx=4096, max_parallel=4, n_batch=64, prefix_cache=0)
    try:
        reference = [plain.next_token_logprobs(t) for t in texts]
        other_shape = [small_batches.next_token_logprobs(t) for t in texts]
    finally:
        small_batches.close()
    through_cache = [cached.next_token_logprobs(t) for t in texts]
    assert sum(e.tokens == tuple(cached._tokenize(texts[0])) for e in cached._cache) <= 1

    def spread(a, b):
        return max(abs(a[k] - b[k]) for k in set(a) & set(b))

    shape_spread = max(spread(r, o) for r, o in zip(reference, other_shape))
    for ref, got in zip(reference, through_cache):
        top = next(iter(ref))
        assert next(iter(got)) == top and abs(got[top] - ref[top]) < 0.01  # the same next token, as likely
        assert len(set(ref) & set(got)) >= 8
        assert spread(ref, got) <= max(0.05, 2 * shape_spread)


def calls(engine, prompts, task):
    """What self-consistency asks: a greedy answer per problem, then 4 samples per problem, then a turn 2."""
    greedy = engine.generate(prompts, 1, Sampling(max_tokens=32, stop=task.stop))
    sampled = engine.generate(prompts, 4, Sampling(temperature=0.8, top_k=40, max_tokens=32, stop=task.stop, seed=5))
    follow = engine.generate([Prompt(t) for t in follow_prompts(prompts, greedy)], 1, Sampling(max_tokens=16))
    return greedy, sampled, follow


def test_only_the_new_tokens_of_each_prompt_are_evaluated(engines):
    plain, cached = engines
    task = ArithmeticTask(level="1-2")
    prompts = [Prompt(task.format_prompt(p)) for p in list(task.problems(limit=10))[6:]]
    without = calls(plain, prompts, task)
    with_cache = calls(cached, prompts, task)

    tokens = [plain._tokenize(p.content) for p in prompts]
    evaluated = lambda out: [sum(c.prompt_evaluated for c in row) for row in out]  # noqa: E731
    # Without the cache every prompt is decoded whole, once per call (its samples share that decode).
    assert evaluated(without[0]) == evaluated(without[1]) == [len(t) for t in tokens]
    greedy, sampled, follow = with_cache
    # With it: each prompt decodes only what no cached prompt shares (the few-shot prefix is decoded once) ...
    cached_before = [plain._tokenize(task.format_prompt(p)) for p in task.problems(limit=6)]
    shared = [max(lcp(t, u) for u in cached_before + tokens[:i]) for i, t in enumerate(tokens)]
    assert evaluated(greedy) == [len(t) - n for t, n in zip(tokens, shared)]
    assert sum(evaluated(greedy)) < 0.3 * sum(len(t) for t in tokens)
    # ... the samples reuse the greedy call's prompts (only the last token is decoded again, for its logits) ...
    assert evaluated(sampled) == [1] * len(prompts)
    # ... and a second turn decodes only what it adds to its first turn's prompt.
    second = [plain._tokenize(text) for text in follow_prompts(prompts, greedy)]
    assert evaluated(follow) == [len(t) - max(lcp(t, u) for u in tokens) for t in second]
    assert all(c.prompt_tokens == len(t) for row, t in zip(sampled, tokens) for c in row)  # prompt size unchanged
    same = sum(a.text == b.text for x, y in zip(without, with_cache) for ra, rb in zip(x, y) for a, b in zip(ra, rb))
    print(f"completions identical with and without the cache: {same} of {4 * 6}")


def lcp(a, b):
    """Tokens two prompts share at their start (at most all but the last of `a`)."""
    n = 0
    while n < min(len(a) - 1, len(b)) and a[n] == b[n]:
        n += 1
    return n


def test_the_cache_stays_within_its_budget_and_gives_room_back(engines):
    _, cached = engines
    task = ArithmeticTask(level="3")
    cached.generate([task.format_prompt(p) for p in task.problems(limit=3)], 1, Sampling(max_tokens=4))
    assert 0 < cached._cached_tokens() <= cached.prefix_cache
    out = cached.generate(["word " * 4050], 1, Sampling(max_tokens=8))  # over the budget: decoded, not kept
    assert out[0][0].prompt_evaluated == out[0][0].prompt_tokens > cached.prefix_cache
    assert cached._cached_tokens() <= cached.prefix_cache and all(len(e.tokens) < 4000 for e in cached._cache)
    again = cached.generate(["word " * 4050], 1, Sampling(max_tokens=8))  # the cached prompts made room
    assert again[0][0].text == out[0][0].text


def follow_prompts(prompts, greedy):
    return [p.content + row[0].text + "\nQuestion: And plus one?\nAnswer:" for p, row in zip(prompts, greedy)]
