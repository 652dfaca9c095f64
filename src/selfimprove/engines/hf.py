"""Engine `hf`: a Hugging Face causal LM run by transformers (torch) — the engine we also train.

Models: a local checkpoint folder, a hub name (when the hub is reachable), a `.gguf` file, or
nothing (the embedded Gemma 3 270M GGUF). A GGUF is dequantised by transformers' GGUF loader
(slow: about a minute and a half for the embedded model on 2 cores) and cached once as a
safetensors checkpoint under `$SELFIMPROVE_HOME/hf-cache/`, which reloads in seconds.

Sampling: every (prompt, sample id) pair is a row; rows are left-padded into batches and decoded
by `model.generate` with greedy search over scores that `SeededSampler` has already reduced to the
one token it drew, with a torch generator per row seeded by `sample_seed(seed, prompt, sample id)`.
So a sample depends on the run seed, its prompt and its id, not on its batch-mates (up to the
float rounding that padding can shift), which is what lets a resumed run draw only the samples it
lacks. Stop strings end a row as soon as its decoded tail contains one (`StopOnStrings`; transformers'
own stop-string criterion assumes tokenizers with a SentencePiece-like prefix) and are cut here.

Shared prompts (`share_prompt`, on by default): a prompt drawn more than once gets batches of its own, and its
KV cache is computed once (all but the last token) and repeated for the rows, so k samples cost one prompt
computation instead of k (`Completion.prompt_evaluated` says which). Measured with
`benchmarks/hf_shared_prompt.py`: 2.35x faster for k = 8 on 8-shot GSM8K prompts, the same samples.
"""

from __future__ import annotations

import hashlib
import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from selfimprove.core.confidence import RunningGroupConfidence
from selfimprove.core.config import home
from selfimprove.core.errors import EngineError, ModelNotFoundError
from selfimprove.core.files import atomic_path
from selfimprove.core.types import Completion, Prompt, PromptContent, Sampling, normalize_prompts, sample_seed
from selfimprove.engines.base import OnComplete, first_stop, plain_transcript, registry
from selfimprove.engines.embedded import EMBEDDED_NAME, embedded_model_path

log = logging.getLogger(__name__)


def import_torch_stack() -> tuple[Any, Any]:
    """torch and transformers, or an error that says how to install them."""
    try:
        import torch
        import transformers
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EngineError(
            "engine 'hf' needs torch and transformers: pip install 'selfimprove[train]' "
            "(on CPU install torch's CPU build first, see README)"
        ) from exc
    return torch, transformers


def gguf_cache_dir(gguf: Path) -> Path:
    """Where a GGUF's dequantised checkpoint is cached: keyed by its name, size and first megabyte."""
    with gguf.open("rb") as handle:
        head = handle.read(1 << 20)
    key = hashlib.sha256(head + str(gguf.stat().st_size).encode()).hexdigest()[:16]
    return home() / "hf-cache" / f"{gguf.stem}-{key}"


def resolve_source(model: str | None) -> tuple[str, Path | None]:
    """(what to load with from_pretrained, the GGUF file if the source is one)."""
    if model in (None, "", EMBEDDED_NAME):
        return str(embedded_model_path()), embedded_model_path()
    path = Path(model).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelNotFoundError(f"GGUF model file not found: {path}")
        return str(path), path
    if path.exists() and not (path / "config.json").is_file():
        raise ModelNotFoundError(f"{path} is not a Hugging Face checkpoint folder (no config.json)")
    return (str(path) if path.exists() else model), None


def load_causal_lm(model: str | None, dtype: Any = None, device: str = "cpu") -> tuple[Any, Any, str]:
    """(model, tokenizer, the folder or name it came from). A GGUF goes through the safetensors cache."""
    torch, transformers = import_torch_stack()
    source, gguf = resolve_source(model)
    if gguf is not None:
        source = str(cached_gguf_checkpoint(gguf))
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source)
        loaded = transformers.AutoModelForCausalLM.from_pretrained(source, dtype=dtype or torch.float32)
    except OSError as exc:
        raise ModelNotFoundError(f"could not load a causal LM from {source!r}: {exc}") from exc
    loaded.to(device)
    loaded.eval()
    return loaded, tokenizer, source


