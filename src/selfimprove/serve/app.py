"""The HTTP side of `selfimprove serve` (FastAPI): OpenAI's `/v1/chat/completions`, `/v1/completions` and
`/v1/models`, real server-sent-event streaming, keys and limits, OpenAI-style errors, and every request with all
of its samples recorded in the run store as a run of its own.

Each request runs in a worker thread (`answering.answer`); an in-process engine is shared through
`SharedEngine`, which merges concurrent requests' engine calls. While the request runs, the stream sends a
progress chunk per finished sample (`selfimprove.samples_done`, `selfimprove.leader`), then each choice's text,
then `[DONE]`. A client that goes away, or a request past `request_timeout`, is cancelled: no further engine call
is made for it (the call in progress finishes and is recorded).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from selfimprove.core.errors import EngineError, SelfImproveError
from selfimprove.engines.base import Engine
from selfimprove.runs.store import RunStore
from selfimprove.serve.answering import (
    Answered,
    Cancelled,
    Kept,
    RequestEngine,
    TextDelta,
    answer,
    leader,
    streams_choices,
)
from selfimprove.serve.keys import KeyRing
from selfimprove.serve.routing import PLAIN, RequestError, RequestTask, build_route, known_strategies
from selfimprove.serve.settings import ServeSettings


class Recorder:
    """Writes a finished request (its completions and its solutions) to the store, one request at a time."""

    def __init__(self, store: RunStore | None):
        self.store, self._lock = store, threading.Lock()

    def record(self, answered: Answered, endpoint: str, engine: dict[str, Any]) -> str | None:
        if self.store is None:
            return None
        run_id = f"serve-{answered.request_id}"
        label = f"serve · {answered.route.strategy_name} · {engine.get('model', engine.get('engine'))}"
        config = {"endpoint": endpoint, "strategy": answered.extension.get("settings", {"strategy": PLAIN}),
                  "engine": engine, "request": answered.request_id}  # fmt: skip
        with self._lock:
            session = self.store.open_run(run_id, label, config)
            for kept in sorted(answered.kept, key=lambda k: (k.problem_id, k.step, k.sample)):
                self.store.add_completion(run_id, kept.problem_id, kept.step, kept.sample, kept.completion, session)
            solved = [(i, None, c.solution) for i, c in enumerate(answered.choices) if c.solution is not None]
            if solved:
                self.store.add_solutions(run_id, solved)
        return run_id


def error_body(message: str, kind: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


_KINDS = {400: "invalid_request_error", 401: "authentication_error", 404: "invalid_request_error",
          413: "invalid_request_error", 429: "rate_limit_error", 502: "api_error", 504: "timeout_error",
          500: "api_error"}  # fmt: skip


def create_app(
    engine: Engine,
    settings: ServeSettings,
    store: RunStore | None = None,
    keys: KeyRing | None = None,
    scorer: Any = None,
):
    """The FastAPI app serving `engine` (wrap an in-process engine in `SharedEngine` first); `scorer` ranks
    best-of-n's samples (default: `settings.reward_model` loaded here, or none)."""

    app = FastAPI(title="selfimprove serve")
    keys = keys or KeyRing([], settings.max_concurrent_per_key, settings.requests_per_minute)
    recorder = Recorder(store)
    if scorer is None and settings.reward_model:
        from selfimprove.rewards.model import load_reward

        scorer = load_reward(settings.reward_model)
        scorer.score("", ["warm-up"])  # load the weights now, not inside the first requests' threads
    # Requests wait on the engine in these threads (asyncio's default pool has cpu + 4: it would cap merging).
    workers = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="request")
    described = engine.describe()
    served = settings.served_name or str(described.get("model") or described.get("engine"))

    def failure(exc: RequestError) -> JSONResponse:
        return JSONResponse(error_body(str(exc), _KINDS.get(exc.status, "api_error"), exc.param, exc.code),
                            status_code=exc.status)  # fmt: skip

    @app.get("/v1/models")
    async def models(request: Request) -> Any:
        if keys.identify(request.headers.get("authorization")) is None:
            return failure(RequestError("invalid or missing API key", 401, None, "invalid_api_key"))
        now = int(time.time())
        names = [served] + [f"{s}/{served}" for s in known_strategies()]
        return {"object": "list", "data": [{"id": n, "object": "model", "created": now, "owned_by": "selfimprove"}
                                           for n in names]}  # fmt: skip

    async def handle(request: Request, endpoint: str) -> Any:
        key = keys.identify(request.headers.get("authorization"))
        if key is None:
            return failure(RequestError("invalid or missing API key", 401, None, "invalid_api_key"))
        raw = await request.body()
        if len(raw) > settings.max_body_bytes:
            return failure(RequestError(f"request body of {len(raw)} bytes is over {settings.max_body_bytes}", 413))
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            content, n, stop = parse_request(body, endpoint, settings)
            route = build_route(body, served, settings.max_samples, scorer)
        except ValueError as exc:
            return failure(RequestError(f"malformed request: {exc}", 400))
        except RequestError as exc:
            return failure(exc)
        refusal = keys.acquire(key)
        if refusal is not None:
            return failure(RequestError(refusal, 429, None, "rate_limit_exceeded"))
        events: asyncio.Queue[Any] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        task = RequestTask(content, stop, route.answers)
        request_engine = RequestEngine(engine)
        request_engine.on_event = lambda kept: loop.call_soon_threadsafe(events.put_nowait, kept)
        if body.get("stream") and streams_choices(route):
            request_engine.on_choice_text = lambda choice, text: loop.call_soon_threadsafe(
                events.put_nowait, TextDelta(choice, text)
            )

        def work() -> Answered:
            try:
                answered = answer(content, route, n, body, stop, request_engine)
                answered.extension["run_id"] = recorder.record(answered, endpoint, described)
                return answered
            finally:
                keys.release(key)

        job = loop.run_in_executor(workers, work)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            stream = sse_stream(job, events, request, request_engine, task, endpoint, served, body, include_usage,
                                settings.request_timeout)  # fmt: skip
            return StreamingResponse(stream, media_type="text/event-stream")
        try:
            answered = await wait_for_job(job, request, request_engine, settings.request_timeout)
        except RequestError as exc:
            return failure(exc)
        return response_body(answered, endpoint, body.get("model") or served)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        return await handle(request, "chat")

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        return await handle(request, "completions")

    return app


