"""Runs untrusted programs (model-written code with its tests) in child processes, never in ours.

Each program gets a fresh child process in its own session and a temp directory, stdin closed,
a scrubbed environment, rlimits on CPU seconds, address space, file size (which also caps its
output: stdout and stderr are files), open files and processes, and a wall-clock timeout that
kills its whole process group. Where the machine allows it (`unshare` from util-linux, run as
root, or unprivileged user namespaces), the program also gets:

- a new network namespace: no interface but a loopback that is down, so no connection anywhere;
- a new PID namespace: it cannot see or signal our processes, and everything it forked dies
  with it, even what escaped its process group;
- a private mount namespace with empty tmpfs over /root, /home, the user's home and the temp
  directories (only the interpreter and its own work directory are brought back);
- as root, its own unprivileged uid per worker slot, so it cannot write outside its work
  directory and its process limit is its own.

`detect_isolation()` says which of these this machine gives; `Isolation.gaps()` says, in words,
what is not isolated, and the grading commands print it.
"""

from __future__ import annotations

import functools
import json
import os
import queue
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

STATUSES = ("passed", "failed", "timeout", "memory", "error")
FIRST_SANDBOX_UID = 61000
_CHILD_SCRIPT = Path(__file__).with_name("sandbox_child.py")
_NAMESPACES = ["--net", "--pid", "--fork", "--kill-child", "--mount-proc"]


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 5
    wall_seconds: float = 10.0
    memory_bytes: int = 1 << 30
    file_bytes: int = 8 << 20
    """Largest file the program may write, its stdout and stderr included."""
    open_files: int = 64
    processes: int = 32
    output_chars: int = 2000
    """How much of the end of stdout and stderr a result keeps."""

    def rlimits(self) -> dict[str, int]:
        return {
            "cpu_seconds": self.cpu_seconds,
            "memory_bytes": self.memory_bytes,
            "file_bytes": self.file_bytes,
            "open_files": self.open_files,
            "processes": self.processes,
        }


@dataclass(frozen=True)
class Isolation:
    method: str  # "root-namespaces", "user-namespaces" or "rlimits-only"
    network: bool
    pid_namespace: bool
    hidden_home: bool
    separate_uid: bool

    def gaps(self) -> list[str]:
        """What a sandboxed program can still do here, in words (empty when fully isolated)."""
        gaps = []
        if not self.network:
            gaps.append("network is NOT isolated: programs can open sockets (no network namespace available)")
        if not self.pid_namespace:
            gaps.append("processes a program forks into a new session can outlive it (no PID namespace)")
        if not self.hidden_home:
            gaps.append("programs can read files under the home directories that this user can read")
        if not self.separate_uid:
            gaps.append("programs run as this user: they can write wherever this user can (not running as root)")
        return gaps


@dataclass(frozen=True)
class SandboxResult:
    status: str  # one of STATUSES
    message: str
    seconds: float
    stdout: str = ""
    stderr: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def _works(command: list[str]) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@functools.cache
def detect_isolation() -> Isolation:
    """The strongest isolation this machine gives, found by trying it once."""
    unshare = shutil.which("unshare")
    if unshare and os.geteuid() == 0 and _works([unshare, *_NAMESPACES, "true"]):
        return Isolation("root-namespaces", network=True, pid_namespace=True, hidden_home=True, separate_uid=True)
    if unshare and _works([unshare, "--user", "--map-root-user", *_NAMESPACES, "true"]):
        return Isolation("user-namespaces", network=True, pid_namespace=True, hidden_home=True, separate_uid=False)
    return Isolation("rlimits-only", network=False, pid_namespace=False, hidden_home=False, separate_uid=False)


def _prefix_command(isolation: Isolation) -> list[str]:
    unshare = shutil.which("unshare") or "unshare"
    if isolation.method == "root-namespaces":
        return [unshare, *_NAMESPACES]
    if isolation.method == "user-namespaces":
        return [unshare, "--user", "--map-root-user", *_NAMESPACES]
    return []


def _hidden_directories() -> list[str]:
    candidates = ["/tmp", "/var/tmp", "/dev/shm", "/root", "/home", str(Path.home()), tempfile.gettempdir()]
    return sorted({os.path.realpath(path) for path in candidates if os.path.isdir(path)})


def _interpreter() -> tuple[str, str]:
    """(the base interpreter, its installation prefix): a venv's interpreter is only a link to it."""
    python = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    return python, os.path.realpath(sys.base_prefix)


def _tail(path: Path, chars: int) -> str:
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - chars * 4))
        return handle.read().decode("utf-8", "replace")[-chars:]


