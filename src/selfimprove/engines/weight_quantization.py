"""Weight-only quantisation of a transformers model in memory, through torchao (`pip install 'selfimprove[quant]'`).

torchao rather than optimum-quanto: torchao is PyTorch's own, maintained library for it (quanto is in
maintenance mode), and both of its weight-only configurations used here run on the CPU: int8 per output channel
(`Int8WeightOnlyConfig`) and int4 in groups of 32 along the input (`IntxWeightOnlyConfig(weight_dtype=int4)`).
Only `nn.Linear` layers are quantised (torchao's default filter); embeddings and norms stay as they were.
"""

from __future__ import annotations

import io
from typing import Any

from selfimprove.core.errors import ConfigError

WEIGHT_TYPES = ("float", "int8", "int4")
NOMINAL_BITS = {"int8": 8.0, "int4": 4.0}
INT4_GROUP = 32


def quantize_weights(model: Any, weights: str) -> Any:
    """`model` with its Linear weights quantised in place to `weights` ("float": left as it is)."""
    if weights not in WEIGHT_TYPES:
        raise ConfigError(f"weights {weights!r}: choose from {', '.join(WEIGHT_TYPES)}")
    if weights == "float":
        return model
    try:
        import torch
        from torchao.quantization import Int8WeightOnlyConfig, IntxWeightOnlyConfig, quantize_
        from torchao.quantization.granularity import PerGroup
    except ImportError as exc:
        raise ConfigError(f"weights {weights}: needs torchao (pip install 'selfimprove[quant]')") from exc
    if weights == "int8":
        config = Int8WeightOnlyConfig()
    else:
        config = IntxWeightOnlyConfig(weight_dtype=torch.int4, granularity=PerGroup(INT4_GROUP))
    quantize_(model, config)
    return model


def state_bytes(model: Any) -> int:
    """Bytes of the model's weights as torch.save writes them (quantised tensors in their packed form)."""
    import torch

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()
