"""Export a trained Hugging Face checkpoint to GGUF, so llama.cpp (the fast engine) serves it.

A model trained here started as a GGUF (the embedded Gemma, dequantised by transformers) or
shares its architecture with one. The export takes that GGUF as a *template*: its metadata
(hyperparameters, tokenizer, chat template) is copied unchanged and every tensor is replaced by
the checkpoint's weight of the same GGUF name, checked for shape, undoing the layout changes
transformers makes when it loads a GGUF (Gemma's RMSNorm stores `w` where GGUF stores `1 + w`;
Llama's q/k rows are permuted for the other rotary layout). No tokenizer is rebuilt, so the
exported model tokenizes exactly as the template does.

Output types: `f32`, `f16`, `bf16`, `q8_0` are written directly by the `gguf` package; the k-quants
(`q4_k_m`, `q5_k_m`, `q6_k`, ...) are made by llama.cpp's own quantiser (through
llama-cpp-python) from an f16 intermediate, so they match what llama.cpp's tools produce.
One-dimensional tensors (norms) stay f32, as llama.cpp expects.
"""

from __future__ import annotations

import ctypes
import logging
import tempfile
from pathlib import Path
from typing import Any

from selfimprove.core.errors import ConfigError
from selfimprove.core.files import atomic_path

log = logging.getLogger(__name__)

# Written by the gguf package: type name -> (GGMLQuantizationType name, LlamaFileType name).
DIRECT_TYPES = {
    "f32": ("F32", "ALL_F32"),
    "f16": ("F16", "MOSTLY_F16"),
    "bf16": ("BF16", "MOSTLY_BF16"),
    "q8_0": ("Q8_0", "MOSTLY_Q8_0"),
}
# Made by llama.cpp's quantiser from an f16 file: type name -> LlamaFileType name.
LLAMA_CPP_TYPES = {
    "q4_0": "MOSTLY_Q4_0",
    "q4_k_s": "MOSTLY_Q4_K_S",
    "q4_k_m": "MOSTLY_Q4_K_M",
    "q5_k_s": "MOSTLY_Q5_K_S",
    "q5_k_m": "MOSTLY_Q5_K_M",
    "q6_k": "MOSTLY_Q6_K",
    "q3_k_s": "MOSTLY_Q3_K_S",
    "q3_k_m": "MOSTLY_Q3_K_M",
    "q3_k_l": "MOSTLY_Q3_K_L",
    "q2_k": "MOSTLY_Q2_K",
    "iq4_nl": "MOSTLY_IQ4_NL",
    "iq4_xs": "MOSTLY_IQ4_XS",
}
EXPORT_TYPES = (*DIRECT_TYPES, *LLAMA_CPP_TYPES)

# GGUF architecture names whose GGUF -> transformers weight changes are known (and undone here).
_NORM_PLUS_ONE = {"gemma", "gemma2", "gemma3"}
_PERMUTED_QK = {"llama", "mistral"}
SUPPORTED_ARCHITECTURES = _NORM_PLUS_ONE | _PERMUTED_QK | {"qwen2", "qwen3"}

_SKIPPED_KEYS = {"general.architecture", "general.file_type", "general.quantization_version"}


def permute_for_gguf(weight: Any, n_head: int) -> Any:
    """Rows of a q/k projection from transformers' rotary layout (halves) to GGUF's (pairs)."""
    rows = weight.shape[0]
    return weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def to_gguf_layout(arch: str, gguf_name: str, weight: Any, head_counts: tuple[int, int]) -> Any:
    """Undo what transformers does to this tensor when it loads a GGUF of `arch`."""
    if arch in _NORM_PLUS_ONE and "norm.weight" in gguf_name:
        return weight + 1
    if arch in _PERMUTED_QK and ".attn_q." in gguf_name:
        return permute_for_gguf(weight, head_counts[0])
    if arch in _PERMUTED_QK and ".attn_k." in gguf_name:
        return permute_for_gguf(weight, head_counts[1])
    return weight


