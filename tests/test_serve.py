"""`selfimprove serve` over loopback with the official openai client and raw HTTP: routes, the strategy
extension, streaming, errors and limits, the run store; and SharedEngine's merging of concurrent calls. The
engine behind the server here is a scripted double (bookkeeping exactly); tests/slow/test_serve_real_model.py
puts the embedded model behind it."""

import threading
import time

import httpx
import pytest

from doubles import CountingEngine, ScriptedEngine, StreamingEngine
from selfimprove.core.types import Prompt, Sampling
from selfimprove.engines.base import TextStream
from selfimprove.runs.store import RunStore
from selfimprove.serve.batching import SharedEngine
from selfimprove.serve.keys import KeyRing, digest, load_key_digests
from selfimprove.serve.routing import RequestError, parse_model
from selfimprove.serve.server import BackgroundServer
from selfimprove.serve.settings import ServeSettings

openai = pytest.importorskip("openai")
pytest.importorskip("fastapi")


@pytest.fixture
def server(tmp_path):
    settings = ServeSettings(port=0, served_name="m", store=str(tmp_path / "s.sqlite"), max_n=4, max_samples=16,
                             max_tokens_cap=512)  # fmt: skip
    running = BackgroundServer(CountingEngine(answer_of=lambda s: 7 if s % 3 else 5), settings)
    yield running
    running.stop()


def test_model_names_pick_strategies():
    assert parse_model("m", "m") == ("plain", {})
    assert parse_model("self-consistency-8/m", "m") == ("self-consistency", {"samples": 8})
    assert parse_model("cot/m", "m") == ("cot", {})
    with pytest.raises(RequestError, match="unknown strategy") as caught:
        parse_model("best-of-everything/m", "m")
    assert caught.value.status == 400
    with pytest.raises(RequestError, match="not served") as caught:
        parse_model("cot/other", "m")
    assert caught.value.status == 404


def test_chat_with_a_strategy_answers_by_vote_and_records_the_request(server):
    client = openai.OpenAI(base_url=server.url, api_key="none")
    reply = client.chat.completions.create(
        model="self-consistency-6/m", messages=[{"role": "user", "content": "2+5?"}], max_tokens=32, temperature=0.5
    )
    extension = reply.model_extra["selfimprove"]
    assert reply.choices[0].message.content == " The answer is 7." and extension["choices"][0]["answer"] == "7"
    assert extension["choices"][0]["votes"] == {"7": 4, "5": 2} and extension["strategy"] == "self-consistency"
    assert extension["settings"]["temperature"] == 0.5 and extension["settings"]["max_tokens"] == 32  # per request
    assert extension["samples"] == 7  # the greedy baseline and 6 samples
    assert reply.usage.completion_tokens == 7 * 5
    store = RunStore(server.store.path)
    rows = store.completion_rows(extension["run_id"])
    assert len(rows) == 7 and store.solutions(extension["run_id"])[0]["answer"] == "7"
    # The next request with other settings does not see this one's.
    plain = client.chat.completions.create(model="self-consistency/m", messages=[{"role": "user", "content": "x"}])
    assert plain.model_extra["selfimprove"]["settings"]["temperature"] == 0.7


def test_plain_completions_and_n_choices(server):
    client = openai.OpenAI(base_url=server.url, api_key="none")
    reply = client.completions.create(model="m", prompt="Q: 1+1?\nA:", n=3, max_tokens=8)
    assert [c.text for c in reply.choices] == [" The answer is 5.", " The answer is 7.", " The answer is 7."]
    assert [m.id for m in client.models.list().data][0] == "m"


def test_streaming_sends_progress_then_the_answer(server):
    client = openai.OpenAI(base_url=server.url, api_key="none")
    chunks = list(client.chat.completions.create(model="self-consistency-5/m", stream=True,
                                                 messages=[{"role": "user", "content": "2+5?"}],
                                                 stream_options={"include_usage": True}))  # fmt: skip
    progress = [c.model_extra.get("selfimprove") for c in chunks if c.model_extra.get("selfimprove")]
    assert [p["samples_done"] for p in progress[:-1]] == [1, 2, 3, 4, 5, 6]  # each sample as it finished
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == " The answer is 7." and chunks[-1].usage.completion_tokens == 30
    assert progress[-1]["choices"][0]["votes"] == {"7": 3, "5": 2}


def test_text_stream_holds_back_what_may_be_a_stop_string():
    stream = TextStream(["\nQuestion:", "###"])
    told = [stream.delta(text) for text in ("The", "The answer", "The answer\n", "The answer\nQu", "The answer\nQuite")]
    assert told == ["The", " answer", "", "", "\nQuite"]  # "\n" and "\nQu" could have begun the stop string
    assert stream.delta("The answer\nQuite #", final=False) == " " and stream.delta("The answer\nQuite #", True) == "#"
    assert TextStream([]).delta("abc") == "abc"


