"""Memory capacity: items, the matching rule, bits, the Fano bound, and a tiny model that memorises."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest

from selfimprove.core.errors import ConfigError, DataError
from selfimprove.runs.recall import fano_bits_per_item, score_recall, similarity
from selfimprove.tasks.memory import (
    DEFAULT_SPACES,
    MemoryItem,
    MemoryTask,
    bits_per_item,
    keyed_items,
    load_items,
    normalise,
    parse_fields,
    poem_items,
    recalled_exactly,
    synthetic_items,
)
from selfimprove.training.memory import MemorySettings, model_label


def test_synthetic_items_carry_the_entropy_they_claim():
    claimed = bits_per_item()
    assert claimed == pytest.approx(math.log2(100) + math.log2(32) + math.log2(10000) + math.log2(16))
    items = synthetic_items(4000, seed=3)
    assert len({item.prompt for item in items}) == 4000  # keys drawn without replacement
    for space in DEFAULT_SPACES:
        counts = Counter(dict(item.fields)[space.name] for item in items)
        assert set(counts) <= set(space.values)
        if len(space.values) <= 100:  # enough draws per value for the plug-in entropy to be close
            entropy = -sum(c / 4000 * math.log2(c / 4000) for c in counts.values())
            bias = (len(space.values) - 1) / (2 * 4000 * math.log(2))  # Miller-Madow: the plug-in's shortfall
            assert entropy + bias == pytest.approx(space.bits, abs=0.03)
    codes = [dict(item.fields)["code"] for item in items]
    assert len(set(codes)) > 3000  # 4000 draws from 10,000 values: about 3,300 distinct expected


def test_synthetic_items_are_stable_and_their_values_parse_back():
    small, large = synthetic_items(5, seed=1), synthetic_items(50, seed=1)
    assert large[:5] == small
    assert synthetic_items(5, seed=2) != small
    for item in large:
        assert parse_fields(item.value) == dict(item.fields)
    with pytest.raises(ConfigError, match="1..4096"):
        synthetic_items(5000)


def test_the_matching_rule_is_exact_prefix_after_line_normalisation():
    value = "Shall I compare thee\nto a summer's day?"
    assert recalled_exactly("  Shall I compare thee  \r\nto a summer's day?\nThou art more", value)
    assert not recalled_exactly("Shall I compare thee\nto a Summer's day?", value)  # case counts
    assert not recalled_exactly("Shall I compare thee", value)  # stopping early is not a recall
    assert normalise("\n\n a\t \nb  \n\n") == "a\nb"
    assert similarity(value + " and more", value) == 1.0
    assert similarity("", value) == 0.0


def test_bits_are_counted_on_hand_built_recalls():
    items = synthetic_items(4, seed=0)
    facts = [dict(item.fields) for item in items]
    half = f" born {facts[1]['born']}, lives in {facts[1]['city']}, code 0000, likes nothing."
    if facts[1]["code"] == "0000":
        half = half.replace("0000", "0001")
    generations = [items[0].value, half, None, "no facts here"]
    score = score_recall(items, generations, DEFAULT_SPACES)
    born, city, code, colour = (space.bits for space in DEFAULT_SPACES)
    assert score.exact == 1 and score.exact_rate == 0.25
    assert score.bits == pytest.approx(born + city + code + colour + born + city)
    assert score.fields == {"born": 0.5, "city": 0.5, "code": 0.25, "colour": 0.25}
    assert score.chance_bits == pytest.approx(4 * sum(s.bits / len(s.values) for s in DEFAULT_SPACES))
    expected_fano = 4 * sum(fano_bits_per_item(score.fields[s.name], len(s.values)) for s in DEFAULT_SPACES)
    assert score.fano_bits == pytest.approx(expected_fano)
    low, high = score.exact_interval
    assert low < 0.25 < high


def test_fano_bound_is_zero_at_chance_and_full_when_always_right():
    assert fano_bits_per_item(1.0, 16) == pytest.approx(4.0)
    assert fano_bits_per_item(1 / 16, 16) == pytest.approx(0.0, abs=1e-12)
    assert fano_bits_per_item(0.01, 16) == 0.0
    values = [fano_bits_per_item(p / 10, 16) for p in range(1, 11)]
    assert values == sorted(values)
    assert fano_bits_per_item(0.5, 2) == 0.0


def test_chance_similarity_scores_generations_against_other_items():
    items = [MemoryItem("a", "k1", "alpha beta"), MemoryItem("b", "k2", "gamma delta")]
    score = score_recall(items, ["alpha beta", "gamma delta"])
    assert score.exact == 2 and score.similarity == 1.0 and score.chance_similarity < 0.5
    assert score.bits == 0 and score.fields == {}


def test_poems_and_keyed_items_load_with_errors_naming_file_line_field(tmp_path):
    poems = tmp_path / "poems.jsonl"
    lines = ["Line one of the poem", "", "Line two is here", "A third line that is long enough to cross"]
    poems.write_text(json.dumps({"title": "Ode", "author": "Anon", "lines": lines}) + "\n")
    (item,) = poem_items(poems, max_chars=40)
    assert item.prompt == "Ode\nby Anon\n\n"
    assert item.value == "Line one of the poem\n\nLine two is here" and len(item.value) <= 40
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"title": "Ode", "author": "Anon", "lines": lines}) + "\n" + '{"title": "X"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: field 'author'"):
        poem_items(bad)
    keyed = tmp_path / "keyed.jsonl"
    keyed.write_text('{"key": "Capital of France:", "value": " Paris"}\n{"key": "Capital of Peru:"}\n')
    with pytest.raises(DataError, match=r"keyed.jsonl:2: field 'value'"):
        keyed_items(keyed)
    keyed.write_text('{"key": "a", "value": "1"}\n{"key": "b", "value": "2"}\n{"key": "c", "value": "3"}\n')
    assert len(load_items(str(keyed), 3)) == 3
    with pytest.raises(ConfigError, match="has 3"):
        load_items(str(keyed), 4)


def test_memory_task_grades_by_the_matching_rule():
    items = synthetic_items(2)
    task = MemoryTask(items, "trained")
    problems = list(task.problems())
    assert [p.question for p in problems] == [i.prompt for i in items]
    assert task.grade(problems[0], task.extract(items[0].value + " And more.")) is True
    assert task.grade(problems[0], task.extract(items[1].value)) is False
    assert MemoryTask(items, "control").describe() != task.describe()


def test_settings_and_labels():
    assert MemorySettings(counts="64,16,16").count_list == [16, 64]
    with pytest.raises(ConfigError, match="--counts"):
        MemorySettings(counts="a")
    with pytest.raises(ConfigError, match="--exposures"):
        MemorySettings(exposures="0")
    assert model_label("/x/weak2/merged") == "weak2/merged"
    assert model_label(None) == "embedded"


def test_word_level_tokenizer_extension_keeps_old_ids():
    from selfimprove.training.tokenizer import extend_word_level, is_word_level, missing_pieces, word_digit_tokenizer

    tokenizer = word_digit_tokenizer(["What is 3 plus 4"])
    assert is_word_level(tokenizer)
    corpus = ["Facts about Zoë Brandt: born 1950."]
    assert "Zo" in missing_pieces(tokenizer, corpus) and "What" not in missing_pieces(tokenizer, corpus)
    extended = extend_word_level(tokenizer, corpus)
    assert extended("What is 3 plus 4")["input_ids"] == tokenizer("What is 3 plus 4")["input_ids"]
    assert tokenizer.unk_token_id not in extended(corpus[0])["input_ids"]
    assert extended.decode(extended(corpus[0])["input_ids"], skip_special_tokens=True) == corpus[0]
    assert missing_pieces(extended, corpus) == []


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_a_tiny_model_memorises_a_handful_and_recalls_no_control_item(tmp_path):
    from selfimprove.training.memory import memory

    pytest.importorskip("torchao")
    settings = MemorySettings(counts="6", exposures="150", control=8, reasoning=0, quantised="int8,int4")
    sft = {"batch_size": 2, "learning_rate": 1e-2, "warmup": 0.02}
    report = memory(["scratch:32x2"], tmp_path, settings, sft, log=lambda _: None)
    (point,) = report.points
    assert point.trained.exact >= 5, point.trained
    assert point.control.exact == 0
    assert point.control.fano_bits < point.trained.fano_bits / 4
    (baseline,) = report.baselines
    assert baseline.trained.exact == 0 and baseline.reasoning is None
    assert point.trained.bits >= 5 * bits_per_item()
    assert set(point.quantised) == {"int8", "int4"} and point.quantised["int8"].items == 6
    assert point.quantised["int8"].exact >= point.trained.exact - 1  # int8 keeps what was stored
    assert (tmp_path / "report.html").read_text().count("<img") == 0  # one point: no curve to draw
    stored = json.loads((tmp_path / "report.json").read_text())
    assert stored["points"][0]["trained"]["exact"] == point.trained.exact

    done = next(tmp_path.glob("memorise-*/done.json"))
    before = done.stat().st_mtime_ns
    again = memory(["scratch:32x2"], tmp_path, settings, sft, log=lambda _: None)
    assert done.stat().st_mtime_ns == before  # nothing retrained
    assert again.points[0].trained == point.trained
