"""logic/: parsing extracted theories, and their extensions checked against closures listed by hand."""

from __future__ import annotations

import pytest

from selfimprove.logic.extend import extend, verbalise
from selfimprove.logic.propositions import Implication, Literal, ParseError, parse_theory


def rules(*texts: str) -> set[str]:
    return set(texts)


def derived(text: str, **options) -> set[str]:
    extension = extend(parse_theory(text), **options)
    assert extension.consistent and extension.rejected == 0
    return {str(r) for r in extension.derived}


def theory(relations: str, symbols: str = "ABCDE") -> str:
    defined = "\n".join(f"{s}: statement {s.lower()}" for s in symbols)
    return f"Propositions:\n{defined}\nRelations:\n{relations}"


def test_a_chain_gets_contrapositives_and_transitivity():
    assert derived(theory("A -> B\nB -> C")) == rules("not B -> not A", "not C -> not B", "A -> C", "not C -> not A")


def test_negated_literals():
    assert derived(theory("A -> not B\nnot B -> C")) == rules("B -> not A", "not C -> B", "A -> C", "not C -> not A")


def test_conjunctive_antecedents():
    assert derived(theory("A and B -> C\nC -> D")) == rules(
        "B and not C -> not A",
        "A and not C -> not B",
        "not D -> not C",
        "A and B -> D",
        "B and not D -> not A",
        "A and not D -> not B",
    )


def test_chains_of_any_length():
    found = derived(theory("A -> B\nB -> C\nC -> D\nD -> E"), cap=100)
    assert {"A -> E", "not E -> not A", "B -> E", "A -> D"} <= found
    assert len(found) == 16  # 4 contrapositives, 6 transitive links and their 6 contrapositives


def test_double_negation_is_removed_when_parsing():
    parsed = parse_theory(theory("not not A -> ~~B\n¬A → not not not C"))
    assert [str(r) for r in parsed.implications] == ["A -> B", "not A -> not C"]


def test_stated_rules_are_not_added_again_and_the_cap_keeps_the_shortest():
    assert "A -> B" not in derived(theory("A -> B\nnot B -> not A\nB -> C"))
    capped = extend(parse_theory(theory("A and B -> C\nC -> D")), cap=2)
    assert [str(r) for r in capped.derived] == ["not D -> not C", "A and B -> D"]  # fewest antecedents first
    assert capped.candidates == 6


def test_inconsistent_theory_adds_nothing():
    extension = extend(parse_theory(theory("A\nA -> B\nnot B")))
    assert not extension.consistent and extension.derived == []


def test_facts_are_parsed_and_kept_consistent():
    parsed = parse_theory(theory("A\nnot C\nA -> B"))
    assert parsed.facts == [Literal("A"), Literal("C", True)]
    assert derived(theory("A\nnot C\nA -> B")) == rules("not B -> not A")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A -> B", "line 1: expected 'Propositions:' first"),
        ("Propositions:\nA: a\nRelations:\nA -> Z", "line 4: 'Z' is used but not defined"),
        ("Propositions:\nA: a\nA: again", "line 3: 'A' is defined twice"),
        ("Propositions:\nA: a\nB: b\nRelations:\nA -> B -> A", "line 5: expected 'ANTECEDENT -> CONSEQUENT'"),
        ("Propositions:\nA: a\nRelations:\nA or -> A", "is not a proposition symbol"),
        ("Relations:\n", "no propositions"),
    ],
)
def test_parse_errors_name_the_line(text, message):
    with pytest.raises(ParseError, match=message):
        parse_theory(text)


def test_verbalise():
    propositions = {"A": "the eagle is kind", "B": "the eagle is red"}
    rule = Implication.of([Literal("B", True)], Literal("A", True))
    assert verbalise(rule, propositions) == (
        "If it is not the case that the eagle is red, then it is not the case that the eagle is kind."
    )