@pytest.fixture
def streaming_server(tmp_path):
    settings = ServeSettings(port=0, served_name="m", store=str(tmp_path / "s.sqlite"), max_n=4)
    engine = StreamingEngine(pause=0.02, answer_of=lambda s: 7 if s % 3 else 5)
    running = BackgroundServer(engine, settings)
    yield running, engine
    running.stop()


def test_plain_and_greedy_text_is_streamed_as_it_is_generated(streaming_server):
    server, engine = streaming_server
    client = openai.OpenAI(base_url=server.url, api_key="none")
    whole = client.completions.create(model="m", prompt="Q: 1+1?\nA:", n=2, max_tokens=8)
    chunks = list(client.completions.create(model="m", prompt="Q: 1+1?\nA:", n=2, max_tokens=8, stream=True))
    for index in range(2):
        deltas = [c.choices[0].text for c in chunks if c.choices and c.choices[0].index == index and c.choices[0].text]
        assert len(deltas) == 4  # word by word, not the whole text at the end
        assert "".join(deltas) == whole.choices[index].text
    chat = list(client.chat.completions.create(model="cot/m", messages=[{"role": "user", "content": "2+5?"}],
                                               stream=True))  # fmt: skip
    deltas = [c.choices[0].delta.content for c in chat if c.choices and c.choices[0].delta.content]
    assert len(deltas) == 4 and "".join(deltas) == " The answer is 5."
    # A vote's text is known only when its samples are in: one piece at the end, none told on the way.
    told = len(engine.told)
    voted = list(client.chat.completions.create(model="self-consistency-3/m", stream=True,
                                                messages=[{"role": "user", "content": "2+5?"}]))  # fmt: skip
    pieces = [c.choices[0].delta.content for c in voted if c.choices and c.choices[0].delta.content]
    assert pieces == [" The answer is 7."] and len(engine.told) == told


