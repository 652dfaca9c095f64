"""Engine `llama-cpp`: a GGUF model run in-process through llama-cpp-python's low-level API.

Why the low-level API: `Llama.create_completion` has no `n`. Here every prompt is decoded once
into a unified KV cache with its tokens tagged by all of its samples' sequence ids, so the n
samples share the prompt's cache; then all live sequences (of one or several prompts) advance
together, one token each per `llama_decode` call, each with its own sampler chain and seed.
Slots freed by finished sequences are refilled with the next prompt's samples (continuous batching).

Prefix cache: the KV of each decoded prompt is kept across prompts and calls under a sequence id of
its own (a cache slot), within a token budget, least recently used evicted first. A new prompt
starts from the cached prompt it shares the longest prefix with (`llama_memory_seq_cp`: in the
unified cache the cells are shared, not copied) and decodes only the rest, so a few-shot prefix is
evaluated once per run, a problem's greedy baseline and its samples share one evaluation, and a
growing prompt (self-correct's second turn, tree-of-thoughts' children) reuses its parent's.
`Completion.prompt_evaluated` says how many prompt tokens a call actually decoded.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from selfimprove.core.confidence import RunningGroupConfidence
from selfimprove.core.errors import EngineError
from selfimprove.core.types import Completion, Prompt, PromptContent, Sampling, normalize_prompts, sample_seed
from selfimprove.engines.base import OnComplete, OnText, TextStream, first_stop, plain_transcript, registry
from selfimprove.engines.embedded import resolve_model_path

log = logging.getLogger(__name__)


_log_callback = None  # kept alive for as long as llama.cpp may call it
_show_native_log = False


def _import_llama_cpp():
    try:
        import llama_cpp
        from llama_cpp import _internals
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EngineError(
            "engine 'llama-cpp' needs llama-cpp-python: run `make install` (or pip install 'selfimprove[llama]')"
        ) from exc
    return llama_cpp, _internals


def _route_native_log(llama_cpp, verbose: bool) -> None:
    """Send llama.cpp's own log lines to stderr only when verbose (its default handler lets warnings through)."""
    global _log_callback, _show_native_log
    _show_native_log = verbose
    if _log_callback is None:

        @llama_cpp.llama_log_callback
        def callback(level: int, text: bytes, user_data) -> None:
            if _show_native_log:
                sys.stderr.write(text.decode("utf-8", errors="replace"))

        _log_callback = callback
        llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))


@dataclass
class _Sequence:
    """One sample being generated: its slot (sequence id), sampler, and what it has produced."""

    prompt_index: int
    sample_id: int
    seq_id: int
    sampler: object
    prompt_tokens: int
    position: int
    pieces: bytearray = field(default_factory=bytearray)
    n_generated: int = 0
    seconds: float = 0.0
    last_token: int = -1
    text: str = ""
    finish_reason: str | None = None
    group: _Group | None = None  # the group it was admitted with: holds the KV reservation
    logprobs: list[float] = field(default_factory=list)  # per generated token, where asked
    top_logprobs: list[list[tuple[str, float]]] = field(default_factory=list)
    watch: RunningGroupConfidence | None = None  # ends it on low confidence, where asked
    stream: TextStream | None = None  # its text told out as it grows, where asked


@dataclass
class _Group:
    """Samples of one prompt admitted together: they share one decode of the prompt."""

    prompt_index: int
    tokens: list[int]
    sample_ids: tuple[int, ...]
    kv_cost: int = 0  # KV cells reserved while admitted: the prompt's new tokens plus max_tokens per sample
    live: int = 0  # its sequences still generating
    source: _CachedPrefix | None = None  # the cached prompt it started from (pinned while it runs)
    common: int = 0  # prompt tokens taken from `source` instead of decoded
    looked_up: int = -1  # the cache's version when source and common were found
    evaluated: int = 0  # prompt tokens decoded for it
    on_text: OnText | None = None  # told each sample's new text as it is generated


@dataclass
class _CachedPrefix:
    """A decoded prompt kept in the KV cache under a sequence id of its own."""

    tokens: tuple[int, ...]
    seq_id: int
    last_used: int
    pins: int = 0  # groups running from it: never evicted while pinned


