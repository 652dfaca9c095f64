"""Which option a completion chose, for multiple-choice questions.

Tried in order, the last match of each rule winning (a model that reconsiders ends with its final
choice): an explicit "answer is (B)" / "Answer: B"; a parenthesised letter "(B)"; a letter with a
closing parenthesis "B)"; an option's text ("the statement is Unknown"); a lone letter on the last
line. Letters are only accepted when they name one of the options.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# After "answer is": "(b)", "B", or a lower-case "b" that ends the sentence ("the answer is a bit" is no choice).
_STATED = re.compile(
    r"[Aa]nswer\s*(?:is|:|=|-)?\s*(?:[Oo]ption\s*)?(?:[\(\[]([A-Za-z])[\)\]]|([A-Z])\b|([a-z])(?=\s*(?:[.),:;]|$)))",
    re.MULTILINE,
)
_PARENTHESISED = re.compile(r"\(([A-Za-z])\)")
_CLOSED = re.compile(r"(?:^|[\s\"'])([A-Z])\)")
_LONE = re.compile(r"^\s*\(?([A-Z])[\).:]?\s*$")


def extract_choice(text: str, options: Sequence[tuple[str, str]]) -> str | None:
    """The chosen option's letter (upper case) among `options` [(letter, text), ...], or None."""
    letters = {letter.upper() for letter, _ in options}
    for pattern in (_STATED, _PARENTHESISED, _CLOSED):
        found = [g.upper() for m in pattern.finditer(text) for g in m.groups() if g and g.upper() in letters]
        if found:
            return found[-1]
    by_text = _last_option_text(text, options)
    if by_text is not None:
        return by_text
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if lines:
        lone = _LONE.match(lines[-1])
        if lone and lone.group(1).upper() in letters:
            return lone.group(1).upper()
    return None


def _last_option_text(text: str, options: Sequence[tuple[str, str]]) -> str | None:
    """The option whose text appears last in `text` (whole words, any case); longer texts win ties."""
    best: tuple[int, int, str] | None = None
    lowered = text.lower()
    for letter, option in options:
        needle = option.strip().rstrip(".").lower()
        if not needle:
            continue
        for match in re.finditer(rf"(?<!\w){re.escape(needle)}(?!\w)", lowered):
            key = (match.start(), len(needle), letter.upper())
            if best is None or key[:2] > best[:2]:
                best = key
    return best[2] if best else None


def split_option(option: str, index: int) -> tuple[str, str]:
    """("B", "False") from "B) False", "(B) False" or "B. False"; a bare text gets the letter of its position."""
    match = re.match(r"^\s*\(?([A-Za-z])[\)\.:]\s*(.*)$", option, re.DOTALL)
    if match:
        return match.group(1).upper(), match.group(2).strip()
    return chr(ord("A") + index), option.strip()