class Sandbox:
    """Runs programs under `limits`, up to `workers` at a time."""

    def __init__(self, limits: Limits | None = None, workers: int | None = None):
        self.limits = limits or Limits()
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.isolation = detect_isolation()
        self._slots: queue.Queue[int] = queue.Queue()
        for slot in range(self.workers):
            self._slots.put(slot)

    def run(self, source: str) -> SandboxResult:
        """Runs `source` as a script to its end; it passes when it ran to the end without an exception."""
        slot = self._slots.get()
        try:
            return self._run_in_slot(source, slot)
        finally:
            self._slots.put(slot)

    def run_many(
        self, sources: Sequence[str], on_result: Callable[[int, SandboxResult], None] | None = None
    ) -> list[SandboxResult]:
        """Every source, `workers` at a time, results in input order; `on_result(index, result)` as each ends."""

        def one(index: int) -> SandboxResult:
            result = self.run(sources[index])
            if on_result is not None:
                on_result(index, result)
            return result

        if self.workers == 1 or len(sources) <= 1:
            return [one(i) for i in range(len(sources))]
        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(one, range(len(sources))))

    def _run_in_slot(self, source: str, slot: int) -> SandboxResult:
        root = Path(tempfile.mkdtemp(prefix="selfimprove-sandbox-"))
        try:
            return self._run_in(root, source, slot)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def _run_in(self, root: Path, source: str, slot: int) -> SandboxResult:
        work = root / "work"
        work.mkdir(mode=0o700)
        (work / "program.py").write_text(source, encoding="utf-8")
        shutil.copyfile(_CHILD_SCRIPT, work / "sandbox_child.py")
        uid = FIRST_SANDBOX_UID + slot if self.isolation.separate_uid else None
        if uid is not None:
            for path in (work, work / "program.py", work / "sandbox_child.py"):
                os.chown(path, uid, uid)
        python, prefix = _interpreter()
        nonce = secrets.token_hex(16)
        spec = {
            "workdir": str(work),
            "python": python,
            "python_prefix": prefix,
            "child": "sandbox_child.py",
            "hide": _hidden_directories() if self.isolation.hidden_home else [],
            "limits": self.limits.rlimits(),
            "uid": uid,
            "gid": uid,
            "nonce": nonce,
            "env": {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work), "LANG": "C.UTF-8"},
        }
        spec_path = root / "spec.json"
        spec_path.write_text(json.dumps(spec))
        spec_path.chmod(0o600)
        command = [*_prefix_command(self.isolation), python, "-I", "-B", str(work / "sandbox_child.py"), "boot"]
        command.append(str(spec_path))
        started = time.perf_counter()
        with (root / "stdout").open("wb") as out, (root / "stderr").open("wb") as err:
            process = subprocess.Popen(
                command,
                cwd=work,
                env=spec["env"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                close_fds=True,
            )
            timed_out = False
            try:
                process.wait(timeout=self.limits.wall_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                process.wait()
        seconds = time.perf_counter() - started
        stdout = _tail(root / "stdout", self.limits.output_chars)
        stderr = _tail(root / "stderr", self.limits.output_chars)
        status, message = self._classify(work / "result", nonce, process.returncode, timed_out, stderr)
        return SandboxResult(status, message, seconds, stdout, stderr)

    def _classify(
        self, result_path: Path, nonce: str, returncode: int, timed_out: bool, stderr: str
    ) -> tuple[str, str]:
        if timed_out:
            return "timeout", f"still running after the wall-clock limit of {self.limits.wall_seconds:g} s; killed"
        record = _read_result(result_path, nonce)
        if record is not None:
            return record["status"], record["message"]
        code = returncode
        killed_by = -code if code < 0 else code - 128 if code > 128 else None
        if killed_by == signal.SIGXCPU:
            return "timeout", f"used its CPU limit of {self.limits.cpu_seconds} s; killed"
        if killed_by == signal.SIGXFSZ:
            return "error", f"wrote more than its file-size limit of {self.limits.file_bytes} bytes (output included)"
        if "MemoryError" in stderr or "Cannot allocate memory" in stderr:
            return "memory", f"ran out of its memory limit of {self.limits.memory_bytes} bytes"
        if killed_by in set(signal.Signals):
            return "error", f"killed by signal {signal.Signals(killed_by).name} before its tests finished"
        last = stderr.strip().splitlines()[-1:] or [""]
        return "error", f"exited with code {code} before its tests finished {last[0]}".strip()


def _read_result(path: Path, nonce: str) -> dict | None:
    """The child's result record when it carries this run's nonce (anything else is not believed)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("nonce") != nonce or record.get("status") not in STATUSES:
        return None
    return {"status": record["status"], "message": str(record.get("message", ""))}
