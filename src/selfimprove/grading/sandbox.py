"""Runs untrusted programs (model-written code) in child processes, never in ours, and judges them from outside.

A `JudgedProgram` is judged: the candidate's code runs alone in the sandboxed child, and a judge
process (`judge.py`) runs the problem's tests, calling the candidate's functions over a pipe with
plain data both ways, so the verdict comes from a process the program cannot reach. Tests that
need the program's own objects (its classes) fall back to running code and tests as one script in
the child (`Sandbox.run`), and the result says `judged_in_process`.

Each program gets a fresh child process in its own session and a temp directory, stdin closed,
a scrubbed environment, rlimits on CPU seconds, address space, file size (which also caps its
output: stdout and stderr are files), open files and processes, and a wall-clock timeout that
kills its whole process group. Where the machine allows it (`unshare` from util-linux, run as
root, or unprivileged user namespaces), the program also gets:

- a new network namespace: no interface but a loopback that is down, so no connection anywhere;
- a new PID namespace: it cannot see or signal our processes, and everything it forked dies
  with it, even what escaped its process group;
- a private mount namespace with empty tmpfs over every top-level directory but the system's
  (data sets, repositories, homes, temp directories, /run's sockets; only the interpreter and its
  own work directory are brought back);
- as root, its own unprivileged uid per worker slot, so it cannot write outside its work
  directory and its process limit is its own.

`detect_isolation()` says which of these this machine gives; `Isolation.gaps()` says, in words,
what is not isolated, and the grading commands print it.
"""

from __future__ import annotations

import ast
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
_WIRE_MODULE = Path(__file__).with_name("wire.py")
_JUDGE_SCRIPT = Path(__file__).with_name("judge.py")
# Left visible to the program (read-only to its uid): what the interpreter and its libraries need.
_SYSTEM_DIRECTORIES = {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "dev", "proc", "sys"}
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
    call_seconds: float | None = None
    """Longest one call of the program's function may take when judged (None: up to the wall-clock limit)."""
    message_bytes: int = 16 << 20
    """Largest message between judge and program (arguments, a return value): a larger one is an error."""

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
    judged_in_process: bool = False
    """True when code and tests ran as one script in the child (the program could reach that verdict)."""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass(frozen=True)
