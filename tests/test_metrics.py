import math

import pytest

from selfimprove.runs import metrics
from selfimprove.runs.metrics import compute, ks_for, maj_at_k


def test_ks():
    assert ks_for(8) == [1, 2, 4, 8]
    assert ks_for(6) == [1, 2, 4, 6]
    assert ks_for(1) == [1]


def test_maj_at_1_is_mean_sample_accuracy():
    answers = ["1", "2", "1", None]
    assert maj_at_k(answers, {"1"}, 1) == pytest.approx(0.5)


def test_maj_at_k_by_hand():
    # Subsets of size 2 of [a, b, a]: (a,b)->a (tie, first), (a,a)->a, (b,a)->b.
    assert maj_at_k(["a", "b", "a"], {"a"}, 2) == pytest.approx(2 / 3)
    assert maj_at_k(["a", "b", "a"], {"b"}, 2) == pytest.approx(1 / 3)
    assert maj_at_k(["a", "b", "a"], {"a"}, 3) == 1.0


def test_maj_at_k_samples_subsets_when_there_are_too_many(monkeypatch):
    monkeypatch.setattr(metrics, "MAX_EXACT_SUBSETS", 10)
    answers = ["a"] * 10 + ["b"] * 10
    assert math.comb(20, 5) > 10
    value = maj_at_k(answers, {"a"}, 5)
    assert 0.0 < value < 1.0
    assert value == maj_at_k(answers, {"a"}, 5)  # seeded: repeatable


def _solution(correct, samples, greedy=None, level=None):
    return {
        "correct": correct,
        "extra": {} if greedy is None else {"greedy_correct": greedy},
        "metadata": {} if level is None else {"level": level},
        "samples": [
            {
                "step": step,
                "index": i,
                "answer": a,
                "correct": c,
                "completion_tokens": 4,
                "prompt_tokens": 100,
                "seconds": 0.5,
            }
            for i, (step, a, c) in enumerate(samples)
        ],
    }


def test_compute_from_store_rows():
    rows = [
        _solution(True, [("greedy", "1", True), ("sample", "1", True), ("sample", "2", False)], greedy=True, level=1),
        _solution(
            False, [("greedy", None, False), ("sample", None, False), ("sample", "3", False)], greedy=False, level=2
        ),
    ]
    m = compute(rows)
    assert m.problems == 2
    assert m.accuracy == 0.5
    assert m.greedy_accuracy == 0.5
    assert m.maj_at_k == {1: pytest.approx(0.25), 2: pytest.approx(0.5)}
    assert m.completion_tokens_per_problem == 12
    assert m.prompt_tokens_per_problem == 200  # one greedy prompt + one shared sample prompt
    assert m.seconds_per_problem == 1.5
    assert m.extraction_failure_rate == pytest.approx(2 / 6)
    assert set(m.by_level) == {"1", "2"}
    assert m.by_level["1"]["accuracy"] == 1.0


def test_turn_metrics_by_hand():
    from selfimprove.runs.metrics import turn_metrics

    def row(*correct):
        return {"extra": {"turns": [{"answer": "x", "correct": c} for c in correct]}}

    rows = [row(False, True), row(True, False), row(True, True), row(False, False)]
    m = turn_metrics(rows)
    assert m.accuracy == [0.5, 0.5]
    assert m.incorrect_to_correct == [0.25] and m.correct_to_incorrect == [0.25]
    assert turn_metrics([{"extra": {}}]) is None


def test_extraction_failures_leave_out_auxiliary_steps():
    # An extraction, a decomposition, a partial step and a rating carry no answer by design; only the
    # answering samples (greedy, a finished tree leaf) count: one of those three has no answer.
    row = _solution(
        True,
        [
            ("lot-extract-0", None, None),
            ("decompose", None, None),
            ("tot-expand-0", None, None),
            ("tot-value-1", None, None),
            ("greedy", "1", True),
            ("tot-finish-2", None, False),
            ("sub1", "4", None),
        ],
    )
    assert compute([row]).extraction_failure_rate == pytest.approx(1 / 3)


def test_the_fast_vote_in_maj_at_k_is_majority_vote():
    """maj@k's inner vote must pick what `majority_vote` picks (counts, then the earliest on a tie)."""
    import itertools
    import random

    from selfimprove.runs.metrics import maj_at_k
    from selfimprove.strategies.voting import majority_vote

    rng = random.Random(0)
    for _ in range(200):
        answers = [rng.choice(["1", "2", "3", None]) for _ in range(rng.randint(1, 7))]
        right = {rng.choice(["1", "2", "3"])}
        for k in range(1, len(answers) + 1):
            subsets = list(itertools.combinations(range(len(answers)), k))
            expected = sum(majority_vote([answers[i] for i in s]).answer in right for s in subsets) / len(subsets)
            assert maj_at_k(answers, right, k) == expected
