"""Tiny randomly initialised transformers models for fast tests (real architectures, made from a config)."""

from __future__ import annotations


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
