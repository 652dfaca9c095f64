"""The sandbox against programs that try to escape or cheat: each is contained, reported, and the next one runs."""

from __future__ import annotations

import os
import socket
import subprocess
import textwrap
import uuid
from pathlib import Path

import pytest

from selfimprove.grading.sandbox import Limits, Sandbox, detect_isolation

REPOSITORY = Path(__file__).resolve().parents[1]
LIMITS = Limits(cpu_seconds=2, wall_seconds=6, memory_bytes=512 << 20, file_bytes=1 << 20)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(LIMITS, workers=2)


def run(sandbox: Sandbox, source: str):
    return sandbox.run(textwrap.dedent(source))


def test_a_correct_program_passes_and_a_wrong_one_fails(sandbox):
    assert run(sandbox, "def f(x):\n    return x * 2\nassert f(4) == 8\n").status == "passed"
    result = run(sandbox, "def f(x):\n    return x + 2\nassert f(4) == 8, 'f(4) wrong'\n")
    assert result.status == "failed"
    assert "f(4) wrong" in result.message and "line 3" in result.message


def test_other_exceptions_are_errors_with_their_message(sandbox):
    result = run(sandbox, "undefined_name()\n")
    assert result.status == "error" and "NameError" in result.message


def test_infinite_loop_is_stopped_by_the_cpu_limit(sandbox):
    result = run(sandbox, "while True:\n    pass\n")
    assert result.status == "timeout"
    assert result.seconds < LIMITS.wall_seconds + 2


def test_sleeping_forever_is_stopped_by_the_wall_clock(sandbox):
    result = run(sandbox, "import time\ntime.sleep(1000)\n")
    assert result.status == "timeout" and "wall-clock" in result.message


def test_fork_bomb_is_contained(sandbox):
    result = run(sandbox, "import os\nwhile True:\n    os.fork()\n")
    assert result.status in ("error", "timeout")
    leftovers = subprocess.run(["pgrep", "-f", "selfimprove-sandbox"], capture_output=True, text=True).stdout
    assert leftovers.strip() == ""


def test_huge_allocation_is_a_memory_result(sandbox):
    result = run(sandbox, "block = bytearray(20 * 1024 ** 3)\n")
    assert result.status == "memory"


def test_writing_outside_the_work_directory_fails(sandbox, tmp_path):
    target = REPOSITORY / f"sandbox-escape-{uuid.uuid4().hex}"
    result = run(sandbox, f"open({str(target)!r}, 'w').write('escaped')\n")
    assert not target.exists()
    assert result.status == "error"
    # Its own work directory is writable.
    assert run(sandbox, "open('scratch.txt', 'w').write('ok')\nassert open('scratch.txt').read() == 'ok'\n").passed


@pytest.mark.skipif(not detect_isolation().hidden_home, reason="no mount namespace on this machine")
def test_files_under_home_are_hidden(sandbox):
    secret = Path.home() / f".selfimprove-sandbox-secret-{uuid.uuid4().hex}"
    secret.write_text("top secret")
    try:
        result = run(sandbox, f"print(open({str(secret)!r}).read())\n")
    finally:
        secret.unlink()
    assert "top secret" not in result.stdout
    assert result.status == "error"


def test_environment_secrets_are_not_passed_on(sandbox, monkeypatch):
    monkeypatch.setenv("SELFIMPROVE_TEST_SECRET", "hunter2")
    result = run(sandbox, "import os\nprint(dict(os.environ))\nprint(open('/proc/self/environ').read())\n")
    assert result.passed
    assert "hunter2" not in result.stdout


@pytest.mark.skipif(not detect_isolation().network, reason="no network namespace on this machine")
def test_no_connection_to_loopback(sandbox):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.5)
        port = server.getsockname()[1]
        result = run(sandbox, f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n")
        with pytest.raises(TimeoutError):
            server.accept()
    assert result.status == "error" and "OSError" in result.message


def test_killing_its_parent_does_not_reach_us(sandbox):
    result = run(sandbox, "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nimport time\ntime.sleep(1)\n")
    assert not result.passed
    assert os.getpid() > 0  # we are still here
    assert run(sandbox, "assert True\n").passed


def test_a_gigabyte_of_output_is_capped(sandbox):
    result = run(sandbox, "import sys\nfor _ in range(16384):\n    sys.stdout.write('x' * 65536)\n")
    assert result.status == "error" and "File too large" in result.message
    assert len(result.stdout) <= LIMITS.output_chars


def test_exiting_before_the_tests_is_not_a_pass(sandbox):
    for early_exit in ("import sys\nsys.exit(0)\n", "import os\nos._exit(0)\n", "raise SystemExit\n"):
        result = run(sandbox, early_exit + "assert False\n")
        assert result.status == "error", early_exit
        assert "before its tests finished" in result.message


def test_forging_the_result_file_is_not_a_pass(sandbox):
    forged = (
        "import json, os\n"
        "open('result', 'w').write(json.dumps({'nonce': 'guess', 'status': 'passed', 'message': ''}))\n"
        "os._exit(0)\n"
    )
    assert run(sandbox, forged).status == "error"


def test_tampering_with_assert_via_builtins_is_not_a_pass(sandbox):
    tampering = [
        "import builtins\nbuiltins.AssertionError = type('Quiet', (Exception,), {})\nassert 1 == 2\n",
        "import builtins\nbuiltins.BaseException = type('Quiet', (Exception,), {})\nassert 1 == 2\n",
        "import sys\nsys.excepthook = lambda *a: None\nassert 1 == 2\n",
        "import os, json\nos._exit = lambda code: None\njson.dumps = lambda *a, **k: 'x'\nassert 1 == 2\n",
    ]
    for source in tampering:
        result = run(sandbox, source)
        assert not result.passed, source


def test_the_harness_carries_on_through_a_batch_of_attacks():
    attacks = [
        "while True:\n    pass\n",
        "import os\nwhile True:\n    os.fork()\n",
        "x = bytearray(20 * 1024 ** 3)\n",
        "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n",
        "import sys\nsys.exit(0)\n",
        "def add(a, b):\n    return a + b\nassert add(2, 3) == 5\n",
    ]
    results = Sandbox(LIMITS, workers=2).run_many(attacks)
    assert [r.passed for r in results] == [False] * 5 + [True]
