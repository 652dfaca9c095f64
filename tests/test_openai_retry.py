"""Retry with backoff on 429/5xx, checked against a scripted HTTP server on loopback.

The server is a test double for failure modes only; real generation through a real server is
tested in tests/slow/test_openai_engine.py."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from selfimprove.core.errors import EngineError
from selfimprove.core.types import Sampling
from selfimprove.engines.openai_compat import OpenAICompatEngine


def serve(statuses):
    """A server answering /v1/completions with the given statuses in turn, then 200s."""
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            hits.append(body)
            status = statuses[len(hits) - 1] if len(hits) <= len(statuses) else 200
            payload = (
                {"error": {"message": "busy"}}
                if status != 200
                else {
                    "id": "x",
                    "object": "text_completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [
                        {"index": i, "text": f" The answer is {i}.", "finish_reason": "stop", "logprobs": None}
                        for i in range(body.get("n", 1))
                    ],
                    "usage": {"prompt_tokens": 7, "completion_tokens": 4 * body.get("n", 1), "total_tokens": 0},
                }
            )
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, hits


@pytest.fixture
def make_server():
    servers = []

    def make(statuses):
        server, hits = serve(statuses)
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1", hits

    yield make
    for server in servers:
        server.shutdown()


def test_retries_429_and_5xx_then_succeeds(make_server):
    url, hits = make_server([429, 503])
    engine = OpenAICompatEngine(base_url=url, model="m", max_retries=3)
    out = engine.generate(["q"], 4, Sampling(max_tokens=8))
    assert len(hits) == 3  # two refusals, then one request with n=4
    assert hits[-1]["n"] == 4 and engine.supports_n is True
    assert [c.text for c in out[0]] == [f" The answer is {i}." for i in range(4)]
    assert out[0][0].completion_tokens == 4 and out[0][0].prompt_tokens == 7


def test_gives_up_with_a_clear_error(make_server):
    url, hits = make_server([500] * 10)
    engine = OpenAICompatEngine(base_url=url, model="m", max_retries=2)
    with pytest.raises(EngineError, match="answered 500"):
        engine.generate(["q"], 1, Sampling(max_tokens=8))
    assert len(hits) == 3
