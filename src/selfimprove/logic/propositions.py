"""Propositional theories as Logic-of-Thought extracts them: named propositions and implications.

The extraction format (what the LLM is asked to write, parsed strictly):

    Propositions:
    A: the bald eagle is kind
    B: the bald eagle is red
    Relations:
    A -> B
    not B -> not C
    A and B -> C
    not D

A symbol is a letter followed by letters or digits; `not`, `~` and `¬` negate; `and`, `&`, `∧`
join antecedents; `->` and `→` imply; a line with a literal alone states it as a fact.
Anything else is a ParseError that names the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SYMBOL = r"[A-Za-z][A-Za-z0-9_]*"
_NEGATION = re.compile(r"^\s*(?:not\s+|~\s*|¬\s*)", re.IGNORECASE)
_ARROW = re.compile(r"\s*(?:->|→|=>)\s*")
_CONJUNCTION = re.compile(r"\s+(?:and)\s+|\s*[&∧]\s*", re.IGNORECASE)
_DEFINITION = re.compile(rf"^\s*(?:[-*]\s*)?({_SYMBOL})\s*[:=]\s*(.+?)\s*$")
_RESERVED = {"not", "and", "or"}


class ParseError(ValueError):
    """The extraction text does not follow the format; the message names the line."""


@dataclass(frozen=True, order=True)
class Literal:
    symbol: str
    negated: bool = False

    def negate(self) -> Literal:
        return Literal(self.symbol, not self.negated)

    def __str__(self) -> str:
        return f"not {self.symbol}" if self.negated else self.symbol


@dataclass(frozen=True, order=True)
class Implication:
    """antecedents (a conjunction, kept sorted and without repeats) -> consequent."""

    antecedents: tuple[Literal, ...]
    consequent: Literal

    @staticmethod
    def of(antecedents, consequent: Literal) -> Implication:
        return Implication(tuple(sorted(set(antecedents))), consequent)

    @property
    def trivial(self) -> bool:
        """True when the consequent is one of the antecedents (says nothing)."""
        return self.consequent in self.antecedents

    def __str__(self) -> str:
        return f"{' and '.join(map(str, self.antecedents))} -> {self.consequent}"


@dataclass
class Theory:
    propositions: dict[str, str]
    implications: list[Implication]
    facts: list[Literal] = field(default_factory=list)
    """Literals the context states as true (a relation line without an arrow); used to check consistency."""


def parse_literal(text: str, known: dict[str, str], line: int) -> Literal:
    """`A`, `not A`, `not not A` (double negation is removed here: ¬¬A is A)."""
    negated = False
    rest = text.strip()
    while (match := _NEGATION.match(rest)) is not None:
        negated = not negated
        rest = rest[match.end() :]
    if not re.fullmatch(_SYMBOL, rest):
        raise ParseError(f"line {line}: {text.strip()!r} is not a proposition symbol (optionally negated)")
    if rest not in known:
        raise ParseError(f"line {line}: {rest!r} is used but not defined under 'Propositions:'")
    return Literal(rest, negated)


def parse_theory(text: str) -> Theory:
    """A Theory from the extraction format above; ParseError on anything else."""
    propositions: dict[str, str] = {}
    implications: list[Implication] = []
    facts: list[Literal] = []
    section = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        header = line.rstrip(":").strip().lower()
        if header in ("propositions", "relations"):
            section = header
            continue
        if section is None:
            raise ParseError(f"line {number}: expected 'Propositions:' first, got {line!r:.60}")
        if section == "propositions":
            match = _DEFINITION.match(line)
            if match is None or match.group(1).lower() in _RESERVED:
                raise ParseError(f"line {number}: expected 'SYMBOL: text', got {line!r:.60}")
            symbol, meaning = match.groups()
            if symbol in propositions:
                raise ParseError(f"line {number}: {symbol!r} is defined twice")
            propositions[symbol] = meaning.rstrip(".")
            continue
        line = re.sub(r"^[-*]\s*", "", line)
        parts = _ARROW.split(line)
        if len(parts) == 1 and not _CONJUNCTION.search(line):
            facts.append(parse_literal(line, propositions, number))
            continue
        if len(parts) != 2:
            raise ParseError(f"line {number}: expected 'ANTECEDENT -> CONSEQUENT', got {line!r:.60}")
        antecedents = [parse_literal(p, propositions, number) for p in _CONJUNCTION.split(parts[0])]
        implications.append(Implication.of(antecedents, parse_literal(parts[1], propositions, number)))
    if not propositions:
        raise ParseError("no propositions were defined (expected a 'Propositions:' section)")
    return Theory(propositions, implications, facts)
