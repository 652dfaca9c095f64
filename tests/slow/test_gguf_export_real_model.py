"""GGUF export of the embedded Gemma after its weights changed (as fine-tuning changes them): llama.cpp,
reading the exported file, scores text as transformers scores the changed model in memory."""

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("gguf")
pytestmark = pytest.mark.slow

TEXT = (
    "Question: Ben has 17 marbles. He finds 8 more and then gives away 5. How many marbles does he have?\n"
    "Answer: Ben starts with 17 marbles. 17 + 8 = 25. 25 - 5 = 20. The answer is 20."
)


def llama_cpp_nll(path, tokens):
    from selfimprove.engines.llama_cpp import teacher_forced_logprobs

    (scored,) = teacher_forced_logprobs(str(path), [tokens])
    return -float(np.mean(scored))


@pytest.fixture(scope="module")
def changed_engine():
    """The embedded model with one MLP silenced and one norm shifted: a model llama.cpp has never seen."""
    import torch

    from selfimprove.engines.hf import HFEngine

    engine = HFEngine(model=None, device="cpu")
    with torch.no_grad():
        engine.model.model.layers[3].mlp.down_proj.weight.mul_(0.0)
        engine.model.model.layers[7].post_attention_layernorm.weight.add_(0.5)
    yield engine
    engine.close()


def test_exported_gguf_scores_text_like_the_changed_model(tmp_path, changed_engine, embedded_model):
    import llama_cpp

    from selfimprove.training.gguf_export import export_gguf

    tokens = llama_cpp.Llama(model_path=str(embedded_model), vocab_only=True, verbose=False).tokenize(
        TEXT.encode(), add_bos=True
    )
    changed = -float(np.mean(changed_engine.token_logprobs(tokens)))
    original = llama_cpp_nll(embedded_model, tokens)
    assert abs(changed - original) > 0.1  # the change is visible, so agreement below means something

    exact = export_gguf(changed_engine.model, embedded_model, tmp_path / "changed-f16.gguf", "f16")
    exported = llama_cpp_nll(exact, tokens)
    print(f"NLL/token: embedded {original:.4f}, changed (transformers) {changed:.4f}, exported f16 {exported:.4f}")
    assert abs(exported - changed) < 0.005 * changed

    small = export_gguf(changed_engine.model, embedded_model, tmp_path / "changed-q4.gguf", "q4_k_m")
    quantised = llama_cpp_nll(small, tokens)
    print(f"exported q4_k_m {quantised:.4f}, {small.stat().st_size / 2**20:.0f} MiB")
    assert small.stat().st_size < 0.6 * exact.stat().st_size
    assert abs(quantised - changed) < 0.05 * changed
