"""best-of-n on the real embedded model: samples from llama.cpp, ranked by a (tiny, trained here) reward model."""

import pytest

from selfimprove.api import run
from selfimprove.rewards.model import load_reward
from selfimprove.runs.store import RunStore
from selfimprove.strategies.best_of_n import BestOfN
from selfimprove.tasks.arithmetic import ArithmeticTask

pytestmark = pytest.mark.slow


def test_best_of_n_picks_the_highest_stored_reward_and_resumes(llama_engine, tmp_path):
    from selfimprove.training.reward_models import RewardTrainSettings, reward_train
    from tiny_models import separable_preferences, tiny_llama

    model, tokenizer = tiny_llama(seed=0)
    model.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    settings = RewardTrainSettings(epochs=1, learning_rate=3e-3, dev_share=0.2)
    reward_train(str(tmp_path / "base"), separable_preferences(40), tmp_path / "rm", settings, progress=lambda _: None)
    task = ArithmeticTask(level="1")
    strategy = BestOfN(samples=4, reward_model=str(tmp_path / "rm"), max_tokens=48, temperature=0.9)
    first = run(task, strategy, llama_engine, store=tmp_path / "s.sqlite", limit=2)
    scorer = load_reward(tmp_path / "rm")  # an ensemble of one member
    problems = {p.id: p for p in task.problems(limit=2)}
    for row in first.solutions:
        sampled = [x for x in row["samples"] if x["step"] == "sample"]
        assert len(sampled) == 4 and all(x["reward"] is not None for x in sampled)
        answering = [x for x in sampled if x["answer"] is not None]
        if answering:
            best = max(answering, key=lambda x: (x["reward"], -x["index"]))
            assert row["extra"]["chosen_sample"] == best["index"] and row["answer"] == best["answer"]

        texts = RunStore(tmp_path / "s.sqlite").completions(first.run_id, row["problem_id"], "sample")
        fresh = scorer.score(task.format_prompt(problems[row["problem_id"]]), [texts[i].text for i in range(4)])
        assert [s.value for s in fresh] == pytest.approx([x["reward"] for x in sampled], abs=1e-5)
    again = run(task, strategy, llama_engine, store=tmp_path / "s.sqlite", limit=2)
    assert again.completions_generated == 0 and again.run_id == first.run_id
    assert first.metrics.best_of_n and 4 in first.metrics.best_of_n
