"""Numeric answers: pull the final number out of free text and compare numbers by value.

Extraction order (first that matches wins):
1. the first number after the last "answer is" / "answer:" phrase,
2. the first number after the last "####",
3. the last number in the text.
Numbers may carry thousands commas (1,000), a currency sign ($5, -$5, $-5), a unit (12 kg, 50%),
a sign and decimals; trailing punctuation is ignored. The canonical form is the shortest decimal
string of the value ("72.00" -> "72", "-0.50" -> "-0.5"). No number -> None, which never votes.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_CURRENCY = r"[$€£¥]"
_NUMBER = re.compile(
    rf"""
    (?<![\w.])                       # not the tail of a word, identifier or decimal
    (?P<sign>-\s?)?
    {_CURRENCY}?\s?
    (?P<sign2>-)?
    (?P<digits>\d{{1,3}}(?:,\d{{3}})+|\d+)
    (?P<frac>\.\d+)?
    """,
    re.VERBOSE,
)
_ANSWER_PHRASE = re.compile(r"answer\s*(?:is|:|=)\s*(?:[:=]\s*)?", re.IGNORECASE)
_HASHES = re.compile(r"####")


def canonical_number(raw: str) -> str | None:
    """Canonical string of a number written with optional commas, currency or sign; None if not a number."""
    match = _NUMBER.search(raw.strip())
    if match is None:
        return None
    return _canonical(match)


def _canonical(match: re.Match[str]) -> str | None:
    negative = bool(match.group("sign") or match.group("sign2"))
    text = match.group("digits").replace(",", "") + (match.group("frac") or "")
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if negative:
        value = -value
    return format_decimal(value)


def format_decimal(value: Decimal) -> str:
    """Shortest plain decimal form: no exponent, no trailing zeros, no "-0"."""
    if value == value.to_integral_value():
        return str(int(value))
    text = format(value.normalize(), "f")
    return text


def _first_number(text: str) -> str | None:
    match = _NUMBER.search(text)
    return _canonical(match) if match else None


def extract_number(text: str) -> str | None:
    """The final numeric answer stated in `text` (see module docstring), canonicalised, or None."""
    if not text:
        return None
    for marker in (_ANSWER_PHRASE, _HASHES):
        positions = [m.end() for m in marker.finditer(text)]
        if positions:
            tail = text[positions[-1] :]
            # Look only at the sentence right after the marker, so "The answer is unclear. 3 apples" fails.
            sentence = re.split(r"(?<!\d)[.!?](?!\d)|\n", tail, maxsplit=1)[0]
            found = _first_number(sentence)
            if found is not None:
                return found
    matches = list(_NUMBER.finditer(text))
    return _canonical(matches[-1]) if matches else None


def numbers_equal(answer: str | None, reference: str | None) -> bool:
    """True when both parse as numbers of the same value; a missing answer is never correct."""
    if answer is None or reference is None:
        return False
    try:
        return Decimal(answer) == Decimal(reference)
    except InvalidOperation:
        return canonical_number(answer) is not None and canonical_number(answer) == canonical_number(reference)
