"""Engine `vllm` on a real model: the contract the other engines keep (samples seeded by prompt and sample id,
stop strings and finish reasons, callbacks, chat, log-probabilities, a shared prompt computed once). Runs only
where vLLM and a CUDA GPU exist (the `device` machine, when one is lent); skipped everywhere else."""

from __future__ import annotations

import importlib.util
import math

import pytest

from selfimprove.core.types import Prompt, Sampling

if importlib.util.find_spec("vllm") is None:
    pytest.skip("vLLM is not installed", allow_module_level=True)
torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA GPU", allow_module_level=True)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    from tiny_models import tiny_llama

    folder = tmp_path_factory.mktemp("tiny-vllm")
    model, tokenizer = tiny_llama(seed=5, hidden=64)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def engine(checkpoint):
    from selfimprove.engines.vllm import VLLMEngine

    engine = VLLMEngine(model=checkpoint, gpu_memory_utilization=0.3, max_model_len=512)
    yield engine
    engine.close()


def test_samples_depend_on_seed_prompt_and_sample_id_not_the_batch(engine):
    sampling = Sampling(temperature=1.0, max_tokens=16, seed=3)
    alone = engine.generate([Prompt("abc", sample_ids=(2,))], 1, sampling)[0][0].text
    batched = engine.generate([Prompt("xyz"), Prompt("abc")], 4, sampling)
    assert batched[1][2].text == alone
    assert len({c.text for c in batched[1]}) > 1
    reseeded = Sampling(temperature=1.0, max_tokens=16, seed=4)
    assert engine.generate([Prompt("abc", sample_ids=(2,))], 1, reseeded)[0][0].text != alone


def test_greedy_stop_strings_finish_reasons_and_callbacks(engine):
    seen = []
    out = engine.generate(["hello"], 2, Sampling(max_tokens=12), on_complete=lambda i, s, c: seen.append((i, s)))
    assert out[0][0].text == out[0][1].text and sorted(seen) == [(0, 0), (0, 1)]
    assert out[0][0].finish_reason in ("stop", "length") and out[0][0].completion_tokens <= 12
    text = out[0][0].text
    if len(text) > 3:
        stopped = engine.generate(["hello"], 1, Sampling(max_tokens=12, stop=(text[2:4],)))[0][0]
        assert stopped.finish_reason == "stop" and text[2:4] not in stopped.text


def test_chat_messages_and_logprobs(engine):
    chat = engine.generate([[{"role": "user", "content": "hi"}]], 1, Sampling(max_tokens=8))[0][0]
    assert chat.completion_tokens > 0
    scored = engine.generate(["abc"], 1, Sampling(max_tokens=8, top_logprobs=3))[0][0]
    assert scored.logprobs is not None and all(lp <= 0 and math.isfinite(lp) for lp in scored.logprobs)
    assert all(len(top) <= 3 for top in scored.top_logprobs)


def test_a_shared_prompt_is_computed_once(engine):
    prompt = "the same long prefix " * 10
    out = engine.generate([prompt], 8, Sampling(temperature=1.0, max_tokens=4))[0]
    evaluated = [c.prompt_evaluated for c in out]
    if all(e is None for e in evaluated):
        pytest.skip("this vLLM does not report cached prompt tokens")
    assert sum(evaluated) < 8 * out[0].prompt_tokens
