import sqlite3

import pytest

from doubles import CountingEngine
from selfimprove.core.types import Completion, Prompt, Sampling
from selfimprove.runs import runner
from selfimprove.runs.recorder import RecordingEngine
from selfimprove.runs.store import RunStore
from selfimprove.strategies.cot import ChainOfThought
from selfimprove.strategies.self_consistency import SelfConsistency
from selfimprove.tasks.arithmetic import ArithmeticTask


@pytest.fixture
def store(tmp_path):
    s = RunStore(tmp_path / "runs.sqlite")
    yield s
    s.close()


def test_recorder_generates_only_what_is_missing(store):
    engine = CountingEngine()
    store.open_run("r1", "label", {})
    recorder = RecordingEngine(engine, store, "r1", session=1)
    prompt = Prompt("q", problem_id="p1", step="sample")
    first = recorder.generate([prompt], 4, Sampling())
    assert len(engine.calls) == 4
    again = RecordingEngine(engine, store, "r1", session=2).generate([prompt], 6, Sampling())
    assert [c.text for c in again[0][:4]] == [c.text for c in first[0]]
    assert engine.calls[4:] == [("p1", "sample", 4), ("p1", "sample", 5)]


def test_duplicate_completion_is_refused(store):
    store.open_run("r1", "label", {})
    store.add_completion("r1", "p", "s", 0, Completion("a"), session=1)
    with pytest.raises(sqlite3.IntegrityError):
        store.add_completion("r1", "p", "s", 0, Completion("b"), session=1)


def test_run_id_depends_on_config_not_limit(store):
    task, strategy, engine = ArithmeticTask(), SelfConsistency(samples=3), CountingEngine()
    a = runner.execute(task, strategy, engine, store, limit=2, show_progress=False)
    b = runner.execute(task, strategy, engine, store, limit=4, show_progress=False)
    c = runner.execute(task, SelfConsistency(samples=3, temperature=0.9), engine, store, limit=1, show_progress=False)
    assert a.run_id == b.run_id != c.run_id
    assert (b.solved_now, b.completions_generated) == (2, 2 * 4)


def test_interrupted_run_resumes_without_recomputing(store):
    task, strategy = ArithmeticTask(), SelfConsistency(samples=4)
    per_problem = 1 + 4  # greedy baseline + samples
    broken = CountingEngine(fail_after=13)
    with pytest.raises(KeyboardInterrupt):
        runner.execute(task, strategy, broken, store, limit=6, batch_size=2, show_progress=False)
    stored_before = store.completion_rows(runner.run_id_for(runner.run_config(task, strategy, broken)))
    assert len(stored_before) == 13

    engine = CountingEngine()
    outcome = runner.execute(task, strategy, engine, store, limit=6, batch_size=2, show_progress=False)
    rows = store.completion_rows(outcome.run_id)
    assert len(rows) == 6 * per_problem
    assert len(engine.calls) == 6 * per_problem - 13  # nothing stored was generated again
    keys = {(r["problem_id"], r["step"], r["sample"]) for r in rows}
    assert len(keys) == len(rows)
    assert not keys.isdisjoint(set(broken.calls))
    assert set(broken.calls).isdisjoint(engine.calls)
    assert len(store.solutions(outcome.run_id)) == 6

    third = CountingEngine()
    again = runner.execute(task, strategy, third, store, limit=6, show_progress=False)
    assert third.calls == [] and again.solved_now == 0


def test_solutions_keep_the_trace(store):
    task = ArithmeticTask()
    outcome = runner.execute(task, SelfConsistency(samples=5), CountingEngine(), store, limit=1, show_progress=False)
    (row,) = store.solutions(outcome.run_id)
    # Samples 0..4 answer 0,1,2,0,1: a tie between "0" and "1", broken by first appearance.
    assert row["votes"] == {"0": 2, "1": 2, "2": 1}
    assert row["answer"] == "0"
    assert row["confidence"] == pytest.approx(0.4)
    assert [s["step"] for s in row["samples"]] == ["greedy"] + ["sample"] * 5
    assert row["extra"]["greedy_answer"] == "0"


