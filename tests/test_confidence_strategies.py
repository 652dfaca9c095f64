"""Weighted self-consistency and DeepConf: the confidence measures by hand, the votes they cast, the online
warm-up threshold and early stop, resuming, and the run identity of the repetition penalties."""

import math

import pytest

from doubles import ConfidenceEngine, CountingEngine
from selfimprove.core.confidence import RunningGroupConfidence, group_confidences, lowest_group_confidence
from selfimprove.core.errors import ConfigError
from selfimprove.runs import metrics, runner
from selfimprove.runs.store import RunStore
from selfimprove.strategies.deepconf import DeepConf, percentile
from selfimprove.strategies.self_consistency import SelfConsistency
from selfimprove.strategies.voting import weighted_vote
from selfimprove.strategies.weighted_consistency import WeightedConsistency
from selfimprove.tasks.arithmetic import ArithmeticTask


def test_confidence_measures_by_hand():
    assert group_confidences([1, 2, 3, 4], 2) == [1.5, 2.5, 3.5]
    assert group_confidences([1, 2], 5) == [1.5]  # shorter than a window: one group
    top = [[("a", -1.0), ("b", -3.0)], [("a", -0.0), ("b", -8.0)], [("a", -2.0), ("b", -2.0)]]  # C = 2, 4, 2
    assert lowest_group_confidence(top, 2) == 3.0 and lowest_group_confidence([], 2) is None
    watch = RunningGroupConfidence(window=2, threshold=2.5)
    assert [watch.add(t) for t in top] == [False, False, False]  # groups 3.0, 3.0: never below
    watch = RunningGroupConfidence(window=2, threshold=3.5)
    assert [watch.add(t) for t in top] == [False, True, True]  # judged from the first full window
    assert percentile([4, 1, 3, 2], 50) == 2.5 and percentile([1, 2, 3, 4, 5], 10) == pytest.approx(1.4)


def test_weighted_vote_sums_weights_and_ties_go_first():
    vote = weighted_vote(["a", "b", "b", None], [0.9, 0.3, 0.4, 5.0])
    assert vote.answer == "a" and vote.counts == {"a": 0.9, "b": pytest.approx(0.7)}
    assert vote.share == pytest.approx(0.9 / 6.6)
    assert weighted_vote(["b", "a"], [1, 1]).answer == "b" and weighted_vote([None], [1]).answer is None


def run(tmp_path, strategy, engine, limit=2):
    store = RunStore(tmp_path / "s.sqlite")
    outcome = runner.execute(ArithmeticTask(), strategy, engine, store, limit=limit, show_progress=False)
    return store, outcome, store.solutions(outcome.run_id)


def test_weighted_consistency_lets_likely_paths_outvote_many_unlikely_ones(tmp_path):
    # Samples 0-2 say 5 with mean log-prob -1/0.2 = -5; samples 3-4 say 6 with -1/2 = -0.5.
    engine = ConfidenceEngine(answer_of=lambda s: 5 if s < 3 else 6, confidence_of=lambda s: 0.2 if s < 3 else 2.0)
    _, _, rows = run(tmp_path, WeightedConsistency(samples=5), engine)
    assert all(sampling.logprobs for sampling in engine.samplings if not sampling.greedy)
    for row in rows:
        assert row["answer"] == "6" and row["extra"]["majority_answer"] == "5"
        assert row["extra"]["weighted_votes"]["6"] == pytest.approx(2 * math.exp(-0.5))
    m = metrics.compute(rows)
    assert m.vote_rule.startswith("weighted") and m.majority_accuracy is not None and m.maj_at_k  # its baselines
    with pytest.raises(ConfigError, match="weight"):
        WeightedConsistency(weight="max")


