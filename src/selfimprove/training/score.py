"""`selfimprove score`: SCoRe, two-stage multi-turn RL that trains a model to correct itself
(Kumar et al. 2024). The objective is in `score_loss.py`; this module runs it.

A step: take `problems_per_step` train problems, play `episodes` two-attempt episodes on each
(attempt 1 from the task prompt, attempt 2 after the correction instruction, in exactly the
transcript `selfimprove run --strategy self-correct` uses), grade both attempts with the task's
grader, and take one policy-gradient step on the stage's objective. Stage I then Stage II, or
`mode="single-turn"` (the paper's ablation: RL on attempt 1 alone for the same number of steps).

What comes from where: sampling is the `hf` engine (seeded rows, stop strings, chat templates);
LoRA is PEFT (the reference model is the same weights with the adapter switched off, so it costs
no memory); device placement, gradient averaging across processes and `accelerate launch` are
accelerate's; the loss, the rollouts and the stage schedule are here (docs/score.md says why not
TRL's GRPOTrainer).

Outputs under `out`: `log.jsonl` (one line per step: rewards per attempt, Δ, i→c, c→i, KL per turn,
edit distance between attempts, loss, seconds), `checkpoint/` (weights or adapter, optimizer state,
step; a re-run resumes from it), and at the end `merged/` (a plain checkpoint the `hf` engine loads)
and `done.json`.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from selfimprove.core.errors import ConfigError
from selfimprove.core.files import atomic_path
from selfimprove.core.types import Problem, Prompt, Sampling, sample_seed
from selfimprove.core.validation import require_sampling_ranges
from selfimprove.runs.metrics import normalised_edit_distance
from selfimprove.strategies.base import extract_answer
from selfimprove.strategies.self_correct import DEFAULT_INSTRUCTION, attempt_stops, continue_conversation
from selfimprove.tasks.base import Task
from selfimprove.training.processes import processes
from selfimprove.training.score_loss import (
    StageObjective,
    leave_one_out,
    sequence_loss,
    single_turn,
    stage_one,
    stage_two,
)
from selfimprove.training.score_vllm import VLLM_MODES, MakeGeneration, VLLMRollout, trl_vllm_generation
from selfimprove.training.sft import load_for_training

MODES = ("score", "single-turn")
ROLLOUTS = ("hf", "vllm")


@dataclass
class ScoreSettings:
    """SCoRe hyperparameters. Paper defaults (Table 8): α 10, β1 0.01, β2 0.1 (MATH) / 0.25 (code), T 1.0."""

    mode: str = "score"
    """score (Stage I then II) or single-turn (the RL baseline alone)."""
    stage1_steps: int = 10
    """Stage I steps (attempt-2 reward, strong KL on attempt 1)."""
    stage2_steps: int = 20
    """Stage II steps (both rewards, shaping bonus on attempt 2)."""
    problems_per_step: int = 8
    """Train problems per step."""
    episodes: int = 4
    """Episodes per problem: the leave-one-out baseline's group (at least 2)."""
    alpha: float = 10.0
    """Shaping bonus α·(r2 − r1) on attempt 2."""
    beta1: float = 0.01
    """KL coefficient of Stage II (both attempts) and of the single-turn baseline."""
    beta2: float = 0.1
    """KL coefficient on attempt 1 in Stage I."""
    temperature: float = 1.0
    """Sampling temperature of the episodes."""
    max_tokens: int = 96
    """Most tokens per attempt (training and evaluation)."""
    learning_rate: float = 1e-4
    """AdamW learning rate."""
    lora_r: int = 16
    """LoRA rank; 0 trains every weight (the reference model is then a frozen copy)."""
    lora_alpha: int = 32
    """LoRA scaling alpha (the update is scaled by alpha / r)."""
    micro_batch: int = 8
    """Rows (one attempt of one episode each) per forward/backward pass; bounds memory, not the step."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this global norm before each optimizer step."""
    save_every: int = 10
    """Checkpoint every this many steps (and at each stage's end)."""
    train_limit: int | None = None
    """Train problems to cycle through; default: as many as the steps use (problems_per_step × steps)."""
    instruction: str = DEFAULT_INSTRUCTION
    """The self-correction instruction between the attempts (the `self-correct` strategy's, by default)."""
    seed: int = 0
    """Sampling, shuffling and initialisation seed."""
    rollout: str = "hf"
    """What samples the episodes: the `hf` engine on the policy itself, or vLLM (`training/score_vllm.py`, GPU)."""
    vllm_mode: str = "colocate"
    """vllm: colocate (vLLM in this process on the training GPU) or server (a running `trl vllm-serve`)."""
    vllm_server: str | None = None
    """vllm server mode: the server's base URL (default: TRL's, http://0.0.0.0:8000)."""
    vllm_gpu_memory: float = 0.3
    """vllm colocate mode: the share of GPU memory for vLLM (weights and KV cache); the rest trains."""

    def __post_init__(self) -> None:
        require_sampling_ranges(self)
        if self.mode not in MODES:
            raise ConfigError(f"mode {self.mode!r}: choose one of {', '.join(MODES)}")
        if self.rollout not in ROLLOUTS:
            raise ConfigError(f"rollout {self.rollout!r}: choose one of {', '.join(ROLLOUTS)}")
        if self.vllm_mode not in VLLM_MODES:
            raise ConfigError(f"vllm_mode {self.vllm_mode!r}: choose one of {', '.join(VLLM_MODES)}")
        if not 0.0 < self.vllm_gpu_memory <= 1.0:
            raise ConfigError(f"vllm_gpu_memory {self.vllm_gpu_memory}: a share of GPU memory in (0, 1]")
        if self.episodes < 2:
            raise ConfigError("episodes must be >= 2: the leave-one-out baseline needs another episode")
        if self.problems_per_step < 1 or self.stage1_steps < 0 or self.stage2_steps < 0:
            raise ConfigError("problems_per_step must be >= 1 and stage lengths >= 0")

    def schedule(self) -> list[tuple[StageObjective, int]]:
        """(objective, steps) in order. Single-turn RL gets the same total number of steps."""
        if self.mode == "single-turn":
            return [(single_turn(self.beta1), self.stage1_steps + self.stage2_steps)]
        return [(stage_one(self.beta2), self.stage1_steps), (stage_two(self.alpha, self.beta1), self.stage2_steps)]

    def sampling(self, task: Task, step: int) -> Sampling:
        """Pure policy samples (no top-k/top-p: the gradient assumes y ~ π), a seed per step, and the same
        stops as the self-correct strategy (a base model may write the instruction itself)."""
        return Sampling(
            temperature=self.temperature,
            top_p=1.0,
            top_k=0,
            max_tokens=self.max_tokens,
            stop=attempt_stops(task, self.instruction),
            seed=self.seed * 1_000_003 + step,
        )


