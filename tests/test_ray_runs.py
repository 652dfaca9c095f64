"""Runs sharded across a real local Ray cluster (2 CPU workers on loopback, started here), each worker holding
a real transformers engine over a tiny random Llama saved to disk: the sharded run equals the local one sample
for sample, a worker SIGKILLed mid-run loses nothing and recomputes nothing, and a driver killed mid-run and
started again resumes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")
pytest.importorskip("transformers")

import selfimprove as si  # noqa: E402
from selfimprove.core.errors import ConfigError  # noqa: E402
from selfimprove.runs.ray_executor import RayExecutor, RaySettings, WorkerFailed  # noqa: E402
from selfimprove.runs.shard import Dispatch, Generated, ShardWorker, Solved  # noqa: E402

PROBLEMS = 12
SAMPLES = 4


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> str:
    from tiny_models import tiny_llama

    folder = tmp_path_factory.mktemp("tiny")
    model, tokenizer = tiny_llama(seed=3)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def cluster():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1",
             object_store_memory=256 * 2**20)  # fmt: skip
    yield
    ray.shutdown()


def _task():
    return si.QuestionsTask(items=[(f"What is {i} + {i}?", 2 * i) for i in range(PROBLEMS)])


def _strategy():
    return si.strategies.get("self-consistency")(samples=SAMPLES, max_tokens=24, temperature=1.0)


def _texts(store_path, run_id) -> list[tuple]:
    store = si.RunStore(store_path)
    try:
        return [(r["problem_id"], r["step"], r["sample"], r["text"]) for r in store.completion_rows(run_id)]
    finally:
        store.close()


def _answers(result) -> list[tuple]:
    return [(s["problem_id"], s["answer"], [x["answer"] for x in s["samples"]]) for s in result.solutions]


@pytest.fixture(scope="module")
def local_run(checkpoint, tmp_path_factory):
    path = tmp_path_factory.mktemp("local") / "runs.sqlite"
    result = si.run(_task(), _strategy(), si.EngineSpec("hf", {"model": checkpoint}), store=path, batch_size=3)
    return result, path


def test_a_worker_solves_a_dispatch_drawing_only_what_is_not_stored(checkpoint):
    worker = ShardWorker(_task(), _strategy(), si.EngineSpec("hf", {"model": checkpoint}))
    problems = list(_task().problems("test", limit=2))
    first = list(worker.solve(Dispatch(0, problems)))
    drawn = [e for e in first if isinstance(e, Generated)]
    assert isinstance(first[-1], Solved) and first[-1].generated == len(drawn) and first[-1].reused == 0
    stored: dict = {}
    for event in drawn[:3]:
        stored.setdefault(event.problem_id, {}).setdefault(event.step, {})[event.sample_id] = event.completion
    again = list(worker.solve(Dispatch(1, problems, stored)))
    redrawn = [(e.problem_id, e.step, e.sample_id) for e in again if isinstance(e, Generated)]
    assert again[-1].reused == 3
    assert redrawn == [(e.problem_id, e.step, e.sample_id) for e in drawn[3:]]
    assert [s.answer for _, s in again[-1].solutions] == [s.answer for _, s in first[-1].solutions]


def test_a_sharded_run_equals_the_local_run_sample_for_sample(cluster, checkpoint, local_run, tmp_path):
    local, local_path = local_run
    path = tmp_path / "runs.sqlite"
    sharded = si.run(_task(), _strategy(), si.EngineSpec("hf", {"model": checkpoint}), store=path, batch_size=3,
                     executor=RayExecutor(RaySettings(workers=2)))  # fmt: skip
    assert sharded.run_id == local.run_id
    assert _answers(sharded) == _answers(local)
    assert _texts(path, sharded.run_id) == _texts(local_path, local.run_id)
    counts = sharded.shards
    assert (counts.dispatched, counts.redispatched_problems, counts.workers_lost) == (PROBLEMS // 3, 0, 0)
    assert counts.stored == local.completions_generated
    assert sharded.metrics.accuracy == local.metrics.accuracy


def test_a_worker_killed_mid_run_loses_nothing_and_recomputes_nothing(cluster, checkpoint, local_run, tmp_path):
    local, local_path = local_run
    killed, failures = [], []

    def kill_the_first_worker_that_delivers(event) -> None:
        if isinstance(event, Generated) and not killed:
            killed.append(event.worker_pid)
            os.kill(event.worker_pid, signal.SIGKILL)  # mid-chunk: the rest of its chunk is not drawn yet
        if isinstance(event, WorkerFailed):
            failures.append(event)

    path = tmp_path / "runs.sqlite"
    executor = RayExecutor(RaySettings(workers=2), on_event=kill_the_first_worker_that_delivers)
    sharded = si.run(_task(), _strategy(), si.EngineSpec("hf", {"model": checkpoint}), store=path, batch_size=3,
                     executor=executor)  # fmt: skip
    counts = sharded.shards
    print(f"fault test: {counts}")
    assert len(failures) == 1 and failures[0].alive_again
    assert counts.workers_lost == 1
    assert 1 <= counts.redispatched_problems <= 3 and counts.dispatched == PROBLEMS // 3 + 1
    assert counts.reused >= 1  # what the killed worker delivered was handed to the re-dispatch, not drawn again
    assert counts.stored == local.completions_generated  # every completion drawn once: none lost, none twice
    assert len(sharded.solutions) == PROBLEMS
    assert _texts(path, sharded.run_id) == _texts(local_path, local.run_id)
    assert _answers(sharded) == _answers(local)


DRIVER = """
import sys
import selfimprove as si
from selfimprove.runs.ray_executor import RayExecutor, RaySettings
task = si.QuestionsTask(items=[(f"What is {i} + {i}?", 2 * i) for i in range(%(problems)d)])
strategy = si.strategies.get("self-consistency")(samples=%(samples)d, max_tokens=24, temperature=1.0)
si.run(task, strategy, si.EngineSpec("hf", {"model": sys.argv[1]}), store=sys.argv[2], batch_size=1,
       executor=RayExecutor(RaySettings(workers=1)))
