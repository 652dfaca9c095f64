import pytest

from doubles import CountingEngine
from selfimprove.core.errors import ConfigError
from selfimprove.runs import metrics, runner
from selfimprove.runs.store import RunStore
from selfimprove.strategies.adaptive_consistency import AdaptiveConsistency
from selfimprove.strategies.stopping import beta_stop, leader_confidence, window_stop
from selfimprove.tasks.arithmetic import ArithmeticTask


def test_leader_confidence_by_hand():
    # v1=3, v2=0: n=4, (1+4+6+4)/16; v1=4: 31/32; v1=2, v2=1: (1+4+6)/16.
    assert leader_confidence(["a", "a", "a"]) == pytest.approx(15 / 16)
    assert leader_confidence(["a"] * 4) == pytest.approx(31 / 32)
    assert leader_confidence(["a", "b", "a"]) == pytest.approx(11 / 16)
    assert leader_confidence([None, None]) == 0.0
    assert leader_confidence(["a", None, "a", None, "a"]) == pytest.approx(15 / 16)  # None never counts
    assert not beta_stop(["a"] * 3) and beta_stop(["a"] * 4)


def test_window_stop():
    assert window_stop(["b", "a", "a", "a"], 3)
    assert not window_stop(["a", "a", None], 3)
    assert not window_stop(["a", "a"], 3)
    assert not window_stop(["a", "b", "a"], 3)


@pytest.mark.parametrize("rule", ["beta", "window"])
def test_settled_problems_stop_early_and_others_use_the_maximum(tmp_path, rule):
    store = RunStore(tmp_path / "s.sqlite")
    steady = CountingEngine(answer_of=lambda s: 7)
    outcome = runner.execute(
        ArithmeticTask(), AdaptiveConsistency(stop_rule=rule), steady, store, limit=3, show_progress=False
    )
    rows = store.solutions(outcome.run_id)
    assert [r["extra"]["samples_used"] for r in rows] == [4, 4, 4]
    assert len(steady.calls) == 12 and all(r["answer"] == "7" for r in rows)

    noisy = CountingEngine()
    strategy = AdaptiveConsistency(stop_rule=rule, samples=12, temperature=0.9)
    outcome = runner.execute(ArithmeticTask(), strategy, noisy, store, limit=2, show_progress=False)
    rows = store.solutions(outcome.run_id)
    assert [r["extra"]["samples_used"] for r in rows] == [12, 12]
    # Sample ids continue across rounds: 0..11 once each per problem.
    assert sorted(s for p, _, s in noisy.calls if p == rows[0]["problem_id"]) == list(range(12))
    m = metrics.compute(rows)
    assert m.voted_samples_per_problem == 12
    store.close()


def test_mixed_sample_counts_give_no_maj_at_k(tmp_path):
    store = RunStore(tmp_path / "s.sqlite")
    # Problem-dependent: answers settle only for sample ids >= 4... keep it simple: alternate by call count.
    engine = CountingEngine(answer_of=lambda s: 1 if s < 8 else s)
    outcome = runner.execute(
        ArithmeticTask(), AdaptiveConsistency(stop_rule="window"), engine, store, limit=2, show_progress=False
    )
    rows = store.solutions(outcome.run_id)
    assert {r["extra"]["samples_used"] for r in rows} == {4}
    rows[0]["samples"] = rows[0]["samples"][:3]  # as if one problem had stopped earlier
    assert metrics.compute(rows).maj_at_k == {}
    store.close()


def test_bad_settings():
    with pytest.raises(ConfigError, match="stop_rule"):
        AdaptiveConsistency(stop_rule="vibes")
    with pytest.raises(ConfigError, match="batch"):
        AdaptiveConsistency(samples=4, batch=8)
