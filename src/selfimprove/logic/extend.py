"""Logic extension (Logic-of-Thought phase 2, Liu et al. 2024): close a theory's implications under
double negation, contraposition and transitivity, then keep only what sympy proves entailed.

Laws, for implications whose antecedent is a conjunction of literals:
- double negation: `not not A` is `A` (literals are kept normalised, so it holds throughout);
- contraposition: from `A1 and ... and An -> C`, for each i: `not C and (the other Aj) -> not Ai`
  (with n = 1 this is the textbook `not C -> not A`);
- transitivity: from `X -> C` and `C and Y -> D`: `X and Y -> D` (chains of any length arise
  from repeating this until nothing new appears).
Every derived implication is checked with `sympy.logic` (premises and its negation
unsatisfiable), so a bug in the rules can add nothing false; the theory with its facts is also
checked for consistency (an inconsistent theory entails everything, so nothing is added).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sympy import And, Implies, Not, Symbol
from sympy.logic.inference import satisfiable

from selfimprove.logic.propositions import Implication, Literal, Theory


@dataclass
class Extension:
    derived: list[Implication]
    """New implications, entailed, not already stated, shortest first, at most `cap`."""
    consistent: bool
    candidates: int
    """How many new implications the closure found before the cap."""
    rejected: int
    """Candidates sympy did not prove entailed (0 unless the rules are wrong)."""


def contrapositives(rule: Implication) -> list[Implication]:
    result = []
    for i, antecedent in enumerate(rule.antecedents):
        others = rule.antecedents[:i] + rule.antecedents[i + 1 :]
        result.append(Implication.of((rule.consequent.negate(), *others), antecedent.negate()))
    return result


def chain(first: Implication, second: Implication) -> Implication | None:
    """`first` then `second`, when first's consequent is one of second's antecedents."""
    if first.consequent not in second.antecedents:
        return None
    rest = [a for a in second.antecedents if a != first.consequent]
    return Implication.of((*first.antecedents, *rest), second.consequent)


def _contradictory(rule: Implication) -> bool:
    return any(a.negate() in rule.antecedents for a in rule.antecedents)


def closure(rules: Iterable[Implication], max_antecedents: int = 3, max_size: int = 500) -> set[Implication]:
    """Every implication reachable by contraposition and transitivity (bounded in antecedents and size)."""

    def keep(rule: Implication | None) -> bool:
        return (
            rule is not None
            and not rule.trivial
            and not _contradictory(rule)
            and len(rule.antecedents) <= max_antecedents
        )

    known: set[Implication] = set()
    frontier = [r for r in rules if keep(r)]
    while frontier and len(known) < max_size:
        new: list[Implication] = []
        for rule in frontier:
            if rule in known:
                continue
            known.add(rule)
            new.extend(r for r in contrapositives(rule) if keep(r) and r not in known)
        for first in list(known):
            for second in list(known):
                combined = chain(first, second)
                if keep(combined) and combined not in known:
                    new.append(combined)
        frontier = sorted(set(new))
    return known


def _symbol(literal: Literal, symbols: dict[str, Symbol]):
    atom = symbols.setdefault(literal.symbol, Symbol(literal.symbol))
    return Not(atom) if literal.negated else atom


def to_sympy(rule: Implication, symbols: dict[str, Symbol]):
    return Implies(And(*(_symbol(a, symbols) for a in rule.antecedents)), _symbol(rule.consequent, symbols))


def entails(premises, rule: Implication, symbols: dict[str, Symbol]) -> bool:
    return not satisfiable(And(premises, Not(to_sympy(rule, symbols))))


def extend(theory: Theory, cap: int = 10, max_antecedents: int = 3) -> Extension:
    """New implications entailed by `theory`: at most `cap`, fewest antecedents first."""
    symbols: dict[str, Symbol] = {}
    premises = And(*(to_sympy(r, symbols) for r in theory.implications), *(_symbol(f, symbols) for f in theory.facts))
    if not satisfiable(premises):
        return Extension([], consistent=False, candidates=0, rejected=0)
    stated = set(theory.implications)
    found = sorted(closure(theory.implications, max_antecedents) - stated, key=lambda r: (len(r.antecedents), str(r)))
    derived, rejected = [], 0
    for rule in found:
        if len(derived) >= cap:
            break
        if entails(premises, rule, symbols):
            derived.append(rule)
        else:
            rejected += 1
    return Extension(derived, consistent=True, candidates=len(found), rejected=rejected)


def verbalise(rule: Implication, propositions: dict[str, str]) -> str:
    """The implication as an English sentence, from the propositions' own texts."""

    def say(literal: Literal) -> str:
        text = propositions[literal.symbol]
        return f"it is not the case that {text}" if literal.negated else text

    condition = " and ".join(say(a) for a in rule.antecedents)
    sentence = f"If {condition}, then {say(rule.consequent)}."
    return sentence[0].upper() + sentence[1:]