def parse_request(body: dict[str, Any], endpoint: str, settings: ServeSettings) -> tuple[Any, int, tuple[str, ...]]:
    """(prompt content, n, stop strings) of a request body, or a RequestError naming the bad parameter."""
    if endpoint == "chat":
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RequestError("messages must be a non-empty list", 400, "messages")
        content = []
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise RequestError(f"messages[{i}] needs a role", 400, f"messages[{i}].role")
            text = message.get("content")
            if isinstance(text, list):  # content parts: their text, in order
                text = "".join(part.get("text", "") for part in text if isinstance(part, dict))
            if text is not None and not isinstance(text, str):
                raise RequestError(f"messages[{i}].content must be text", 400, f"messages[{i}].content")
            content.append({**message, "content": text or ""})  # roles, names, tool calls kept as they came
    else:
        content = body.get("prompt")
        if isinstance(content, list) and len(content) == 1 and isinstance(content[0], str):
            content = content[0]
        if not isinstance(content, str) or not content:
            raise RequestError("prompt must be a non-empty string", 400, "prompt")
    n = body.get("n", 1)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= settings.max_n:
        raise RequestError(f"n = {n!r}: must be an integer from 1 to {settings.max_n}", 400, "n")
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    if max_tokens is not None and (not isinstance(max_tokens, int) or not 1 <= max_tokens <= settings.max_tokens_cap):
        raise RequestError(f"max_tokens = {max_tokens!r}: must be from 1 to {settings.max_tokens_cap}", 400,
                           "max_tokens")  # fmt: skip
    stop = body.get("stop") or ()
    stop = (stop,) if isinstance(stop, str) else tuple(stop)
    if not all(isinstance(s, str) for s in stop):
        raise RequestError("stop must be a string or a list of strings", 400, "stop")
    return content, n, stop


