"""What one GGUF variant is measured for: its next-token distributions over a text (against the reference's
summary), and its speed and memory serving one stream, in a process of its own so peak memory is its own.

    python -m selfimprove.quant.measure MODEL.gguf     # prints {"load_seconds", "prompt_tps", ...} as JSON
    python -m selfimprove.quant.measure CHECKPOINT --hf-weights int8
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from selfimprove.core.errors import ConfigError
from selfimprove.quant.divergence import Comparison, ReferenceSummary, compare, log_softmax, summarise


def read_text(path: str | None) -> str:
    """The text divergences are measured on: a text file, or a JSONL file's string fields, one record a paragraph;
    None: the arithmetic task's worked train problems (generated here, nothing read)."""
    if path is None:
        from selfimprove.tasks.arithmetic import ArithmeticTask

        task = ArithmeticTask(level="1-4")
        return "\n\n".join(f"Question: {p.question}\nAnswer: {p.metadata['solution']}"
                           for p in task.problems("train", limit=400))  # fmt: skip
    source = Path(path)
    if not source.is_file():
        raise ConfigError(f"--text {path}: no such file")
    if source.suffix != ".jsonl":
        return source.read_text(encoding="utf-8")
    paragraphs = []
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{number}: not JSON ({exc.msg})") from None
        fields = record.values() if isinstance(record, dict) else [record]
        paragraphs.append("\n".join(_strings(fields)))
    return "\n\n".join(paragraphs)


def _strings(values) -> Iterator[str]:
    for value in values:
        if isinstance(value, str):
            yield value
        elif isinstance(value, list):
            yield from _strings(value)


def windows(tokens: list[int], context: int, limit: int, bos: int | None) -> list[list[int]]:
    """Consecutive windows of `context` tokens (each opened with BOS where the model has one) covering the first
    `limit` scored positions; every token after the first of a window is scored."""
    body = context - (1 if bos is not None else 0)
    out, scored = [], 0
    for start in range(0, len(tokens) - 1, body):
        window = ([bos] if bos is not None else []) + tokens[start : start + body]
        if len(window) < 2 or scored >= limit:
            break
        keep = min(len(window), limit - scored + 1)
        out.append(window[:keep])
        scored += keep - 1
    return out


class LogitPass:
    """A GGUF's log-probabilities at every position of token windows, one window at a time (llama.cpp, all
    logits): what the reference is summarised from and each variant compared with."""

    def __init__(self, model_path: str, context: int, threads: int | None = None):
        from selfimprove.engines.llama_cpp import _import_llama_cpp

        llama_cpp, _ = _import_llama_cpp()
        self.llm = llama_cpp.Llama(model_path=model_path, n_ctx=context, n_batch=context, logits_all=True,
                                   verbose=False, n_threads=threads)  # fmt: skip

    def tokenize(self, text: str) -> tuple[list[int], int | None]:
        tokens = self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        bos = self.llm.token_bos()
        return tokens, (bos if bos >= 0 else None)

    def logprobs(self, window: list[int]) -> np.ndarray:
        """[len(window) - 1, vocab]: the distribution of each next token after the first."""
        self.llm.reset()
        self.llm.eval(window)
        return log_softmax(self.llm.scores[: len(window) - 1])

    def close(self) -> None:
        self.llm.close()


