"""The HTML report and `compare`, on runs made with the counting test double (no model needed),
and the report opened in a real headless Chromium."""

import json
import os
import re
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from doubles import CountingEngine
from selfimprove.cli import app
from selfimprove.reports.html import build_report
from selfimprove.runs import runner
from selfimprove.runs.store import RunStore
from selfimprove.strategies.cot import ChainOfThought
from selfimprove.strategies.self_consistency import SelfConsistency
from selfimprove.tasks.arithmetic import ArithmeticTask


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "runs.sqlite"
    store = RunStore(path)
    task = ArithmeticTask(level="1-3")
    sc = runner.execute(task, SelfConsistency(samples=4), CountingEngine(), store, limit=9, show_progress=False)
    cot = runner.execute(task, ChainOfThought(), CountingEngine(), store, limit=6, show_progress=False)
    # A run with turns, as a multi-turn strategy stores them (Solution.extra["turns"]).
    rows = store.solutions(cot.run_id)
    with store._db:
        for r in rows:
            turns = [{"answer": r["answer"], "correct": r["correct"]}, {"answer": "0", "correct": not r["correct"]}]
            store._db.execute(
                "UPDATE solutions SET extra = ? WHERE run_id = ? AND problem_id = ?",
                (json.dumps({**r["extra"], "turns": turns}), cot.run_id, r["problem_id"]),
            )
    yield path, store, sc.run_id, cot.run_id
    store.close()


def test_report_is_self_contained_and_complete(runs):
    path, store, sc, cot = runs
    page = build_report(store, [sc[:6], cot])
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from a network
    images = re.findall(r'<img src="([^"]+)"', page)
    assert images and all(src.startswith("data:image/png;base64,") for src in images)
    assert "maj@k" in page and "accuracy vs generated tokens" in page and "By level" in page
    assert "dashed: the same run" in page and "×: greedy" in page  # the greedy baseline is drawn
    assert "Self-correction turns" in page and "i→c" in page
    assert "Error correlation" in page and "two wrong samples agree" in page and "majority vote − greedy" in page
    assert "alt=\"vote accuracy by vote share\"" in page
    assert page.count('<details class="trace"') == 9 + 6
    assert "[" in page and "bootstrap" in page
    question = next(ArithmeticTask(level="1-3").problems()).question
    assert question in page  # the trace browser shows the question
    assert "The answer is 1." in page  # and sample texts


def test_a_one_level_run_gets_its_level_as_a_row_not_a_one_bar_chart(tmp_path):
    store = RunStore(tmp_path / "one.sqlite")
    task = ArithmeticTask(level=2)
    run = runner.execute(task, ChainOfThought(), CountingEngine(), store, limit=3, show_progress=False)
    page = build_report(store, [run.run_id])
    assert "By level" in page and 'alt="accuracy by level"' not in page
    store.close()


def test_report_and_compare_commands(runs, tmp_path):
    path, store, sc, cot = runs
    cli = CliRunner()
    out = tmp_path / "r.html"
    result = cli.invoke(app, ["report", sc, cot, "-o", str(out), "--store", str(path)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<!doctype html>")
    result = cli.invoke(app, ["compare", cot, sc, "--json", "--store", str(path)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["shared"] == 6 and data["run_a"] == cot
    assert data["b_wins"] + data["b_losses"] + data["both_right"] + data["both_wrong"] == 6
    result = cli.invoke(app, ["compare", cot, sc, "--store", str(path)])
    assert "McNemar exact p" in result.output
    result = cli.invoke(app, ["report", "nope", "--store", str(path)])
    assert result.exit_code == 2 and "no run 'nope'" in result.output


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(not CHROMIUM and not os.environ.get("CI"), reason="chromium not installed (.ci/run installs it)")
def test_report_renders_in_headless_chromium(runs, tmp_path):
    assert CHROMIUM, "CI must have chromium: .ci/run installs Debian's chromium"
    path, store, sc, cot = runs
    page = tmp_path / "report.html"
    page.write_text(build_report(store, [sc, cot]), encoding="utf-8")
    flags = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
        "--window-size=1280,2400",
    ]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console  # no console output at all: no errors, no warnings
    body = re.search(r"<body([^>]*)>", dom.stdout).group(1)
    assert 'data-render="done"' in body
    loaded, total = map(int, re.search(r'data-images="(\d+)/(\d+)"', body).groups())
    assert total >= 4 and loaded == total  # every plot image decoded
    shot = tmp_path / "report.png"
    subprocess.run([*flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 20_000
    keep = os.environ.get("SELFIMPROVE_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
