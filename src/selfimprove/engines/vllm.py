"""Engine `vllm`: vLLM's offline `LLM.generate` in this process (a CUDA GPU; `pip install 'selfimprove[vllm]'`).

Every (prompt, sample id) pair is one request with `n=1` and its own seed, `sample_seed(seed, prompt, sample id)`,
so a sample depends on its prompt and id, as in the other engines, and a resumed run draws only what it lacks.
The requests of a prompt share its prefix through vLLM's automatic prefix caching (on by default): its KV blocks
are computed once and the rest hit the cache (`Completion.prompt_evaluated` is the prompt minus the cached
tokens vLLM reports). Tensor parallelism is vLLM's (`tensor_parallel_size`); quantised checkpoints (AWQ, GPTQ,
FP8, ...) load by path, vLLM reading the method from their config (`quantization` forces one).

What this engine refuses, by name: `repeat_penalty` (vLLM's repetition penalty also counts the prompt's tokens,
which our contract does not), `penalty_window`, and `stop_below_confidence` (no early stop inside a call).
vLLM reports completions when the whole call ends, so `on_complete` is called then.

Unmeasured here: no GPU was lent while this was written; see docs/scaling.md.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from selfimprove.core.errors import ConfigError
from selfimprove.core.types import Completion, Prompt, PromptContent, Sampling, normalize_prompts, sample_seed
from selfimprove.engines.base import OnComplete, plain_transcript, registry

INSTALL_HINT = "engine 'vllm' needs vLLM and a CUDA GPU: pip install 'selfimprove[vllm]'"


def request_settings(sampling: Sampling, seed: int) -> dict[str, Any]:
    """`vllm.SamplingParams` keyword arguments for one sample (a plain dict, so it is testable without vLLM)."""
    if sampling.repeat_penalty != 1.0 or sampling.penalty_window:
        raise ConfigError(
            "engine 'vllm' cannot apply repeat_penalty / penalty_window to generated tokens only (vLLM's repetition "
            "penalty counts the prompt too); use frequency_penalty / presence_penalty, which it applies to output"
        )
    if sampling.stop_below_confidence:
        raise ConfigError("engine 'vllm' cannot stop a trace below a confidence mid-call (stop_below_confidence)")
    settings: dict[str, Any] = {
        "n": 1,
        "temperature": max(0.0, sampling.temperature),
        "top_p": sampling.top_p if not sampling.greedy else 1.0,
        "top_k": sampling.top_k if sampling.top_k > 0 and not sampling.greedy else -1,
        "max_tokens": sampling.max_tokens,
        "stop": list(sampling.stop),
        "seed": seed,
        "frequency_penalty": sampling.frequency_penalty,
        "presence_penalty": sampling.presence_penalty,
    }
    if sampling.wants_logprobs:
        settings["logprobs"] = sampling.top_logprobs  # 0: the drawn token's only; vLLM adds the drawn token
    return settings


def completion_from(output: Any, prompt_tokens: int, cached: int | None, eos_ids: set[int], top: int) -> Completion:
    """A `vllm.CompletionOutput` as our Completion: an end token is cut from the log-probabilities (its text
    never appears), the drawn token's log-probability per position, and the `top` best alternatives."""
    token_ids = list(output.token_ids)
    steps = list(output.logprobs) if output.logprobs is not None else None
    if steps is not None and token_ids and token_ids[-1] in eos_ids and output.finish_reason == "stop":
        steps, token_ids = steps[:-1], token_ids[:-1]
    logprobs = top_logprobs = None
    if steps is not None:
        logprobs = [step[token].logprob for step, token in zip(steps, token_ids)]
        if top:
            ranked = [sorted(step.values(), key=lambda entry: entry.rank) for step in steps]
            top_logprobs = [[(entry.decoded_token or "", entry.logprob) for entry in step[:top]] for step in ranked]
    return Completion(
        text=output.text,
        prompt_tokens=prompt_tokens,
        completion_tokens=len(output.token_ids),
        finish_reason="length" if output.finish_reason == "length" else "stop",
        logprobs=logprobs,
        top_logprobs=top_logprobs,
        prompt_evaluated=None if cached is None else max(0, prompt_tokens - cached),
    )


@registry.register("vllm")
class VLLMEngine:
    """Args:
    model: checkpoint folder or hub name (AWQ / GPTQ / FP8 checkpoints included).
    tensor_parallel_size: GPUs one model is split across.
    gpu_memory_utilization: share of each GPU's memory vLLM may take (weights, KV cache).
    max_model_len: longest prompt + completion (None: the model's).
    dtype: "auto", "bfloat16", "float16".
    quantization: force a quantisation method (None: what the checkpoint's config says).
    enable_prefix_caching: share the KV blocks of common prompt prefixes across requests.
    """

    name = "vllm"

    def __init__(
        self,
        model: str,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.85,
        max_model_len: int | None = None,
        dtype: str = "auto",
        quantization: str | None = None,
        enable_prefix_caching: bool = True,
    ):
        if importlib.util.find_spec("vllm") is None:
            raise ConfigError(INSTALL_HINT)
        from vllm import LLM, SamplingParams

        self._sampling_params = SamplingParams
        self.model = model
        self.settings = {"tensor_parallel_size": tensor_parallel_size, "max_model_len": max_model_len,
                         "dtype": dtype, "quantization": quantization}  # fmt: skip
        self.llm = LLM(
            model=model,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            dtype=dtype,
            quantization=quantization,
            enable_prefix_caching=enable_prefix_caching,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.eos_ids = {i for i in [self.tokenizer.eos_token_id] if i is not None}

    def describe(self) -> dict:
        return {"engine": self.name, "model": self.model, **{k: v for k, v in self.settings.items() if v is not None}}

    def close(self) -> None:
        del self.llm

    def render(self, content: PromptContent) -> str:
        """Text as given; chat messages through the model's chat template (or a plain transcript without one)."""
        if isinstance(content, str):
            return content
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(content, tokenize=False, add_generation_prompt=True)
        return plain_transcript(content)

    def generate(
        self,
        prompts: Sequence[Prompt | PromptContent],
        n: int,
        sampling: Sampling,
        on_complete: OnComplete | None = None,
    ) -> list[list[Completion]]:
        prompts = normalize_prompts(prompts)
        rows = [(i, s) for i, prompt in enumerate(prompts) for s in prompt.ids(n)]
        texts = [self.render(prompt.content) for prompt in prompts]
        params = [
            self._sampling_params(**request_settings(sampling, sample_seed(sampling.seed, prompts[i], s)))
            for i, s in rows
        ]
        started = time.perf_counter()
        outputs = self.llm.generate([texts[i] for i, _ in rows], params, use_tqdm=False)
        share = (time.perf_counter() - started) / max(1, len(rows))
        results: list[list[Completion]] = [[] for _ in prompts]
        for (i, s), output in zip(rows, outputs):
            completion = completion_from(output.outputs[0], len(output.prompt_token_ids),
                                         getattr(output, "num_cached_tokens", None), self.eos_ids,
                                         sampling.top_logprobs)  # fmt: skip
            completion = replace(completion, seconds=share)
            results[i].append(completion)
            if on_complete is not None:
                on_complete(i, s, completion)
        return results