async def wait_for_job(job: asyncio.Future, request: Any, engine: RequestEngine, timeout: float) -> Answered:
    """The request's answer; cancelled when the client disconnects or the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        done, _ = await asyncio.wait({job}, timeout=0.25)
        if done:
            break
        if await request.is_disconnected():
            engine.cancelled.set()
            raise RequestError("client disconnected", 499)
        if time.monotonic() > deadline:
            engine.cancelled.set()
            raise RequestError(f"request took longer than {timeout:g} s", 504, None, "timeout")
    try:
        return job.result()
    except RequestError:
        raise
    except Cancelled as exc:
        raise RequestError(str(exc), 499) from exc
    except EngineError as exc:
        if "n_ctx" in str(exc) or "context" in str(exc):
            raise RequestError(f"the prompt does not fit: {exc}", 400, "messages", "context_length_exceeded") from exc
        raise RequestError(f"engine failed: {exc}", 502) from exc
    except SelfImproveError as exc:
        raise RequestError(str(exc), 400) from exc


def _usage(answered: Answered) -> dict[str, int]:
    prompt, completion = answered.prompt_tokens, answered.completion_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def response_body(answered: Answered, endpoint: str, model: str) -> dict[str, Any]:
    created = int(time.time())
    if endpoint == "chat":
        choices = [{"index": i, "message": {"role": "assistant", "content": c.text}, "finish_reason": _reason(c),
                    "logprobs": None} for i, c in enumerate(answered.choices)]  # fmt: skip
        kind, prefix = "chat.completion", "chatcmpl-"
    else:
        choices = [{"index": i, "text": c.text, "finish_reason": _reason(c), "logprobs": None}
                   for i, c in enumerate(answered.choices)]  # fmt: skip
        kind, prefix = "text_completion", "cmpl-"
    return {"id": prefix + answered.request_id, "object": kind, "created": created, "model": model,
            "choices": choices, "usage": _usage(answered), "selfimprove": _extension(answered)}  # fmt: skip


def _reason(choice: Any) -> str:
    return "length" if choice.finish_reason == "length" else "stop"


def _extension(answered: Answered) -> dict[str, Any]:
    return {**answered.extension, "strategy": answered.route.strategy_name, "samples": len(answered.kept)}


def _error_event(exc: RequestError) -> bytes:
    """An error after the stream began: a data event with OpenAI's error body (the client raises on it)."""
    body = error_body(str(exc), _KINDS.get(exc.status, "api_error"), exc.param, exc.code)
    return f"data: {json.dumps(body)}\n\n".encode()


async def sse_stream(job, events, request, engine, task, endpoint, served, body, include_usage, timeout
                     ) -> AsyncIterator[bytes]:  # fmt: skip
    """OpenAI's chunk format: a role chunk, a progress chunk per finished sample, each choice's text (as it is
    generated where the engine and the route allow it, else whole at the end), the finish reasons, optionally the
    usage, then [DONE]. Errors after the first chunk arrive as an `error` event."""
    model = body.get("model") or served
    chat = endpoint == "chat"
    ident = ("chatcmpl-" if chat else "cmpl-") + f"{id(job):x}"
    created = int(time.time())
    kind = "chat.completion.chunk" if chat else "text_completion"
    n = body.get("n", 1)

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        payload = {"id": ident, "object": kind, "created": created, "model": model, "choices": choices, **extra}
        return f"data: {json.dumps(payload)}\n\n".encode()

    def piece(index: int, text: str | None = None, role: bool = False, finish: str | None = None) -> dict:
        if chat:
            delta = {"role": "assistant"} if role else ({"content": text} if text is not None else {})
            return {"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}
        return {"index": index, "text": text or "", "finish_reason": finish, "logprobs": None}

    yield chunk([piece(i, role=True, text="" if not chat else None) for i in range(n)])
    kept: list[Kept] = []
    streamed: dict[int, str] = {}  # each choice's text told so far, token by token
    deadline = time.monotonic() + timeout
    try:
        while not job.done() or not events.empty():
            try:
                event = await asyncio.wait_for(events.get(), timeout=0.25)
            except TimeoutError:
                if await request.is_disconnected():
                    engine.cancelled.set()
                    return
                if time.monotonic() > deadline:
                    engine.cancelled.set()
                    yield _error_event(RequestError(f"request took longer than {timeout:g} s", 504))
                    return
                continue
            if isinstance(event, TextDelta):
                streamed[event.choice] = streamed.get(event.choice, "") + event.text
                yield chunk([piece(event.choice, text=event.text)])
                continue
            kept.append(event)
            progress = {"samples_done": len(kept), "leader": leader(kept, task), "step": event.step}
            yield chunk([piece(0, text="" if not chat else None)], selfimprove=progress)
        try:
            answered = await wait_for_job(job, request, engine, timeout)
        except RequestError as exc:
            yield _error_event(exc)
            return
        for i, choice in enumerate(answered.choices):
            told = streamed.get(i, "")
            rest = choice.text[len(told) :] if choice.text.startswith(told) else choice.text
            if rest or not told:
                yield chunk([piece(i, text=rest)])
        yield chunk([piece(i, finish=_reason(c)) for i, c in enumerate(answered.choices)],
                    selfimprove=_extension(answered))  # fmt: skip
        if include_usage:
            yield chunk([], usage=_usage(answered))
        yield b"data: [DONE]\n\n"
    except asyncio.CancelledError:
        engine.cancelled.set()
        raise
