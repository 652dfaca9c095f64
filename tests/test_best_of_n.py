"""best-of-n: the reward picks the answer, the grader never does; every score is stored and resumed."""

from __future__ import annotations

import math

import pytest

from doubles import CountingEngine, ScriptedEngine
from selfimprove.core.errors import ConfigError
from selfimprove.core.stats import best_of_n_expectation
from selfimprove.rewards.model import RewardEnsemble, RewardScore
from selfimprove.runs import metrics, runner
from selfimprove.runs.store import RunStore
from selfimprove.strategies.best_of_n import BestOfN, choose
from selfimprove.tasks.arithmetic import ArithmeticTask


class AnswerScorer:
    """Rewards a response by the number it ends with: reward = -answer (the smallest answer wins)."""

    def __init__(self):
        self.scored: set[str] = set()

    def describe(self) -> dict:
        return {"scorer": "minus-answer"}

    def score(self, prompt, responses):
        self.scored.add(prompt)
        return [
            RewardScore(-float(r.rstrip(".").split()[-1]) if r.split()[-1][0].isdigit() else 99.0) for r in responses
        ]


class GuardedTask(ArithmeticTask):
    """Its grader raises when a problem is graded before the scorer has scored that problem's samples."""

    def __init__(self, scorer):
        super().__init__()
        self.scorer = scorer

    def grade(self, problem, answer):
        if self.format_prompt(problem) not in self.scorer.scored:
            raise AssertionError(f"graded {problem.id} during selection")
        return super().grade(problem, answer)


def solve(tmp_path, strategy, engine, task=None, limit=3):
    store = RunStore(tmp_path / "s.sqlite")
    outcome = runner.execute(task or ArithmeticTask(), strategy, engine, store, limit=limit, show_progress=False)
    return store, outcome, store.solutions(outcome.run_id)


def test_the_reward_chooses_and_the_grader_is_never_asked_during_selection(tmp_path):
    scorer = AnswerScorer()
    engine = CountingEngine(answer_of=lambda s: (s + 1) % 3)  # samples answer 1, 2, 0, 1, 2, 0
    _, _, rows = solve(tmp_path, BestOfN(samples=6, scorer=scorer, greedy_baseline=False), engine, GuardedTask(scorer))
    for row in rows:
        assert row["answer"] == "0" and row["extra"]["chosen_sample"] == 2
        assert [x["reward"] for x in row["samples"]] == [-1.0, -2.0, -0.0, -1.0, -2.0, -0.0]
        assert row["extra"]["majority_answer"] == "1" and row["confidence"] == 0.0


def test_a_sample_without_an_answer_is_never_chosen():
    scores = [RewardScore(5.0), RewardScore(1.0), RewardScore(1.0)]
    assert choose(scores, [None, "3", "4"]) == 1  # highest reward that answers; the earliest on a tie
    assert choose(scores, [None, None, None]) is None


def test_best_of_n_expectation_by_hand():
    rewards, values = [3.0, 1.0, 2.0], [1.0, 0.0, 0.0]
    assert best_of_n_expectation(rewards, values, 1) == pytest.approx(1 / 3)
    assert best_of_n_expectation(rewards, values, 2) == pytest.approx(2 / 3)  # {0,1}, {0,2} pick 0; {1,2} picks 2
    assert best_of_n_expectation(rewards, values, 3) == 1.0
    assert best_of_n_expectation([1.0, 1.0], [1.0, 0.0], 2) == pytest.approx(0.5)  # a tie shares its chance
    with pytest.raises(ValueError):
        best_of_n_expectation(rewards, values, 4)


def test_metrics_carry_the_best_of_n_curve_beside_maj_at_k(tmp_path):
    scorer = AnswerScorer()
    _, _, rows = solve(tmp_path, BestOfN(samples=4, scorer=scorer), CountingEngine(), limit=4)
    m = metrics.compute(rows)
    assert list(m.best_of_n) == [1, 2, 4] and m.maj_at_k and m.vote_rule == "best reward"
    assert m.best_of_n[1] == pytest.approx(m.maj_at_k[1])  # one sample: both are the mean sample accuracy
    assert m.best_of_n[4] == pytest.approx(m.accuracy)  # all samples: the strategy's own choice
    assert m.majority_accuracy is not None and m.greedy_accuracy is not None


def test_a_rerun_reuses_every_sample_and_scores_the_same(tmp_path):
    first = solve(tmp_path, BestOfN(samples=4, scorer=AnswerScorer()), CountingEngine())[2]
    engine = CountingEngine()
    _, outcome, again = solve(tmp_path, BestOfN(samples=4, scorer=AnswerScorer()), engine)
    assert outcome.completions_generated == 0 and engine.calls == []
    assert [r["samples"] for r in again] == [r["samples"] for r in first]


def test_the_run_id_names_the_scorer_and_its_aggregator():
    class Member:
        def __init__(self, name):
            self.name = name

        def describe(self):
            return {"reward_model": self.name}

    ensemble_mean = RewardEnsemble([Member("a"), Member("b")], "mean")
    ensemble_min = RewardEnsemble([Member("a"), Member("b")], "min")
    described = [BestOfN(scorer=s).describe() for s in (ensemble_mean, ensemble_min)]
    assert described[0] != described[1] and described[1]["reward"]["aggregator"] == "min"
    assert "scorer" not in described[0] and BestOfN(scorer=ensemble_mean, score_batch_size=4).describe() == described[0]
    with pytest.raises(ConfigError, match="reward model"):
        BestOfN()
    with pytest.raises(ConfigError, match="aggregator"):
        BestOfN(scorer=ensemble_mean, aggregator="max")


def test_ensemble_members_are_stored_per_sample(tmp_path):
    class Fixed:
        def __init__(self, offset):
            self.offset = offset

        def describe(self):
            return {"offset": self.offset}

        def score_texts(self, prompts, responses):
            return [self.offset + len(r) for r in responses]

    ensemble = RewardEnsemble([Fixed(0.0), Fixed(2.0)], "uncertainty", uncertainty_weight=1.0)
    engine = ScriptedEngine(lambda prompt, s: " The answer is 7." + " " * s)
    _, _, rows = solve(tmp_path, BestOfN(samples=3, scorer=ensemble), engine, limit=1)
    sampled = [x for x in rows[0]["samples"] if x["step"] == "sample"]
    for x in sampled:
        low, high = x["reward_members"]
        assert high - low == 2.0 and x["reward"] == pytest.approx((low + high) / 2 - 1.0)
    assert not math.isnan(metrics.compute(rows).best_of_n[3])
