"""The child side of the sandbox: never imported by selfimprove, only run as a script in a child process.

Standard library only: it is copied (with `wire.py`) into each sandbox's work directory and run by
the base interpreter in isolated mode (`python -I`). Three modes:

`boot SPEC`: runs first, as root inside fresh namespaces where it can. It hides every directory
but the system's and the interpreter's behind empty tmpfs mounts (bringing back only the
interpreter and the work directory), reads and deletes the spec, then forks the program child:
that child sets the resource limits, drops to an unprivileged uid, gets its pipes on fds 3 (and 4)
and execs `run` or `serve`. The boot process waits and exits with the child's status (128 +
signal if it was killed), so the program's parent is never the grading process.

`serve MAX_BYTES`: the judged mode. Runs `program.py` (the candidate's code only, no tests), says
whether it loaded, then answers the judge's requests on fds 3 (in) and 4 (out): which names exist,
and calls of its functions with plain-data arguments, answered with plain data (`wire.py`). State
lives here between calls; arguments the call mutated go back. Nothing here can make a verdict:
the judge, another process, runs the tests and decides, so whatever this process does, the most
it can affect is the plain values its functions return.

`run`: the in-process mode, for tests that need the program's own objects. Reads the nonce,
closes fd 3, runs `program.py` (code and tests together) as `__main__`, and writes `result`: the
nonce, a status (passed / failed / memory / error) and a message. The harness only believes a
result that carries the nonce, so a program that exits early, or writes `result` itself, cannot
pass. A program that digs the nonce out of this process's memory could: that is why this mode is
only a fallback, and every result judged this way says so.
"""

import ctypes
import fcntl
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


def _pipes_for_child(spec):
    """The fds the program child must find on 3 (and 4): the nonce pipe, or the judge's two pipes."""
    if spec.get("channel"):
        return list(spec["channel"]), []
    read_end, write_end = os.pipe()
    os.write(write_end, spec["nonce"].encode())
    os.close(write_end)
    return [read_end], [read_end]


def _place_fds(fds):
    """Moves `fds` to 3, 4, ... in order (through high numbers first, so none overwrites another)."""
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in fds]
    for target, fd in enumerate(high, start=NONCE_FD):
        os.dup2(fd, target, inheritable=True)
        os.close(fd)


def boot(spec_path):
    with open(spec_path) as handle:
        spec = json.load(handle)
    os.unlink(spec_path)
    workdir = spec["workdir"]
    if spec["hide"]:
        hide_directories(spec["hide"], [spec["python_prefix"], workdir])
    fds, opened_here = _pipes_for_child(spec)
    mode = ["serve", str(spec["max_bytes"])] if spec.get("channel") else ["run"]
    pid = os.fork()
    if pid == 0:
        try:
            os.chdir(workdir)
            _place_fds(fds)  # before the open-files limit, which also caps fd numbers
            for name, value in spec["limits"].items():
                # CPU: the soft limit sends SIGXCPU (reported as a timeout); the hard one, a second later, SIGKILL.
                hard = value + 1 if name == "cpu_seconds" else value
                resource.setrlimit(LIMITS[name], (value, hard))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if spec["uid"] is not None:
                os.setgroups([])
                os.setgid(spec["gid"])
                os.setuid(spec["uid"])
            env = spec["env"]
            os.execve(spec["python"], [spec["python"], "-I", "-B", "-S", spec["child"], *mode], env)
        except BaseException as exc:  # noqa: BLE001 - report any set-up failure, then leave
            os.write(2, f"sandbox set-up failed: {exc!r}\n".encode())
            os._exit(120)
    # Only the program child holds the pipes now: when it ends, the judge sees the end of its pipe.
    for fd in set(fds) | set(opened_here):
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        os._exit(128 + os.WTERMSIG(status))
    os._exit(os.WEXITSTATUS(status))


