"""Error correlation by hand: wrong samples agreeing, the vote's calibration, vote vs greedy."""

import pytest

from doubles import CountingEngine
from selfimprove.runs import metrics, runner
from selfimprove.runs.correlation import calibration, error_correlation
from selfimprove.runs.store import RunStore
from selfimprove.strategies.self_consistency import SelfConsistency
from selfimprove.tasks.arithmetic import ArithmeticTask


def row(answers, right, greedy=None):
    samples = [{"step": "sample", "answer": a, "correct": a == right} for a in answers]
    return {"samples": samples, "extra": {} if greedy is None else {"greedy_correct": greedy}}


def test_wrong_samples_agreeing_by_hand():
    rows = [
        row(["1", "2", "2", "2"], right="1", greedy=False),  # wrong: 2,2,2 -> pairs agree 6/6
        row(["1", "1", "3", "4"], right="1", greedy=True),  # wrong: 3,4 -> 0/2
        row(["1", "1", "1", None], right="1", greedy=True),  # no wrong answered sample
    ]
    e = error_correlation(rows)
    assert e.problems == 3 and e.with_repeated_errors == 2
    assert e.wrong_pair_agreement == pytest.approx(0.5) and e.single_wrong_answer_share == pytest.approx(0.5)
    # votes: "2" (share .75, wrong), "1" (.5, right), "1" (.75, right)
    by_bin = {(b.low, b.high): (b.problems, b.accuracy) for b in e.calibration}
    assert by_bin[(0.6, 0.8)] == (2, 0.5) and by_bin[(0.4, 0.6)] == (1, 1.0) and by_bin[(0.0, 0.2)] == (0, None)
    c = e.vote_vs_greedy
    assert c.accuracy_a == pytest.approx(2 / 3) and c.accuracy_b == pytest.approx(2 / 3) and c.difference == 0
    assert error_correlation([row(["1"], right="1")]) is None  # one sample: nothing to correlate


def test_the_last_bin_holds_unanimous_votes():
    bins = calibration([1.0, 0.8, 0.2], [True, False, True])
    assert [(b.problems, b.accuracy) for b in bins] == [(0, None), (1, 1.0), (0, None), (0, None), (2, 0.5)]


def test_runs_carry_it_in_their_metrics(tmp_path):
    store = RunStore(tmp_path / "s.sqlite")
    outcome = runner.execute(ArithmeticTask(), SelfConsistency(samples=6), CountingEngine(), store, limit=4,
                             show_progress=False)  # fmt: skip
    m = metrics.compute(store.solutions(outcome.run_id))
    assert m.errors is not None and m.errors.problems == 4 and m.errors.vote_vs_greedy is not None
    assert sum(b.problems for b in m.errors.calibration) == 4