def test_deepconf_offline_keeps_the_most_confident_traces(tmp_path):
    # 8 traces: 0-5 answer 5 at confidence 1, 6-7 answer 6 at confidence 3; keeping 25% leaves 6-7.
    engine = ConfidenceEngine(answer_of=lambda s: 5 if s < 6 else 6, confidence_of=lambda s: 1.0 if s < 6 else 3.0)
    _, _, rows = run(tmp_path, DeepConf(mode="offline", samples=8, keep_percent=25, window=4), engine)
    assert all(r["answer"] == "6" and r["extra"]["voters"] == 2 and r["extra"]["majority_answer"] == "5" for r in rows)
    _, _, rows = run(tmp_path, DeepConf(mode="offline", samples=8, keep_percent=100, window=4), engine)
    assert all(r["answer"] == "5" for r in rows)  # all vote: 6 x 1 > 2 x 3


def test_deepconf_online_threshold_early_stop_and_consensus(tmp_path):
    # Warm-up 0-3: confidences 1, 2, 3, 4 (answers 7, 7, 8, 8); later traces alternate 0.5 (stopped) and 5 (answer 8).
    confidence = {0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0}
    engine = ConfidenceEngine(
        answer_of=lambda s: 7 if s < 2 else 8, confidence_of=lambda s: confidence.get(s, 0.5 if s % 2 else 5.0)
    )
    strategy = DeepConf(samples=12, warmup=4, batch=2, keep_percent=50, consensus=0.9, window=4)
    store, outcome, rows = run(tmp_path, strategy, engine, limit=1)
    (row,) = rows
    assert row["extra"]["threshold"] == pytest.approx(2.5)  # the 50th percentile of 1, 2, 3, 4
    # Voters: warm-up 2 and 3 only (both 8): the leader holds the whole vote, settled after the warm-up.
    assert row["answer"] == "8" and row["extra"]["samples_used"] == 4
    strategy = DeepConf(samples=12, warmup=4, batch=2, keep_percent=75, consensus=0.9, window=4)
    store, outcome, rows = run(tmp_path, strategy, engine, limit=1)
    (row,) = rows
    # Threshold 1.75: warm-up 1 (answer 7, weight 2) votes too; 8 leads 7 / 9 = 0.78 < 0.9: rounds go on.
    assert row["extra"]["threshold"] == pytest.approx(1.75)
    stopping = [s for s in engine.samplings if s.stop_below_confidence]
    assert stopping and all(s.stop_below_confidence == pytest.approx(1.75) for s in stopping)
    assert row["extra"]["stopped_early"] >= 1 and row["answer"] == "8"
    used = row["extra"]["samples_used"]
    # Round 1 adds 8 @ 5 (+ a stopped trace): 12 / 14 = 0.857; round 2: 17 / 19 = 0.89; round 3: 22 / 24 = 0.917.
    assert used == 10 and row["extra"]["voters"] == 6
    samples = [x for x in row["samples"]]
    assert sum(x["finish_reason"] == "low_confidence" for x in samples) == 3
    # Resuming the finished run draws nothing new.
    again = ConfidenceEngine(answer_of=engine.reply, confidence_of=engine.confidence_of)
    outcome = runner.execute(ArithmeticTask(), strategy, again, store, limit=1, show_progress=False)
    assert again.calls == [] and outcome.completions_generated == 0


def test_deepconf_refuses_an_engine_without_log_probabilities(tmp_path):
    from selfimprove.core.errors import EngineError

    with pytest.raises(EngineError, match="top log-probabilities"):
        run(tmp_path, DeepConf(mode="offline", samples=2), CountingEngine())
    with pytest.raises(ConfigError, match="keep_percent"):
        DeepConf(keep_percent=0)
    with pytest.raises(ConfigError, match="warmup"):
        DeepConf(samples=4, warmup=8)
    assert DeepConf(mode="offline", samples=4).warmup == 8  # offline has no warm-up to check


def test_repetition_penalties_are_part_of_a_run_only_when_on():
    plain = SelfConsistency(samples=4).describe()
    assert not any("penalty" in key for key in plain)  # the ids of runs stored before penalties existed
    penalised = SelfConsistency(samples=4, repeat_penalty=1.1).describe()
    assert penalised["repeat_penalty"] == 1.1 and runner.run_id_for({"s": plain}) != runner.run_id_for({"s": penalised})
    with pytest.raises(ConfigError, match="presence_penalty"):
        SelfConsistency(presence_penalty=5)
