"""The llama-cpp engine on the real embedded Gemma 3 270M."""

import pytest

from selfimprove.core.errors import EngineError
from selfimprove.core.types import Prompt, Sampling
from selfimprove.tasks.arithmetic import ArithmeticTask

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prompts():
    task = ArithmeticTask(level="1-2")
    return task, [Prompt(task.format_prompt(p), problem_id=p.id) for p in task.problems(limit=3)]


def test_n_samples_per_prompt_with_streaming_callback(llama_engine, prompts):
    task, ps = prompts
    seen = []
    out = llama_engine.generate(
        ps,
        5,
        Sampling(temperature=0.9, max_tokens=48, stop=task.stop, seed=1),
        on_complete=lambda i, s, c: seen.append((i, s)),
    )
    assert [len(row) for row in out] == [5, 5, 5]
    assert sorted(seen) == [(i, s) for i in range(3) for s in range(5)]
    for row in out:
        for c in row:
            assert c.prompt_tokens > 100 and 0 < c.completion_tokens <= 48
            assert "\nQuestion:" not in c.text  # stop string honoured and cut
            assert c.finish_reason in ("stop", "length") and c.seconds > 0
    assert len({c.text for c in out[0]}) > 1  # sampling, not five copies


def test_text_told_as_it_is_generated_joins_to_each_completion(llama_engine, prompts):
    task, ps = prompts
    told: dict[tuple[int, int], list[str]] = {}
    stops = (*task.stop, "\n\n", " is")  # short stops, so some texts end on one
    sampling = Sampling(temperature=0.9, max_tokens=40, stop=stops, seed=3)
    out = llama_engine.generate(ps, 4, sampling, on_text=lambda i, s, d: told.setdefault((i, s), []).append(d))
    for i, row in enumerate(out):
        for s, completion in enumerate(row):
            assert "".join(told.get((i, s), [])) == completion.text  # nothing taken back, nothing of a stop told
    assert max(len(pieces) for pieces in told.values()) > 3  # piece by piece, not whole


def test_same_seed_same_samples_other_seed_others(llama_engine, prompts):
    task, ps = prompts
    sampling = Sampling(temperature=1.0, max_tokens=32, stop=task.stop, seed=11)
    a = llama_engine.generate(ps[:2], 4, sampling)
    b = llama_engine.generate(ps[:2], 4, sampling)
    c = llama_engine.generate(ps[:2], 4, Sampling(temperature=1.0, max_tokens=32, stop=task.stop, seed=12))
    texts = lambda out: [[x.text for x in row] for row in out]  # noqa: E731
    assert texts(a) == texts(b)
    assert texts(a) != texts(c)


def test_greedy_and_max_tokens(llama_engine, prompts):
    task, ps = prompts
    out = llama_engine.generate(ps[:1], 1, Sampling(max_tokens=3))
    assert out[0][0].completion_tokens == 3 and out[0][0].finish_reason == "length"
    greedy = llama_engine.generate(ps[:1], 3, Sampling(max_tokens=24, stop=task.stop))
    assert len({c.text for c in greedy[0]}) == 1  # temperature 0 is greedy for every sample


def test_more_samples_than_slots_and_top_k_top_p(llama_engine, prompts):
    task, ps = prompts
    out = llama_engine.generate(ps[:1], 20, Sampling(temperature=0.8, top_k=20, top_p=0.9, max_tokens=16, seed=2))
    assert len(out[0]) == 20  # max_parallel is 16: the prompt is split into two groups


def test_sample_ids_pick_which_samples(llama_engine, prompts):
    task, ps = prompts
    from dataclasses import replace

    out = llama_engine.generate([replace(ps[0], sample_ids=(3, 7))], 8, Sampling(temperature=0.8, max_tokens=8))
    assert len(out[0]) == 2


def test_prompt_too_long_is_a_clear_error(llama_engine):
    with pytest.raises(EngineError, match="n_ctx"):
        llama_engine.generate(["word " * 5000], 1, Sampling(max_tokens=8))