@registry.register("llama-cpp")
class LlamaCppEngine:
    """A GGUF model (default: the embedded Gemma 3 270M) sampled with shared-prefix parallel sequences.

    Args:
        model: path to a .gguf file; None for the embedded model.
        n_ctx: KV cache size in tokens, shared by all live sequences (a shared prompt counts once).
        max_parallel: most sequences decoded together (llama.cpp `n_seq_max`).
        n_batch: most prompt tokens per `llama_decode` call while prefilling.
        n_threads: CPU threads (default: all cores).
        verbose: let llama.cpp's own log lines through to stderr.
        prefix_cache: most prompt tokens kept in the KV cache for reuse across prompts and calls (0: off).
            Counted conservatively (shared cells once per cached prompt), and taken back when a batch needs room.
        cache_slots: most cached prompts.
    """

    name = "llama-cpp"
    streams_text = True  # generate takes on_text: each sample's text as it is produced

    def __init__(
        self,
        model: str | None = None,
        n_ctx: int = 8192,
        max_parallel: int = 32,
        n_batch: int = 512,
        n_threads: int | None = None,
        verbose: bool = False,
        prefix_cache: int = 4096,
        cache_slots: int = 16,
    ):
        llama_cpp, internals = _import_llama_cpp()
        self._llama_cpp = llama_cpp
        _route_native_log(llama_cpp, verbose)
        self.model_path = resolve_model_path(model)
        self.n_ctx, self.max_parallel, self.n_batch = n_ctx, max_parallel, n_batch
        self.n_threads = n_threads or os.cpu_count() or 1
        self.verbose = verbose
        self.prefix_cache = max(0, int(prefix_cache))
        self.cache_slots = max(0, int(cache_slots)) if self.prefix_cache else 0
        self._cache: list[_CachedPrefix] = []
        self._cache_version = 0  # changes when a prompt enters or leaves the cache
        self._tick = 0

        model_params = llama_cpp.llama_model_default_params()
        try:
            self._model = internals.LlamaModel(path_model=str(self.model_path), params=model_params, verbose=verbose)
        except ValueError as exc:
            raise EngineError(f"llama.cpp could not load {self.model_path}: {exc}") from exc
        ctx_params = llama_cpp.llama_context_default_params()
        ctx_params.n_ctx = n_ctx
        ctx_params.n_batch = n_batch
        ctx_params.n_ubatch = n_batch
        ctx_params.n_seq_max = max_parallel + self.cache_slots
        ctx_params.n_threads = self.n_threads
        ctx_params.n_threads_batch = self.n_threads
        ctx_params.kv_unified = True
        try:
            self._ctx = internals.LlamaContext(model=self._model, params=ctx_params, verbose=verbose)
        except ValueError as exc:
            raise EngineError(f"llama.cpp could not create a context for {self.model_path}: {exc}") from exc
        self._vocab = self._model.vocab
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self._batch = llama_cpp.llama_batch_init(max(n_batch, max_parallel), 0, max_parallel + self.cache_slots)
        self._chat_formatter = None
        self._chat_template = self._model.metadata().get("tokenizer.chat_template")

    # -- public contract -------------------------------------------------------------------------

    def describe(self) -> dict:
        stat = self.model_path.stat()
        return {"engine": self.name, "model": self.model_path.name, "model_bytes": stat.st_size}

    def close(self) -> None:
        if self._batch is not None:
            self._llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        self._ctx.close()
        self._model.close()

    def count_tokens(self, text: str) -> int:
        return len(self._tokenize(text))

    def generate(
        self,
        prompts: Sequence[Prompt | PromptContent],
        n: int,
        sampling: Sampling,
        on_complete: OnComplete | None = None,
        on_text: OnText | None = None,
    ) -> list[list[Completion]]:
        prompts = normalize_prompts(prompts)
        results: list[dict[int, Completion]] = [{} for _ in prompts]
        pending: deque[_Group] = deque()
        for index, prompt in enumerate(prompts):
            tokens = self._tokenize(self._render(prompt.content))
            need = len(tokens) + sampling.max_tokens
            if need > self.n_ctx:
                raise EngineError(
                    f"prompt {index} needs {len(tokens)} + {sampling.max_tokens} tokens, more than n_ctx={self.n_ctx}; "
                    "raise n_ctx or lower max_tokens"
                )
            ids = prompt.ids(n)
            per_group = max(1, min(self.max_parallel, (self.n_ctx - len(tokens)) // max(1, sampling.max_tokens)))
            for start in range(0, len(ids), per_group):
                pending.append(_Group(index, tokens, ids[start : start + per_group], on_text=on_text))

        def finished(seq: _Sequence) -> None:
            first_of_group = seq.sample_id == seq.group.sample_ids[0]
            completion = Completion(
                text=seq.text,
                prompt_tokens=seq.prompt_tokens,
                completion_tokens=seq.n_generated,
                finish_reason=seq.finish_reason or "length",
                seconds=seq.seconds,
                prompt_evaluated=seq.group.evaluated if first_of_group else 0,
                logprobs=seq.logprobs if sampling.wants_logprobs else None,
                top_logprobs=seq.top_logprobs if sampling.top_logprobs else None,
            )
            results[seq.prompt_index][seq.sample_id] = completion
            if on_complete is not None:
                on_complete(seq.prompt_index, seq.sample_id, completion)

        self._run(prompts, pending, sampling, finished)
        return [[res[i] for i in prompt.ids(n)] for prompt, res in zip(prompts, results)]

    # -- scheduling ------------------------------------------------------------------------------

    def _run(self, prompts: list[Prompt], pending: deque[_Group], sampling: Sampling, finished) -> None:
        lib = self._llama_cpp
        memory = lib.llama_get_memory(self._ctx.ctx)
        for seq_id in range(self.max_parallel):  # sample slots start empty; cached prompts stay
            lib.llama_memory_seq_rm(memory, seq_id, -1, -1)
        free_ids = list(range(self.max_parallel))
        live: list[_Sequence] = []
        kv_reserved = 0  # tokens reserved in the KV cache by admitted groups (worst case)
        clean = False

        try:
            while pending or live:
                # Admit whole groups while slots and KV room last; a group's prompt is decoded once.
                while pending:
                    group = pending[0]
                    if group.looked_up != self._cache_version:  # a waiting group is not searched again each step
                        group.source, group.common = self._longest_prefix(group.tokens)
                        group.looked_up = self._cache_version
                    fresh = len(group.tokens) - group.common
                    group.kv_cost = fresh + len(group.sample_ids) * sampling.max_tokens
                    room = self.n_ctx - kv_reserved - self._cached_tokens()
                    if len(group.sample_ids) > len(free_ids) or group.kv_cost > room:
                        if len(group.sample_ids) <= len(free_ids) and (
                            self._evict(keep=group.source) or self._evict()  # its own source goes last
                        ):
                            continue  # a cached prompt gave its cells back: try again
                        break
                    pending.popleft()
                    seq_ids = [free_ids.pop(0) for _ in group.sample_ids]
                    kv_reserved += group.kv_cost
                    group.live = len(seq_ids)
                    if group.source is not None:
                        group.source.pins += 1
                    live.extend(self._prefill(prompts[group.prompt_index], group, seq_ids, sampling))
                if not live:
                    raise EngineError("llama.cpp scheduler stalled: a group does not fit in the context")

                # Retire finished sequences, freeing their slots and cache cells.
                still: list[_Sequence] = []
                for seq in live:
                    if seq.finish_reason is None:
                        still.append(seq)
                        continue
                    finished(seq)
                    lib.llama_memory_seq_rm(memory, seq.seq_id, -1, -1)
                    free_ids.append(seq.seq_id)
                    seq.group.live -= 1
                    if seq.group.live == 0:
                        kv_reserved -= seq.group.kv_cost
                        if seq.group.source is not None:
                            seq.group.source.pins -= 1
                    lib.llama_sampler_free(seq.sampler)
                    seq.sampler = None
                live = still
                free_ids.sort()
                if live:
                    self._step(live, sampling)
            clean = True
        finally:
            for seq in live:
                if seq.sampler is not None:
                    lib.llama_sampler_free(seq.sampler)
                lib.llama_memory_seq_rm(memory, seq.seq_id, -1, -1)
            for entry in self._cache:
                entry.pins = 0
            if not clean:  # interrupted part way: the cache's state is not known, start again empty
                lib.llama_memory_clear(memory, True)
                self._cache.clear()
                self._cache_version += 1

    def _prefill(self, prompt: Prompt, group: _Group, seq_ids: list[int], sampling: Sampling) -> list[_Sequence]:
        """Decode the prompt once, tagged with every sequence id, then sample each sequence's first token."""
        lib = self._llama_cpp
        tokens = group.tokens
        started = time.perf_counter()
        last_index = self._decode_prompt(group, seq_ids)
        sequences = []
        for sample_id, seq_id in zip(group.sample_ids, seq_ids):
            seq = _Sequence(
                prompt_index=group.prompt_index,
                sample_id=sample_id,
                seq_id=seq_id,
                sampler=self._make_sampler(sampling, sample_seed(sampling.seed, prompt, sample_id)),
                prompt_tokens=len(tokens),
                position=len(tokens),
                group=group,
                watch=(
                    RunningGroupConfidence(sampling.confidence_window, sampling.stop_below_confidence)
                    if sampling.stop_below_confidence
                    else None
                ),
            )
            sequences.append(seq)
        for seq in sequences:
            self._accept(seq, lib.llama_sampler_sample(seq.sampler, self._ctx.ctx, last_index), sampling, last_index)
        share = (time.perf_counter() - started) / len(sequences)
        for seq in sequences:
            seq.seconds += share
        return sequences

    def _decode_prompt(self, group: _Group, seq_ids: list[int]) -> int:
        """Decodes what the cache does not hold of the group's prompt, tagged with `seq_ids` (and with a cache
        slot that keeps it); the batch index of the last token's logits."""
        lib, batch = self._llama_cpp, self._batch
        tokens = group.tokens
        memory = lib.llama_get_memory(self._ctx.ctx)
        if group.source is not None:  # the shared prefix's cells gain these sequences' ids
            self._touch(group.source)
            for seq_id in seq_ids:
                lib.llama_memory_seq_cp(memory, group.source.seq_id, seq_id, 0, group.common)
        kept = self._keep(tokens, group.source, group.common)
        tags = seq_ids + ([kept.seq_id] if kept is not None else [])
        if kept is not None:
            kept.pins += 1  # not evicted half-filled (a decode short of room evicts unpinned prompts)
        last_chunk_start = group.common
        for start in range(group.common, len(tokens), self.n_batch):
            chunk = tokens[start : start + self.n_batch]
            batch.n_tokens = len(chunk)
            for i, token in enumerate(chunk):
                batch.token[i] = token
                batch.pos[i] = start + i
                batch.n_seq_id[i] = len(tags)
                for j, seq_id in enumerate(tags):
                    batch.seq_id[i][j] = seq_id
                batch.logits[i] = False
            batch.logits[len(chunk) - 1] = True
            self._decode()
            last_chunk_start = start
        group.evaluated = len(tokens) - group.common
        if kept is not None:
            kept.pins -= 1
        return len(tokens) - 1 - last_chunk_start

    def next_token_logprobs(self, text: str, top: int = 10) -> dict[str, float]:
        """The `top` most likely next tokens after `text` (its pieces as text) with their log-probabilities,
        computed through the prefix cache like any prompt: what checks that the cache computes the same model."""
        import numpy as np

        lib = self._llama_cpp
        memory = lib.llama_get_memory(self._ctx.ctx)
        group = _Group(0, self._tokenize(text), (0,))
        group.source, group.common = self._longest_prefix(group.tokens)
        lib.llama_memory_seq_rm(memory, 0, -1, -1)
        try:
            last_index = self._decode_prompt(group, [0])
            n_vocab = lib.llama_vocab_n_tokens(self._vocab)
            logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(self._ctx.ctx, last_index), shape=(n_vocab,))
            logits = logits.astype(np.float64)
            logprobs = logits - logits.max() - np.log(np.exp(logits - logits.max()).sum())
            best = np.argsort(-logprobs)[:top]
            return {self._piece(int(t)).decode("utf-8", "replace"): float(logprobs[t]) for t in best}
        finally:
            lib.llama_memory_seq_rm(memory, 0, -1, -1)

    def _step(self, live: list[_Sequence], sampling: Sampling) -> None:
        """Advance every live sequence by one token in a single decode call."""
        lib, batch = self._llama_cpp, self._batch
        started = time.perf_counter()
        batch.n_tokens = len(live)
        for i, seq in enumerate(live):
            batch.token[i] = seq.last_token
            batch.pos[i] = seq.position
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq.seq_id
            batch.logits[i] = True
        self._decode()
        for i, seq in enumerate(live):
            seq.position += 1
            self._accept(seq, lib.llama_sampler_sample(seq.sampler, self._ctx.ctx, i), sampling, i)
        share = (time.perf_counter() - started) / len(live)
        for seq in live:
            seq.seconds += share

    def _accept(self, seq: _Sequence, token: int, sampling: Sampling, logits_index: int) -> None:
        """Record a sampled token; mark the sequence finished on end-of-generation, a stop string or length."""
        if self._llama_cpp.llama_vocab_is_eog(self._vocab, token):
            seq.text = seq.pieces.decode("utf-8", errors="ignore")
            seq.finish_reason = "stop"
            self._tell(seq, sampling)
            return
        if sampling.wants_logprobs:
            self._record_logprobs(seq, token, logits_index, sampling.top_logprobs)
        hesitant = seq.watch is not None and seq.watch.add(seq.top_logprobs[-1])
        seq.n_generated += 1
        seq.last_token = token
        seq.pieces += self._piece(token)
        seq.text = seq.pieces.decode("utf-8", errors="ignore")
        cut = first_stop(seq.text, sampling.stop)
        if cut is not None:
            seq.text = seq.text[:cut]
            seq.finish_reason = "stop"
        elif seq.n_generated >= sampling.max_tokens:
            seq.finish_reason = "length"
        elif hesitant:
            seq.finish_reason = "low_confidence"
        self._tell(seq, sampling)

    def _tell(self, seq: _Sequence, sampling: Sampling) -> None:
        """Report the sequence's new text to the caller's `on_text`, where one was given."""
        if seq.group is None or seq.group.on_text is None:
            return
        if seq.stream is None:
            seq.stream = TextStream(sampling.stop)
        delta = seq.stream.delta(seq.text, final=seq.finish_reason is not None)
        if delta:
            seq.group.on_text(seq.prompt_index, seq.sample_id, delta)

    def _record_logprobs(self, seq: _Sequence, token: int, logits_index: int, top: int) -> None:
        """The model's log-probability of `token` (and the `top` likeliest) from the raw logits it was drawn from."""
        import numpy as np

        lib = self._llama_cpp
        logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(self._ctx.ctx, logits_index), shape=(self._n_vocab,))
        highest = float(logits.max())
        normaliser = highest + float(np.log(np.exp(logits - highest).sum(dtype=np.float64)))
        seq.logprobs.append(float(logits[token]) - normaliser)
        if top:
            best = _largest(np, logits, highest, top)
            seq.top_logprobs.append(
                [(self._piece(int(t)).decode("utf-8", "replace"), float(logits[t]) - normaliser) for t in best]
            )

    # -- prefix cache ----------------------------------------------------------------------------

    def _cached_tokens(self) -> int:
        return sum(len(entry.tokens) for entry in self._cache)

    def _touch(self, entry: _CachedPrefix) -> None:
        self._tick += 1
        entry.last_used = self._tick

    def _longest_prefix(self, tokens: list[int]) -> tuple[_CachedPrefix | None, int]:
        """The cached prompt sharing the longest prefix with `tokens`, and that length; at least the last
        token is always decoded (its logits start the samples)."""
        best, best_length = None, 0
        for entry in self._cache:
            limit = min(len(entry.tokens), len(tokens) - 1)
            length = 0
            while length < limit and entry.tokens[length] == tokens[length]:
                length += 1
            if length > best_length:
                best, best_length = entry, length
        return best, best_length

    def _evict(self, keep: _CachedPrefix | None = None) -> bool:
        """Drops the least recently used unpinned cached prompt (never `keep`); False when none can go."""
        candidates = [e for e in self._cache if e.pins == 0 and e is not keep]
        if not candidates:
            return False
        victim = min(candidates, key=lambda e: e.last_used)
        lib = self._llama_cpp
        lib.llama_memory_seq_rm(lib.llama_get_memory(self._ctx.ctx), victim.seq_id, -1, -1)
        self._cache.remove(victim)
        self._cache_version += 1
        return True

    def _keep(self, tokens: list[int], source: _CachedPrefix | None, common: int) -> _CachedPrefix | None:
        """A cache slot that will hold this prompt's KV once decoded (None: not kept). A cached prompt that is
        a prefix of this one is replaced by it: the new entry holds the same cells and more."""
        if not self.cache_slots or len(tokens) > self.prefix_cache:
            return None
        key = tuple(tokens)
        for entry in self._cache:
            if entry.tokens == key:
                self._touch(entry)
                return None  # already kept whole (only its last token is decoded again, for the logits)
        while len(self._cache) >= self.cache_slots or self._cached_tokens() + len(tokens) > self.prefix_cache:
            if not self._evict(keep=source):
                return None
        used = {entry.seq_id for entry in self._cache}
        seq_id = next(i for i in range(self.max_parallel, self.max_parallel + self.cache_slots) if i not in used)
        lib = self._llama_cpp
        memory = lib.llama_get_memory(self._ctx.ctx)
        if source is not None and common:
            lib.llama_memory_seq_cp(memory, source.seq_id, seq_id, 0, common)
        entry = _CachedPrefix(key, seq_id, 0)
        self._touch(entry)
        self._cache.append(entry)
        self._cache_version += 1
        if source is not None and common == len(source.tokens) and source.pins <= 1:
            # The old prompt is a prefix of the new one; running groups keep their own tags on its cells.
            lib.llama_memory_seq_rm(memory, source.seq_id, -1, -1)
            self._cache.remove(source)
            source.pins = 0
        return entry

    # -- llama.cpp helpers -----------------------------------------------------------------------

    def _decode(self) -> None:
        code = self._llama_cpp.llama_decode(self._ctx.ctx, self._batch)
        while code == 1 and self._evict():  # no KV slot: cached prompts give their cells back, then retry
            code = self._llama_cpp.llama_decode(self._ctx.ctx, self._batch)
        if code != 0:
            raise EngineError(f"llama_decode returned {code} (1 = no KV slot: lower max_parallel or raise n_ctx)")

    def _make_sampler(self, sampling: Sampling, seed: int):
        lib = self._llama_cpp
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        if sampling.penalized:  # first, as llama.cpp's own chain has it; it sees only generated tokens
            window = sampling.penalty_window or sampling.max_tokens
            penalties = lib.llama_sampler_init_penalties(
                lib.llama_vocab_n_tokens(self._vocab),
                window,
                sampling.repeat_penalty,
                sampling.frequency_penalty,
                sampling.presence_penalty,
            )
            lib.llama_sampler_chain_add(chain, penalties)
        if sampling.greedy:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_greedy())
            return chain
        if sampling.top_k > 0:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_k(sampling.top_k))
        if sampling.top_p < 1.0:
            lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_top_p(sampling.top_p, 1))
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_temp(sampling.temperature))
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_dist(seed))
        return chain

    def _tokenize(self, text: str) -> list[int]:
        return self._model.tokenize(text.encode("utf-8"), add_bos=True, special=True)

    def _piece(self, token: int) -> bytes:
        buffer = ctypes.create_string_buffer(64)
        size = self._llama_cpp.llama_token_to_piece(self._vocab, token, buffer, 64, 0, False)
        if size < 0:
            buffer = ctypes.create_string_buffer(-size)
            size = self._llama_cpp.llama_token_to_piece(self._vocab, token, buffer, -size, 0, False)
        return buffer.raw[:size]

    def _render(self, content: PromptContent) -> str:
        """Text as is; chat messages through the model's own chat template, or a plain transcript without one."""
        if isinstance(content, str):
            return content
        if self._chat_template:
            if self._chat_formatter is None:
                from llama_cpp.llama_chat_format import Jinja2ChatFormatter

                self._chat_formatter = Jinja2ChatFormatter(template=self._chat_template, eos_token="", bos_token="")
            return self._chat_formatter(messages=content).prompt
        return plain_transcript(content)


