"""The `hf` engine on the embedded GGUF, dequantised by transformers: it scores text as llama.cpp does on
the same file, generates through the CLI, and reloads from its safetensors cache."""

import math
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytestmark = pytest.mark.slow

TEXT = (
    "Question: Kate has 32 apples. She gives 4 to a friend and buys 10 more. How many apples does she have now?\n"
    "Answer: Kate starts with 32 apples. 32 - 4 = 28. 28 + 10 = 38. The answer is 38."
)


@pytest.fixture(scope="module")
def hf_engine():
    from selfimprove.engines.hf import HFEngine

    engine = HFEngine(model=None, device="cpu")
    yield engine
    engine.close()


def test_mean_token_loglik_matches_llama_cpp_on_the_same_gguf(hf_engine, embedded_model):
    import llama_cpp

    from selfimprove.engines.llama_cpp import teacher_forced_logprobs

    tokens = llama_cpp.Llama(model_path=str(embedded_model), vocab_only=True, verbose=False).tokenize(
        TEXT.encode(), add_bos=True
    )
    assert hf_engine.tokenizer(TEXT)["input_ids"] == tokens  # the converted tokenizer is the GGUF's
    hf = -sum(hf_engine.token_logprobs(tokens)) / (len(tokens) - 1)
    (scored,) = teacher_forced_logprobs(str(embedded_model), [tokens])
    ll = -sum(scored) / (len(tokens) - 1)
    print(f"mean NLL per token: transformers {hf:.4f}, llama.cpp {ll:.4f} over {len(tokens) - 1} tokens")
    assert math.isfinite(hf) and 0.5 < hf < 6
    assert abs(hf - ll) < 0.05 * ll


def test_cli_run_on_the_hf_engine(tmp_path, hf_engine):
    # hf_engine made the safetensors cache, so this process reloads it instead of dequantising again.
    result = subprocess.run(
        [sys.executable, "-m", "selfimprove.cli", "run", "--engine", "hf", "--task", "arithmetic", "--strategy",
         "self-consistency", "--samples", "2", "--limit", "2", "--max-tokens", "48", "--store",
         str(tmp_path / "s.sqlite"), "--no-progress"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "self-consistency accuracy" in " ".join(result.stdout.replace("│", " ").split())
