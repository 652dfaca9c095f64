"""Engine `vllm` without a GPU: the install hint, and how our Sampling maps onto vLLM's per-request settings
(what it honours and what it refuses by name). Its behaviour on a real model is tests/slow/test_vllm_engine_gpu.py,
which runs only where vLLM and a CUDA GPU exist."""

from __future__ import annotations

import importlib.util

import pytest

from selfimprove import engines
from selfimprove.core.errors import ConfigError
from selfimprove.core.types import Sampling
from selfimprove.engines.vllm import request_settings


def test_vllm_is_a_registered_engine_with_a_clear_install_hint():
    assert "vllm" in engines.names()
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    with pytest.raises(ConfigError, match=r"pip install 'selfimprove\[vllm\]'"):
        engines.get("vllm")(model="some/model")


def test_sampling_maps_to_one_seeded_request_per_sample():
    sampled = request_settings(Sampling(temperature=0.8, top_p=0.9, top_k=40, max_tokens=64, stop=("\n\n",)), 1234)
    assert sampled == {
        "n": 1, "temperature": 0.8, "top_p": 0.9, "top_k": 40, "max_tokens": 64, "stop": ["\n\n"], "seed": 1234,
        "frequency_penalty": 0.0, "presence_penalty": 0.0,
    }  # fmt: skip
    greedy = request_settings(Sampling(top_p=0.5, top_k=5), 7)
    assert (greedy["temperature"], greedy["top_p"], greedy["top_k"]) == (0.0, 1.0, -1)
    assert "logprobs" not in greedy
    assert request_settings(Sampling(logprobs=True), 0)["logprobs"] == 0
    assert request_settings(Sampling(top_logprobs=5), 0)["logprobs"] == 5
    assert request_settings(Sampling(frequency_penalty=0.5, presence_penalty=0.2), 0)["presence_penalty"] == 0.2


@pytest.mark.parametrize(
    "sampling, named",
    [
        (Sampling(repeat_penalty=1.2), "repeat_penalty"),
        (Sampling(frequency_penalty=0.1, penalty_window=16), "penalty_window"),
        (Sampling(top_logprobs=4, stop_below_confidence=2.0), "stop_below_confidence"),
    ],
)
def test_what_vllm_cannot_honour_is_refused_by_name(sampling, named):
    with pytest.raises(ConfigError, match=named):
        request_settings(sampling, 0)
