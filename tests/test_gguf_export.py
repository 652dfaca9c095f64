"""GGUF export: a checkpoint written into a template GGUF's layout reads back through transformers' own
GGUF loader (an independent implementation of the layout) as the same weights; bad input is refused.

The templates here are written by hand with the gguf package (zeros for every tensor), so nothing of the
exported weights can come from the template."""

import numpy as np
import pytest

pytest.importorskip("torch")
gguf = pytest.importorskip("gguf")

from selfimprove.core.errors import ConfigError  # noqa: E402
from selfimprove.training.gguf_export import default_template, export_checkpoint, export_gguf  # noqa: E402
from tiny_models import gguf_template, tiny_llama  # noqa: E402

VOCAB = 96


def tiny_gemma3(seed: int = 0):
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(seed)
    config = Gemma3TextConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        sliding_window=64,
        max_position_embeddings=256,
    )
    model = Gemma3ForCausalLM(config).eval()
    with torch.no_grad():  # random norms, so that a missing or doubled "+1" shows
        for name, param in model.named_parameters():
            if "norm" in name:
                param.normal_(0, 0.5)
    return model


def read_back(path):
    """The exported file loaded by transformers' GGUF loader, as a float32 state dict."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


def assert_same_weights(model, loaded, atol):
    expected = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    assert set(expected) <= set(loaded)
    for name, value in expected.items():
        np.testing.assert_allclose(loaded[name], value, atol=atol, rtol=0, err_msg=name)


def test_llama_export_reads_back_as_the_same_weights(tmp_path):
    model, _ = tiny_llama(seed=3, hidden=32)
    template = tmp_path / "template.gguf"
    gguf_template(template, "llama", model.config, model.config.vocab_size, tied=False)
    out = export_gguf(model, template, tmp_path / "out" / "model.gguf", "f32")
    # transformers un-permutes q and k rows on load: equality means the export permuted them exactly
    assert_same_weights(model, read_back(out), atol=0)


def test_gemma3_export_reads_back_as_the_same_weights(tmp_path):
    model = tiny_gemma3(seed=4)
    template = tmp_path / "template.gguf"
    gguf_template(template, "gemma3", model.config, VOCAB, tied=True)
    out = export_gguf(model, template, tmp_path / "model.gguf", "f32")
    reader = gguf.GGUFReader(str(out))
    assert reader.fields["tokenizer.ggml.tokens"].contents()[:2] == ["<t0>", "<t1>"]  # tokenizer kept
    names = [t.name for t in reader.tensors]
    assert "output.weight" not in names  # tied: stored once, as in the template
    norm = next(t for t in reader.tensors if t.name == "blk.0.attn_norm.weight")
    hf_norm = model.model.layers[0].input_layernorm.weight.detach().numpy()
    np.testing.assert_allclose(np.asarray(norm.data), hf_norm + 1, atol=1e-6)  # GGUF stores 1 + w
    assert_same_weights(model, read_back(out), atol=1e-6)


def test_q8_0_export_is_quantised_and_close(tmp_path):
    model = tiny_gemma3(seed=5)
    template = tmp_path / "template.gguf"
    gguf_template(template, "gemma3", model.config, VOCAB, tied=True)
    out = export_gguf(model, template, tmp_path / "model.gguf", "q8_0")
    types = {t.name: t.tensor_type.name for t in gguf.GGUFReader(str(out)).tensors}
    assert types["blk.0.ffn_up.weight"] == "Q8_0" and types["blk.0.attn_norm.weight"] == "F32"
    assert_same_weights(model, read_back(out), atol=2e-3)


def test_checkpoint_folder_export_and_refusals(tmp_path):
    model, tokenizer = tiny_llama(seed=6, hidden=32)
    folder = tmp_path / "merged"
    model.save_pretrained(folder)
    template = tmp_path / "template.gguf"
    gguf_template(template, "llama", model.config, model.config.vocab_size, tied=False)
    out = export_checkpoint(folder, template, tmp_path / "m.gguf", "f16")
    assert_same_weights(model, read_back(out), atol=2e-3)
    assert not list(tmp_path.glob("*.partial"))

    deeper, _ = tiny_llama(seed=6, hidden=32, layers=3)
    with pytest.raises(ConfigError, match="2 blocks, but the checkpoint has 3 layers"):
        export_gguf(deeper, template, tmp_path / "x.gguf", "f16")
    no_output = tmp_path / "tied-template.gguf"
    gguf_template(no_output, "llama", model.config, model.config.vocab_size, tied=True)
    with pytest.raises(ConfigError, match="no place for: output.weight"):  # an untied head is not dropped
        export_gguf(model, no_output, tmp_path / "x.gguf", "f16")
    with pytest.raises(ConfigError, match="unknown GGUF type"):
        export_gguf(model, template, tmp_path / "x.gguf", "q3")
    with pytest.raises(ConfigError, match="template not found"):
        export_gguf(model, tmp_path / "missing.gguf", tmp_path / "x.gguf", "f16")
    with pytest.raises(ConfigError, match="no config.json"):
        export_checkpoint(tmp_path, template, tmp_path / "x.gguf")
    with pytest.raises(ConfigError, match="did not come from a GGUF"):
        default_template(str(folder))
    assert default_template(str(folder), template) == template
    assert not (tmp_path / "x.gguf").exists()