class HFLogitPass:
    """The same for a transformers checkpoint, its Linear weights as `weights` (float, int8, int4)."""

    def __init__(self, model_path: str, weights: str = "float"):
        from selfimprove.engines.hf import load_causal_lm
        from selfimprove.engines.weight_quantization import quantize_weights

        self.model, self.tokenizer, _ = load_causal_lm(model_path)
        quantize_weights(self.model, weights)

    def tokenize(self, text: str) -> tuple[list[int], int | None]:
        tokens = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return tokens, self.tokenizer.bos_token_id

    def logprobs(self, window: list[int]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            logits = self.model(torch.tensor([window])).logits[0, :-1]
        return log_softmax(logits.float().numpy())

    def close(self) -> None:
        self.model = None


def logit_pass(model_path: str, context: int, weights: str | None = None) -> LogitPass | HFLogitPass:
    """A GGUF's pass (weights None) or a checkpoint's with its weights quantised as given."""
    return LogitPass(model_path, context) if weights is None else HFLogitPass(model_path, weights)


def summarise_reference(
    model_path: str, token_windows: list[list[int]], k: int, progress: Callable[[int], None] = lambda n: None,
    weights: str | None = None,
) -> ReferenceSummary:  # fmt: skip
    passer = logit_pass(model_path, max(len(w) for w in token_windows), weights)
    try:
        parts = []
        for window in token_windows:
            parts.append(summarise(passer.logprobs(window), window[1:], k))
            progress(len(window) - 1)
        return ReferenceSummary.concatenate(parts)
    finally:
        passer.close()


def compare_variant(
    model_path: str, token_windows: list[list[int]], reference: ReferenceSummary,
    progress: Callable[[int], None] = lambda n: None, weights: str | None = None,
) -> list[Comparison]:  # fmt: skip
    passer = logit_pass(model_path, max(len(w) for w in token_windows), weights)
    try:
        parts, offset = [], 0
        for window in token_windows:
            parts.append(compare(reference, passer.logprobs(window), offset))
            offset += len(window) - 1
            progress(len(window) - 1)
        return parts
    finally:
        passer.close()


def probe(model_path: str, prompt_tokens: int = 256, decode_tokens: int = 64, threads: int | None = None) -> dict:
    """Load time, prompt and decode speed of one greedy stream, and the process's peak resident memory."""
    from selfimprove.engines.llama_cpp import _import_llama_cpp

    llama_cpp, _ = _import_llama_cpp()
    started = time.perf_counter()
    llm = llama_cpp.Llama(model_path=model_path, n_ctx=prompt_tokens + decode_tokens + 8, n_batch=512,
                          verbose=False, n_threads=threads)  # fmt: skip
    loaded = time.perf_counter() - started
    text = read_text(None)
    tokens = llm.tokenize(text.encode(), add_bos=True)[:prompt_tokens]
    started = time.perf_counter()
    llm.eval(tokens)
    prompt_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(decode_tokens):
        llm.eval([int(np.argmax(llm.scores[llm.n_tokens - 1]))])
    decode_seconds = time.perf_counter() - started
    llm.close()
    return {
        "load_seconds": loaded,
        "prompt_tps": len(tokens) / prompt_seconds,
        "decode_tps": decode_tokens / decode_seconds,
        "peak_rss_bytes": peak_resident_bytes(),
    }


def peak_resident_bytes() -> int:
    """This process's peak resident memory: VmHWM, which starts afresh at exec (ru_maxrss keeps the parent's
    peak across fork and exec, so a child started by a big process reports the parent's)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def probe_hf(model_path: str, weights: str, prompt_tokens: int = 256, decode_tokens: int = 64) -> dict:
    """`probe` for a checkpoint with its weights quantised: one greedy stream through transformers."""
    import torch

    started = time.perf_counter()
    passer = HFLogitPass(model_path, weights)
    loaded = time.perf_counter() - started
    tokens, bos = passer.tokenize(read_text(None))
    ids = torch.tensor([([bos] if bos is not None else []) + tokens[: prompt_tokens - 1]])
    with torch.inference_mode():
        started = time.perf_counter()
        output = passer.model(ids, use_cache=True)
        prompt_seconds = time.perf_counter() - started
        cache, token = output.past_key_values, output.logits[:, -1:].argmax(-1)
        started = time.perf_counter()
        for _ in range(decode_tokens):
            output = passer.model(token, past_key_values=cache, use_cache=True)
            cache, token = output.past_key_values, output.logits[:, -1:].argmax(-1)
        decode_seconds = time.perf_counter() - started
    return {
        "load_seconds": loaded,
        "prompt_tps": ids.shape[1] / prompt_seconds,
        "decode_tps": decode_tokens / decode_seconds,
        "peak_rss_bytes": peak_resident_bytes(),
    }


def probe_in_subprocess(model_path: str, weights: str | None = None, timeout: float = 600) -> dict:
    """`probe` (or `probe_hf`, where `weights` is given) in a fresh interpreter, so the peak memory is the
    variant's alone."""
    extra = [] if weights is None else ["--hf-weights", weights]
    done = subprocess.run([sys.executable, "-m", "selfimprove.quant.measure", model_path, *extra],
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"probing {model_path} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if len(arguments) == 3 and arguments[1] == "--hf-weights":
        print(json.dumps(probe_hf(arguments[0], arguments[2])))
    else:
        print(json.dumps(probe(arguments[0])))
