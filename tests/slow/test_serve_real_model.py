"""`selfimprove serve` in front of the embedded model, on loopback, through the official openai client: a strategy
route, plain completions with n, streaming whose progress arrives before the answer, an over-long prompt, and 32
concurrent clients whose requests are merged into shared engine calls and all recorded."""

import statistics
import threading
import time

import pytest

from selfimprove.runs.store import RunStore
from selfimprove.serve.server import BackgroundServer
from selfimprove.serve.settings import ServeSettings

openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")
pytestmark = pytest.mark.slow

QUESTION = "Question: Ann has 3 apples. She buys 2 more. How many apples does Ann have?\nAnswer:"


@pytest.fixture(scope="module")
def server(llama_engine, tmp_path_factory):
    store = tmp_path_factory.mktemp("serve") / "s.sqlite"
    running = BackgroundServer(
        llama_engine, ServeSettings(port=0, served_name="gemma", store=str(store), max_n=4, max_concurrent_per_key=32)
    )
    yield running
    running.stop()


def test_strategy_route_plain_completions_and_n(server):
    client = openai.OpenAI(base_url=server.url, api_key="none")
    reply = client.completions.create(model="self-consistency-4/gemma", prompt=QUESTION, max_tokens=48,
                                      stop=["\nQuestion:"])  # fmt: skip
    extension = reply.model_extra["selfimprove"]
    assert extension["strategy"] == "self-consistency" and extension["samples"] == 5
    assert sum(extension["choices"][0]["votes"].values()) <= 4 and reply.usage.completion_tokens > 0
    plain = client.completions.create(model="gemma", prompt=QUESTION, max_tokens=16, n=3, temperature=0.8)
    assert len(plain.choices) == 3 and all(c.text for c in plain.choices)
    chat = client.chat.completions.create(model="cot/gemma", messages=[{"role": "user", "content": "What is 2+3?"}],
                                          max_tokens=32)  # fmt: skip
    assert chat.choices[0].message.role == "assistant" and chat.choices[0].message.content
    assert RunStore(server.store.path).completion_rows(chat.model_extra["selfimprove"]["run_id"])


def test_streaming_progress_arrives_before_the_answer(server):
    client = openai.OpenAI(base_url=server.url, api_key="none")
    started = time.perf_counter()
    arrivals = []
    stream = client.chat.completions.create(model="self-consistency-6/gemma", stream=True, max_tokens=48,
                                            messages=[{"role": "user", "content": "What is 12 + 30?"}])  # fmt: skip
    for chunk in stream:
        kind = "progress" if (chunk.model_extra.get("selfimprove") or {}).get("samples_done") else "other"
        if chunk.choices and chunk.choices[0].delta.content:
            kind = "content"
        arrivals.append((kind, time.perf_counter() - started))
    progress = [t for kind, t in arrivals if kind == "progress"]
    content = [t for kind, t in arrivals if kind == "content"]
    assert len(progress) == 7 and content and progress[0] < content[0]


def test_greedy_text_is_streamed_token_by_token(server):
    client = openai.OpenAI(base_url=server.url, api_key="none")
    started = time.perf_counter()
    pieces, run_id = [], None
    for chunk in client.completions.create(model="gemma", prompt=QUESTION, max_tokens=32, temperature=0,
                                           stop=["\n\n"], stream=True):  # fmt: skip
        if chunk.choices and chunk.choices[0].text:
            pieces.append((chunk.choices[0].text, time.perf_counter() - started))
        run_id = (chunk.model_extra.get("selfimprove") or {}).get("run_id") or run_id
    (recorded,) = RunStore(server.store.path).completion_rows(run_id)
    assert "".join(text for text, _ in pieces) == recorded["text"]  # the text as the engine finished it
    assert len(pieces) > 3 and pieces[0][1] < pieces[-1][1]  # the first piece came before the text was done


def test_an_over_long_prompt_is_refused_and_the_server_goes_on(server):
    client = openai.OpenAI(base_url=server.url, api_key="none", max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="gemma", prompt="word " * 9000, max_tokens=8)
    assert caught.value.code == "context_length_exceeded"
    assert client.completions.create(model="gemma", prompt=QUESTION, max_tokens=4).choices[0].text is not None


def test_32_concurrent_clients_share_the_engine(server):
    client = openai.OpenAI(base_url=server.url, api_key="none", timeout=300, max_retries=0)
    shared = server.engine
    calls_before = shared.engine_calls
    latencies, errors, run_ids = [], [], []

    def one(i):
        started = time.perf_counter()
        try:
            messages = [{"role": "user", "content": f"Count to {i + 3}."}]
            reply = client.chat.completions.create(model="gemma", max_tokens=16, temperature=0.7, seed=i,
                                                   messages=messages)  # fmt: skip
            run_ids.append(reply.model_extra["selfimprove"]["run_id"])
            latencies.append(time.perf_counter() - started)
        except Exception as exc:  # noqa: BLE001 - every failure is reported below
            errors.append(repr(exc))

    started = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    wall = time.perf_counter() - started
    assert not errors and len(run_ids) == 32
    store = RunStore(server.store.path)
    assert all(len(store.completion_rows(r)) == 1 for r in run_ids)  # every request stored
    engine_calls = shared.engine_calls - calls_before
    p50, p95 = statistics.median(latencies), sorted(latencies)[int(0.95 * 31)]
    print(f"32 clients: {wall:.1f} s wall, p50 {p50:.2f} s, p95 {p95:.2f} s, {engine_calls} engine calls")
    assert engine_calls < 32  # merged, not one after another