@dataclass
class Attempt:
    prompt_ids: list[int]
    action_ids: list[int]
    text: str
    answer: str | None
    reward: float


@dataclass
class Episode:
    problem: Problem
    attempts: list[Attempt]


@dataclass
class StepLog:
    stage: str
    step: int
    episodes: int
    reward: list[float]
    """Mean reward of each attempt (Acc@t1, Acc@t2 of the sampled episodes)."""
    delta: float | None
    incorrect_to_correct: float | None
    correct_to_incorrect: float | None
    kl: list[float]
    """Mean KL(π ‖ π_ref) per attempt, summed over the attempt's tokens."""
    edit_distance: float | None
    loss: float
    tokens: float
    seconds: float


def rollout(
    engine: Any, task: Task, problems: Sequence[Problem], episodes: int, turns: int, settings: ScoreSettings, step: int
) -> list[list[Episode]]:
    """`episodes` episodes of `turns` attempts per problem, sampled from the engine's model, graded."""
    sampling = settings.sampling(task, step)
    contents = [[task.format_prompt(p)] * episodes for p in problems]
    groups = [[Episode(p, []) for _ in range(episodes)] for p in problems]
    for turn in range(turns):
        rows = [(i, e) for i in range(len(problems)) for e in range(episodes)]
        inputs = [engine.encode_prompt(contents[i][e]) for i, e in rows]
        seeds = [
            sample_seed(sampling.seed, Prompt(contents[i][e], problems[i].id, f"score-t{turn + 1}"), e) for i, e in rows
        ]
        drawn = []
        for start in range(0, len(rows), engine.batch_size):
            chunk = slice(start, start + engine.batch_size)
            drawn.extend(engine.sample_rows(inputs[chunk], seeds[chunk], sampling))
        for (i, e), prompt_ids, (action_ids, completion) in zip(rows, inputs, drawn):
            problem = problems[i]
            answer = extract_answer(task, problem, completion.text)
            reward = 1.0 if task.grade(problem, answer) else 0.0
            groups[i][e].attempts.append(Attempt(prompt_ids, action_ids, completion.text, answer, reward))
            contents[i][e] = continue_conversation(contents[i][e], completion.text, settings.instruction)
    return groups


