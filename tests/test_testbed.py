"""The testbed: a fitted word-and-digit tokenizer and a from-scratch model saved as a checkpoint the hf engine loads."""

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")

from selfimprove.core.types import Sampling  # noqa: E402
from selfimprove.engines.hf import HFEngine  # noqa: E402
from selfimprove.training import testbed  # noqa: E402
from selfimprove.training.tokenizer import word_digit_tokenizer  # noqa: E402


def test_word_digit_tokenizer_splits_digits_keeps_words_and_round_trips():
    tokenizer = word_digit_tokenizer(["Mia has 13 coins."])
    text = "Mia has 130 coins.\nMia"
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == [
        "<bos>",
        "Mia",
        " has",
        " ",
        "1",
        "3",
        "0",
        " coins",
        ".",
        "\n",
        "Mia",
    ]
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    assert tokenizer.decode(tokenizer("Zed!")["input_ids"], skip_special_tokens=True) == "!"  # unknown word: <unk>


def test_rows_are_labeled_easy_problems_with_their_worked_solutions():
    rows = testbed.testbed_rows("1-2", 4)
    assert rows[0]["prompt"].startswith("Question: ") and rows[0]["prompt"].endswith("\nAnswer:")
    assert rows[0]["completion"].startswith(" ") and "The answer is" in rows[0]["completion"]
    tokenizer = testbed.testbed_tokenizer()
    for row in rows:  # every word of the task is in the fitted vocabulary
        assert tokenizer.unk_token_id not in tokenizer(row["prompt"] + row["completion"])["input_ids"]


def test_a_tiny_testbed_trains_saves_and_serves(tmp_path):
    settings = testbed.TestbedSettings(
        examples=64, hidden=32, layers=1, heads=2, epochs=2, batch_size=16, learning_rate=3e-3
    )
    result = testbed.train_testbed(tmp_path / "tb", settings)
    assert result.steps == 8 and result.losses[-1] < result.losses[0]
    engine = HFEngine(model=str(result.merged))
    (completion,) = engine.generate(["Question: Mia has 3 coins. How many coins does Mia have now?\nAnswer:"], 1,
                                    Sampling(max_tokens=8))[0]  # fmt: skip
    assert completion.completion_tokens > 0
    assert testbed.train_testbed(tmp_path / "tb", settings).steps == 8  # finished: reused, not retrained


def test_a_nope_testbed_has_no_position_encoding_and_serves(tmp_path):
    import torch

    from selfimprove.core.errors import ConfigError

    settings = testbed.TestbedSettings(examples=32, hidden=32, layers=1, heads=2, epochs=1, batch_size=16,
                                       positions="nope")  # fmt: skip
    tokenizer = testbed.testbed_tokenizer()
    model = testbed.build_model(tokenizer, settings).eval()
    assert model.config.model_type == "smollm3" and model.config.no_rope_layers == [0]
    rope = testbed.build_model(tokenizer, testbed.TestbedSettings(hidden=32, layers=1, heads=2)).eval()
    # One causal layer without positions sees the tokens before the last one as a set: reordering them leaves
    # the last token's logits unchanged. With RoPE it does not.
    ids = [tokenizer.convert_tokens_to_ids(t) for t in ("5", "7", "1", "9")]
    reordered = [ids[2], ids[0], ids[1], ids[3]]
    with torch.no_grad():
        for network, invariant in ((model, True), (rope, False)):
            a, b = (network(torch.tensor([seq])).logits[0, -1] for seq in (ids, reordered))
            assert torch.allclose(a, b, atol=1e-5) is invariant
    result = testbed.train_testbed(tmp_path / "nope", settings)
    assert HFEngine(model=str(result.merged)).describe()  # reloads through AutoModelForCausalLM
    with pytest.raises(ConfigError, match="positions must be one of"):
        testbed.build_model(tokenizer, testbed.TestbedSettings(positions="alibi"))


def test_the_testbed_pipeline_reports_its_evaluation_per_level(tmp_path):
    from selfimprove.runs.store import RunStore

    settings = testbed.TestbedSettings(examples=64, hidden=32, layers=1, heads=2, epochs=1, batch_size=16)
    report = testbed.testbed(tmp_path / "tb", settings, testbed.TestbedEvaluation(evaluate=3, eval_levels="1-2"))
    assert report.trained_levels == [1, 2] and sorted(report.accuracy) == [1, 2]
    store = RunStore(tmp_path / "tb" / "runs.sqlite")
    runs = store.runs()
    assert len(runs) == 2 and all(r["problems"] == 3 for r in runs)
    by_level = {}
    for r in runs:
        rows = store.solutions(r["run_id"])
        level = rows[0]["metadata"]["level"]
        assert {row["metadata"]["level"] for row in rows} == {level}
        by_level[level] = sum(bool(row["correct"]) for row in rows) / 3
        assert all(len(row["samples"]) == 1 and row["samples"][0]["step"] == "greedy" for row in rows)
    assert by_level == report.accuracy  # the report's numbers are the stored runs' numbers
    skipped = testbed.testbed(tmp_path / "tb", settings, testbed.TestbedEvaluation(evaluate=0))
    assert skipped.accuracy == {} and skipped.merged == report.merged
