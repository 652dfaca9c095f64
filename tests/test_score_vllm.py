"""SCoRe's vLLM rollout path (`--rollout vllm`), as far as it runs without vLLM or a GPU.

vLLM itself cannot run here (it needs CUDA), so these tests pin what is ours: the refusals, the rows
made from a vLLM-shaped answer, and the trainer's wiring (one generate call per turn with every row,
the weights pushed before every step's rollout) through a test double that has the interface of TRL's
`VLLMGeneration` and draws its rows from the policy with the `hf` engine. It checks the wiring, not vLLM.
"""

import importlib.util

import pytest

pytest.importorskip("torch")
pytest.importorskip("accelerate")

from typer.testing import CliRunner  # noqa: E402

from selfimprove.cli import app  # noqa: E402
from selfimprove.core.errors import ConfigError  # noqa: E402
from selfimprove.core.types import Sampling  # noqa: E402
from selfimprove.engines.hf import HFEngine, drawn_completion  # noqa: E402
from selfimprove.training.score import ScoreSettings, ScoreTrainer  # noqa: E402
from selfimprove.training.score_vllm import require_vllm  # noqa: E402
from test_score import INSTRUCTION, CopyDigit, load_checkpoint, toy_checkpoint, toy_settings  # noqa: E402, F401

VLLM_INSTALLED = importlib.util.find_spec("vllm") is not None


class HFStandInForVLLM:
    """TRL `VLLMGeneration`'s interface; rows drawn by the policy itself with `hf`, weight syncs counted."""

    def __init__(self, policy, tokenizer, sampling):
        self.engine = HFEngine.from_loaded(policy, tokenizer, batch_size=256)
        self.sampling = sampling
        self.syncs, self.calls = 0, []

    def sync_weights(self):
        self.syncs += 1

    def generate(self, prompts, images, num_generations):
        assert images is None and num_generations == 1
        self.calls.append((self.syncs, len(prompts)))
        rows = self.engine.sample_rows(prompts, list(range(len(prompts))), self.sampling)
        return prompts, [drawn for drawn, _ in rows], None, None


def test_settings_and_sources_vllm_cannot_take():
    with pytest.raises(ConfigError, match="rollout"):
        ScoreSettings(rollout="sglang")
    with pytest.raises(ConfigError, match="vllm_mode"):
        ScoreSettings(rollout="vllm", vllm_mode="remote")
    with pytest.raises(ConfigError, match="vllm_gpu_memory"):
        ScoreSettings(rollout="vllm", vllm_gpu_memory=1.5)
    for source in (None, "/models/model.gguf"):
        with pytest.raises(ConfigError, match="checkpoint folder or hub name"):
            ScoreTrainer(CopyDigit(), source, "unused", ScoreSettings(rollout="vllm"))


@pytest.mark.skipif(VLLM_INSTALLED, reason="vLLM is installed here")
def test_without_vllm_the_command_fails_before_loading_anything(tmp_path):
    with pytest.raises(ConfigError, match=r"pip install 'selfimprove\[train,vllm\]'"):
        require_vllm()
    out = tmp_path / "work"
    result = CliRunner().invoke(
        app, ["score", "--model", str(tmp_path / "no-such-model"), "--out", str(out), "--rollout", "vllm"]
    )
    assert result.exit_code != 0
    assert "needs vLLM" in result.output
    assert not out.exists()  # nothing was loaded, trained or written


def test_rows_from_token_ids_keep_the_end_token_and_cut_text_at_a_stop(toy_checkpoint):  # noqa: F811
    _, tokenizer = load_checkpoint(toy_checkpoint)
    ids = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    eos = tokenizer.eos_token_id
    sampling = Sampling(temperature=1.0, max_tokens=8, stop=("\n",))
    drawn, completion = drawn_completion(tokenizer, ids("21") + [eos], {eos}, sampling, 3, 0.5)
    assert drawn == ids("21") + [eos] and completion.text == "21" and completion.finish_reason == "stop"
    # vLLM stops on a stop string after the token that completed it and returns that token too
    drawn, completion = drawn_completion(tokenizer, ids("3\n"), {eos}, sampling, 3, 0.5)
    assert drawn == ids("3\n") and completion.text == "3" and completion.completion_tokens == 2
    drawn, completion = drawn_completion(tokenizer, ids("01230123"), {eos}, sampling, 3, 0.5)
    assert completion.finish_reason == "length" and drawn == ids("01230123")


def test_trainer_samples_every_turn_in_one_call_after_pushing_the_weights(toy_checkpoint, tmp_path):  # noqa: F811
    doubles = []

    def make_generation(policy, accelerator, tokenizer, sampling, settings):
        assert settings.vllm_mode == "colocate" and sampling.temperature == 1.0 and sampling.stop
        doubles.append(HFStandInForVLLM(policy, tokenizer, sampling))
        return doubles[-1]

    settings = toy_settings(stage1_steps=2, stage2_steps=2, rollout="vllm")
    trainer = ScoreTrainer(
        CopyDigit(),
        toy_checkpoint,
        tmp_path / "run",
        settings,
        load_model=load_checkpoint,
        log=lambda line: None,
        make_vllm_generation=make_generation,
    )
    merged = trainer.train()
    (double,) = doubles
    rows = settings.problems_per_step * settings.episodes
    assert double.syncs == 4  # once before each step's rollout
    assert double.calls == [(step, rows) for step in (1, 2, 3, 4) for _turn in (1, 2)]
    logs = trainer.logs()
    assert [e["episodes"] for e in logs] == [rows] * 4
    assert all(0.0 <= r <= 1.0 for e in logs for r in e["reward"]) and (merged / "config.json").is_file()
    # Switching the rollout engine does not change what the checkpoint means: a resumed run may use hf.
    (tmp_path / "run" / "done.json").unlink()
    hf_again = ScoreTrainer(
        CopyDigit(),
        toy_checkpoint,
        tmp_path / "run",
        toy_settings(stage1_steps=2, stage2_steps=2),
        load_model=load_checkpoint,
        log=lambda line: None,
    )
    hf_again.train()
    assert [e["step"] for e in hf_again.logs()] == [1, 2, 3, 4]
