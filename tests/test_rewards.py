"""Reward models: the two losses, aggregators, preference data, and training on tiny random models."""

from __future__ import annotations

import json

import pytest

from selfimprove.core.errors import ConfigError, DataError
from selfimprove.rewards.aggregate import aggregate, disagreement
from selfimprove.rewards.model import RewardEnsemble, RewardModel, load_reward
from selfimprove.rewards.preferences import Preference, load_preferences, with_label_noise
from tiny_models import separable_preferences

torch = pytest.importorskip("torch")

from selfimprove.rewards.losses import bradley_terry_loss, plackett_luce_loss  # noqa: E402


def test_plackett_luce_on_pairs_equals_bradley_terry():
    generator = torch.Generator().manual_seed(0)
    chosen, rejected = torch.randn(16, generator=generator), torch.randn(16, generator=generator)
    rewards = torch.stack([chosen, rejected], dim=1)
    ranks = torch.tensor([[0, 1]] * 16)
    mask = torch.ones(16, 2, dtype=torch.bool)
    assert plackett_luce_loss(rewards, ranks, mask).item() == pytest.approx(
        bradley_terry_loss(chosen, rejected).item(), abs=1e-6
    )


def test_plackett_luce_matches_hand_computed_list_and_ignores_padding():
    import math

    r = [2.0, 0.5, -1.0]  # ranked best first
    expected = sum(math.log(sum(math.exp(x) for x in r[i:])) - r[i] for i in range(3))
    rewards = torch.tensor([[2.0, 0.5, -1.0, 9.0]], requires_grad=True)
    ranks = torch.tensor([[0, 1, 2, 0]])
    mask = torch.tensor([[True, True, True, False]])
    loss = plackett_luce_loss(rewards, ranks, mask)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    loss.backward()
    assert torch.isfinite(rewards.grad).all() and rewards.grad[0, 3] == 0


def test_tied_items_are_not_pushed_apart():
    rewards = torch.tensor([[1.0, 1.0, -1.0]], requires_grad=True)
    plackett_luce_loss(rewards, torch.tensor([[0, 0, 1]]), torch.ones(1, 3, dtype=torch.bool)).backward()
    assert rewards.grad[0, 0] == pytest.approx(rewards.grad[0, 1].item())
    assert rewards.grad[0, 0] < 0 < rewards.grad[0, 2]  # both right answers up, the wrong one down


def test_aggregators_match_hand_computed_values():
    members = [1.0, 2.0, 6.0]
    assert aggregate(members, "mean") == pytest.approx(3.0)
    assert aggregate(members, "min") == 1.0
    assert aggregate(members, "median") == 2.0
    std = (((1 - 3) ** 2 + (2 - 3) ** 2 + (6 - 3) ** 2) / 3) ** 0.5
    assert disagreement(members) == pytest.approx(std)
    assert aggregate(members, "uncertainty", 0.5) == pytest.approx(3.0 - 0.5 * std)
    with pytest.raises(ConfigError, match="unknown aggregator"):
        aggregate(members, "max")


def test_preferences_read_both_formats_and_name_bad_rows(tmp_path):
    good = tmp_path / "prefs.jsonl"
    good.write_text(
        json.dumps({"prompt": "Q", "chosen": "a", "rejected": "b"})
        + "\n"
        + json.dumps({"prompt": "Q", "responses": ["x", "y", "z"], "ranking": [1, 0, 1]})
        + "\n"
    )
    pair, ranked = load_preferences(good)
    assert pair == Preference("Q", ("a", "b"), (0, 1)) and pair.is_pair
    assert ranked.pairs() == [("y", "x"), ("y", "z")]
    for row, field in (
        ({"prompt": "Q", "chosen": "a"}, "rejected"),
        ({"prompt": "Q", "responses": ["x"]}, "responses"),
        ({"prompt": "Q", "responses": ["x", "y"], "ranking": [0]}, "ranking"),
        ({"prompt": "Q", "responses": ["x", "y"], "ranking": [0, 0]}, "ranking"),
        ({"chosen": "a", "rejected": "b"}, "prompt"),
    ):
        bad = tmp_path / "bad.jsonl"
        bad.write_text(json.dumps({"prompt": "Q", "chosen": "a", "rejected": "b"}) + "\n" + json.dumps(row) + "\n")
        with pytest.raises(DataError, match=rf"bad.jsonl:2: field '{field}'"):
            load_preferences(bad)


def test_label_noise_reverses_exactly_the_share_asked():
    preferences = [Preference(f"q{i}", ("a", "b"), (0, 1)) for i in range(40)]
    noisy = with_label_noise(preferences, 0.25, seed=3)
    flipped = [p for p in noisy if p.ranks == (1, 0)]
    assert len(flipped) == 10
    assert with_label_noise(preferences, 0.25, seed=3) == noisy
    assert Preference("q", ("a", "b", "c"), (0, 1, 1)).reversed().ranks == (1, 0, 0)


# -- training on tiny random models ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    from tiny_models import tiny_llama

    model, tokenizer = tiny_llama(seed=0)
    folder = tmp_path_factory.mktemp("base")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("loss,list_size", [("pairwise", 2), ("listwise", 3)])
def test_both_losses_fall_on_separable_preferences(tiny_base, tmp_path, loss, list_size):
    from selfimprove.training.reward_models import RewardTrainSettings, reward_train

    settings = RewardTrainSettings(loss=loss, epochs=4, learning_rate=3e-3, batch_size=8, dev_share=0.2)
    report = reward_train(
        tiny_base, separable_preferences(80, list_size), tmp_path / loss, settings, progress=lambda _: None
    )
    (member,) = report.members
    assert member.losses[-1] < 0.5 * member.losses[0]
    assert member.dev_accuracy > 0.9
    record = json.loads((tmp_path / loss / "member-0" / "reward.json").read_text())
    assert record["loss"] == loss and record["reward_std"] > 0
    again = reward_train(
        tiny_base, separable_preferences(80, list_size), tmp_path / loss, settings, progress=lambda _: None
    )
    assert again.members[0].losses == member.losses  # a finished member is not trained again