class JudgedProgram:
    """A candidate program and the tests that judge it from outside its process."""

    program: str
    """Untrusted: the candidate's code (HumanEval: prompt + completion), run alone in the sandbox."""
    tests: str
    """Trusted (from the data set): test code run by the judge; names it needs from the program are proxies."""
    script: str
    """The same program and tests as one script, for judging in-process when the tests need its objects."""
    context: str = ""
    """Trusted: code the judge runs before the tests (HumanEval's prompt with its helpers, MBPP's setup)."""
    entry_points: tuple[str, ...] = ()
    """Names the tests must get from the program even where the context defines them (HumanEval's stub)."""
    in_process: str | None = None
    """Why these tests need the program's own objects (then `script` runs in-process); None: judged."""


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
    """Every top-level directory but the system's own: data sets, repositories, homes, sockets under /run."""
    tops = [entry.path for entry in os.scandir("/") if entry.is_dir(follow_symlinks=False)]
    candidates = [path for path in tops if os.path.basename(path) not in _SYSTEM_DIRECTORIES]
    candidates += ["/dev/shm", str(Path.home()), tempfile.gettempdir()]
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
        """Runs `source` as a script to its end; it passes when it ran to the end without an exception.
        The verdict is reported from inside the program's process: use `judge` where an RL reward depends on it."""
        slot = self._slots.get()
        try:
            return self._in_fresh_root(lambda root: self._run_in(root, source, slot))
        finally:
            self._slots.put(slot)

    def judge(self, program: JudgedProgram) -> SandboxResult:
        """The verdict of the judge process on `program`, or of the in-process script where its tests need that."""
        if program.in_process is not None:
            return self._in_process(program.script, program.in_process)
        slot = self._slots.get()
        try:
            result = self._in_fresh_root(lambda root: self._judge_in(root, program, slot))
        finally:
            self._slots.put(slot)
        if result.status == "in-process":
            return self._in_process(program.script, result.message)
        return result

    def _in_process(self, script: str, reason: str) -> SandboxResult:
        result = self.run(script)
        message = f"{result.message} [judged in-process: {reason}]".strip()
        return SandboxResult(result.status, message, result.seconds, result.stdout, result.stderr, True)

    def submit(self, item: str | JudgedProgram) -> SandboxResult:
        return self.judge(item) if isinstance(item, JudgedProgram) else self.run(item)

    def run_many(
        self, sources: Sequence[str | JudgedProgram], on_result: Callable[[int, SandboxResult], None] | None = None
    ) -> list[SandboxResult]:
        """Every script or judged program, `workers` at a time, results in input order; `on_result(index, result)`
        as each ends."""

        def one(index: int) -> SandboxResult:
            result = self.submit(sources[index])
            if on_result is not None:
                on_result(index, result)
            return result

        if self.workers == 1 or len(sources) <= 1:
            return [one(i) for i in range(len(sources))]
        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(one, range(len(sources))))

    @staticmethod
    def _in_fresh_root(body: Callable[[Path], SandboxResult]) -> SandboxResult:
        root = Path(tempfile.mkdtemp(prefix="selfimprove-sandbox-"))
        try:
            return body(root)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def _prepare(self, root: Path, source: str, slot: int, channel: tuple[int, int] | None) -> tuple[Path, dict]:
        """The work directory with the program and the child's scripts, and the spec that `boot` reads."""
        work = root / "work"
        work.mkdir(mode=0o700)
        (work / "program.py").write_text(source, encoding="utf-8")
        shutil.copyfile(_CHILD_SCRIPT, work / "sandbox_child.py")
        shutil.copyfile(_WIRE_MODULE, work / "wire.py")
        uid = FIRST_SANDBOX_UID + slot if self.isolation.separate_uid else None
        if uid is not None:
            for path in (work, work / "program.py", work / "sandbox_child.py", work / "wire.py"):
                os.chown(path, uid, uid)
        python, prefix = _interpreter()
        spec = {
            "workdir": str(work),
            "python": python,
            "python_prefix": prefix,
            "child": "sandbox_child.py",
            "hide": _hidden_directories() if self.isolation.hidden_home else [],
            "limits": self.limits.rlimits(),
            "uid": uid,
            "gid": uid,
            "nonce": None if channel else secrets.token_hex(16),
            "channel": list(channel) if channel else None,
            "max_bytes": self.limits.message_bytes,
            "env": {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work), "LANG": "C.UTF-8"},
        }
        return work, spec

    def _start_child(self, root: Path, work: Path, spec: dict, out, err) -> subprocess.Popen:
        spec_path = root / "spec.json"
        spec_path.write_text(json.dumps(spec))
        spec_path.chmod(0o600)
        command = [*_prefix_command(self.isolation), spec["python"], "-I", "-B", "-S", str(work / "sandbox_child.py")]
        return subprocess.Popen(
            [*command, "boot", str(spec_path)],
            cwd=work,
            env=spec["env"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            close_fds=True,
            pass_fds=spec["channel"] or (),
        )

    def _run_in(self, root: Path, source: str, slot: int) -> SandboxResult:
        work, spec = self._prepare(root, source, slot, channel=None)
        started = time.perf_counter()
        with (root / "stdout").open("wb") as out, (root / "stderr").open("wb") as err:
            process = self._start_child(root, work, spec, out, err)
            timed_out = not _wait(process, self.limits.wall_seconds)
            _kill(process)
        seconds = time.perf_counter() - started
        stdout, stderr = self._outputs(root)
        if timed_out:
            status, message = self._wall_clock()
        elif (record := _read_result(work / "result", spec["nonce"])) is not None:
            status, message = record["status"], record["message"]
        else:
            status, message = self._classify_exit(process.returncode, stderr)
        return SandboxResult(status, message, seconds, stdout, stderr)

    def _judge_in(self, root: Path, program: JudgedProgram, slot: int) -> SandboxResult:
        to_child_read, to_child_write = os.pipe()
        from_child_read, from_child_write = os.pipe()
        verdict_read, verdict_write = os.pipe()
        work, spec = self._prepare(root, program.program, slot, channel=(to_child_read, from_child_write))
        judge_spec = {
            "context": program.context,
            "tests": program.tests,
            "entry_points": list(program.entry_points),
            "names": sorted(_names_or_none(program.tests)),
            "call_seconds": self.limits.call_seconds,
            "wall_seconds": self.limits.wall_seconds,
            "max_bytes": self.limits.message_bytes,
            "fds": [to_child_write, from_child_read, verdict_write],
        }
        started = time.perf_counter()
        with (
            (root / "stdout").open("wb") as out,
            (root / "stderr").open("wb") as err,
            (root / "judge-stderr").open("wb") as judge_err,
        ):
            try:
                judge = subprocess.Popen(
                    [spec["python"], "-I", "-B", "-S", str(_JUDGE_SCRIPT)],
                    env={"PATH": spec["env"]["PATH"], "LANG": "C.UTF-8"},
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=judge_err,
                    start_new_session=True,
                    close_fds=True,
                    pass_fds=(to_child_write, from_child_read, verdict_write),
                )
                try:
                    child = self._start_child(root, work, spec, out, err)
                except BaseException:
                    _kill(judge)
                    os.close(verdict_read)
                    raise
            finally:  # the harness keeps only the verdict's end: the pipes' other holders are judge and child
                for fd in (to_child_read, to_child_write, from_child_read, from_child_write, verdict_write):
                    os.close(fd)
            try:
                judge.stdin.write(json.dumps(judge_spec).encode())
                judge.stdin.close()
            except BrokenPipeError:
                pass
            timed_out = not _wait(judge, self.limits.wall_seconds)
            _kill(judge)
            with os.fdopen(verdict_read, "rb") as handle:
                verdict = None if timed_out else _parse_verdict(handle.read(1 << 16))
            if verdict is not None and verdict["status"] == "ended":
                _wait(child, 1.0)  # it has ended (or is ending): its exit status says how
            _kill(child)
        seconds = time.perf_counter() - started
        stdout, stderr = self._outputs(root)
        if timed_out:
            status, message = self._wall_clock()
        elif verdict is None:
            status, message = "error", f"the judge ended without a verdict: {_tail(root / 'judge-stderr', 300)}"
        elif verdict["status"] == "ended":
            status, message = self._classify_exit(child.returncode, stderr)
            message = f"{verdict['message']}: {message}"
        else:
            status, message = verdict["status"], verdict["message"]
        return SandboxResult(status, message, seconds, stdout, stderr)

    def _outputs(self, root: Path) -> tuple[str, str]:
        """The end of the child's stdout and stderr, as much as a result keeps."""
        return _tail(root / "stdout", self.limits.output_chars), _tail(root / "stderr", self.limits.output_chars)

    def _wall_clock(self) -> tuple[str, str]:
        return "timeout", f"still running after the wall-clock limit of {self.limits.wall_seconds:g} s; killed"

    def _classify_exit(self, returncode: int, stderr: str) -> tuple[str, str]:
        """What a child's exit status says when no verdict or result record explains it."""
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


@functools.lru_cache(maxsize=4096)
def names_needed(tests: str) -> frozenset[str]:
    """Names the tests read but never bind themselves: what they may need from the program."""
    tree = ast.parse(tests)
    read, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return frozenset(read - bound)


def _names_or_none(tests: str) -> frozenset[str]:
    try:
        return names_needed(tests)
    except SyntaxError:
        return frozenset()  # the judge compiles the tests and reports their syntax error


def _wait(process: subprocess.Popen, seconds: float) -> bool:
    """True when `process` ended within `seconds`."""
    try:
        process.wait(timeout=seconds)
        return True
    except subprocess.TimeoutExpired:
        return False


def _kill(process: subprocess.Popen) -> None:
    """SIGKILL to its whole process group (its session), then reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def _parse_verdict(data: bytes) -> dict | None:
    try:
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("status") not in (*STATUSES, "ended", "in-process"):
        return None
    return {"status": record["status"], "message": str(record.get("message", ""))}


def _read_result(path: Path, nonce: str) -> dict | None:
    """The child's result record when it carries this run's nonce (anything else is not believed)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("nonce") != nonce or record.get("status") not in STATUSES:
        return None
    return {"status": record["status"], "message": str(record.get("message", ""))}
