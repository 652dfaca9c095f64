"""vLLM rollouts for SCoRe (`--rollout vllm`): TRL's vLLM generation draws the episodes' attempts.

On a GPU, sampling is most of a SCoRe step; vLLM samples many rows at once far faster than
`transformers.generate`. TRL's `VLLMGeneration` already does the hard parts: vLLM in this process
sharing the GPU (`colocate`) or a `trl vllm-serve` server (`server`), and pushing the policy's current
weights into it (LoRA merged first; FSDP/DeepSpeed gathered). This module only fits it to the rollout
interface the trainer samples through (`encode_prompt`, `sample_rows`, `batch_size`, as `HFEngine` has),
and turns its token ids into rows with `drawn_completion`, the function the `hf` sampler uses, so a
row means the same whichever engine drew it.

One difference: TRL's generation takes one `SamplingParams` per call, so the per-row seeds are not
passed (one seed for a call would give a problem's episodes the same sample); vLLM rollouts are fresh
samples, not repeatable by seed.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from typing import Any

from selfimprove.core.errors import ConfigError
from selfimprove.core.types import Completion, PromptContent, Sampling
from selfimprove.engines.hf import HFEngine, drawn_completion

VLLM_MODES = ("colocate", "server")

INSTALL_HINT = (
    "--rollout vllm needs vLLM (a CUDA GPU; the versions TRL supports): pip install 'selfimprove[train,vllm]'"
)


def require_vllm() -> None:
    """Fails before any model is loaded when vLLM is missing, rather than after a warm-up."""
    if importlib.util.find_spec("vllm") is None:
        raise ConfigError(INSTALL_HINT)


def trl_vllm_generation(policy: Any, accelerator: Any, tokenizer: Any, sampling: Sampling, settings: Any) -> Any:
    """TRL's `VLLMGeneration` set to draw pure policy samples (no top-k/top-p) with the attempts' stops."""
    require_vllm()
    from trl.generation.vllm_generation import VLLMGeneration

    return VLLMGeneration(
        policy,
        accelerator,
        tokenizer,
        mode=settings.vllm_mode,
        server_base_url=settings.vllm_server,
        gpu_memory_utilization=settings.vllm_gpu_memory,
        temperature=sampling.temperature,
        top_p=1.0,
        top_k=0,
        max_completion_length=sampling.max_tokens,
        generation_kwargs={"stop": list(sampling.stop)} if sampling.stop else {},
    )


MakeGeneration = Callable[[Any, Any, Any, Sampling, Any], Any]


class VLLMRollout:
    """The trainer's rollout interface over a vLLM generator (`generate(prompt_ids, images, n)` returning
    `(prompt_ids, completion_ids, logprobs, logprob_ids)` and `sync_weights()`, as TRL's has).

    Every process must call `sample_rows` the same number of times (server mode gathers across them);
    the trainer gives each process the same number of problems, and one call per turn."""

    batch_size = 1 << 30  # one call per turn: vLLM schedules the rows itself

    def __init__(self, generation: Any, policy: Any, tokenizer: Any):
        self.generation = generation
        self.prompts = HFEngine.from_loaded(policy, tokenizer)  # the same prompt encoding as the hf sampler
        self.tokenizer = tokenizer
        self.ends = self.prompts.end_ids()

    def sync(self) -> None:
        """Pushes the policy's current weights to vLLM: called before every step's rollout."""
        self.generation.sync_weights()

    def encode_prompt(self, content: PromptContent) -> list[int]:
        return self.prompts.encode_prompt(content)

    def sample_rows(
        self, inputs: list[list[int]], seeds: list[int], sampling: Sampling
    ) -> list[tuple[list[int], Completion]]:
        """As `HFEngine.sample_rows`; `seeds` are not passed on (see the module's docstring)."""
        started = time.perf_counter()
        _, completion_ids, _, _ = self.generation.generate(inputs, None, 1)
        if len(completion_ids) != len(inputs):
            raise RuntimeError(f"vLLM returned {len(completion_ids)} rows for {len(inputs)} prompts")
        share = (time.perf_counter() - started) / max(1, len(inputs))
        return [
            drawn_completion(self.tokenizer, list(row), self.ends, sampling, len(prompt), share)
            for prompt, row in zip(inputs, completion_ids)
        ]
