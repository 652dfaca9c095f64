"""The `hf` engine on a tiny random Llama: seeded per-sample sampling, stops, greedy, chat, callbacks."""

import pytest

pytest.importorskip("torch")

from selfimprove.core.errors import ModelNotFoundError  # noqa: E402
from selfimprove.core.types import Prompt, Sampling  # noqa: E402
from selfimprove.engines.hf import HFEngine, resolve_source  # noqa: E402
from tiny_models import tiny_llama  # noqa: E402


@pytest.fixture(scope="module")
def engine():
    model, tokenizer = tiny_llama()
    return HFEngine.from_loaded(model, tokenizer, batch_size=4)


def texts(rows):
    return [[c.text for c in row] for row in rows]


def test_samples_depend_on_seed_prompt_and_sample_id_not_the_batch(engine):
    sampling = Sampling(temperature=1.0, max_tokens=12, seed=3)
    prompts = [Prompt("Question: 2+2?", "a"), Prompt("Hello there", "b")]
    full = engine.generate(prompts, 5, sampling)
    assert [len(row) for row in full] == [5, 5]
    assert len(set(texts(full)[0])) > 1  # sampling, not copies
    assert texts(engine.generate(prompts, 5, sampling)) == texts(full)  # repeatable
    # A resumed run asks only for the sample ids it lacks; they come out as in the full call.
    resumed = engine.generate([Prompt("Question: 2+2?", "a", sample_ids=(1, 4))], 5, sampling)
    assert texts(resumed) == [[full[0][1].text, full[0][4].text]]
    other = engine.generate(prompts, 5, Sampling(temperature=1.0, max_tokens=12, seed=4))
    assert texts(other) != texts(full)


def test_greedy_stop_strings_finish_reasons_and_callbacks(engine):
    greedy = engine.generate(["abc", "abc"], 1, Sampling(max_tokens=15))
    assert greedy[0][0].text == greedy[1][0].text and greedy[0][0].finish_reason == "length"
    assert greedy[0][0].completion_tokens == 15 and greedy[0][0].prompt_tokens == 4  # <bos> a b c
    first = greedy[0][0].text[3]  # stop on a character the greedy text contains: it is cut there
    seen = []
    cut = engine.generate(
        ["abc"], 2, Sampling(max_tokens=15, stop=(first,)), on_complete=lambda i, s, c: seen.append((i, s))
    )
    assert cut[0][0].text == greedy[0][0].text[: greedy[0][0].text.index(first)]
    assert cut[0][0].finish_reason == "stop" and sorted(seen) == [(0, 0), (0, 1)]


def test_chat_messages_without_a_template_use_a_transcript(engine):
    messages = [{"role": "user", "content": "hi"}]
    assert engine.encode_prompt(messages) == engine._encode("User: hi\nAssistant:")
    assert len(engine.generate([messages], 1, Sampling(max_tokens=3))[0][0].text) > 0


def test_missing_models_are_clear_errors(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not found"):
        resolve_source(str(tmp_path / "nope.gguf"))
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve_source(str(tmp_path))
    assert resolve_source("org/model") == ("org/model", None)  # a hub name is passed through


def test_sample_rows_return_the_token_ids_drawn(engine):
    """What a policy gradient trains on: every drawn token, an ending EOS included, never a pad after a stop."""
    prompt = engine.encode_prompt("abc")
    sampling = Sampling(temperature=1.0, max_tokens=10, seed=1)
    (ids, completion), (again, _) = engine.sample_rows([prompt, prompt], [7, 7], sampling)
    ends = engine.end_ids() | {engine.tokenizer.pad_token_id}  # a random model may draw <pad>: it ends the row too
    assert ids == again and len(ids) == completion.completion_tokens + (ids[-1] in ends)
    assert engine.tokenizer.decode(ids, skip_special_tokens=True) == completion.text
    greedy_text = engine.generate(["abc"], 1, Sampling(max_tokens=10))[0][0].text
    stop = greedy_text[2]
    ((cut_ids, cut), (full_ids, _)) = engine.sample_rows(
        [prompt, engine.encode_prompt("xyz")], [0, 0], Sampling(max_tokens=10, stop=(stop,))
    )
    assert engine.tokenizer.decode(cut_ids) == greedy_text[: greedy_text.index(stop) + 1]  # through the stop, no pad
    assert cut.text == greedy_text[: greedy_text.index(stop)]
