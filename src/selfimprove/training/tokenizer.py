"""A character-level tokenizer for the testbed model: every character of the alphabet is one token.

Why characters: the testbed learns arithmetic from scratch, and digit-by-digit tokens are what
lets a small transformer add numbers it has not seen (a BPE merges digits unpredictably).
"""

from __future__ import annotations

import string
from typing import Any

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
DEFAULT_ALPHABET = string.ascii_letters + string.digits + string.punctuation + " \n"


def char_tokenizer(alphabet: str = DEFAULT_ALPHABET) -> Any:
    """A `PreTrainedTokenizerFast` over `alphabet` that adds <bos> in front of every encoded text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    chars = sorted(set(alphabet))
    vocab = {token: i for i, token in enumerate(SPECIALS)}
    for char in chars:
        vocab.setdefault(char, len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    core.decoder = decoders.Fuse()
    core.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", vocab["<bos>"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>", unk_token="<unk>"
    )