def cached_gguf_checkpoint(gguf: Path) -> Path:
    """The GGUF as a float32 safetensors checkpoint, made once (about 85 s for the embedded model)."""
    target = gguf_cache_dir(gguf)
    if (target / "config.json").is_file():
        return target
    torch, transformers = import_torch_stack()
    log.warning("dequantising %s for transformers (once; cached in %s)", gguf.name, target)
    folder, name = str(gguf.parent), gguf.name
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # save_pretrained refuses a model that still carries the GGUF quantizer; the weights are plain fp32 now.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_path(target, directory=True) as partial:
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
    return target


class SeededSampler:
    """A logits processor that draws each row's next token with that row's own generator (temperature,
    top-k, top-p) and leaves only that token possible, so greedy search takes it."""

    def __init__(self, sampling: Sampling, seeds: Sequence[int], device: Any):
        torch, _ = import_torch_stack()
        self.torch = torch
        self.sampling = sampling
        self.generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        torch = self.torch
        logits = scores.float() / max(self.sampling.temperature, 1e-6)
        if self.sampling.top_k and self.sampling.top_k < logits.shape[-1]:
            kth = torch.topk(logits, self.sampling.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.sampling.top_p < 1.0:
            ordered, order = torch.sort(logits, descending=True, dim=-1)
            cumulative = torch.softmax(ordered, dim=-1).cumsum(dim=-1)
            drop = cumulative - torch.softmax(ordered, dim=-1) > self.sampling.top_p  # keep the token that crosses
            logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
        probabilities = torch.softmax(logits, dim=-1)
        chosen = torch.stack(
            [torch.multinomial(row, 1, generator=gen) for row, gen in zip(probabilities, self.generators)]
        )
        out = torch.full_like(scores, float("-inf"))
        return out.scatter(-1, chosen, 0.0)


class RepetitionPenalties:
    """A logits processor applying `Sampling`'s repetition penalties to the tokens each row has generated
    (after `prompt_width`), by llama.cpp's rule, so both engines penalise alike."""

    def __init__(self, sampling: Sampling, prompt_width: int):
        self.sampling, self.width = sampling, prompt_width

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        torch, _ = import_torch_stack()
        generated = input_ids[:, self.width :]
        if self.sampling.penalty_window:
            generated = generated[:, -self.sampling.penalty_window :]
        scores = scores.clone()
        for row, tokens in enumerate(generated):
            if tokens.numel() == 0:
                continue
            seen, counts = torch.unique(tokens, return_counts=True)
            logits = scores[row, seen]
            penalty = self.sampling.repeat_penalty
            logits = torch.where(logits <= 0, logits * penalty, logits / penalty)
            logits = logits - counts.to(logits.dtype) * self.sampling.frequency_penalty - self.sampling.presence_penalty
            scores[row, seen] = logits
        return scores


class LogprobRecorder:
    """A logits processor placed first, so it sees the model's raw scores: it keeps each step's log-softmax until
    the next step shows which token was drawn, and the `top` likeliest tokens of every step."""

    def __init__(self, top: int):
        self.top = top
        self.previous: Any = None
        self.chosen: list[list[float]] = []  # per step, per row
        self.best: list[tuple[list[list[int]], list[list[float]]]] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        torch, _ = import_torch_stack()
        self._take(input_ids[:, -1])
        self.previous = torch.log_softmax(scores.float(), dim=-1)
        if self.top:
            values, ids = torch.topk(self.previous, self.top, dim=-1)
            self.best.append((ids.tolist(), values.tolist()))
        return scores

    def _take(self, drawn: Any) -> None:
        if self.previous is not None:
            self.chosen.append(self.previous.gather(-1, drawn[:, None]).squeeze(-1).tolist())
            self.previous = None

    def finish(self, last_drawn: Any) -> None:
        """The last step's drawn tokens (generation ends without another call)."""
        self._take(last_drawn)

    def row(self, index: int, length: int, tokenizer: Any) -> tuple[list[float], list[list[tuple[str, float]]]]:
        """Row `index`'s first `length` tokens: their log-probabilities and top alternatives."""
        logprobs = [step[index] for step in self.chosen[:length]]
        top = [
            [(tokenizer.decode([t]), v) for t, v in zip(ids[index], values[index])]
            for ids, values in self.best[:length]
        ]
        return logprobs, top


class StopBelowConfidence:
    """A stopping criterion: a row ends once the mean token confidence of its latest window (from the recorder's
    top-k) is below `Sampling.stop_below_confidence`; `stopped_at[row]` is how many tokens it had then."""

    def __init__(self, recorder: LogprobRecorder, sampling: Sampling, rows: int):
        self.recorder, self.window, self.threshold = (
            recorder,
            sampling.confidence_window,
            sampling.stop_below_confidence,
        )
        self.watches = [RunningGroupConfidence(self.window, self.threshold) for _ in range(rows)]
        self.stopped_at: dict[int, int] = {}

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        torch, _ = import_torch_stack()
        ids, values = self.recorder.best[-1]
        step = len(self.recorder.best)
        done = []
        for row, watch in enumerate(self.watches):
            low = watch.add(list(zip(ids[row], values[row])))
            if low and row not in self.stopped_at:
                self.stopped_at[row] = step
            done.append(row in self.stopped_at)
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class StopOnStrings:
    """A stopping criterion: a row is done once the decoded tail of what it generated contains a stop string."""

    def __init__(self, tokenizer: Any, stops: Sequence[str], prompt_width: int):
        self.tokenizer, self.stops, self.width = tokenizer, [s for s in stops if s], prompt_width
        # A token decodes to at least one character (special tokens aside), so this many tokens hold any stop.
        self.tail = 2 * max((len(s) for s in self.stops), default=0) + 4

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        torch, _ = import_torch_stack()
        done = []
        for row in input_ids[:, self.width :]:
            text = self.tokenizer.decode(row[-self.tail :], skip_special_tokens=True)
            done.append(any(stop in text for stop in self.stops))
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


@registry.register("hf")
class HFEngine:
    """Args:
    model: checkpoint folder, hub name, .gguf file, or None for the embedded model.
    device: "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
    batch_size: rows (prompt x sample) decoded together.
    threads: torch CPU threads (default: torch's choice).
    share_prompt: the samples of one prompt share one computation of it (its KV cache, repeated per row).
    weights: "float" (as loaded), or "int8" / "int4": Linear weights quantised weight-only by torchao
        (`engines/weight_quantization.py`), for the quantization sweep.
    """

    name = "hf"

    def __init__(
        self,
        model: str | None = None,
        device: str = "auto",
        batch_size: int = 16,
        threads: int | None = None,
        share_prompt: bool = True,
        weights: str = "float",
    ):
        from selfimprove.engines.weight_quantization import quantize_weights

        torch, _ = import_torch_stack()
        self.torch = torch
        if threads:
            torch.set_num_threads(int(threads))
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self.model, self.tokenizer, self.source = load_causal_lm(model, dtype=dtype, device=self.device)
        self.weights = weights
        quantize_weights(self.model, weights)
        self.batch_size = max(1, int(batch_size))
        self.share_prompt = bool(share_prompt)
        _pad_left(self.tokenizer)

    @classmethod
    def from_loaded(
        cls, model: Any, tokenizer: Any, source: str = "in-memory", batch_size: int = 16, share_prompt: bool = True
    ) -> HFEngine:
        """Wraps a model already in memory (a test's tiny model, a model being trained)."""
        engine = cls.__new__(cls)
        engine.torch, _ = import_torch_stack()
        engine.model, engine.tokenizer, engine.source = model, tokenizer, source
        engine.device = str(next(model.parameters()).device)
        engine.batch_size = batch_size
        engine.share_prompt = share_prompt
        engine.weights = "float"
        _pad_left(tokenizer)
        return engine

    # -- public contract -------------------------------------------------------------------------

    def describe(self) -> dict:
        """The model's name and, for a local checkpoint, its path and weights' sizes and times: two checkpoints
        saved under the same folder name (every LMSI round's `merged`) never share a run."""
        identity = {"engine": self.name, "model": Path(self.source).name, "parameters": self.model.num_parameters()}
        if getattr(self, "weights", "float") != "float":
            identity["weight_quantization"] = self.weights  # a quantised copy never shares a run with the float model
        folder = Path(self.source)
        if folder.is_dir():
            weights = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))
            identity["source"] = str(folder.resolve())
            identity["weights"] = [[w.name, w.stat().st_size, int(w.stat().st_mtime)] for w in weights]
        return identity

    def close(self) -> None:
        self.model = None

    def count_tokens(self, text: str) -> int:
        return len(self._encode(text))

    def generate(
        self,
        prompts: Sequence[Prompt | PromptContent],
        n: int,
        sampling: Sampling,
        on_complete: OnComplete | None = None,
    ) -> list[list[Completion]]:
        prompts = normalize_prompts(prompts)
        encoded = [self.encode_prompt(p.content) for p in prompts]
        results: list[dict[int, Completion]] = [{} for _ in prompts]
        for batch in self._batches(prompts, n):
            seeds = [sample_seed(sampling.seed, prompts[i], s) for i, s in batch]
            rows_out = self.sample_rows([encoded[i] for i, _ in batch], seeds, sampling)
            for (index, sample_id), (_, completion) in zip(batch, rows_out):
                results[index][sample_id] = completion
                if on_complete is not None:
                    on_complete(index, sample_id, completion)
        return [[res[s] for s in prompt.ids(n)] for prompt, res in zip(prompts, results)]

    def _batches(self, prompts: list[Prompt], n: int) -> list[list[tuple[int, int]]]:
        """(prompt index, sample id) rows in batches of at most `batch_size`. With `share_prompt`, a prompt drawn
        more than once gets batches of its own, whose rows share one computation of the prompt (`sample_rows`);
        prompts drawn once are batched together."""
        rows = [[(index, sample_id) for sample_id in prompt.ids(n)] for index, prompt in enumerate(prompts)]
        groups = [r for r in rows if len(r) > 1] if self.share_prompt else []
        rest = [row for r in rows if not (self.share_prompt and len(r) > 1) for row in r]
        batches = []
        for group in [*groups, rest]:
            batches.extend(group[start : start + self.batch_size] for start in range(0, len(group), self.batch_size))
        return batches

    def token_logprobs(self, token_ids: Sequence[int]) -> list[float]:
        """Log-probability of each token after the first, given the ones before it (teacher forcing)."""
        torch = self.torch
        ids = torch.tensor([list(token_ids)], device=self.device)
        with torch.no_grad():
            logits = self.model(ids).logits.float()
        logprobs = torch.log_softmax(logits[0, :-1], dim=-1)
        return logprobs.gather(-1, ids[0, 1:, None]).squeeze(-1).tolist()

    def _prompt_cache(self, prefix: list[int], rows: int) -> Any:
        """The KV cache of `prefix` computed once, repeated for `rows` rows (the samples of one prompt)."""
        torch = self.torch
        with torch.no_grad():
            output = self.model(input_ids=torch.tensor([prefix], device=self.device), use_cache=True)
        cache = output["cache"] if "cache" in output else output["past_key_values"]  # late 5.x renamed it
        cache.batch_repeat_interleave(rows)
        return cache

    def end_ids(self) -> set[int]:
        """The tokenizer's EOS and any the model's generation config adds (Gemma's <end_of_turn>)."""
        ends = {self.tokenizer.eos_token_id}
        configured = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ends.update(configured if isinstance(configured, list) else [configured])
        return {e for e in ends if e is not None}

    # -- internals -------------------------------------------------------------------------------

    def _encode(self, text: str, special: bool = True) -> list[int]:
        return self.tokenizer(text, add_special_tokens=special)["input_ids"]

    def encode_prompt(self, content: PromptContent) -> list[int]:
        """Text with the tokenizer's own special tokens (BOS); chat through the model's template."""
        if isinstance(content, str):
            return self._encode(content)
        if getattr(self.tokenizer, "chat_template", None):
            rendered = self.tokenizer.apply_chat_template(content, tokenize=False, add_generation_prompt=True)
            return self._encode(rendered, special=False)
        return self._encode(plain_transcript(content))

    def sample_rows(
        self, inputs: list[list[int]], seeds: list[int], sampling: Sampling
    ) -> list[tuple[list[int], Completion]]:
        """One batch of prompts given as token ids: for each, the token ids the model drew (the end token
        included when it ended the row; what a policy gradient trains on) and the Completion (its text cut
        at a stop string)."""
        torch = self.torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        width = max(len(ids) for ids in inputs)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in inputs], device=self.device)
        attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in inputs], device=self.device)
        started = time.perf_counter()
        shared = self.share_prompt and len(inputs) > 1 and width > 1 and all(ids == inputs[0] for ids in inputs)
        prefix_cache = self._prompt_cache(inputs[0][:-1], len(inputs)) if shared else None
        config = GenerationConfig(
            max_new_tokens=sampling.max_tokens,
            do_sample=False,
            pad_token_id=pad,
            eos_token_id=sorted(self.end_ids()),
        )
        stopping = StoppingCriteriaList([StopOnStrings(self.tokenizer, sampling.stop, width)] if sampling.stop else [])
        recorder = LogprobRecorder(sampling.top_logprobs) if sampling.wants_logprobs else None
        hesitation = None
        if sampling.stop_below_confidence:
            hesitation = StopBelowConfidence(recorder, sampling, len(inputs))
            stopping.append(hesitation)
        processors = LogitsProcessorList(
            ([recorder] if recorder is not None else [])
            + ([RepetitionPenalties(sampling, width)] if sampling.penalized else [])
            + ([] if sampling.greedy else [SeededSampler(sampling, seeds, self.device)])
        )
        with torch.no_grad(), warnings.catch_warnings():
            # Late 5.x renames generate's `past_key_values` to `cache`; every 5.x (the pinned range) takes the old name.
            warnings.filterwarnings("ignore", message="`past_key_values` is deprecated", category=FutureWarning)
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                generation_config=config,
                logits_processor=processors,
                stopping_criteria=stopping,
                **({"past_key_values": prefix_cache} if prefix_cache is not None else {}),
            )
        share = (time.perf_counter() - started) / len(inputs)
        ends = self.end_ids() | {pad}  # a row finished before its batch-mates is padded after its end
        rows = [
            drawn_completion(self.tokenizer, row, ends, sampling, len(prompt_ids), share)
            for prompt_ids, row in zip(inputs, output[:, width:].tolist())
        ]
        # Prompt tokens computed per row: all of them, or (shared) the prefix once and each row's last token.
        evaluated = [width if i == 0 else 1 for i in range(len(inputs))] if shared else [len(i) for i in inputs]
        rows = [(drawn, replace(c, prompt_evaluated=e)) for (drawn, c), e in zip(rows, evaluated)]
        if recorder is None:
            return rows
        recorder.finish(output[:, -1])
        with_logprobs = []
        for index, (drawn, completion) in enumerate(rows):
            logprobs, top = recorder.row(index, completion.completion_tokens, self.tokenizer)
            completion = replace(completion, logprobs=logprobs, top_logprobs=top if sampling.top_logprobs else None)
            if (
                hesitation is not None
                and hesitation.stopped_at.get(index) == completion.completion_tokens < sampling.max_tokens
            ):
                completion = replace(completion, finish_reason="low_confidence")
            with_logprobs.append((drawn, completion))
        return with_logprobs