def test_listwise_trainer_loss_equals_pairwise_trainer_loss_on_pairs(tiny_base, tmp_path):
    import datasets
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from selfimprove.training.reward_listwise import ListwiseRewardTrainer, RankedListCollator

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_base, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    preferences = separable_preferences(6)
    args = RewardConfig(output_dir=str(tmp_path), report_to=[], use_cpu=True, remove_unused_columns=False)
    pairwise = RewardTrainer(
        model=model,
        args=args,
        processing_class=tokenizer,
        train_dataset=datasets.Dataset.from_list(
            [{"prompt": p.prompt, "chosen": p.responses[0], "rejected": p.responses[1]} for p in preferences]
        ),
    )
    listwise = ListwiseRewardTrainer(
        model=model,
        args=args,
        processing_class=tokenizer,
        data_collator=RankedListCollator(tokenizer.pad_token_id),
        train_dataset=datasets.Dataset.from_list(
            [{"prompt": p.prompt, "responses": list(p.responses), "ranks": list(p.ranks)} for p in preferences]
        ),
    )
    model.eval()
    with torch.no_grad():
        bt = pairwise.compute_loss(model, pairwise.data_collator([pairwise.train_dataset[i] for i in range(6)]))
        pl = listwise.compute_loss(model, listwise.data_collator([listwise.train_dataset[i] for i in range(6)]))
    assert pl.item() == pytest.approx(bt.item(), abs=1e-5)


def test_an_ensemble_scores_with_every_member_and_aggregates(tiny_base, tmp_path):
    from selfimprove.training.reward_models import RewardTrainSettings, reward_train

    settings = RewardTrainSettings(members=2, epochs=1, learning_rate=3e-3, dev_share=0.25)
    report = reward_train(tiny_base, separable_preferences(24), tmp_path, settings, progress=lambda _: None)
    assert [m.seed for m in report.members] == [0, 1]
    assert set(report.ensemble_dev_accuracy) == {"mean", "min", "uncertainty", "median"}
    ensemble = load_reward(tmp_path, aggregator="min")
    assert isinstance(ensemble, RewardEnsemble) and len(ensemble.members) == 2
    scores = ensemble.score("Q0: ", ["1234!", "1234?", "99!"])
    for score in scores:
        assert len(score.members) == 2 and score.members[0] != score.members[1]
        assert score.value == min(score.members)
    alone = [m.score_texts(["Q0: "] * 3, ["1234!", "1234?", "99!"]) for m in ensemble.members]
    assert [s.members for s in scores] == [tuple(column) for column in zip(*alone)]
    with pytest.raises(ConfigError, match="not an ensemble"):
        load_reward(tmp_path / "member-0", aggregator="min")
    with pytest.raises(ConfigError, match="holds an ensemble"):
        RewardModel(str(tmp_path)).score("Q", ["a"])


def test_best_of_n_with_a_trained_reward_model_picks_what_it_learned(tiny_base, tmp_path):
    from doubles import ScriptedEngine
    from selfimprove.api import run
    from selfimprove.strategies.best_of_n import BestOfN
    from selfimprove.tasks.questions import QuestionsTask
    from selfimprove.training.reward_models import RewardTrainSettings, reward_train

    settings = RewardTrainSettings(epochs=4, learning_rate=3e-3, dev_share=0.2)
    reward_train(tiny_base, separable_preferences(80), tmp_path / "rm", settings, progress=lambda _: None)
    task = QuestionsTask(items=[("What is 6 * 7?", 42), ("What is 40 + 2?", 42)])
    # Sample 2 ends in '!', the mark the reward model learned to prefer; it also holds the only right answer.
    engine = ScriptedEngine(lambda prompt, s: f" The answer is {40 + s}" + ("!" if s == 2 else "?"))
    result = run(task, BestOfN(samples=4, reward_model=str(tmp_path / "rm")), engine, store=tmp_path / "s.sqlite")
    assert result.metrics.accuracy == 1.0 and result.metrics.majority_accuracy < 1.0
    assert all(row["extra"]["chosen_sample"] == 2 for row in result.solutions)


def test_cli_reward_train_from_jsonl_and_a_bad_row(tiny_base, tmp_path):
    from typer.testing import CliRunner

    from selfimprove.cli import app

    rows = [
        {"prompt": p.prompt, "chosen": p.responses[0], "rejected": p.responses[1]} for p in separable_preferences(20)
    ]
    data = tmp_path / "prefs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "rm"
    args = ["reward", "train", "--out", str(out), "--model", tiny_base, "--preferences", str(data), "--epochs", "1"]
    result = CliRunner().invoke(app, [*args, "--members", "2", "--dev-share", "0.2"])
    assert result.exit_code == 0, result.output
    assert "ensemble (min): held-out pair accuracy" in result.output and (out / "member-1" / "reward.json").is_file()
    data.write_text(json.dumps(rows[0]) + "\n" + json.dumps({"prompt": "Q", "chosen": "a", "rejected": 3}) + "\n")
    result = CliRunner().invoke(app, [*args[:-2], "--out", str(tmp_path / "other")])
    assert result.exit_code != 0 and "prefs.jsonl:2: field 'rejected'" in result.output
    result = CliRunner().invoke(app, [*args, "--label-noise", "1.5"])
    assert result.exit_code != 0 and "--label-noise must be in [0, 1]" in result.output