def test_shared_engine_routes_each_callers_text():
    shared = SharedEngine(StreamingEngine())
    heard: dict[int, list[str]] = {0: [], 1: []}
    barrier = threading.Barrier(2)

    def ask(caller: int) -> None:
        barrier.wait()
        shared.generate([Prompt(f"q{caller}", problem_id=f"p{caller}")], 1, Sampling(max_tokens=8),
                        on_text=lambda index, sample, delta: heard[caller].append(delta))  # fmt: skip

    threads = [threading.Thread(target=ask, args=(c,)) for c in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shared.close()
    assert "".join(heard[0]) == " The answer is 0." and "".join(heard[1]) == " The answer is 0."
    assert shared.engine_calls <= 2


def test_bad_requests_get_openai_errors_and_the_server_keeps_serving(server):
    url = server.url
    cases = [
        (b"{not json", 400, "malformed"),
        (b'{"model": "nope/m", "messages": [{"role": "user", "content": "x"}]}', 400, "unknown strategy"),
        (b'{"model": "other", "messages": [{"role": "user", "content": "x"}]}', 404, "not served"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 9}', 400, "n = 9"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 5000}', 400, "max_tokens"),
        (b'{"model": "m", "messages": []}', 400, "messages"),
        (b'{"model": "self-consistency-99/m", "messages": [{"role": "user", "content": "x"}]}', 400, "cap"),
        (b'{"model": "cot/m", "messages": [{"role": "user", "content": "x"}], "selfimprove": {"settings": '
         b'{"bogus": 1}}}', 400, "no setting bogus"),
    ]  # fmt: skip
    for body, status, words in cases:
        response = httpx.post(f"{url}/chat/completions", content=body, headers={"content-type": "application/json"})
        assert response.status_code == status, (body, response.text)
        assert words in response.json()["error"]["message"] and response.json()["error"]["type"]
    too_big = httpx.post(f"{url}/chat/completions", content=b" " * 1_000_001)
    assert too_big.status_code == 413
    ok = httpx.post(f"{url}/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert ok.status_code == 200


def test_keys_are_checked_hashed_and_limited(tmp_path, monkeypatch):
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# team keys\nalpha\nsha256:{digest('beta')}\n")
    monkeypatch.setenv("EXTRA_KEYS", "gamma")
    digests = load_key_digests(str(keys_file), "EXTRA_KEYS")
    assert digests == [digest("alpha"), digest("beta"), digest("gamma")] and "alpha" not in digests
    ring = KeyRing(digests, max_concurrent=1, per_minute=2)
    assert ring.identify("Bearer beta") == digest("beta") and ring.identify("Bearer nope") is None
    assert ring.identify(None) is None
    key = ring.identify("Bearer alpha")
    assert ring.acquire(key) is None and "concurrency" in ring.acquire(key)
    ring.release(key)
    assert ring.acquire(key) is None and "rate limit" in (ring.release(key) or ring.acquire(key))
    settings = ServeSettings(port=0, served_name="m", store=str(tmp_path / "s.sqlite"), api_keys_file=str(keys_file))
    running = BackgroundServer(CountingEngine(), settings)
    try:
        body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
        assert httpx.post(f"{running.url}/chat/completions", json=body).status_code == 401
        wrong = httpx.post(f"{running.url}/chat/completions", json=body, headers={"authorization": "Bearer x"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
        good = httpx.post(f"{running.url}/chat/completions", json=body, headers={"authorization": "Bearer alpha"})
        assert good.status_code == 200
    finally:
        running.stop()


def test_shared_engine_merges_concurrent_calls():
    """Eight threads' calls with the same settings reach the engine in fewer calls, each caller gets its own
    completions and callbacks; different settings are not merged; an engine error reaches every caller of it."""
    slow = threading.Event()

    def reply(prompt, sample_id):
        slow.wait(0.05)
        return f"{prompt.content}:{sample_id}"

    engine = ScriptedEngine(reply)
    calls = []
    original = engine.generate

    def counting(prompts, n, sampling, on_complete=None):
        calls.append(len(prompts))
        return original(prompts, n, sampling, on_complete)

    engine.generate = counting
    shared = SharedEngine(engine)
    results, seen = {}, {}

    def client(i):
        events = []
        results[i] = shared.generate([Prompt(f"p{i}", "x")], 2, Sampling(max_tokens=4), lambda *e: events.append(e))
        seen[i] = events

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all([[c.text for c in row] for row in results[i]] == [[f"p{i}:0", f"p{i}:1"]] for i in range(8))
    assert all(sorted((e[0], e[1]) for e in seen[i]) == [(0, 0), (0, 1)] for i in range(8))
    assert sum(calls) == 8 and len(calls) < 8  # merged
    other = shared.generate(["q"], 1, Sampling(max_tokens=9))
    assert other[0][0].text == "q:0"

    def broken(prompts, n, sampling, on_complete=None):
        raise RuntimeError("engine down")

    engine.generate = broken
    with pytest.raises(RuntimeError, match="engine down"):
        shared.generate(["q"], 1, Sampling())
    engine.generate = counting
    assert shared.generate(["r"], 1, Sampling())[0][0].text == "r:0"  # the worker survived
    shared.close()
    time.sleep(0)


class LowestAnswerScorer:
    """Rewards a response by minus the number it ends with (the smallest answer wins)."""

    def describe(self):
        return {"scorer": "lowest-answer"}

    def score(self, prompt, responses):
        from selfimprove.rewards.model import RewardScore

        return [RewardScore(-float(r.rstrip(".").split()[-1])) for r in responses]


def test_best_of_n_route_ranks_by_the_servers_reward_model_only(tmp_path):
    settings = ServeSettings(port=0, served_name="m", store=str(tmp_path / "s.sqlite"))
    engine = CountingEngine(answer_of=lambda s: 7 if s % 3 else 5)  # votes say 7, the reward says 5
    with_rm = BackgroundServer(engine, settings, scorer=LowestAnswerScorer())
    try:
        client = openai.OpenAI(base_url=with_rm.url, api_key="none")
        reply = client.chat.completions.create(model="best-of-n-6/m", messages=[{"role": "user", "content": "?"}])
        choice = reply.model_extra["selfimprove"]["choices"][0]
        assert reply.choices[0].message.content == " The answer is 5." and choice["answer"] == "5"
        assert choice["votes"] == {"7": 4, "5": 2} and choice["rewards"] == [-5.0, -7.0, -7.0, -5.0, -7.0, -7.0]
        raw = httpx.post(f"{with_rm.url}/chat/completions", json={
            "model": "best-of-n-4/m", "messages": [{"role": "user", "content": "?"}],
            "selfimprove": {"settings": {"reward_model": "/etc"}}})  # fmt: skip
        assert raw.status_code == 400 and "server's to choose" in raw.json()["error"]["message"]
    finally:
        with_rm.stop()
    plain_settings = ServeSettings(port=0, served_name="m", store=str(tmp_path / "t.sqlite"))
    without = BackgroundServer(CountingEngine(), plain_settings)
    try:
        raw = httpx.post(f"{without.url}/chat/completions",
                         json={"model": "best-of-n-4/m", "messages": [{"role": "user", "content": "?"}]})  # fmt: skip
        assert raw.status_code == 400 and "--reward-model" in raw.json()["error"]["message"]
    finally:
        without.stop()
