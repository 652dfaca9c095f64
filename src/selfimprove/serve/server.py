"""Starting the server: `serve(engine, settings)` blocks (what `selfimprove serve` runs); `BackgroundServer`
runs it in a thread of this process on loopback (tests, notebooks)."""

from __future__ import annotations

import threading
import time
from typing import Any

from selfimprove.core.config import default_store_path
from selfimprove.engines.base import Engine
from selfimprove.runs.store import RunStore
from selfimprove.serve.app import create_app
from selfimprove.serve.batching import SharedEngine
from selfimprove.serve.keys import KeyRing, load_key_digests
from selfimprove.serve.settings import ServeSettings

IN_PROCESS = ("llama-cpp", "hf")


def prepare(engine: Engine, settings: ServeSettings, scorer: Any = None) -> tuple[Any, Engine, RunStore]:
    """(app, the engine as served, the store): an in-process engine is wrapped so requests share it. `scorer`:
    best-of-n's reward scorer (default: `settings.reward_model`)."""
    shared = SharedEngine(engine, merge=settings.merge_requests) if engine.name in IN_PROCESS else engine
    keys = KeyRing(load_key_digests(settings.api_keys_file, settings.api_keys_env), settings.max_concurrent_per_key,
                   settings.requests_per_minute)  # fmt: skip
    store = RunStore(settings.store or default_store_path(), shared=True)
    return create_app(shared, settings, store, keys, scorer), shared, store


def serve(engine: Engine, settings: ServeSettings | None = None) -> None:
    """Serves until interrupted; closes the engine and the store after."""
    import uvicorn

    settings = settings or ServeSettings()
    app, shared, store = prepare(engine, settings)
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    finally:
        shared.close()
        store.close()


class BackgroundServer:
    """The server in a thread of this process: `url` once started; `stop()` shuts it down (the engine stays
    open: it is the caller's)."""

    def __init__(self, engine: Engine, settings: ServeSettings, scorer: Any = None):
        import uvicorn

        self.app, self.engine, self.store = prepare(engine, settings, scorer)
        config = uvicorn.Config(self.app, host=settings.host, port=settings.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://{settings.host}:{port}/v1"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self.store.close()
