"""GGUF export of a transformers checkpoint: how long it takes, how big it is, whether llama.cpp then
computes the same model, and how much faster llama.cpp serves it than transformers on this CPU.

For each output type: export seconds and MiB; mean NLL per token of N texts (arithmetic test problems
with their worked solutions, tokenised once by the template's tokenizer) under llama.cpp reading the
export vs transformers holding the checkpoint; greedy agreement (same first 48 generated tokens' text on
the task's few-shot prompts); seconds per greedy answer, single stream, llama.cpp vs the hf engine.

    python benchmarks/gguf_export.py                                   # the embedded model itself
    python benchmarks/gguf_export.py --model work/lmsi/round-1/sft/merged --types q8_0,q4_k_m
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from selfimprove.core.types import Prompt, Sampling
from selfimprove.engines.hf import HFEngine
from selfimprove.engines.llama_cpp import LlamaCppEngine, teacher_forced_logprobs
from selfimprove.tasks.arithmetic import ArithmeticTask
from selfimprove.training.gguf_export import default_template, export_gguf


def llama_cpp_nll(path: Path, token_lists: list[list[int]], threads: int) -> float:
    scored = teacher_forced_logprobs(str(path), token_lists, n_threads=threads)
    return -sum(map(sum, scored)) / sum(map(len, scored))


def greedy(engine, prompts: list[Prompt], max_tokens: int) -> tuple[list[str], float]:
    """Texts and seconds per prompt (prompt processing included), one stream at a time."""
    sampling = Sampling(temperature=0.0, max_tokens=max_tokens)
    engine.generate(prompts[:1], 1, Sampling(temperature=0.0, max_tokens=2))  # warm-up
    started = time.perf_counter()
    texts = [engine.generate([prompt], 1, sampling)[0][0].text for prompt in prompts]
    return texts, (time.perf_counter() - started) / len(prompts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="HF checkpoint folder (default: the embedded model, dequantised)")
    parser.add_argument("--template", default=None, help="GGUF template (default: the embedded model)")
    parser.add_argument("--types", default="f16,q8_0,q4_k_m")
    parser.add_argument("--texts", type=int, default=20, help="scored texts (NLL)")
    parser.add_argument("--prompts", type=int, default=10, help="greedy prompts (agreement and speed)")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="folder for the exported files (default: a temporary one)")
    args = parser.parse_args()

    template = default_template(None, args.template)
    hf = HFEngine(model=args.model, device="cpu", batch_size=1)
    task = ArithmeticTask(level="1-3")
    problems = list(task.problems("test", limit=max(args.texts, args.prompts)))
    texts = [f"Question: {p.question}\nAnswer: {p.metadata['solution']}" for p in problems[: args.texts]]
    token_lists = [hf.tokenizer(text)["input_ids"] for text in texts]
    hf_nll = -float(np.sum([sum(hf.token_logprobs(t)) for t in token_lists]) / sum(len(t) - 1 for t in token_lists))
    prompts = [Prompt(task.format_prompt(p), problem_id=p.id) for p in problems[: args.prompts]]
    hf_texts, hf_speed = greedy(hf, prompts, args.max_tokens)
    scored = sum(len(t) - 1 for t in token_lists)
    print(f"model: {args.model or 'embedded (dequantised)'}; template {template.name}; {len(texts)} texts, "
          f"{scored} scored tokens; {len(prompts)} greedy prompts x {args.max_tokens}")  # fmt: skip
    print(f"transformers (fp32): NLL/token {hf_nll:.4f}, greedy {hf_speed:.2f} s per answer")
    print(f"{'type':8} {'export s':>8} {'MiB':>6} {'NLL':>8} {'|dNLL|':>8} {'same greedy':>11} {'s/answer':>8} faster")
    rows = [("template", 0.0, template)]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.out or scratch)
        for out_type in [t.strip() for t in args.types.split(",") if t.strip()]:
            started = time.perf_counter()
            path = export_gguf(hf.model, template, folder / f"export-{out_type}.gguf", out_type)
            rows.append((out_type, time.perf_counter() - started, path))
        for name, seconds, path in rows:
            nll = llama_cpp_nll(path, token_lists, args.threads)
            engine = LlamaCppEngine(model=str(path), max_parallel=1, n_threads=args.threads)
            try:
                texts_ll, speed = greedy(engine, prompts, args.max_tokens)
            finally:
                engine.close()
            same = sum(a == b for a, b in zip(texts_ll, hf_texts, strict=True))
            print(f"{name:8} {seconds:8.1f} {path.stat().st_size / 2**20:6.0f} {nll:8.4f} {abs(nll - hf_nll):8.4f} "
                  f"{same:>5}/{len(prompts):<5} {speed:8.2f} {hf_speed / speed:5.1f}x")  # fmt: skip
    hf.close()


if __name__ == "__main__":
    main()
