"""The scale-out path of `selfimprove score`: two CPU processes (torchrun, gloo; on GPUs `accelerate launch` with
configs/accelerate/ddp.yaml starts the same code). Each process
plays its share of a step's problems, gradients are averaged across them, one process logs, saves and
evaluates. Slow (two interpreters import torch), so it runs in CI's full suite, not the fast one."""

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("accelerate")
pytestmark = pytest.mark.slow

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from launch import two_cpu_processes  # noqa: E402
from tiny_models import tiny_llama  # noqa: E402


def test_two_cpu_processes_train_one_model(tmp_path):
    model, tokenizer = tiny_llama(seed=3, hidden=32)
    model.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    out = tmp_path / "score"
    two_cpu_processes(
        *("score", "--model", str(tmp_path / "base"), "--level", "1", "--out", str(out)),
        *("--stage1-steps", "1", "--stage2-steps", "1", "--problems-per-step", "2", "--episodes", "2"),
        *("--max-tokens", "6", "--lora-r", "4", "--test-limit", "2", "--micro-batch", "4"),
    )
    assert json.loads((out / "score" / "done.json").read_text())["processes"] == 2
    log = [json.loads(line) for line in (out / "score" / "log.jsonl").read_text().splitlines()]
    assert [(e["stage"], e["step"], e["episodes"]) for e in log] == [("stage-1", 1, 4), ("stage-2", 2, 4)]
    assert (out / "score" / "merged" / "config.json").is_file()
    report = json.loads((out / "report.json").read_text())
    assert [row["model"] for row in report] == ["base", "score"] and report[1]["problems"] == 2
    curve = json.loads((out / "curves.json").read_text())["score"]
    assert [(row["steps"], row["stage"]) for row in curve] == [("1-1", "stage-1"), ("2-2", "stage-2")]