def _copy_metadata(reader: Any, writer: Any, gguf: Any) -> None:
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key in _SKIPPED_KEYS:
            continue
        kind = field.types[0]
        sub_type = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), kind, sub_type)


def _template_arch(reader: Any, template: Path) -> str:
    field = reader.fields.get("general.architecture")
    if field is None:
        raise ConfigError(f"{template}: not a model GGUF (no general.architecture key)")
    return str(field.contents())


def _state_by_gguf_name(state: dict, arch: str, n_blocks: int, gguf: Any, checkpoint: Path) -> dict[str, Any]:
    """The checkpoint's tensors keyed by their GGUF names (the gguf package's own name table)."""
    arch_id = next((key for key, name in gguf.MODEL_ARCH_NAMES.items() if name == arch), None)
    if arch_id is None:
        raise ConfigError(f"the gguf package does not know the architecture {arch!r}")
    names = gguf.get_tensor_name_map(arch_id, n_blocks)
    mapped: dict[str, Any] = {}
    for hf_name, tensor in state.items():
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise ConfigError(f"{checkpoint}: tensor {hf_name!r} has no GGUF name for architecture {arch!r}")
        mapped[gguf_name] = tensor
    return mapped


def _head_counts(config: Any) -> tuple[int, int]:
    heads = int(getattr(config, "num_attention_heads", 0) or 0)
    return heads, int(getattr(config, "num_key_value_heads", heads) or heads)


def write_gguf(
    model: Any,
    template: Path,
    out: Path,
    out_type: str = "f16",
) -> Path:
    """Write `model` (a loaded transformers causal LM) as a GGUF of a type the gguf package writes."""
    import gguf

    if out_type not in DIRECT_TYPES:
        raise ConfigError(f"write_gguf writes {', '.join(DIRECT_TYPES)}; got {out_type!r}")
    reader = gguf.GGUFReader(str(template))
    arch = _template_arch(reader, template)
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ConfigError(
            f"{template}: architecture {arch!r} is not supported for export "
            f"(supported: {', '.join(sorted(SUPPORTED_ARCHITECTURES))})"
        )
    n_blocks = int(reader.fields[f"{arch}.block_count"].contents())
    if model.config.num_hidden_layers != n_blocks:
        raise ConfigError(
            f"{template}: {n_blocks} blocks, but the checkpoint has {model.config.num_hidden_layers} layers; "
            "export with the GGUF the model was trained from"
        )
    source = getattr(model, "name_or_path", "model")
    state = {key: value.detach().float().cpu().numpy() for key, value in model.state_dict().items()}
    weights = _state_by_gguf_name(state, arch, n_blocks, gguf, Path(source))
    with atomic_path(out) as partial:
        _write_tensors(gguf.GGUFWriter(str(partial), arch), reader, model, weights, source, arch, out_type)
    return out


