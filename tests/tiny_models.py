"""Tiny randomly initialised transformers models for fast tests (real architectures, made from a config)."""

from __future__ import annotations

import random


def tiny_llama(seed: int = 0, hidden: int = 32, layers: int = 2):
    """(model, tokenizer): a 2-layer Llama over the character tokenizer, random weights."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from selfimprove.training.tokenizer import char_tokenizer

    torch.manual_seed(seed)
    tokenizer = char_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config).eval(), tokenizer


def _blocks(arch: str, hidden: int, ffn: int, q_rows: int, kv_rows: int, head_dim: int, layers: int):
    names = {
        "attn_norm": (hidden,),
        "attn_q": (q_rows, hidden),
        "attn_k": (kv_rows, hidden),
        "attn_v": (kv_rows, hidden),
        "attn_output": (hidden, q_rows),
        "ffn_norm": (hidden,),
        "ffn_gate": (ffn, hidden),
        "ffn_up": (ffn, hidden),
        "ffn_down": (hidden, ffn),
    }
    if arch == "gemma3":
        names |= {
            "attn_q_norm": (head_dim,),
            "attn_k_norm": (head_dim,),
            "post_attention_norm": (hidden,),
            "post_ffw_norm": (hidden,),
        }
    return {f"blk.{i}.{name}.weight": shape for i in range(layers) for name, shape in names.items()}


def gguf_template(path, arch: str, config, vocab: int, tied: bool) -> None:
    """A GGUF with the model's hyperparameters, a stand-in vocabulary and all-zero tensors."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), arch)
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(10000.0)
    if arch == "gemma3":
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
        writer.add_sliding_window(config.sliding_window)
    writer.add_tokenizer_model("llama")
    writer.add_token_list([f"<t{i}>" for i in range(vocab)])
    writer.add_token_scores([0.0] * vocab)
    writer.add_token_types([1] * vocab)
    shapes = {"token_embd.weight": (vocab, config.hidden_size), "output_norm.weight": (config.hidden_size,)}
    if not tied:
        shapes["output.weight"] = (vocab, config.hidden_size)
    shapes |= _blocks(
        arch, config.hidden_size, config.intermediate_size, heads * head_dim, kv_heads * head_dim, head_dim,
        config.num_hidden_layers,
    )  # fmt: skip
    for name, shape in shapes.items():
        writer.add_tensor(name, np.zeros(shape, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def separable_preferences(count: int, list_size: int = 2, seed: int = 0) -> list:
    """Strictly ranked responses told apart by their last character ('!' best, then '.', ',', '?'): a reward
    model only has to read it."""
    from selfimprove.rewards.preferences import Preference

    rng = random.Random(seed)
    preferences = []
    for i in range(count):
        digits = ["".join(rng.choice("0123456789") for _ in range(4)) for _ in range(list_size)]
        responses = tuple(d + mark for d, mark in zip(digits, "!.,?"[: list_size - 1] + "?"))
        preferences.append(Preference(f"Q{i}: ", responses, tuple(range(list_size))))
    return preferences
