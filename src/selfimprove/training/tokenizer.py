"""Small tokenizers for models trained from scratch (tests, the testbed).

`char_tokenizer`: every character of an alphabet is one token (tests: any text encodes).
`word_digit_tokenizer`: fitted on a corpus; words (with their leading space) are tokens, every
digit is its own token. Why: the testbed learns arithmetic from scratch, and digit-by-digit tokens
are what lets a small transformer compute on numbers it has not seen, while whole words keep the
sequences short (about a third of the characters), which is most of the cost of training on a CPU.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
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


WORD_DIGIT_PATTERN = r" ?[A-Za-z']+|\d| |\n|[^\sA-Za-z\d]"


def word_digit_tokenizer(corpus: Iterable[str]) -> Any:
    """A `PreTrainedTokenizerFast` whose vocabulary is the corpus's words (with and without a leading space),
    the ten digits, and every ASCII character; <bos> in front of every encoded text."""
    import re

    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    pattern = re.compile(WORD_DIGIT_PATTERN)
    vocab = {token: i for i, token in enumerate(SPECIALS)}
    for char in sorted(set(DEFAULT_ALPHABET)):
        vocab.setdefault(char, len(vocab))
    for text in corpus:
        for piece in pattern.findall(text):
            word = piece.strip()
            if word.isalpha() or "'" in word:  # a word may follow a space or start a line: both spellings
                vocab.setdefault(word, len(vocab))
                vocab.setdefault(" " + word, len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(pattern=Regex(WORD_DIGIT_PATTERN), behavior="isolated")
    core.decoder = decoders.Fuse()
    core.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", vocab["<bos>"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>", unk_token="<unk>"
    )


def is_word_level(tokenizer: Any) -> bool:
    """A tokenizer of this module's word-and-digit kind (a fixed word list: new words become <unk>)."""
    import json

    backend = getattr(tokenizer, "backend_tokenizer", None)
    return backend is not None and json.loads(backend.to_str())["model"]["type"] == "WordLevel"


def missing_pieces(tokenizer: Any, corpus: Iterable[str]) -> list[str]:
    """Pieces of the corpus (words with and without their leading space, single characters) that a word-level
    tokenizer does not have, in first-seen order."""
    import re

    vocab = tokenizer.get_vocab()
    missing: dict[str, None] = {}
    for text in corpus:
        for piece in re.findall(WORD_DIGIT_PATTERN, text):
            word = piece.strip()
            spellings = (word, " " + word) if word and (word.isalpha() or "'" in word) else (piece,)
            missing.update((s, None) for s in spellings if s not in vocab)
    return list(missing)


def extend_word_level(tokenizer: Any, corpus: Iterable[str]) -> Any:
    """The tokenizer with the corpus's missing pieces added after its last id (old texts encode exactly as
    before); the caller resizes the model's embeddings to `len(result)`."""
    import json

    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    state = json.loads(tokenizer.backend_tokenizer.to_str())
    vocab = state["model"]["vocab"]
    for piece in missing_pieces(tokenizer, corpus):
        vocab.setdefault(piece, len(vocab))
    core = Tokenizer.from_str(json.dumps(state))
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>", unk_token="<unk>"
    )
