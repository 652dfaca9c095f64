"""API keys and per-key limits. Keys are held as SHA-256 digests and compared in constant time; each key has a
concurrency limit and a sliding one-minute request window."""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections import deque
from pathlib import Path

from selfimprove.core.errors import ConfigError


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def load_key_digests(path: str = "", env: str = "") -> list[str]:
    """Digests of the keys in `path` (one per line, `#` comments) and in the environment variable `env`."""
    entries: list[tuple[str, str]] = []
    if path:
        file = Path(path).expanduser()
        if not file.is_file():
            raise ConfigError(f"--api-keys-file {file}: no such file")
        for number, line in enumerate(file.read_text().splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if line:
                entries.append((line, f"{file}:{number}"))
    if env and os.environ.get(env):
        entries += [(part.strip(), f"${env}") for part in os.environ[env].split(",") if part.strip()]
    digests = []
    for entry, where in entries:
        if entry.startswith("sha256:"):
            value = entry.removeprefix("sha256:").lower()
            if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
                raise ConfigError(f"{where}: a sha256: entry needs 64 hex digits")
            digests.append(value)
        else:
            digests.append(digest(entry))
    return digests


class KeyRing:
    """Who may call, and how much. With no keys configured every caller is let in, as one anonymous key."""

    def __init__(self, digests: list[str], max_concurrent: int, per_minute: int):
        self.digests, self.max_concurrent, self.per_minute = list(digests), max_concurrent, per_minute
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}
        self._started: dict[str, deque[float]] = {}

    @property
    def open(self) -> bool:
        return not self.digests

    def identify(self, authorization: str | None) -> str | None:
        """The caller's key digest from an `Authorization: Bearer KEY` header, "anonymous" when no keys are
        configured, None when the key is missing or wrong."""
        if self.open:
            return "anonymous"
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        presented = digest(authorization[7:].strip())
        matched = None
        for known in self.digests:  # every digest compared: the time taken does not say which matched
            if hmac.compare_digest(presented, known):
                matched = known
        return matched

    def acquire(self, key: str) -> str | None:
        """Admits one request of `key`, or says why not (the message of a 429)."""
        now = time.monotonic()
        with self._lock:
            started = self._started.setdefault(key, deque())
            while started and now - started[0] > 60:
                started.popleft()
            if len(started) >= self.per_minute:
                return f"rate limit: more than {self.per_minute} requests in a minute for this key"
            if self._in_flight.get(key, 0) >= self.max_concurrent:
                return f"concurrency limit: {self.max_concurrent} requests already in flight for this key"
            started.append(now)
            self._in_flight[key] = self._in_flight.get(key, 0) + 1
            return None

    def release(self, key: str) -> None:
        with self._lock:
            self._in_flight[key] = max(0, self._in_flight.get(key, 0) - 1)
