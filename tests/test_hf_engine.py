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


def test_sampled_logprobs_are_the_teacher_forced_ones(engine):
    """Each generated token's log-probability, as sampling reports it, is what scoring the finished text gives,
    whatever the temperature (they are the model's, before the sampler); the top alternatives start with the
    greedy token."""
    prompt = engine.encode_prompt("abc")
    for sampling in (
        Sampling(max_tokens=8, logprobs=True, top_logprobs=3),
        Sampling(temperature=1.5, max_tokens=8, seed=2, top_logprobs=3),
    ):
        ((ids, completion),) = engine.sample_rows([prompt], [5], sampling)
        produced = ids[: completion.completion_tokens]
        scored = engine.token_logprobs(prompt + produced)[len(prompt) - 1 :]
        assert len(completion.logprobs) == len(produced) == len(completion.top_logprobs)
        assert completion.logprobs == pytest.approx(scored, abs=1e-4)
        for value, top in zip(completion.logprobs, completion.top_logprobs):
            assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1] and value <= top[0][1] + 1e-6
        if sampling.greedy:
            assert [top[0][0] for top in completion.top_logprobs] == [engine.tokenizer.decode([t]) for t in produced]
    plain = engine.generate(["abc"], 1, Sampling(max_tokens=4))[0][0]
    assert plain.logprobs is None and plain.top_logprobs is None  # only when asked


def test_repetition_penalties_act_on_generated_tokens(engine):
    """Penalties off is plain greedy; a huge repeat penalty lets no generated token come twice (the character
    tokenizer: one token per character, special ones aside); a window of 2 only keeps 3 in a row distinct."""
    plain = engine.generate(["abc"], 1, Sampling(max_tokens=24))[0][0].text
    assert len(set(plain)) < len(plain)  # the random model repeats itself
    assert engine.generate(["abc"], 1, Sampling(max_tokens=24, repeat_penalty=1.0))[0][0].text == plain
    penalised = engine.generate(["abc"], 1, Sampling(max_tokens=24, repeat_penalty=1e6))[0][0].text
    assert len(set(penalised)) == len(penalised) >= 20
    windowed = engine.generate(["abc"], 1, Sampling(max_tokens=24, repeat_penalty=1e6, penalty_window=2))[0][0].text
    assert all(len(set(windowed[i : i + 3])) == 3 for i in range(len(windowed) - 2))
    assert windowed != penalised


def test_traces_end_on_low_confidence_when_asked(engine):
    """stop_below_confidence ends a trace at its first window whose mean token confidence is below it: a threshold
    above any confidence the model reaches ends every trace after exactly one window."""
    sampling = Sampling(temperature=1.0, max_tokens=20, seed=1, top_logprobs=3, confidence_window=5)
    full = engine.generate(["abc"], 3, sampling)[0]
    assert all(c.finish_reason != "low_confidence" for c in full) and max(c.completion_tokens for c in full) > 5
    hesitant = engine.generate(["abc"], 3, Sampling(**{**sampling.__dict__, "stop_below_confidence": 1e6}))[0]
    for before, after in zip(full, hesitant):
        if before.completion_tokens < 5:  # the random model ended it first
            assert after.text == before.text and after.finish_reason == before.finish_reason
            continue
        assert after.finish_reason == "low_confidence" and after.completion_tokens == 5
        assert before.text.startswith(after.text) and after.top_logprobs == before.top_logprobs[:5]


def test_samples_of_one_prompt_share_its_computation():
    """With share_prompt the prompt's KV is computed once for all its samples: the same samples come out as when
    every row computes it, and the prompt tokens evaluated say so."""
    model, tokenizer = tiny_llama()
    shared = HFEngine.from_loaded(model, tokenizer, batch_size=8)
    separate = HFEngine.from_loaded(model, tokenizer, batch_size=8, share_prompt=False)
    prompts = [Prompt("Question: 2+2?", "a"), Prompt("Hello there", "b"), Prompt("xyz", "c", sample_ids=(3,))]
    for sampling in (Sampling(temperature=1.0, max_tokens=12, seed=3, logprobs=True), Sampling(max_tokens=12)):
        with_sharing = shared.generate(prompts, 4, sampling)
        without = separate.generate(prompts, 4, sampling)
        assert texts(with_sharing) == texts(without)
        for a, b in zip((c for row in with_sharing for c in row), (c for row in without for c in row)):
            if a.logprobs is not None:
                assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
        prompt_tokens = with_sharing[0][0].prompt_tokens
        assert [c.prompt_evaluated for c in with_sharing[0]] == [prompt_tokens, 1, 1, 1]
        assert [c.prompt_evaluated for c in without[0]] == [prompt_tokens] * 4
        assert with_sharing[2][0].prompt_evaluated == with_sharing[2][0].prompt_tokens  # drawn once: nothing shared