def _write_tensors(writer: Any, reader: Any, model: Any, weights: dict, source: Any, arch: str, out_type: str) -> None:
    """Metadata from the template, then every tensor in the template's order and layout."""
    import gguf
    import numpy as np

    qtype_name, ftype_name = DIRECT_TYPES[out_type]
    qtype = gguf.GGMLQuantizationType[qtype_name]
    _copy_metadata(reader, writer, gguf)
    writer.add_file_type(int(gguf.LlamaFileType[ftype_name]))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    heads = _head_counts(model.config)
    placed = {info.name for info in reader.tensors}
    if getattr(model.config, "tie_word_embeddings", False):
        placed.add("output.weight")  # the same tensor as token_embd, which GGUF stores once
    unused = sorted(set(weights) - placed)
    if unused:
        raise ConfigError(f"{source}: tensors the template has no place for: {', '.join(unused[:5])}")
    for info in reader.tensors:
        if info.name not in weights:
            raise ConfigError(f"{source}: no tensor for the template's {info.name!r}")
        data = np.ascontiguousarray(to_gguf_layout(arch, info.name, weights[info.name], heads), dtype=np.float32)
        expected = tuple(int(n) for n in reversed(info.shape.tolist()))
        if data.shape != expected:
            raise ConfigError(f"{source}: {info.name} has shape {data.shape}, the template {expected}")
        tensor_type = qtype if data.ndim > 1 else gguf.GGMLQuantizationType.F32
        try:
            packed = gguf.quants.quantize(data, tensor_type)
        except gguf.quants.QuantError:  # a row too short for the block size: keep it exact
            tensor_type, packed = gguf.GGMLQuantizationType.F16, data.astype(np.float16)
        writer.add_tensor(info.name, packed, raw_dtype=tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def llama_cpp_quantize(source: Path, out: Path, out_type: str, threads: int = 0) -> Path:
    """Quantise a GGUF with llama.cpp's own quantiser (the k-quants the gguf package cannot write)."""
    import gguf

    try:
        import llama_cpp
    except ImportError as exc:  # pragma: no cover - the llama extra is part of every install here
        raise ConfigError(f"--type {out_type} needs llama-cpp-python (pip install 'selfimprove[llama]')") from exc
    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_quantize_default_params()
    ftype = LLAMA_CPP_TYPES.get(out_type) or DIRECT_TYPES[out_type][1]  # q8_0 and f16 too, where asked
    params.ftype = int(gguf.LlamaFileType[ftype])
    params.nthread = threads
    with atomic_path(out) as partial:
        status = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), ctypes.byref(params))
        if status != 0:
            raise RuntimeError(f"llama.cpp could not quantise {source} to {out_type} (status {status})")
    return out


def export_gguf(
    model: Any,
    template: Path,
    out: Path,
    out_type: str = "f16",
) -> Path:
    """Write `model` as a GGUF of `out_type` (any of EXPORT_TYPES) shaped like `template`."""
    if out_type not in EXPORT_TYPES:
        raise ConfigError(f"unknown GGUF type {out_type!r}; choose from {', '.join(EXPORT_TYPES)}")
    if not Path(template).is_file():
        raise ConfigError(f"GGUF template not found: {template}")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    if out_type in DIRECT_TYPES:
        return write_gguf(model, Path(template), Path(out), out_type)
    with tempfile.TemporaryDirectory(dir=Path(out).parent, prefix=".gguf-export-") as scratch:
        intermediate = write_gguf(model, Path(template), Path(scratch) / "f16.gguf", "f16")
        return llama_cpp_quantize(intermediate, Path(out), out_type)


def default_template(base_model: str | None, explicit: str | Path | None = None) -> Path:
    """The GGUF a trained model is exported like: the one named, else the GGUF it was trained from
    (a `.gguf` base model, or the embedded model when none was named)."""
    if explicit:
        return Path(explicit)
    if base_model and str(base_model).endswith(".gguf"):
        return Path(base_model)
    if base_model:
        raise ConfigError(
            f"{base_model} did not come from a GGUF: name a GGUF of the same architecture to take "
            "metadata and tokenizer from (--gguf-template / --template)"
        )
    from selfimprove.engines.embedded import embedded_model_path

    return embedded_model_path()


def export_checkpoint(
    checkpoint: str | Path,
    template: Path,
    out: Path,
    out_type: str = "f16",
) -> Path:
    """Load a Hugging Face checkpoint folder (e.g. LMSI's `sft/merged`) and export it as a GGUF."""
    from selfimprove.engines.hf import import_torch_stack

    torch, transformers = import_torch_stack()
    if not Path(checkpoint, "config.json").is_file():
        raise ConfigError(f"{checkpoint}: not a Hugging Face checkpoint folder (no config.json)")
    model = transformers.AutoModelForCausalLM.from_pretrained(str(checkpoint), dtype=torch.float32)
    try:
        return export_gguf(model, template, Path(out), out_type)
    finally:
        del model