def drawn_completion(
    tokenizer: Any, row: Sequence[int], ends: set[int], sampling: Sampling, prompt_tokens: int, seconds: float
) -> tuple[list[int], Completion]:
    """One sampled row as a policy gradient and a strategy each need it: the ids drawn (up to and including
    the end token that ended it; every produced id when a stop string ended it, as the text is cut there but
    those tokens were drawn) and the Completion (text cut at the first stop string). Shared by every sampler
    that feeds SCoRe, so the rows it trains on mean the same whichever engine drew them."""
    produced, drawn = [], []
    for token in row:
        drawn.append(token)
        if token in ends:
            break
        produced.append(token)
    text = tokenizer.decode(produced, skip_special_tokens=True)
    cut = first_stop(text, sampling.stop)
    if cut is not None:
        text = text[:cut]
        drawn = produced  # a row a stop string ended is padded afterwards: the pad was not drawn
    stopped = cut is not None or len(produced) < sampling.max_tokens
    completion = Completion(
        text=text,
        prompt_tokens=prompt_tokens,
        completion_tokens=len(produced),
        finish_reason="stop" if stopped else "length",
        seconds=seconds,
    )
    return drawn, completion


def _pad_left(tokenizer: Any) -> None:
    """Batches are left-padded so every row's continuation starts at the same position; EOS pads if none."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
