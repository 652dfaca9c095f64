"""The llama-cpp engine with and without its prefix cache, and llama-cpp-python's own server, side by side.

On the first 20 GSM8K dev problems (8-shot CoT from train.jsonl) and 20 bare a ± b problems (arithmetic
level 1, 4-shot), embedded model, in one run, each configuration in its own temporary store:
prompt tokens evaluated per problem, s/problem for greedy `cot` and for `self-consistency` k = 8, and
the ratios. Targets (issue 25): evaluated <= the question's own tokens + 10%; greedy cot at or under the
server on the same prompts; SC k = 8 <= 2.5x one single-stream greedy answer (max_parallel = 1).

Then tree-of-thoughts (breadth 3, beam 2, depth 5) on the first `--tot-limit` GSM8K problems, with and without
the cache: prompt tokens evaluated per problem and their ratio (target: work cut >= 3x), and s/problem.

    python benchmarks/prefix_cache.py                      # everything (about 25 minutes on 2 cores)
    python benchmarks/prefix_cache.py --limit 5 --no-server
    python benchmarks/prefix_cache.py --only-tot --tot-limit 5
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import selfimprove as si
from selfimprove.engines.embedded import embedded_model_path

GSM8K = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k"


def per_problem(task, strategy, engine, limit: int) -> tuple[float, float, float]:
    """(s/problem, prompt tokens/problem, prompt tokens evaluated/problem) of a fresh run."""
    store = Path(tempfile.mkdtemp()) / "runs.sqlite"
    started = time.perf_counter()
    result = si.run(task, strategy, engine, store=store, limit=limit)
    seconds = (time.perf_counter() - started) / limit
    m = result.metrics
    return seconds, m.prompt_tokens_per_problem, m.prompt_evaluated_per_problem or float("nan")


def question_tokens(task, engine, limit: int) -> float:
    """Tokens of each problem's own part of its prompt (what no other prompt shares), per problem."""
    prompts = [engine._tokenize(task.format_prompt(p)) for p in task.problems(limit=limit)]
    own = []
    for i, tokens in enumerate(prompts):
        shared = max((_common(tokens, other) for j, other in enumerate(prompts) if j != i), default=0)
        own.append(len(tokens) - shared)
    return sum(own) / len(own)


def _common(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def server_greedy(task, limit: int, max_tokens: int) -> float:
    """s/problem of greedy completions of the same prompts through llama-cpp-python's server (it keeps the
    previous prompt's KV and reuses the common prefix)."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_model_path()), "--host", "127.0.0.1",
               "--port", str(port), "--n_ctx", "8192", "--verbose", "false"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        prompts = [task.format_prompt(p) for p in task.problems(limit=limit)]
        body = {"max_tokens": max_tokens, "temperature": 0.0, "stop": list(task.stop)}
        started = time.perf_counter()
        for prompt in prompts:
            httpx.post(f"{url}/completions", json={**body, "prompt": prompt}, timeout=600).raise_for_status()
        return (time.perf_counter() - started) / len(prompts)
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--no-server", action="store_true")
    parser.add_argument("--tot-limit", type=int, default=5, help="GSM8K problems for tree-of-thoughts (0: none)")
    parser.add_argument("--only-tot", action="store_true")
    args = parser.parse_args()
    if args.only_tot:
        tree_of_thoughts(args.tot_limit)
        return

    tasks = {
        "gsm8k 8-shot": si.GSM8KTask(
            data=str(GSM8K / "test_dev200.jsonl"), fewshot=str(GSM8K / "train.jsonl"), shots=8
        ),  # fmt: skip
        "a ± b 4-shot": si.ArithmeticTask(level=1),
    }
    cot = si.ChainOfThought(max_tokens=args.max_tokens)
    sc = si.SelfConsistency(samples=args.samples, max_tokens=args.max_tokens)
    plain = si.LlamaCppEngine(prefix_cache=0)
    cached = si.LlamaCppEngine()
    single = si.LlamaCppEngine(max_parallel=1, prefix_cache=0)
    header = f"{'task':<14} {'run':<34} {'s/problem':>9} {'prompt tok':>10} {'evaluated':>9}"
    print(header)
    try:
        for name, task in tasks.items():
            own = question_tokens(task, plain, args.limit)
            rows = {
                "cot, no cache": per_problem(task, cot, plain, args.limit),
                "cot, prefix cache": per_problem(task, cot, cached, args.limit),
                f"SC k={args.samples}, no cache": per_problem(task, sc, plain, args.limit),
                f"SC k={args.samples}, prefix cache": per_problem(task, sc, cached, args.limit),
                "cot, single stream (max_parallel 1)": per_problem(task, cot, single, args.limit),
            }
            for label, (seconds, prompt, evaluated) in rows.items():
                print(f"{name:<14} {label:<34} {seconds:>9.2f} {prompt:>10.0f} {evaluated:>9.0f}")
            if not args.no_server:
                print(f"{name:<14} {'cot, llama-cpp-python server':<34} "
                      f"{server_greedy(task, args.limit, args.max_tokens):>9.2f}")  # fmt: skip
            cached_cot, cached_sc = rows["cot, prefix cache"], rows[f"SC k={args.samples}, prefix cache"]
            print(f"{name:<14} question's own tokens / problem {own:.0f}; cot evaluated {cached_cot[2]:.0f} "
                  f"({cached_cot[2] / own:.2f}x); SC evaluated {cached_sc[2]:.0f}")  # fmt: skip
            print(f"{name:<14} cot cache speed-up {rows['cot, no cache'][0] / cached_cot[0]:.2f}x; SC cache speed-up "
                  f"{rows[f'SC k={args.samples}, no cache'][0] / cached_sc[0]:.2f}x; SC / single-stream greedy "
                  f"{cached_sc[0] / rows['cot, single stream (max_parallel 1)'][0]:.2f}x")  # fmt: skip
    finally:
        for engine in (plain, cached, single):
            engine.close()
    if args.tot_limit:
        tree_of_thoughts(args.tot_limit)


def tree_of_thoughts(limit: int) -> None:
    """ToT's growing prompts (each child extends its parent, every rating shares the value prompt's exemplars)
    with and without the prefix cache."""
    task = si.GSM8KTask(data=str(GSM8K / "test_dev200.jsonl"), fewshot=str(GSM8K / "train.jsonl"), shots=8)
    tot = si.TreeOfThoughts()
    rows = {}
    for label, settings in (("no cache", {"prefix_cache": 0}), ("prefix cache", {})):
        engine = si.LlamaCppEngine(**settings)
        try:
            rows[label] = per_problem(task, tot, engine, limit)
        finally:
            engine.close()
    for label, (seconds, prompt, evaluated) in rows.items():
        print(
            f"{'gsm8k 8-shot':<14} {'tree-of-thoughts, ' + label:<34} {seconds:>9.2f} {prompt:>10.0f} {evaluated:>9.0f}"
        )
    work = rows["no cache"][2] / rows["prefix cache"][2]
    speed = rows["no cache"][0] / rows["prefix cache"][0]
    print(f"{'gsm8k 8-shot':<14} tree-of-thoughts prompt work cut {work:.2f}x, time {speed:.2f}x ({limit} problems)")


if __name__ == "__main__":
    main()
