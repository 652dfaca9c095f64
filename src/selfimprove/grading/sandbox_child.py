"""The child side of the sandbox: never imported by selfimprove, only run as a script in a child process.

Standard library only: it is copied into each sandbox's work directory and run by the base
interpreter in isolated mode (`python -I`). Two modes:

`boot SPEC`: runs first, as root inside fresh namespaces where it can. It hides the home and temp
directories behind empty tmpfs mounts (bringing back only the interpreter and the work directory),
reads and deletes the spec, then forks the program child: that child sets the resource limits,
drops to an unprivileged uid, receives the nonce on fd 3 and execs `run`. The boot process waits
and exits with the child's status (128 + signal if it was killed), so the program's parent is
never the grading process.

`run`: reads the nonce, closes fd 3, runs `program.py` as `__main__`, and writes `result`:
the nonce, a status (passed / failed / memory / error) and a message. The harness only believes a
result that carries the nonce, so a program that exits early, or writes `result` itself, cannot
pass. (A program that digs the nonce out of this process's memory could; that takes deliberate
introspection of the grader, not a wrong answer.)
"""

import ctypes
import json
import os
import resource
import sys

MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 4096, 16384, 1 << 18
NONCE_FD = 3

LIMITS = {
    "cpu_seconds": resource.RLIMIT_CPU,
    "memory_bytes": resource.RLIMIT_AS,
    "file_bytes": resource.RLIMIT_FSIZE,
    "open_files": resource.RLIMIT_NOFILE,
    "processes": resource.RLIMIT_NPROC,
}


def _mount(libc, source, target, fstype, flags, data):
    if libc.mount(source, target.encode(), fstype, flags, data) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {target}: {os.strerror(errno)}")


def _is_under(path, parent):
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def hide_directories(hide, keep):
    """Empty tmpfs over each directory in `hide`; each path in `keep` under one is bound back in place."""
    libc = ctypes.CDLL(None, use_errno=True)
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE, None)
    handles = [(path, os.open(path, os.O_PATH | os.O_DIRECTORY)) for path in keep]
    hidden = []
    for path in sorted(set(hide), key=len):
        if os.path.isdir(path) and not any(_is_under(path, h) for h in hidden):
            _mount(libc, b"tmpfs", path, b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=755,size=16m")
            hidden.append(path)
    for path, handle in handles:
        if any(_is_under(path, h) for h in hidden):
            os.makedirs(path, exist_ok=True)
            _mount(libc, f"/proc/self/fd/{handle}".encode(), path, None, MS_BIND | MS_REC, None)
        os.close(handle)


def boot(spec_path):
    with open(spec_path) as handle:
        spec = json.load(handle)
    os.unlink(spec_path)
    workdir = spec["workdir"]
    if spec["hide"]:
        hide_directories(spec["hide"], [spec["python_prefix"], workdir])
    read_end, write_end = os.pipe()
    os.write(write_end, spec["nonce"].encode())
    os.close(write_end)
    pid = os.fork()
    if pid == 0:
        try:
            os.chdir(workdir)
            for name, value in spec["limits"].items():
                # CPU: the soft limit sends SIGXCPU (reported as a timeout); the hard one, a second later, SIGKILL.
                hard = value + 1 if name == "cpu_seconds" else value
                resource.setrlimit(LIMITS[name], (value, hard))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if spec["uid"] is not None:
                os.setgroups([])
                os.setgid(spec["gid"])
                os.setuid(spec["uid"])
            if read_end == NONCE_FD:
                os.set_inheritable(NONCE_FD, True)
            else:
                os.dup2(read_end, NONCE_FD, inheritable=True)
            env = spec["env"]
            os.execve(spec["python"], [spec["python"], "-I", "-B", spec["child"], "run"], env)
        except BaseException as exc:  # noqa: BLE001 - report any set-up failure, then leave
            os.write(2, f"sandbox set-up failed: {exc!r}\n".encode())
            os._exit(120)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        os._exit(128 + os.WTERMSIG(status))
    os._exit(os.WEXITSTATUS(status))


def run():
    # Everything used after the program ran is bound now: the program may replace builtins or patch modules.
    write, close, dumps, exit_now, exc_info, getpid = os.write, os.close, json.dumps, os._exit, sys.exc_info, os.getpid
    assertion_error, memory_error, system_exit, base_exception = AssertionError, MemoryError, SystemExit, BaseException
    streams = (sys.stdout, sys.stderr)
    nonce = os.read(NONCE_FD, 256).decode()
    os.close(NONCE_FD)
    me = getpid()
    result = os.open("result", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open("program.py", encoding="utf-8") as handle:
        source = handle.read()
    namespace = {"__name__": "__main__", "__file__": "program.py", "__builtins__": __builtins__}
    status, message = "passed", ""
    try:
        exec(compile(source, "program.py", "exec"), namespace)
    except system_exit as exc:
        status, message = "error", f"the program exited (SystemExit {exc.code!r}) before its tests finished"
    except assertion_error:
        status, message = "failed", _describe(exc_info())
    except memory_error:
        status, message = "memory", "MemoryError: the program ran out of its memory limit"
    except base_exception:  # noqa: BLE001 - any other exception is the program's error
        status, message = "error", _describe(exc_info())
    if getpid() != me:  # a process the program forked: only the program itself reports
        exit_now(0)
    for stream in streams:
        try:
            stream.flush()
        except base_exception:  # noqa: BLE001 - the program may have closed its streams
            pass
    write(result, dumps({"nonce": nonce, "status": status, "message": message[-2000:]}).encode())
    close(result)
    exit_now(0)


def _describe(info):
    """`Type: message (line N)` of the program's exception; never raises, whatever the exception does."""
    kind, value, trace = info
    try:
        line = None
        while trace is not None:
            if trace.tb_frame.f_code.co_filename == "program.py":
                line = trace.tb_lineno
            trace = trace.tb_next
        text = f"{kind.__name__}: {value}".rstrip(": ")
        return text if line is None else f"{text} (program.py line {line})"
    except BaseException:  # noqa: BLE001
        return "an exception that could not be described"


if __name__ == "__main__":
    if sys.argv[1] == "boot":
        boot(sys.argv[2])
    else:
        run()