def _largest(np, logits, highest: float, k: int):
    """Indices of the k largest logits, largest first. The likely tokens sit within a few nats of the top one, so
    a comparison finds them about 20x faster than a partition of the whole vocabulary (262k for Gemma 3)."""
    for width in (8.0, 16.0, 32.0):
        candidates = np.flatnonzero(logits >= highest - width)
        if len(candidates) >= k:
            break
    else:
        candidates = np.argpartition(logits, -k)[-k:]
    return candidates[np.argsort(-logits[candidates], kind="stable")][:k]


def teacher_forced_logprobs(model_path: str, token_lists: Sequence[Sequence[int]], n_threads: int | None = None):
    """Per text, the log-probability llama.cpp gives each token after the first, given the ones before it:
    the check that a GGUF computes the same model as another engine (see `HFEngine.token_logprobs`)."""
    import numpy as np

    llama_cpp, _ = _import_llama_cpp()
    longest = max(len(tokens) for tokens in token_lists)
    llm = llama_cpp.Llama(
        model_path=str(model_path), n_ctx=max(256, longest), logits_all=True, verbose=False, n_threads=n_threads
    )
    results = []
    try:
        for tokens in token_lists:
            llm.reset()
            llm.eval(list(tokens))
            logits = np.asarray(llm.scores[: len(tokens) - 1], dtype=np.float64)
            logits -= logits.max(axis=-1, keepdims=True)
            logprobs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
            results.append([float(logprobs[i, tokens[i + 1]]) for i in range(len(tokens) - 1)])
    finally:
        llm.close()
    return results