class ScoreTrainer:
    """Trains `model` (a checkpoint folder, hub name, .gguf or None for the embedded model) on `task`'s train
    split. `load_model(source) -> (model, tokenizer)` is injectable for tests."""

    def __init__(
        self,
        task: Task,
        model: str | None,
        out: Path,
        settings: ScoreSettings,
        device: str = "cpu",
        load_model: Callable[[str | None], tuple[Any, Any]] | None = None,
        log: Callable[[str], None] = print,
        make_vllm_generation: MakeGeneration = trl_vllm_generation,
    ):
        self.task, self.source, self.out, self.settings = task, model, Path(out), settings
        self.device, self.log = device, log
        self.load_model = load_model or load_for_training
        self.make_vllm_generation = make_vllm_generation
        if settings.rollout == "vllm" and (model is None or str(model).endswith(".gguf")):
            raise ConfigError(
                f"--rollout vllm loads the model into vLLM from a checkpoint folder or hub name, not "
                f"{model or 'the embedded GGUF model'}; convert it first (or use --format-warmup, whose output is one)"
            )

    # -- public ----------------------------------------------------------------------------------

    def train(self) -> Path:
        """Runs (or resumes) the schedule; returns the merged checkpoint folder."""
        import torch
        from accelerate import Accelerator

        from selfimprove.engines.hf import HFEngine

        s = self.settings
        merged = self.out / "merged"
        if (self.out / "done.json").is_file():
            self.log(f"{self.out}: already trained ({merged})")
            return merged
        self.out.mkdir(parents=True, exist_ok=True)
        accelerator = Accelerator(cpu=self.device == "cpu")
        torch.manual_seed(s.seed)
        policy, tokenizer, reference = self._models(accelerator.device)
        state = self._resume(policy, accelerator.is_main_process)
        trainable = [p for p in policy.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=s.learning_rate, weight_decay=0.0)
        if state is not None:
            optimizer.load_state_dict(torch.load(self.out / "checkpoint" / "optimizer.pt", weights_only=True))
        model, optimizer = accelerator.prepare(policy, optimizer)
        policy = accelerator.unwrap_model(model)
        policy.eval()  # no dropout: the policy that samples is the one whose gradient is taken
        problems = self._problems(accelerator.num_processes)
        vllm = None
        if s.rollout == "vllm":
            generation = self.make_vllm_generation(policy, accelerator, tokenizer, s.sampling(self.task, 0), s)
            vllm = VLLMRollout(generation, policy, tokenizer)
        done = state["global_step"] if state else 0
        offset = 0
        for objective, steps in s.schedule():
            for step in range(offset, offset + steps):
                if step < done:
                    continue
                chosen = self._problems_for(problems, step, accelerator.process_index, accelerator.num_processes)
                started = time.perf_counter()
                if vllm is not None:
                    vllm.sync()  # the weights the last update (or the resumed checkpoint) left
                    engine = vllm
                else:
                    engine = HFEngine.from_loaded(policy, tokenizer, batch_size=s.micro_batch * 2)
                groups = rollout(engine, self.task, chosen, s.episodes, objective.turns, s, step)
                sums = self._update(model, policy, reference, tokenizer, optimizer, accelerator, objective, groups)
                totals = accelerator.reduce(sums, reduction="sum").tolist()
                entry = _step_log(objective, step + 1, totals, time.perf_counter() - started)
                if accelerator.is_main_process:
                    self._record(entry)
                last_of_stage = step == offset + steps - 1
                if (step + 1) % s.save_every == 0 or last_of_stage:
                    accelerator.wait_for_everyone()
                    if accelerator.is_main_process:
                        self._save_checkpoint(policy, optimizer, step + 1)
            offset += steps
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            self._save_merged(policy, tokenizer, merged)
        accelerator.wait_for_everyone()
        return merged

    def logs(self) -> list[dict]:
        path = self.out / "log.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []

    # -- models ----------------------------------------------------------------------------------

    def _models(self, device: Any) -> tuple[Any, Any, Any]:
        """(policy, tokenizer, reference). With LoRA the reference is None: the policy with its adapter off."""
        s = self.settings
        model, tokenizer = self.load_model(self.source)
        model.to(device)
        if s.lora_r > 0:
            from peft import LoraConfig, get_peft_model

            config = LoraConfig(
                r=s.lora_r,
                lora_alpha=s.lora_alpha,
                lora_dropout=0.0,
                target_modules="all-linear",
                task_type="CAUSAL_LM",
            )
            return get_peft_model(model, config), tokenizer, None
        reference = copy.deepcopy(model).eval()
        for parameter in reference.parameters():
            parameter.requires_grad_(False)
        return model, tokenizer, reference

    def _resume(self, policy: Any, main_process: bool = True) -> dict | None:
        """Loads the last checkpoint's weights into `policy`; its state (step) or None."""
        folder = self.out / "checkpoint"
        if not (folder / "state.json").is_file():
            if main_process:
                self._trim_log(0)
            return None
        state = json.loads((folder / "state.json").read_text())
        if state["settings"] != _comparable(self.settings):
            raise ConfigError(
                f"{folder}: was trained with other settings; use a new --out or the same settings "
                f"(saved: {state['settings']})"
            )
        from safetensors.torch import load_file

        if self.settings.lora_r > 0:
            from peft import set_peft_model_state_dict

            set_peft_model_state_dict(policy, load_file(folder / "adapter_model.safetensors"))
        else:
            policy.load_state_dict(load_file(folder / "model.safetensors"), strict=False)
        if main_process:
            self._trim_log(state["global_step"])
            self.log(f"resuming {self.out} after step {state['global_step']}")
        return state

    def _trim_log(self, steps: int) -> None:
        """Forgets log lines of steps after the checkpoint: they are trained again."""
        kept = [entry for entry in self.logs() if entry["step"] <= steps]
        path = self.out / "log.jsonl"
        if path.is_file():
            path.write_text("".join(json.dumps(entry) + "\n" for entry in kept))

    # -- one step --------------------------------------------------------------------------------

    def _update(
        self,
        model: Any,
        policy: Any,
        reference: Any,
        tokenizer: Any,
        optimizer: Any,
        accelerator: Any,
        objective: StageObjective,
        groups: list[list[Episode]],
    ) -> Any:
        """One policy-gradient step on this process's episodes; returns the step's sums for the log."""
        import torch

        rows = []  # (prompt ids, action ids, advantage, beta, turn)
        for group in groups:
            returns = [objective.turn_returns([a.reward for a in ep.attempts]) for ep in group]
            for turn in range(objective.turns):
                advantages = leave_one_out([r[turn] for r in returns])
                for episode, advantage in zip(group, advantages):
                    attempt = episode.attempts[turn]
                    rows.append((attempt.prompt_ids, attempt.action_ids, advantage, objective.kl[turn], turn))
        episodes = sum(len(g) for g in groups)
        kl_sums = [0.0] * 2
        loss_total = 0.0
        micro = self.settings.micro_batch
        for start in range(0, len(rows), micro):
            chunk = rows[start : start + micro]
            logp, ref_logp, mask = _action_logprobs(model, policy, reference, tokenizer, chunk)
            advantages = torch.tensor([r[2] for r in chunk], dtype=logp.dtype, device=logp.device)
            betas = torch.tensor([r[3] for r in chunk], dtype=logp.dtype, device=logp.device)
            loss, kl = sequence_loss(logp, ref_logp, mask, advantages, betas, episodes)
            accelerator.backward(loss)
            loss_total += float(loss.detach())
            for row, value in zip(chunk, kl.tolist()):
                kl_sums[row[4]] += value
        if self.settings.max_grad_norm:
            accelerator.clip_grad_norm_(model.parameters(), self.settings.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad()
        return torch.tensor(_episode_sums(groups, kl_sums, loss_total), dtype=torch.float64, device=accelerator.device)

    # -- data ------------------------------------------------------------------------------------

    def _problems(self, processes: int) -> list[Problem]:
        # A generated task's train split never ends: without a limit, take as many as the schedule uses.
        steps = sum(n for _, n in self.settings.schedule())
        limit = self.settings.train_limit or max(1, steps) * self.settings.problems_per_step
        problems = list(self.task.problems("train", limit=limit))
        if not problems:
            raise ConfigError(f"task {self.task.name!r} has no train problems to train on")
        if self.settings.problems_per_step % processes:
            raise ConfigError(
                f"problems_per_step ({self.settings.problems_per_step}) must divide among {processes} processes"
            )
        random.Random(self.settings.seed).shuffle(problems)
        return problems

    def _problems_for(self, problems: list[Problem], step: int, rank: int, processes: int) -> list[Problem]:
        """Step `step`'s problems (cycling through the shuffled split), this process's share of them."""
        per_step = self.settings.problems_per_step
        chosen = [problems[(step * per_step + i) % len(problems)] for i in range(per_step)]
        return chosen[rank::processes]

    # -- files -----------------------------------------------------------------------------------

    def _record(self, entry: StepLog) -> None:
        with (self.out / "log.jsonl").open("a") as handle:
            handle.write(json.dumps(asdict(entry)) + "\n")
        rewards = " ".join(f"r{i + 1} {r:.2f}" for i, r in enumerate(entry.reward))
        kls = " ".join(f"kl{i + 1} {k:.3f}" for i, k in enumerate(entry.kl))
        moves = ""
        if entry.delta is not None:
            moves = f" Δ {entry.delta:+.2f} i→c {entry.incorrect_to_correct:.2f} c→i {entry.correct_to_incorrect:.2f}"
        self.log(f"{entry.stage} step {entry.step}: {rewards}{moves} {kls} loss {entry.loss:.3f} {entry.seconds:.1f}s")

    def _save_checkpoint(self, policy: Any, optimizer: Any, global_step: int) -> None:
        """Weights (or adapter), optimizer state and step, swapped in whole so an interruption never leaves half."""
        import torch
        from safetensors.torch import save_file

        with atomic_path(self.out / "checkpoint", directory=True) as partial:
            if self.settings.lora_r > 0:
                policy.save_pretrained(partial)
            else:
                weights = {k: v.detach().contiguous() for k, v in policy.state_dict().items()}
                save_file(_untied(weights), partial / "model.safetensors")
            torch.save(optimizer.state_dict(), partial / "optimizer.pt")
            state = {"global_step": global_step, "settings": _comparable(self.settings)}
            (partial / "state.json").write_text(json.dumps(state, indent=2))

    def _save_merged(self, policy: Any, tokenizer: Any, merged: Path) -> None:
        plain = policy.merge_and_unload() if self.settings.lora_r > 0 else policy
        with atomic_path(merged, directory=True) as partial:
            plain.save_pretrained(partial)
            tokenizer.save_pretrained(partial)
        record = {"merged": str(merged), "steps": len(self.logs()), "processes": processes()}
        (self.out / "done.json").write_text(json.dumps(record))
        self.log(f"trained model: {merged}")


def _action_logprobs(
    model: Any, policy: Any, reference: Any, tokenizer: Any, rows: list[tuple]
) -> tuple[Any, Any, Any]:
    """Log π and log π_ref of each row's action tokens given its prompt: [rows, tokens] plus the mask.

    Rows are left-padded so the actions sit at the right end and only the last (longest action + 1)
    positions' logits are computed (a 262k-token vocabulary makes full logits the memory cost)."""
    import torch

    device = next(policy.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    sequences = [list(r[0]) + list(r[1]) for r in rows]
    width = max(len(s) for s in sequences)
    longest = max(len(r[1]) for r in rows)
    ids = torch.tensor([[pad] * (width - len(s)) + s for s in sequences], device=device)
    attention = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in sequences], device=device)
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    keep = longest + 1
    targets = ids[:, width - longest :]
    mask = torch.tensor(
        [[0] * (longest - len(r[1])) + [1] * len(r[1]) for r in rows], device=device, dtype=torch.float32
    )

    def logprobs(net: Any) -> Any:
        logits = net(input_ids=ids, attention_mask=attention, position_ids=positions, logits_to_keep=keep).logits
        logits = logits[:, :-1].float()
        return logits.gather(-1, targets[..., None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)

    logp = logprobs(model)
    with torch.no_grad():
        if reference is not None:
            ref_logp = logprobs(reference)
        else:
            with policy.disable_adapter():
                ref_logp = logprobs(policy)
    return logp, ref_logp, mask


SUM_FIELDS = ("episodes", "r1", "r2", "i2c", "c2i", "kl1", "kl2", "edit", "loss", "tokens")


def _episode_sums(groups: list[list[Episode]], kl_sums: list[float], loss: float) -> list[float]:
    episodes = [ep for g in groups for ep in g]
    two = [ep for ep in episodes if len(ep.attempts) == 2]
    rewards = [[a.reward for a in ep.attempts] for ep in episodes]
    return [
        float(len(episodes)),
        sum(r[0] for r in rewards),
        sum(r[1] for r in rewards if len(r) > 1),
        sum(1.0 for ep in two if ep.attempts[0].reward < ep.attempts[1].reward),
        sum(1.0 for ep in two if ep.attempts[0].reward > ep.attempts[1].reward),
        kl_sums[0],
        kl_sums[1],
        sum(normalised_edit_distance(ep.attempts[0].text, ep.attempts[1].text) for ep in two),
        loss * len(episodes),  # the process's mean loss, weighted so that the sum over processes averages
        float(sum(len(a.action_ids) for ep in episodes for a in ep.attempts)),
    ]


def _step_log(objective: StageObjective, step: int, totals: list[float], seconds: float) -> StepLog:
    t = dict(zip(SUM_FIELDS, totals))
    n = max(t["episodes"], 1.0)
    two = objective.turns == 2
    reward = [t["r1"] / n] + ([t["r2"] / n] if two else [])
    return StepLog(
        stage=objective.name,
        step=step,
        episodes=int(t["episodes"]),
        reward=reward,
        delta=(reward[1] - reward[0]) if two else None,
        incorrect_to_correct=t["i2c"] / n if two else None,
        correct_to_incorrect=t["c2i"] / n if two else None,
        kl=[t["kl1"] / n] + ([t["kl2"] / n] if two else []),
        edit_distance=t["edit"] / n if two else None,
        loss=t["loss"] / n,
        tokens=t["tokens"] / n,
        seconds=seconds,
    )


def training_curve(logs: list[dict], blocks: int = 10) -> list[dict]:
    """The step log averaged over about `blocks` runs of consecutive steps (never across a stage's end): one
    step's episodes are too few to show a trend in the sampled rewards, or the KL drift that can come with it."""

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    size = max(1, math.ceil(len(logs) / blocks))
    stages = [list(run) for _, run in itertools.groupby(logs, key=lambda entry: entry["stage"])]
    curve = []
    for chunk in (run[i : i + size] for run in stages for i in range(0, len(run), size)):
        turns = len(chunk[0]["reward"])
        edits = [e["edit_distance"] for e in chunk if e["edit_distance"] is not None]
        curve.append(
            {
                "steps": f"{chunk[0]['step']}-{chunk[-1]['step']}",
                "stage": chunk[0]["stage"],
                "reward": [mean([e["reward"][t] for e in chunk]) for t in range(turns)],
                "kl": [mean([e["kl"][t] for e in chunk]) for t in range(turns)],
                "edit_distance": mean(edits) if edits else None,
            }
        )
    return curve


def _comparable(settings: ScoreSettings) -> dict:
    """The settings that change what a checkpoint means (a resumed run must share them)."""
    values = asdict(settings)
    for how_it_runs in ("save_every", "rollout", "vllm_mode", "vllm_server", "vllm_gpu_memory"):
        values.pop(how_it_runs)
    return values


def _untied(weights: dict[str, Any]) -> dict[str, Any]:
    """safetensors refuses tensors that share memory (tied embeddings): store a copy of each repeat."""
    seen: set[int] = set()
    out = {}
    for key, value in weights.items():
        pointer = value.data_ptr()
        out[key] = value.clone() if pointer in seen else value
        seen.add(pointer)
    return out


def compare_self_correction(
    task: Task,
    models: dict[str, str | None],
    store: Any,
    make_engine: Callable[[str | None], Any],
    limit: int | None = None,
    max_tokens: int = 96,
    instruction: str = DEFAULT_INSTRUCTION,
) -> list[dict]:
    """Greedy two-turn `self-correct` on the task's test split for each model (label → source), stored in
    `store` (so a re-run reuses finished runs): Acc@t1, Acc@t2, Δ, i→c, c→i, edit distance per model."""
    from selfimprove.runs import runner
    from selfimprove.runs.metrics import turn_metrics
    from selfimprove.strategies.self_correct import SelfCorrect

    strategy = SelfCorrect(turns=2, max_tokens=max_tokens, instruction=instruction)
    table = []
    for label, source in models.items():
        engine = make_engine(source)
        try:
            outcome = runner.execute(task, strategy, engine, store, limit=limit, show_progress=False)
        finally:
            engine.close()
        metrics = turn_metrics(store.solutions(outcome.run_id))
        if metrics is None:
            raise ConfigError(f"{task.name}: no graded test problems to evaluate self-correction on")
        table.append(
            {
                "model": label,
                "source": str(source) if source else "embedded",
                "run_id": outcome.run_id,
                "problems": metrics.problems,
                "acc_t1": metrics.accuracy[0],
                "acc_t2": metrics.accuracy[1],
                "delta": metrics.delta[0],
                "incorrect_to_correct": metrics.incorrect_to_correct[0],
                "correct_to_incorrect": metrics.correct_to_incorrect[0],
                "edit_distance": metrics.edit_distance[0],
            }
        )
    return table
