"""GGUF variants of one model: the reference (F16/F32) and its quantisations by llama.cpp's own quantiser.

The reference is a GGUF at F16/F32 given by path, or made here: from a Hugging Face checkpoint written into the
layout of a GGUF template (`training.gguf_export`), or from the embedded model, whose Q4_K_M weights are
dequantised and written back at F16. That last reference already carries Q4_K_M's error, so its variants are
"requantised from dequantised Q4_K_M" and are labelled so; their divergences measure the extra loss of going
lower from there, not the loss from the original bf16 model (which is not shipped).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from selfimprove.core.errors import ConfigError

# Nominal bits per weight of llama.cpp's types (its quantize tool's table, for the type's main tensors); a file's
# measured bits per weight differ because norms stay F32 and some tensors are kept at a higher type.
NOMINAL_BITS = {
    "f32": 32.0, "f16": 16.0, "bf16": 16.0, "q8_0": 8.5, "q6_k": 6.56, "q5_k_m": 5.5, "q5_k_s": 5.5,
    "q4_k_m": 4.5, "q4_k_s": 4.5, "q4_0": 4.5, "iq4_xs": 4.25, "iq4_nl": 4.5, "q3_k_l": 3.44, "q3_k_m": 3.44,
    "q3_k_s": 3.44, "q2_k": 2.63,
}  # fmt: skip
DEFAULT_TYPES = "q8_0,q6_k,q5_k_m,q4_k_m,iq4_xs,q3_k_m,q2_k"


@dataclass
class GGUFFacts:
    path: str
    bytes: int
    parameters: int
    tensor_types: dict[str, int]

    @property
    def bits_per_weight(self) -> float:
        return 8 * self.bytes / self.parameters


def gguf_facts(path: str | Path) -> GGUFFacts:
    """Size on disk, parameter count and tensor types of a GGUF file (read from its header, not loaded)."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    kinds: dict[str, int] = {}
    for tensor in reader.tensors:
        kinds[tensor.tensor_type.name] = kinds.get(tensor.tensor_type.name, 0) + 1
    parameters = sum(int(tensor.n_elements) for tensor in reader.tensors)
    return GGUFFacts(str(path), os.path.getsize(path), parameters, kinds)


def parse_types(text: str) -> list[str]:
    """The variant types of `--types`, each one llama.cpp's quantiser can make."""
    from selfimprove.training.gguf_export import DIRECT_TYPES, LLAMA_CPP_TYPES

    known = {*DIRECT_TYPES, *LLAMA_CPP_TYPES}
    types = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [t for t in types if t not in known]
    if unknown or not types:
        raise ConfigError(f"--types: unknown GGUF type(s) {', '.join(unknown) or '(none)'}; choose from "
                          f"{', '.join(sorted(known))}")  # fmt: skip
    return list(dict.fromkeys(types))


def reference_gguf(
    model: str | None, folder: Path, template: str | None = None, out_type: str = "f16"
) -> tuple[str, str]:
    """(path of the reference GGUF, how it was made). A .gguf at F16/F32 is used as it is."""
    from selfimprove.training.gguf_export import export_checkpoint, write_gguf

    if model is not None and model.endswith(".gguf"):
        facts = gguf_facts(model)
        if facts.bits_per_weight < 15.5:
            raise ConfigError(
                f"{model}: {facts.bits_per_weight:.2f} bits per weight; a reference must be F16/BF16/F32 "
                "(give the unquantised GGUF, or omit --model to use the embedded model dequantised)"
            )
        return model, "given"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"reference-{out_type}.gguf"
    if model is None:
        from selfimprove.engines.embedded import embedded_model_path
        from selfimprove.engines.hf import load_causal_lm

        if not out.is_file():
            network, _, _ = load_causal_lm(None)
            write_gguf(network, embedded_model_path(), out, out_type)
            del network
        return str(out), "embedded Q4_K_M dequantised to F16 (variants are requantised from it)"
    if not (Path(model) / "config.json").is_file():
        raise ConfigError(f"--model {model}: not a .gguf file nor a Hugging Face checkpoint folder")
    if template is None:
        raise ConfigError(f"--model {model}: a checkpoint needs --template, a GGUF of its architecture and tokenizer")
    if not out.is_file():
        export_checkpoint(model, Path(template), out, out_type)
    return str(out), f"{model} exported to {out_type.upper()} in the layout of {template}"


def make_variant(reference: str, out_type: str, folder: Path) -> str:
    """The reference quantised to `out_type` by llama.cpp's quantiser, q8_0 and f16 included, so that every variant
    comes from one quantiser (made once; an interrupted quantisation leaves no file)."""
    from selfimprove.training.gguf_export import llama_cpp_quantize

    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{out_type}.gguf"
    if not out.is_file():
        llama_cpp_quantize(Path(reference), out, out_type)
    return str(out)
