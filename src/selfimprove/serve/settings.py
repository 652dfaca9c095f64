"""What a server is allowed to do: limits, keys and where it records. One dataclass, documented per field,
from which the CLI's `serve` options are made."""

from __future__ import annotations

from dataclasses import dataclass

from selfimprove.core.validation import require_range


@dataclass
class ServeSettings:
    host: str = "127.0.0.1"
    """Address to listen on (127.0.0.1: this machine only)."""
    port: int = 8000
    """TCP port."""
    served_name: str = ""
    """The model name clients use after the strategy prefix (default: the engine's model file or name)."""
    api_keys_file: str = ""
    """A file of API keys, one per line: the key itself or `sha256:<hex digest>` (keys are kept only hashed)."""
    api_keys_env: str = "SELFIMPROVE_API_KEYS"
    """An environment variable holding comma-separated keys (or sha256: digests); with neither, no key is asked."""
    max_concurrent_per_key: int = 8
    """Requests one key may have in flight; more get 429."""
    requests_per_minute: int = 600
    """Requests one key may start per minute (a sliding window); more get 429."""
    max_n: int = 8
    """The most choices (`n`) one request may ask for."""
    max_samples: int = 32
    """The most samples a strategy may draw per choice (a route's `-K`, or its settings)."""
    max_body_bytes: int = 1_000_000
    """Largest request body accepted (413 above)."""
    max_tokens_cap: int = 1024
    """The most tokens one completion may generate (`max_tokens` above it gets 400)."""
    request_timeout: float = 600.0
    """Seconds a request may take before the client gets 504 (its samples still finish and are recorded)."""
    workers: int = 64
    """Requests answered at once (each holds a thread while its engine calls wait); more queue."""
    merge_requests: bool = True
    """Merge concurrent requests' calls to an in-process engine into shared engine calls (False: one request's
    call at a time, as behind a lock)."""
    store: str = ""
    """The run store every request and its samples are recorded in (default: the house store)."""
    reward_model: str = ""
    """A reward model or ensemble folder (`selfimprove reward train`), loaded once: enables `best-of-n-K/MODEL`.
    Clients may pick the ensemble's aggregator, never the folder."""

    def __post_init__(self) -> None:
        require_range("port", self.port, 0, 65535)
        for name in ("workers", "max_concurrent_per_key", "requests_per_minute", "max_n", "max_samples",
                     "max_body_bytes", "max_tokens_cap"):  # fmt: skip
            require_range(name, getattr(self, name), 1)
        require_range("request_timeout", self.request_timeout, 0, low_excluded=True)