def test_cot_stores_one_greedy_sample(store):
    outcome = runner.execute(ArithmeticTask(), ChainOfThought(), CountingEngine(), store, limit=3, show_progress=False)
    assert len(store.completion_rows(outcome.run_id)) == 3


def test_not_a_store_file_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    from selfimprove.core.errors import SelfImproveError

    with pytest.raises(SelfImproveError, match="junk.sqlite"):
        RunStore(path)


def test_stores_from_before_the_question_column_are_migrated(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE solutions (run_id TEXT NOT NULL, problem_id TEXT NOT NULL, position INTEGER NOT NULL, "
            "reference TEXT, answer TEXT, correct INTEGER, confidence REAL, votes TEXT NOT NULL, "
            "samples TEXT NOT NULL, extra TEXT NOT NULL, metadata TEXT NOT NULL, created REAL NOT NULL, "
            "PRIMARY KEY (run_id, problem_id))"
        )
        db.execute("INSERT INTO solutions VALUES ('r', 'p', 0, '1', '1', 1, 1.0, '{}', '[]', '{}', '{}', 0)")
    store = RunStore(path)
    (row,) = store.solutions("r")
    assert row["question"] is None and row["correct"] is True
    outcome = runner.execute(ArithmeticTask(), ChainOfThought(), CountingEngine(), store, limit=1, show_progress=False)
    assert store.solutions(outcome.run_id)[0]["question"].startswith(next(ArithmeticTask().problems()).question[:10])
    store.close()


def test_log_probabilities_are_stored_with_their_completion(tmp_path):
    from selfimprove.core.errors import ConfigError
    from selfimprove.core.types import Completion, Sampling

    store = RunStore(tmp_path / "s.sqlite")
    store.open_run("r", "label", {})
    with_logprobs = Completion(
        "ab", 3, 2, logprobs=[-0.5, -1.25], top_logprobs=[[("a", -0.5), ("b", -2.0)], [("b", -1.25)]]
    )
    store.add_completion("r", "p", "sample", 0, with_logprobs, 1)
    store.add_completion("r", "p", "sample", 1, Completion("c", 3, 1), 1)
    got = store.completions("r", "p", "sample")
    assert got[0].logprobs == [-0.5, -1.25] and got[0].top_logprobs == [[("a", -0.5), ("b", -2.0)], [("b", -1.25)]]
    assert got[1].logprobs is None and got[1].top_logprobs is None
    with pytest.raises(ConfigError, match=r"repeat_penalty = 0 \(--repeat-penalty\): must be > 0"):
        Sampling(repeat_penalty=0)
    with pytest.raises(ConfigError, match="frequency_penalty"):
        Sampling(frequency_penalty=3)


def test_a_second_process_on_the_same_run_is_refused_then_takes_over_once_the_first_is_gone(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from selfimprove.core.errors import RunBusyError

    path = tmp_path / "runs.sqlite"
    task, strategy, engine = ArithmeticTask(level="1"), ChainOfThought(), CountingEngine()
    run_id = runner.run_id_for(runner.run_config(task, strategy, engine))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from selfimprove.runs.store import RunStore; "
         f"RunStore({str(path)!r}).claim_run({run_id!r}); print('claimed', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "claimed"
        store = RunStore(path)
        with pytest.raises(RunBusyError, match=rf"run {run_id} is being computed by process {holder.pid} on "):
            runner.execute(task, strategy, engine, store, limit=3, show_progress=False)
        assert store.solved(run_id) == set() and engine.calls == []  # refused before computing anything
        os.kill(holder.pid, signal.SIGKILL)  # dies holding the claim
        holder.wait(timeout=10)
        outcome = runner.execute(task, strategy, engine, store, limit=3, show_progress=False)
        assert outcome.solved_now == 3 and len(store.solved(run_id)) == 3
        assert store._db.execute("SELECT COUNT(*) FROM run_claims").fetchone()[0] == 0  # released at the end
        started = time.time()
        store.claim_run(run_id)  # the same process may claim again (nested runs of one pipeline)
        store.claim_run(run_id)
        assert time.time() - started < 5
    finally:
        holder.kill()
