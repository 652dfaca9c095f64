"""Engine `openai`: any OpenAI-compatible server (vLLM, llama-server, llama-cpp-python, Ollama, ...).

Text prompts go to `/completions`, chat messages to `/chat/completions`. A full set of n samples
is asked for with `n=` first; a server that returns fewer choices (llama-cpp-python's ignores
`n`) is remembered, and from then on each sample is its own request, seeded by its sample id,
run with bounded concurrency. The `openai` client retries 429/5xx and connection errors with
exponential backoff; what still fails becomes an EngineError that names the server.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from selfimprove.core.errors import ConfigError, EngineError
from selfimprove.core.types import Completion, Prompt, PromptContent, Sampling, normalize_prompts, sample_seed
from selfimprove.engines.base import OnComplete, registry


@registry.register("openai")
class OpenAICompatEngine:
    """Args:
    base_url: server URL ending in /v1 (default: $OPENAI_BASE_URL).
    model: model name on the server (default: the first one `/models` lists).
    api_key_env: environment variable holding the key (unset -> a placeholder, fine for local servers).
    max_concurrency: most requests in flight.
    timeout: seconds per request.
    max_retries: retries on 429/5xx/connection errors, with exponential backoff.
    """

    name = "openai"

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key_env: str | None = None,
        max_concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 4,
    ):
        import openai

        self._openai = openai
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not self.base_url:
            raise ConfigError("engine 'openai' needs --base-url (e.g. http://127.0.0.1:8000/v1) or $OPENAI_BASE_URL")
        key_var = api_key_env or "OPENAI_API_KEY"
        api_key = os.environ.get(key_var)
        if api_key is None and api_key_env:
            raise ConfigError(f"environment variable {api_key_env} (--api-key-env) is not set")
        self.client = openai.OpenAI(
            base_url=self.base_url, api_key=api_key or "no-key", timeout=timeout, max_retries=max_retries
        )
        self.max_concurrency = max(1, int(max_concurrency))
        self.supports_n: bool | None = None
        self._lock = threading.Lock()
        self.model = model or self._first_model()

    def _first_model(self) -> str:
        try:
            models = self.client.models.list()
        except self._openai.APIConnectionError as exc:
            raise EngineError(f"OpenAI-compatible server unreachable at {self.base_url}: {exc}") from exc
        except self._openai.APIError as exc:
            raise EngineError(f"{self.base_url}/models failed: {exc}; pass --model NAME") from exc
        names = [m.id for m in models.data]
        if not names:
            raise EngineError(f"{self.base_url} lists no models; pass --model NAME")
        return names[0]

    def describe(self) -> dict:
        return {"engine": self.name, "base_url": self.base_url, "model": self.model}

    def close(self) -> None:
        self.client.close()

    def generate(
        self,
        prompts: Sequence[Prompt | PromptContent],
        n: int,
        sampling: Sampling,
        on_complete: OnComplete | None = None,
    ) -> list[list[Completion]]:
        prompts = normalize_prompts(prompts)
        results: list[dict[int, Completion]] = [{} for _ in prompts]

        def deliver(index: int, sample_id: int, completion: Completion) -> None:
            results[index][sample_id] = completion
            if on_complete is not None:
                on_complete(index, sample_id, completion)

        # Full sets first try `n=`; what the server did not return becomes single-sample requests.
        singles: list[tuple[int, int]] = []
        full_sets = self.supports_n is not False and n > 1
        batched = [i for i, p in enumerate(prompts) if full_sets and p.ids(n) == tuple(range(n))]
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            # Seeded as sample 0 would be alone, so that a server ignoring `n` gives the same sample 0 either way.
            futures = {
                pool.submit(self._request, prompts[i], n, sampling, sample_seed(sampling.seed, prompts[i], 0)): i
                for i in batched
            }
            for future in as_completed(futures):
                index = futures[future]
                choices = future.result()
                with self._lock:
                    if self.supports_n is None:
                        self.supports_n = len(choices) >= n
                for sample_id, completion in zip(range(n), choices):
                    deliver(index, sample_id, completion)
            for index, prompt in enumerate(prompts):
                singles.extend((index, s) for s in prompt.ids(n) if s not in results[index])
            futures = {
                pool.submit(self._request, prompts[i], 1, sampling, sample_seed(sampling.seed, prompts[i], s)): (i, s)
                for i, s in singles
            }
            for future in as_completed(futures):
                index, sample_id = futures[future]
                deliver(index, sample_id, future.result()[0])
        return [[res[s] for s in p.ids(n)] for p, res in zip(prompts, results)]

    def _request(self, prompt: Prompt, n: int, sampling: Sampling, seed: int) -> list[Completion]:
        args: dict[str, Any] = {
            "model": self.model,
            "n": n,
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "seed": seed,
        }
        if sampling.stop:
            args["stop"] = list(sampling.stop)[:4]  # the OpenAI API takes at most 4 stop strings
        if sampling.top_k > 0:
            args["extra_body"] = {"top_k": sampling.top_k}
        args.update(penalty_arguments(sampling))
        chat = not isinstance(prompt.content, str)
        if sampling.wants_logprobs:
            args.update(logprob_arguments(sampling, chat))
        started = time.perf_counter()
        try:
            if not chat:
                response = self.client.completions.create(prompt=prompt.content, **args)
                texts = [(c.text, c.finish_reason, completion_logprobs(c.logprobs)) for c in response.choices]
            else:
                response = self.client.chat.completions.create(messages=prompt.content, **args)
                texts = [
                    (c.message.content or "", c.finish_reason, chat_logprobs(c.logprobs)) for c in response.choices
                ]
        except self._openai.APIConnectionError as exc:
            raise EngineError(f"OpenAI-compatible server unreachable at {self.base_url}: {exc}") from exc
        except self._openai.APIStatusError as exc:
            raise EngineError(f"{self.base_url} answered {exc.status_code}: {exc.message}") from exc
        except self._openai.APIError as exc:
            raise EngineError(f"request to {self.base_url} failed: {exc}") from exc
        elapsed = time.perf_counter() - started
        usage = response.usage
        count = max(1, len(texts))
        prompt_tokens = usage.prompt_tokens if usage else 0
        # With n > 1 the server reports one total; each sample gets an even share of it.
        completion_tokens = round(usage.completion_tokens / count) if usage else 0
        if sampling.wants_logprobs and any(lp is None for _, _, lp in texts):
            raise EngineError(f"{self.base_url} returned no logprobs (model {self.model}); the strategy needs them")
        return [
            Completion(
                text=text,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                finish_reason=reason or "stop",
                seconds=elapsed / count,
                logprobs=lp[0] if lp is not None else None,
                top_logprobs=lp[1] if lp is not None and sampling.top_logprobs else None,
            )
            for text, reason, lp in texts
        ]


TokenLogprobs = tuple[list[float], list[list[tuple[str, float]]]]


def penalty_arguments(sampling: Sampling) -> dict[str, Any]:
    """The OpenAI API's frequency and presence penalties; what it has no field for is refused by name."""
    if sampling.stop_below_confidence:
        raise ConfigError("engine 'openai' cannot end a trace on low confidence (stop_below_confidence): use offline")
    if sampling.repeat_penalty != 1.0:
        raise ConfigError(
            "engine 'openai' does not take repeat_penalty (the OpenAI API has frequency_penalty and presence_penalty)"
        )
    if sampling.penalized and sampling.penalty_window:
        raise ConfigError("engine 'openai' does not take penalty_window (the server counts all generated tokens)")
    args: dict[str, Any] = {}
    if sampling.frequency_penalty:
        args["frequency_penalty"] = sampling.frequency_penalty
    if sampling.presence_penalty:
        args["presence_penalty"] = sampling.presence_penalty
    return args


