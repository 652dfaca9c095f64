"""The `hf` engine with and without `share_prompt` on the embedded model (dequantised), side by side.

k samples of each of the first `--limit` GSM8K dev prompts (8-shot CoT, about 815 tokens): seconds per prompt,
prompt tokens computed per prompt, and whether both give the same samples.

    python benchmarks/hf_shared_prompt.py               # about 3 minutes on 2 cores (after the one-off dequantising)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import selfimprove as si
from selfimprove.core.types import Prompt, Sampling
from selfimprove.engines.hf import HFEngine

GSM8K = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=3)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()
    task = si.GSM8KTask(data=str(GSM8K / "test_dev200.jsonl"), fewshot=str(GSM8K / "train.jsonl"), shots=8)
    prompts = [Prompt(task.format_prompt(p), problem_id=p.id) for p in task.problems(limit=args.limit)]
    sampling = Sampling(temperature=0.7, top_k=40, max_tokens=args.max_tokens, stop=tuple(task.stop))
    engine = HFEngine(model=None, device="cpu", batch_size=args.samples)
    results = {}
    for share in (False, True):
        engine.share_prompt = share
        started = time.perf_counter()
        out = engine.generate(prompts, args.samples, sampling)
        seconds = (time.perf_counter() - started) / len(prompts)
        evaluated = sum(c.prompt_evaluated for row in out for c in row) / len(prompts)
        results[share] = out
        print(f"share_prompt={share!s:<5}  {seconds:6.2f} s/prompt  {evaluated:7.0f} prompt tokens computed/prompt "
              f"(prompt {out[0][0].prompt_tokens} tokens, k={args.samples}, {args.max_tokens} new tokens)")  # fmt: skip
    same = sum(a.text == b.text for ra, rb in zip(results[False], results[True]) for a, b in zip(ra, rb))
    print(f"same samples: {same} of {args.samples * len(prompts)}")
    engine.close()


if __name__ == "__main__":
    main()
