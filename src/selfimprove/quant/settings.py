"""The quantization sweep's settings (kept apart from the sweep, which needs numpy, so the CLI can read them)."""

from __future__ import annotations

from dataclasses import dataclass

from selfimprove.core.errors import ConfigError
from selfimprove.quant.variants import DEFAULT_TYPES, parse_types


@dataclass
class QuantSettings:
    """Which variants, and what each is measured on."""

    types: str = DEFAULT_TYPES
    """GGUF types to make from the reference, comma-separated (llama.cpp's quantiser: q8_0, q6_k, q5_k_m,
    q4_k_m, iq4_xs, q3_k_m, q2_k, ...)."""
    weights: str = "int8,int4"
    """Weight-only types for a Hugging Face checkpoint given without --template (torchao; the reference is the
    checkpoint in float32)."""
    template: str | None = None
    """A Hugging Face checkpoint --model is exported in the layout of this GGUF (its architecture and tokenizer)."""
    include_source: bool = True
    """The embedded model: measure its shipped Q4_K_M file too (against its own dequantised F16: a sanity check,
    its KLD should be ~0)."""
    text: str | None = None
    """Text for the divergences: a text file or a JSONL file's string fields (default: worked arithmetic
    problems generated here)."""
    kld_tokens: int = 4096
    """Scored positions of the text."""
    context: int = 512
    """Tokens per window the text is scored in."""
    top_k: int = 32
    """Reference tokens kept per position (plus the tail's mass)."""
    task: str = "arithmetic"
    """Task for accuracy (arithmetic: generated here)."""
    levels: str = "1-2"
    """Its difficulty levels (accuracy is also reported per level)."""
    shots: int = 4
    """Few-shot exemplars in each prompt."""
    problems: int = 100
    """Test problems solved greedily by every variant (0: no accuracy)."""
    max_tokens: int = 128
    """Tokens per solution."""
    batch_size: int = 16
    """Problems decoded together (llama.cpp's continuous batching)."""
    probe: bool = True
    """Measure load time, prompt / decode speed and peak memory of one stream, each variant in its own process."""

    def __post_init__(self) -> None:
        self.type_list = parse_types(self.types)
        self.weight_list = [w.strip() for w in self.weights.split(",") if w.strip()]
        bad = [w for w in self.weight_list if w not in ("int8", "int4")]
        if bad or not self.weight_list:
            raise ConfigError(f"--weights: expected int8 and/or int4, got {self.weights!r}")
        for name in ("kld_tokens", "context", "top_k"):
            if getattr(self, name) < 2:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 2, got {getattr(self, name)}")
        if self.problems < 0 or self.max_tokens < 1 or self.batch_size < 1:
            raise ConfigError("--problems must be >= 0, --max-tokens and --batch-size >= 1")
        if self.task != "arithmetic":
            raise ConfigError(f"--task {self.task!r}: the sweep measures accuracy on 'arithmetic' for now")
