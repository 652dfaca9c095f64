"""SCoRe: the objective checked by hand, and training on a toy copy-and-fix task a tiny model can learn.

The toy task: the question is one digit 0-3 ("2:"), the answer is that digit. The tiny Llama is first
taught the format with a weak copy habit (after ':' and after the revision cue it writes the question's
digit 30% of the time, a random digit otherwise: about 48% right), so that RL has a skill to sharpen in
seconds. A random model would need thousands of episodes to find the copy by chance.
"""

import json
import random
import re

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("accelerate")

from selfimprove.core.errors import ConfigError  # noqa: E402
from selfimprove.core.types import Problem  # noqa: E402
from selfimprove.runs.store import RunStore  # noqa: E402
from selfimprove.strategies.self_correct import REVISION_CUE  # noqa: E402
from selfimprove.training.score import (  # noqa: E402
    ScoreSettings,
    ScoreTrainer,
    compare_self_correction,
    training_curve,
)
from selfimprove.training.score_loss import (  # noqa: E402
    leave_one_out,
    sequence_loss,
    single_turn,
    stage_one,
    stage_two,
    token_kl,
)
from selfimprove.training.tokenizer import char_tokenizer  # noqa: E402

INSTRUCTION = "?"
ALPHABET = "0123:?\n " + "".join(sorted(set(REVISION_CUE)))


class CopyDigit:
    name = "copy-digit"
    stop = ("\n",)

    def problems(self, split="test", limit=None):
        for i in range(limit or 40):
            digit = str((i * 7 + (split == "test")) % 4)
            yield Problem(id=f"{split}-{i}", question=digit, reference=digit)

    def format_prompt(self, problem):
        return f"{problem.question}:"

    def extract(self, text):
        found = re.search(r"\d", text)
        return found.group(0) if found else None

    def grade(self, problem, answer):
        return answer == problem.reference

    def describe(self):
        return {"task": self.name}


