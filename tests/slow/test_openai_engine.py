"""The openai engine against a real OpenAI-compatible server on loopback: llama-cpp-python's own,
serving the embedded model, started and stopped here."""

import socket
import subprocess
import sys
import time

import httpx
import pytest

from selfimprove.core.errors import ConfigError, EngineError
from selfimprove.core.types import Prompt, Sampling
from selfimprove.engines.openai_compat import OpenAICompatEngine

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(embedded_model):
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(embedded_model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--model_alias",
            "gemma-embedded",
            "--verbose",
            "false",
            "--logits_all",  # its /completions returns logprobs only then
            "true",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 120
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        process.kill()
        raise RuntimeError("server did not start in 120 s")
    yield url
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def test_n_samples_from_a_server(server):
    engine = OpenAICompatEngine(base_url=server, max_concurrency=4)
    assert engine.model == "gemma-embedded"  # found through /models
    prompt = "Question: Ann has 3 apples. She buys 2 more. How many apples does Ann have?\nAnswer:"
    seen = []
    out = engine.generate(
        [Prompt(prompt, problem_id="p")],
        3,
        Sampling(temperature=0.9, max_tokens=24, stop=("\nQuestion:",), seed=5),
        on_complete=lambda i, s, c: seen.append(s),
    )
    assert len(out[0]) == 3 and sorted(seen) == [0, 1, 2]
    assert engine.supports_n is False  # llama-cpp-python's server returns one choice whatever n is
    for c in out[0]:
        assert "\nQuestion:" not in c.text and 0 < c.completion_tokens <= 24 and c.prompt_tokens > 10
    # Single-sample requests are seeded by sample id: the same call gives the same samples.
    again = engine.generate(
        [Prompt(prompt, problem_id="p")], 3, Sampling(temperature=0.9, max_tokens=24, stop=("\nQuestion:",), seed=5)
    )
    assert [c.text for c in again[0]] == [c.text for c in out[0]]
    engine.close()


def test_logprobs_and_penalties_through_a_server(server):
    """Log-probabilities come back from /completions as the in-process engines give them (token, top-k); the API's
    frequency and presence penalties reach the server; what the API lacks (repeat_penalty) is refused by name."""
    engine = OpenAICompatEngine(base_url=server)
    prompt = "Question: Ann has 3 apples. She buys 2 more. How many apples does Ann have?\nAnswer:"
    (completion,) = engine.generate([prompt], 1, Sampling(max_tokens=16, logprobs=True, top_logprobs=2))[0]
    assert len(completion.logprobs) == len(completion.top_logprobs) > 0
    assert all(v <= 0 for v in completion.logprobs)
    assert all(len(top) == 2 and top[0][1] >= top[1][1] for top in completion.top_logprobs)
    assert "".join(top[0][0] for top in completion.top_logprobs).startswith(completion.text[:8])  # greedy
    plain = engine.generate([prompt], 1, Sampling(max_tokens=40))[0][0].text
    penalised = engine.generate([prompt], 1, Sampling(max_tokens=40, frequency_penalty=2.0, presence_penalty=2.0))
    assert penalised[0][0].text != plain
    with pytest.raises(ConfigError, match="repeat_penalty"):
        engine.generate([prompt], 1, Sampling(max_tokens=4, repeat_penalty=1.2))
    engine.close()


def test_cli_run_through_the_server(server, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "selfimprove.cli",
            "run",
            "--engine",
            "openai",
            "--base-url",
            server,
            "--task",
            "arithmetic",
            "--samples",
            "3",
            "--limit",
            "2",
            "--max-tokens",
            "48",
            "--store",
            str(tmp_path / "s.sqlite"),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "gemma-embedded" in result.stdout and "maj@3" in result.stdout


def test_unreachable_server_is_a_clear_error():
    port = free_port()  # nothing listens there
    with pytest.raises(EngineError, match=f"unreachable at http://127.0.0.1:{port}/v1"):
        OpenAICompatEngine(base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    engine = OpenAICompatEngine(base_url=f"http://127.0.0.1:{port}/v1", model="m", max_retries=1, timeout=2)
    with pytest.raises(EngineError, match="unreachable"):
        engine.generate(["hi"], 1, Sampling(max_tokens=2))
