"""Shared-prefix batched sampling vs independent single-sequence generations, same engine and model.

For each of P prompts, N samples of up to T tokens:
  batched:     one `generate(prompts, N)` call: each prompt decoded once, its N samples share its KV
               cache, all live sequences advance together, freed slots are refilled.
  independent: P*N calls of `generate([prompt], 1)`, each decoding its prompt and one sequence alone.
Prints wall time and aggregate generated tokens/s both ways and their ratios, for each
`--parallel` setting (llama.cpp n_seq_max) asked for.

    python benchmarks/sampling_throughput.py                 # embedded Gemma 3 270M, 10 x 8 x 128
    python benchmarks/sampling_throughput.py --parallel 8,16,32,80 --threads 2
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from selfimprove.core.types import Prompt, Sampling
from selfimprove.engines.llama_cpp import LlamaCppEngine
from selfimprove.tasks.arithmetic import ArithmeticTask


def timed(fn):
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def tokens(outputs) -> int:
    return sum(c.completion_tokens for row in outputs for c in row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="GGUF path (default: the embedded model)")
    parser.add_argument("--prompts", type=int, default=10)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--parallel", default="32", help="comma-separated n_seq_max values for the batched path")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-independent", action="store_true")
    args = parser.parse_args()

    task = ArithmeticTask(level="1-6")
    prompts = [Prompt(task.format_prompt(p), problem_id=p.id) for p in task.problems(limit=args.prompts)]
    # No stop strings: every sample runs to max_tokens (or end of text) on both paths alike.
    sampling = Sampling(temperature=0.8, top_k=40, max_tokens=args.max_tokens, seed=0)
    print(
        f"{args.prompts} prompts x {args.samples} samples x up to {args.max_tokens} tokens; "
        f"prompt length ~{sum(len(p.content) for p in prompts) // len(prompts)} chars"
    )

    independent = None
    if not args.skip_independent:
        engine = LlamaCppEngine(model=args.model, max_parallel=1, n_threads=args.threads)
        engine.generate(prompts[:1], 1, replace(sampling, max_tokens=4))  # warm-up
        out, wall = timed(
            lambda: [
                engine.generate([replace(p, sample_ids=(s,))], args.samples, sampling)[0]
                for p in prompts
                for s in range(args.samples)
            ]
        )
        independent = (wall, tokens(out))
        engine.close()
        print(f"independent  : {wall:7.2f} s  {independent[1]:6d} tokens  {independent[1] / wall:7.1f} tok/s")

    for parallel in [int(x) for x in args.parallel.split(",")]:
        engine = LlamaCppEngine(model=args.model, max_parallel=parallel, n_threads=args.threads)
        engine.generate(prompts[:1], 1, replace(sampling, max_tokens=4))  # warm-up
        out, wall = timed(lambda engine=engine: engine.generate(prompts, args.samples, sampling))
        engine.close()
        made = tokens(out)
        line = f"batched p={parallel:<3d}: {wall:7.2f} s  {made:6d} tokens  {made / wall:7.1f} tok/s"
        if independent:
            line += (
                f"   wall-time speed-up {independent[0] / wall:.2f}x, "
                f"tok/s ratio {(made / wall) / (independent[1] / independent[0]):.2f}x"
            )
        print(line)


if __name__ == "__main__":
    main()
