"""Shared fixtures. Tests marked `slow` use the real embedded GGUF model (CI runs them)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present (it sits beside the repository in CI)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def embedded_model() -> Path:
    from selfimprove.engines.embedded import embedded_model_path

    return embedded_model_path()


@pytest.fixture(scope="session")
def llama_engine(embedded_model):
    from selfimprove.engines.llama_cpp import LlamaCppEngine

    engine = LlamaCppEngine(model=str(embedded_model), n_ctx=4096, max_parallel=16)
    yield engine
    engine.close()
