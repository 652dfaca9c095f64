"""LMSI and reward training launched as two CPU processes (torchrun, gloo; accelerate's own multi-CPU launch needs
MPI): one process samples, selects, saves and evaluates; both train (gradients averaged); the work folder is what
one process writes. Slow (each process imports torch), so it runs in CI's full suite."""

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("accelerate")
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from launch import two_cpu_processes  # noqa: E402
from tiny_models import separable_preferences, tiny_llama  # noqa: E402


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("base")
    model, tokenizer = tiny_llama(seed=3, hidden=32)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_lmsi_trains_one_model_across_two_processes(base, tmp_path):
    out = tmp_path / "lmsi"
    two_cpu_processes(
        *("lmsi", "--model", str(base), "--level", "1", "-O", "shots=0", "--out", str(out), "--rounds", "1"),
        *("--paths", "2", "--max-tokens", "8", "--train-limit", "8", "--test-limit", "2", "--eval-samples", "1"),
        *("--device", "cpu", "-T", "epochs=1", "-T", "lora_r=4", "-T", "lora_alpha=8", "-T", "batch_size=2"),
    )
    report = json.loads((out / "round-1" / "report.json").read_text())
    done = json.loads((out / "round-1" / "sft" / "done.json").read_text())
    assert done["processes"] == 2 and report["steps"] == done["steps"]
    rows = len((out / "round-1" / "train.jsonl").read_text().splitlines())
    assert report["training_rows"] == rows
    # two processes share each step's rows (2 each): about half the optimiser steps one process would take
    assert 1 <= done["steps"] <= -(-rows // 4) < -(-rows // 2)
    assert (out / "round-1" / "sft" / "merged" / "config.json").is_file()
    assert [row["problems"] for row in report["evaluation"].values()] == [2, 2]  # greedy and maj@1, evaluated once


def test_reward_training_across_two_processes(base, tmp_path):
    rows = [{"prompt": p.prompt, "chosen": p.responses[0], "rejected": p.responses[1]}
            for p in separable_preferences(24)]  # fmt: skip
    data = tmp_path / "prefs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "rm"
    done = two_cpu_processes(
        *("reward", "train", "--out", str(out), "--model", str(base), "--preferences", str(data)),
        *("--epochs", "1", "--members", "2", "--dev-share", "0.25"),
    )
    assert (out / "ensemble.json").is_file() and (out / "member-1" / "reward.json").is_file()
    assert "ensemble (min): held-out pair accuracy" in done.stdout
