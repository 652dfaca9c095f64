"""Process rewards: steps, automatic arithmetic labels, reductions, and a tiny process reward model trained and
used by best-of-n."""

from __future__ import annotations

import random

import pytest

from selfimprove.core.errors import ConfigError
from selfimprove.rewards.process import arithmetic_step_labels, check_arithmetic, reduce_steps, split_steps


def test_steps_are_sentences_or_lines_and_join_back():
    text = " Mia starts with 13 coins. 13 + 13 = 26. 26 - 24 = 2. The answer is 2."
    steps = split_steps(text)
    assert steps == [" Mia starts with 13 coins.", " 13 + 13 = 26.", " 26 - 24 = 2.", " The answer is 2."]
    assert "".join(steps) == text
    lines = "Step 1: 2 x 4 = 8\nStep 2: 8 / 2 = 4\nThe answer is 4."
    assert split_steps(lines) == ["Step 1: 2 x 4 = 8\n", "Step 2: 8 / 2 = 4\n", "The answer is 4."]
    assert split_steps("   ") == []


def test_arithmetic_is_checked_and_the_last_step_takes_the_grade():
    assert check_arithmetic("13 + 13 = 26.") is True and check_arithmetic("2 x 4 = 9.") is False
    assert check_arithmetic("7 / 2 = 3.5 and 3 * 3 = 9") is True and check_arithmetic("5 / 0 = 1") is False
    assert check_arithmetic("Leo starts with 11 marbles.") is None
    steps = [" Leo has 11.", " 11 - 9 = 2.", " 2 x 4 = 9.", " The answer is 9."]
    assert arithmetic_step_labels(steps, final_correct=False) == [None, True, False, False]
    assert arithmetic_step_labels(steps[:2] + [" The answer is 2."], final_correct=True) == [None, True, True]


def test_reductions_by_hand():
    assert reduce_steps([0.9, 0.2, 0.8], "min") == 0.2
    assert reduce_steps([0.5, 0.5], "product") == 0.25
    assert reduce_steps([0.9, 0.2, 0.8], "last") == 0.8
    assert reduce_steps([], "min") == 0.0
    with pytest.raises(ConfigError):
        reduce_steps([0.5], "mean")


def marked_paths(count: int, seed: int = 0):
    """Paths of three steps; a step ending in '!' is right, one ending in '?' wrong."""
    from selfimprove.training.process_rewards import StepExample

    rng = random.Random(seed)
    examples = []
    for i in range(count):
        marks = [rng.choice("!?") for _ in range(3)]
        steps = tuple(f" {rng.randint(10, 99)}{mark}" for mark in marks)
        examples.append(StepExample(f"Q{i}:", steps, tuple(mark == "!" for mark in marks)))
    return examples


def test_a_tiny_process_reward_model_learns_step_labels_and_ranks_paths(tmp_path):
    pytest.importorskip("torch")
    from selfimprove.rewards.model import load_reward
    from selfimprove.strategies.best_of_n import choose
    from selfimprove.training.process_rewards import ProcessTrainSettings, process_reward_train
    from tiny_models import tiny_llama

    model, tokenizer = tiny_llama(seed=0)
    model.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    settings = ProcessTrainSettings(epochs=6, learning_rate=3e-3, batch_size=8, dev_share=0.2)
    report = process_reward_train(str(tmp_path / "base"), marked_paths(100), tmp_path / "prm", settings, lambda _: None)
    assert report.losses[-1] < 0.5 * report.losses[0] and report.dev_step_accuracy > 0.9
    scorer = load_reward(tmp_path / "prm", step_reduce="min")
    paths = [" 12! 34? 56!", " 12! 34! 56!", " 12? 34? 56?"]
    scores = scorer.score("Q7:", paths)
    assert [len(s.steps) for s in scores] == [3, 3, 3]
    assert choose(scores, ["a", "b", "c"]) == 1  # the only path whose every step is right
    assert scores[0].value == min(scores[0].steps)
    from selfimprove.strategies.best_of_n import BestOfN

    assert BestOfN(reward_model=str(tmp_path / "prm"), step_reduce="last").scorer.reduce == "last"
    again = process_reward_train(str(tmp_path / "base"), marked_paths(100), tmp_path / "prm", settings, lambda _: None)
    assert again.losses == report.losses  # done: not trained again