"""


def test_a_driver_killed_mid_run_resumes_when_started_again(cluster, checkpoint, local_run, tmp_path):
    local, local_path = local_run
    path = tmp_path / "runs.sqlite"
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER % {"problems": PROBLEMS, "samples": SAMPLES}))
    driver = subprocess.Popen([sys.executable, str(script), checkpoint, str(path)], start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    stored_before = _wait_for_solutions(path, driver, at_least=2)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the cluster it started
    driver.wait()
    assert stored_before < local.completions_generated

    resumed = si.run(_task(), _strategy(), si.EngineSpec("hf", {"model": checkpoint}), store=path, batch_size=3,
                     executor=RayExecutor(RaySettings(workers=2)))  # fmt: skip
    assert resumed.run_id == local.run_id and len(resumed.solutions) == PROBLEMS
    assert resumed.shards.stored + stored_before == local.completions_generated
    assert _texts(path, resumed.run_id) == _texts(local_path, local.run_id)


def _wait_for_solutions(path: Path, driver: subprocess.Popen, at_least: int, timeout: float = 240) -> int:
    """Completions stored once the driver has stored `at_least` solutions (polled through a second connection)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert driver.poll() is None, "the driver ended before it could be killed"
        if path.exists():
            try:
                with sqlite3.connect(path) as db:
                    solved = db.execute("SELECT COUNT(*) FROM solutions").fetchone()[0]
                    if solved >= at_least:
                        return db.execute("SELECT COUNT(*) FROM completions").fetchone()[0]
            except sqlite3.OperationalError:
                pass  # the driver is still creating the tables
        time.sleep(0.05)
    raise AssertionError("the driver stored too few solutions in time")


def test_a_loaded_engine_cannot_be_shipped_to_workers():
    with pytest.raises(ConfigError, match="EngineSpec"):
        RayExecutor(RaySettings(workers=1)).start(_task(), _strategy(), object())
    with pytest.raises(ConfigError, match="--workers"):
        RaySettings(workers=0)


def test_the_cli_runs_on_ray_and_says_what_the_driver_counted(cluster, checkpoint, tmp_path):
    from typer.testing import CliRunner

    from selfimprove.cli import app

    data = tmp_path / "questions.jsonl"
    data.write_text("".join(f'{{"question": "What is {i} + 1?", "answer": {i + 1}}}\n' for i in range(4)))
    args = ["run", "--task", "questions", "--data", str(data), "--strategy", "self-consistency", "--samples", "2",
            "--max-tokens", "12", "--engine", "hf", "--model", checkpoint, "--store", str(tmp_path / "runs.sqlite"),
            "--batch-size", "2", "--no-progress", "--ray", "local", "--workers", "2"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "ray: 2 workers, 2 chunks dispatched, 0 problems re-dispatched, 0 workers lost" in result.output
    again = CliRunner().invoke(app, args)
    assert "ray: 2 workers, 0 chunks dispatched" in again.output  # resumed: nothing left to do
    bad = CliRunner().invoke(app, [*args[:-4], "--ray", "local", "-E", "nope=1"])
    assert bad.exit_code != 0 and "takes no setting 'nope'" in bad.output


def test_lmsi_samples_on_ray_what_it_samples_here(cluster, checkpoint, tmp_path):
    from selfimprove.training.lmsi import LMSI, LMSIEngines, LMSISettings
    from selfimprove.training.sft import SFTSettings

    settings = LMSISettings(paths=3, max_tokens=12, train_limit=6, test_limit=2, eval_samples=1, rounds=1)
    sft = SFTSettings(epochs=1, learning_rate=3e-3, lora_r=4, lora_alpha=8, batch_size=4)
    task = si.ArithmeticTask(level=1, shots=0)
    engines = LMSIEngines(device="cpu")
    here = LMSI(task, checkpoint, tmp_path / "here", settings, sft=sft, make_engine=engines.engine,
                make_sampler=engines.sampler(), log=lambda line: None)  # fmt: skip
    (local_round,) = here.run()
    sharded = LMSI(task, checkpoint, tmp_path / "ray", settings, sft=sft, make_engine=engines.engine,
                   make_sampler=engines.sampler_spec, sample_executor=RayExecutor(RaySettings(workers=2)),
                   log=lambda line: None)  # fmt: skip
    (ray_round,) = sharded.run()
    assert (ray_round.questions, ray_round.kept_paths, ray_round.training_rows) == (
        local_round.questions, local_round.kept_paths, local_round.training_rows)  # fmt: skip

    def sampled(store):
        (run,) = [r["run_id"] for r in store.runs() if "train" in r["label"]]
        return [(r["problem_id"], r["sample"], r["text"]) for r in store.completion_rows(run)]

    assert sampled(sharded.store) == sampled(here.store)