def test_chat_messages_go_through_the_chat_template_or_a_plain_transcript(llama_engine):
    from selfimprove.engines.base import plain_transcript

    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello."}]
    # The embedded Gemma is a base model: its GGUF has no chat template, so messages become a plain transcript.
    assert not llama_engine._chat_template
    out = llama_engine.generate([messages], 1, Sampling(max_tokens=8))
    assert out[0][0].prompt_tokens == llama_engine.count_tokens(plain_transcript(messages))
    # A GGUF that carries a template is rendered through it: the prompt the model sees is the template's.
    template = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}<|assistant|>"
    saved = llama_engine._chat_template, llama_engine._chat_formatter
    llama_engine._chat_template, llama_engine._chat_formatter = template, None
    try:
        rendered = "<|system|>Be brief.\n<|user|>Say hello.\n<|assistant|>"
        assert llama_engine._render(messages) == rendered
        out = llama_engine.generate([messages], 1, Sampling(max_tokens=8))
        assert out[0][0].prompt_tokens == llama_engine.count_tokens(rendered)
    finally:
        llama_engine._chat_template, llama_engine._chat_formatter = saved


def test_slots_are_refilled_as_sequences_finish(llama_engine):
    # KV room (n_ctx 4096, 300 tokens reserved per sample) admits two groups of 4 at a time, so
    # later groups take the slots of sequences that ended early while their own group still runs.
    task = ArithmeticTask(level="1-3")
    ps = [Prompt(task.format_prompt(p), problem_id=p.id) for p in task.problems(limit=8)]
    for seed in range(2):
        out = llama_engine.generate(ps, 4, Sampling(temperature=1.0, max_tokens=300, stop=task.stop, seed=seed))
        assert [len(row) for row in out] == [4] * 8
        assert all(c.finish_reason in ("stop", "length") for row in out for c in row)


def test_logprobs_when_asked_leave_the_samples_as_they_were(llama_engine, prompts):
    _, prompts = prompts
    sampling = Sampling(temperature=0.8, top_k=40, max_tokens=24, seed=2)
    llama_engine.generate(prompts, 3, sampling)  # now the prompts are cached: both calls below start from there
    plain = llama_engine.generate(prompts, 3, sampling)
    scored = llama_engine.generate(prompts, 3, Sampling(**{**sampling.__dict__, "logprobs": True, "top_logprobs": 4}))
    assert [[c.text for c in row] for row in scored] == [[c.text for c in row] for row in plain]
    for completion in (c for row in scored for c in row):
        assert len(completion.logprobs) == completion.completion_tokens == len(completion.top_logprobs)
        assert all(v <= 0 for v in completion.logprobs)
        assert all(len(top) == 4 and top[0][1] >= top[-1][1] for top in completion.top_logprobs)
    assert all(c.logprobs is None for row in plain for c in row)


def test_repetition_penalties_change_greedy_only_when_on(llama_engine):
    prompt = "List the numbers: 1, 2, 3,"
    plain = llama_engine.generate([prompt], 1, Sampling(max_tokens=40))[0][0].text
    assert llama_engine.generate([prompt], 1, Sampling(max_tokens=40, repeat_penalty=1.0))[0][0].text == plain
    penalised = llama_engine.generate([prompt], 1, Sampling(max_tokens=40, repeat_penalty=1.5, presence_penalty=1.0))
    assert penalised[0][0].text != plain


def test_traces_end_on_low_confidence_when_asked(llama_engine, prompts):
    _, prompts = prompts
    sampling = Sampling(temperature=0.8, max_tokens=24, seed=4, top_logprobs=5, confidence_window=6)
    hesitant = llama_engine.generate(prompts, 2, Sampling(**{**sampling.__dict__, "stop_below_confidence": 1e6}))
    for completion in (c for row in hesitant for c in row):
        assert completion.finish_reason in ("low_confidence", "stop")
        assert completion.finish_reason == "stop" or completion.completion_tokens == 6 == len(completion.top_logprobs)
    assert any(c.finish_reason == "low_confidence" for row in hesitant for c in row)
    never = llama_engine.generate(prompts, 2, Sampling(**{**sampling.__dict__, "stop_below_confidence": 1e-9}))
    assert all(c.finish_reason != "low_confidence" for row in never for c in row)