def warm_started_toy_model(steps=600):
    """A 2-layer Llama that knows the transcript format and copies the question's digit 30% of the time."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = char_tokenizer(ALPHABET)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    rng = random.Random(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        texts = []
        for _ in range(32):
            digit = str(rng.randrange(4))
            first, second = (digit if rng.random() < 0.3 else str(rng.randrange(4)) for _ in range(2))
            texts.append(f"{digit}:{first}\n\n{INSTRUCTION}\n{REVISION_CUE}{second}\n")
        batch = tokenizer(texts, return_tensors="pt", padding=True)
        model(**batch, labels=batch["input_ids"]).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval(), tokenizer


@pytest.fixture(scope="module")
def toy_checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy") / "base"
    model, tokenizer = warm_started_toy_model()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def load_checkpoint(source):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(source), AutoTokenizer.from_pretrained(source)


def toy_settings(**overrides):
    values = dict(
        stage1_steps=20,
        stage2_steps=20,
        problems_per_step=8,
        episodes=8,
        max_tokens=3,
        lora_r=0,
        learning_rate=1e-3,
        instruction=INSTRUCTION,
        micro_batch=32,
        save_every=100,
    )
    values.update(overrides)
    return ScoreSettings(**values)


def train(checkpoint, out, settings, log=lambda line: None):
    trainer = ScoreTrainer(CopyDigit(), checkpoint, out, settings, load_model=load_checkpoint, log=log)
    return trainer, trainer.train()


# -- the objective, by hand ------------------------------------------------------------------------


def test_turn_returns_follow_each_stage():
    assert stage_one(0.1).turn_returns([1, 0]) == [0.0, 0.0]  # Stage I rewards attempt 2 only ...
    assert stage_one(0.1).turn_returns([0, 1]) == [0.0, 1.0]  # ... attempt 1 feels only its KL
    assert stage_one(0.1).kl == (0.1, 0.0)
    two = stage_two(alpha=10, beta1=0.01)
    assert two.turn_returns([0, 1]) == [1.0, 11.0]  # fixed: r1 + r2 for attempt 1; r2 + 10·(1 − 0) for attempt 2
    assert two.turn_returns([1, 0]) == [1.0, -10.0]  # broken: the bonus punishes attempt 2 only
    assert two.turn_returns([1, 1]) == [2.0, 1.0]
    assert two.kl == (0.01, 0.01)
    assert single_turn(0.01).turn_returns([1]) == [1.0]
    with pytest.raises(ValueError):
        two.turn_returns([1])


def test_leave_one_out_baseline_by_hand():
    assert leave_one_out([1.0, 0.0, 0.0, 1.0]) == [1 - 1 / 3, 0 - 2 / 3, 0 - 2 / 3, 1 - 1 / 3]
    assert leave_one_out([11.0, 1.0]) == [10.0, -10.0]
    assert leave_one_out([5.0]) == [0.0]


def test_loss_by_hand_and_kl_on_the_intended_turn_only():
    # Two rows: attempt 1 of an episode (β 0.5, advantage 0) and its attempt 2 (β 0, advantage 2).
    logp = torch.tensor([[-1.0, -2.0], [-0.5, -3.0]], requires_grad=True)
    ref = torch.tensor([[-1.5, -2.0], [-1.0, -1.0]])
    mask = torch.tensor([[1, 1], [1, 0]])  # the second row's last position is padding
    loss, kl = sequence_loss(logp, ref, mask, torch.tensor([0.0, 2.0]), torch.tensor([0.5, 0.0]), episodes=1)
    k3 = lambda q: torch.exp(torch.tensor(q)) - q - 1  # noqa: E731
    kl_first = float(k3(-0.5)) + 0.0  # q = ref − logp = −0.5 then 0
    assert kl.tolist() == pytest.approx([kl_first, float(k3(-0.5))])  # measured on both turns
    assert float(loss.detach()) == pytest.approx(0.5 * kl_first - 2.0 * (-0.5))
    loss.backward()
    # ... but weighted by each turn's β: attempt 2's tokens feel only the policy gradient (−A), not the KL
    # although π ≠ π_ref there; attempt 1's only the KL: d k3/d logp = 1 − exp(q); padding nothing.
    assert logp.grad[1].tolist() == pytest.approx([-2.0, 0.0])
    assert logp.grad[0].tolist() == pytest.approx([0.5 * (1 - float(torch.exp(torch.tensor(-0.5)))), 0.0])
    assert float(token_kl(torch.tensor(-1.0), torch.tensor(-1.0))) == 0.0


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="episodes"):
        ScoreSettings(episodes=1)
    with pytest.raises(ConfigError, match="mode"):
        ScoreSettings(mode="three-turn")
    assert [(o.name, n) for o, n in ScoreSettings(mode="single-turn").schedule()] == [("single-turn", 30)]


def test_training_curve_averages_blocks_of_steps_within_each_stage():
    def entry(stage, step, r1, r2, kl2):
        return {"stage": stage, "step": step, "reward": [r1, r2], "kl": [0.0, kl2], "edit_distance": 0.5}

    logs = [entry("stage-1", 1, 0.0, 0.5, 1.0), entry("stage-1", 2, 1.0, 0.5, 3.0), entry("stage-1", 3, 1.0, 1.0, 2.0)]
    logs += [entry("stage-2", 4, 0.5, 0.0, 0.0), entry("stage-2", 5, 0.5, 1.0, 4.0)]
    curve = training_curve(logs, blocks=3)  # blocks of 2 steps, cut where stage I ends
    assert [(row["steps"], row["stage"]) for row in curve] == [
        ("1-2", "stage-1"),
        ("3-3", "stage-1"),
        ("4-5", "stage-2"),
    ]
    assert curve[0]["reward"] == [0.5, 0.5] and curve[0]["kl"] == [0.0, 2.0]
    assert curve[2]["reward"] == [0.5, 0.5] and curve[2]["kl"] == [0.0, 2.0] and curve[2]["edit_distance"] == 0.5
    single = [{"stage": "single-turn", "step": 1, "reward": [1.0], "kl": [0.2], "edit_distance": None}]
    assert training_curve(single) == [
        {"steps": "1-1", "stage": "single-turn", "reward": [1.0], "kl": [0.2], "edit_distance": None}
    ]
    assert training_curve([]) == []


# -- training on the toy task ----------------------------------------------------------------------


def mean(values):
    return sum(values) / len(values)


def test_score_raises_the_second_attempt_reward_and_the_model_corrects(toy_checkpoint, tmp_path):
    trainer, merged = train(toy_checkpoint, tmp_path / "score", toy_settings())
    logs = trainer.logs()
    assert [entry["stage"] for entry in logs] == ["stage-1"] * 20 + ["stage-2"] * 20
    assert all(entry["episodes"] == 64 for entry in logs)
    shaped = [e["reward"][0] + e["reward"][1] + 10 * (e["reward"][1] - e["reward"][0]) for e in logs]
    assert mean(shaped[-8:]) > mean(shaped[:8]) + 0.5
    assert mean([e["reward"][1] for e in logs[-8:]]) > mean([e["reward"][1] for e in logs[:8]]) + 0.1
    # The merged model is an ordinary checkpoint; `self-correct` evaluates it before and after.
    store = RunStore(tmp_path / "runs.sqlite")
    from selfimprove.engines.hf import HFEngine

    table = compare_self_correction(
        CopyDigit(),
        {"base": toy_checkpoint, "score": str(merged)},
        store,
        make_engine=lambda source: HFEngine(model=source, batch_size=64),
        limit=40,
        max_tokens=3,
        instruction=INSTRUCTION,
    )
    base, after = table
    assert base["problems"] == after["problems"] == 40
    assert after["acc_t2"] > base["acc_t2"]


def test_stage_one_keeps_the_first_attempt_near_the_base_model(toy_checkpoint, tmp_path):
    strong = toy_settings(stage1_steps=15, stage2_steps=0, beta2=1.0, learning_rate=3e-3)
    none = toy_settings(stage1_steps=15, stage2_steps=0, beta2=0.0, learning_rate=3e-3)
    held, _ = train(toy_checkpoint, tmp_path / "strong", strong)
    free, _ = train(toy_checkpoint, tmp_path / "none", none)
    held_kl = mean([e["kl"][0] for e in held.logs()[-5:]])
    free_kl = mean([e["kl"][0] for e in free.logs()[-5:]])
    assert held_kl < 0.5 * free_kl


def test_an_interrupted_run_resumes_from_its_checkpoint(toy_checkpoint, tmp_path):
    settings = toy_settings(stage1_steps=3, stage2_steps=3, save_every=2)
    out = tmp_path / "run"

    def interrupt_after_step_3(line):
        if "step 3:" in line:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(toy_checkpoint, out, settings, log=interrupt_after_step_3)
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["global_step"] == 2  # step 3 was logged, then interrupted before its checkpoint
    lines = []
    trainer, merged = train(toy_checkpoint, out, settings, log=lines.append)
    assert any("resuming" in line and "after step 2" in line for line in lines)
    assert [e["step"] for e in trainer.logs()] == [1, 2, 3, 4, 5, 6]
    assert (merged / "config.json").is_file()
    with pytest.raises(ConfigError, match="other settings"):
        (out / "done.json").unlink()
        train(toy_checkpoint, out, toy_settings(stage1_steps=3, stage2_steps=3, alpha=5.0))


def test_lora_training_uses_the_adapter_free_model_as_reference(toy_checkpoint, tmp_path):
    settings = toy_settings(stage1_steps=2, stage2_steps=2, lora_r=4, lora_alpha=8, learning_rate=1e-2)
    trainer, merged = train(toy_checkpoint, tmp_path / "lora", settings)
    first = trainer.logs()[0]
    assert first["kl"] == pytest.approx([0.0, 0.0], abs=1e-6)  # before any update π is π_ref
    assert max(trainer.logs()[-1]["kl"]) > 0
    assert (tmp_path / "lora" / "checkpoint" / "adapter_model.safetensors").is_file()
    reloaded, _ = load_checkpoint(str(merged))
    base, _ = load_checkpoint(toy_checkpoint)
    changed = any(not torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), base.state_dict().values()))
    assert changed


def test_format_warmup_rows_repeat_the_models_own_first_attempt(toy_checkpoint):
    from selfimprove.engines.hf import HFEngine
    from selfimprove.training.score_warmup import repeat_rows

    engine = HFEngine(model=toy_checkpoint)
    rows = repeat_rows(CopyDigit(), engine, problems=6, instruction=INSTRUCTION, max_tokens=3)
    assert 0 < len(rows) <= 12 and len(rows) % 2 == 0
    for first, second in zip(rows[::2], rows[1::2]):
        assert first["completion"] == second["completion"] and first["completion"].strip()
        assert first["prompt"] == f"{first['prompt'][0]}:"  # attempt 1 kept as the model wrote it
        assert second["prompt"] == f"{first['prompt']}{first['completion']}\n\n{INSTRUCTION}\n{REVISION_CUE}"
        assert "\n" not in first["completion"]


def test_warmup_fixes_follow_a_wrong_first_attempt_with_the_worked_solution(toy_checkpoint):
    from selfimprove.engines.hf import HFEngine
    from selfimprove.training.score_warmup import repeat_rows

    class CopyDigitWithSolutions(CopyDigit):
        def problems(self, split="test", limit=None):
            for problem in super().problems(split, limit):
                yield Problem(problem.id, problem.question, problem.reference, {"solution": problem.reference})

    engine = HFEngine(model=toy_checkpoint)
    rows = repeat_rows(CopyDigitWithSolutions(), engine, problems=24, instruction=INSTRUCTION, max_tokens=3, fixes=True)
    pairs = list(zip(rows[::2], rows[1::2]))
    wrong = [(a, b) for a, b in pairs if a["completion"].strip()[:1] != a["prompt"][0]]
    right = [(a, b) for a, b in pairs if a["completion"].strip()[:1] == a["prompt"][0]]
    assert wrong and right  # the toy model is right about half the time
    for first, second in right:
        assert second["completion"] == first["completion"]  # a right attempt is repeated
    for first, second in wrong:
        assert second["completion"].strip() == first["prompt"][0]  # a wrong one is followed by the solution
    with pytest.raises(ConfigError, match="no worked solution"):
        repeat_rows(CopyDigit(), engine, problems=24, instruction=INSTRUCTION, max_tokens=3, fixes=True)


def test_warmup_fixes_without_a_warmup_is_refused(tmp_path):
    from typer.testing import CliRunner

    from selfimprove.cli import app

    out = tmp_path / "work"
    result = CliRunner().invoke(app, ["score", "--model", str(tmp_path / "m"), "--out", str(out), "--warmup-fixes"])
    assert result.exit_code != 0 and "--format-warmup N" in result.output and not out.exists()