def _load(source, namespace):
    """Runs the program's code; (status, message) of how it ended."""
    try:
        exec(compile(source, "program.py", "exec"), namespace)
    except SystemExit as exc:
        return "error", f"the program exited (SystemExit {exc.code!r}) before its tests finished"
    except AssertionError:
        return "failed", _describe(sys.exc_info())
    except MemoryError:
        return "memory", "MemoryError: the program ran out of its memory limit"
    except BaseException:  # noqa: BLE001 - any other exception is the program's error
        return "error", _describe(sys.exc_info())
    return "passed", ""


def serve(max_bytes):
    """Loads the program, then answers the judge until it closes the pipe."""
    sys.path.insert(0, os.getcwd())
    import wire

    channel = wire.Channel(NONCE_FD, NONCE_FD + 1, int(max_bytes))
    me = os.getpid()
    with open("program.py", encoding="utf-8") as handle:
        source = handle.read()
    namespace = {"__name__": "__main__", "__file__": "program.py", "__builtins__": __builtins__}
    status, message = _load(source, namespace)
    if os.getpid() != me:  # a process the program forked: only the program itself answers
        os._exit(0)
    try:
        channel.send({"load": [status, message[-2000:]]})
        while status == "passed":
            request = channel.receive()
            if request.get("op") == "lookup":
                channel.send({"names": {name: _kind(namespace, name, wire) for name in request["names"]}})
            elif request.get("op") == "call":
                reply = _call(namespace, request, wire)
                if os.getpid() != me:
                    os._exit(0)
                try:
                    channel.send(reply)
                except wire.Unsendable:  # a return value over the message limit
                    channel.send({"unsendable": f"a reply over the {channel.max_bytes}-byte message limit"})
                if "exited" in reply:
                    break
            else:
                break
    except wire.ChannelClosed:
        pass
    _flush()
    os._exit(0)


def _kind(namespace, name, wire):
    if name not in namespace:
        return "missing"
    value = namespace[name]
    if type(value) is type(os):
        return ["module", str(getattr(value, "__name__", ""))]
    if callable(value):
        return "callable"
    try:
        return ["value", wire.encode(value, strict=False)]
    except BaseException:  # noqa: BLE001 - not plain data
        return "other"


def _call(namespace, request, wire):
    """One call of the program's function: its plain-data result, exception, and mutated arguments."""
    try:
        function = namespace[request["name"]]
        args = [wire.decode(item) for item in request["args"]]
        kwargs = {key: wire.decode(item) for key, item in request["kwargs"].items()}
    except BaseException as exc:  # noqa: BLE001
        return {"raised": [type(exc).__name__, _text(exc)]}
    try:
        result = function(*args, **kwargs)
    except SystemExit as exc:
        return {"exited": _text(exc.code)}
    except MemoryError:
        return {"memory": "MemoryError"}
    except BaseException as exc:  # noqa: BLE001 - the program's exception crosses as type name + message
        return {"raised": [_name(exc), _text(exc)]}
    try:
        reply = {"ok": wire.encode(result, strict=False)}
        mutated = {}
        for key, value, sent in [
            *zip(range(len(args)), args, request["args"]),
            *((k, kwargs[k], request["kwargs"][k]) for k in kwargs),
        ]:
            if isinstance(value, (list, dict, set, bytearray)):
                now = wire.encode(value, strict=False)
                if now != sent:
                    mutated[str(key)] = now
        if mutated:
            reply["mutated"] = mutated
        return reply
    except BaseException as exc:  # noqa: BLE001 - not plain data (or it would not encode)
        kind = exc.kind if isinstance(exc, wire.Unsendable) else type(result).__name__
        return {"unsendable": f"a value of type {str(kind)[:200]}, which is not plain data"}


def _name(exc):
    try:
        return str(type(exc).__name__)[:100]
    except BaseException:  # noqa: BLE001
        return "Exception"


def _text(value):
    try:
        return str(value)[:2000]
    except BaseException:  # noqa: BLE001
        return "(a message that could not be turned into text)"


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - the program may have closed its streams
            pass


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
    elif sys.argv[1] == "serve":
        serve(sys.argv[2])
    else:
        run()