def logprob_arguments(sampling: Sampling, chat: bool) -> dict[str, Any]:
    """/completions takes `logprobs=k` (OpenAI's allows k <= 5, vLLM's more; a server's refusal names its limit);
    /chat/completions `logprobs=true, top_logprobs=k`."""
    if chat:
        return {"logprobs": True, **({"top_logprobs": sampling.top_logprobs} if sampling.top_logprobs else {})}
    return {"logprobs": max(sampling.top_logprobs, 1)}


def completion_logprobs(logprobs: Any) -> TokenLogprobs | None:
    """A /completions choice's `logprobs` (token_logprobs, top_logprobs as dicts) as ours."""
    if logprobs is None or getattr(logprobs, "token_logprobs", None) is None:
        return None
    values = [float(v) for v in logprobs.token_logprobs if v is not None]
    alternatives = logprobs.top_logprobs or []
    top = [sorted(((t, float(v)) for t, v in (a or {}).items()), key=lambda item: -item[1]) for a in alternatives]
    return values, top


def chat_logprobs(logprobs: Any) -> TokenLogprobs | None:
    """A /chat/completions choice's `logprobs.content` (one entry per token) as ours."""
    content = getattr(logprobs, "content", None) if logprobs is not None else None
    if content is None:
        return None
    values = [float(entry.logprob) for entry in content]
    top = [[(alt.token, float(alt.logprob)) for alt in (entry.top_logprobs or [])] for entry in content]
    return values, top
