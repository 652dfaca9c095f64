"""The judge: runs a problem's tests (trusted code, from the data set) in its own process and decides the verdict.

Started by `Sandbox.judge` as a script of the base interpreter (`python -I -B judge.py`), outside
the program's namespaces, made non-dumpable so that even a program running as the same user can
neither read its memory nor open its pipes. It reads its spec on stdin, runs the trusted context
(HumanEval's prompt, MBPP's setup), binds the names the tests need from the program to proxies,
and runs the tests. A proxy call sends plain-data arguments to the sandboxed program over a pipe
and gets plain data back (`wire.py`), so a returned object cannot fake equality, `assert` runs
here, and the program never holds anything that could sign a verdict. The verdict goes to the
harness on a pipe only this process holds.

Standard library only, like `sandbox_child.py`: the judge must start fast and never import the
program's code.
"""

import builtins
import ctypes
import json
import os
import sys
import time
import types


def _load_wire():
    """`wire.py` beside this file, by path: the judge's directory is not on its sys.path (-I)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wire.py")
    module = types.ModuleType("wire")
    with open(path, encoding="utf-8") as handle:
        exec(compile(handle.read(), path, "exec"), module.__dict__)
    return module


wire = _load_wire()

PR_SET_DUMPABLE = 4
LOAD_STATUSES = ("passed", "failed", "memory", "error")


class Abort(BaseException):
    """Ends the tests whatever they catch: a BaseException, and also remembered by the session."""

    status = "error"


class ProgramEnded(Abort):
    status = "ended"


class ProgramTimeout(Abort):
    status = "timeout"


class ProgramMemory(Abort):
    status = "memory"


class InProcessNeeded(Abort):
    status = "in-process"


class ProgramException(Exception):
    """An exception of the program's own type, known here only by its name and message."""


class Session:
    """The judge's side of one program: requests over the pipe, and the first abort, which sticks."""

    def __init__(self, channel, call_seconds, deadline):
        self.channel, self.call_seconds, self.deadline = channel, call_seconds, deadline
        self.abort = None

    def fail(self, abort):
        if self.abort is None:
            self.abort = abort
        raise self.abort

    def request(self, message, what):
        if self.abort is not None:
            raise self.abort
        try:
            self.channel.send(message)
            left = self.deadline - time.monotonic()
            wait = left if self.call_seconds is None else min(left, self.call_seconds)
            return self.channel.receive(timeout=max(0.0, wait))
        except wire.ChannelTimeout:
            limit = self.call_seconds if self.call_seconds is not None else "its wall-clock"
            self.fail(ProgramTimeout(f"{what} did not answer within {limit} s"))
        except wire.ChannelClosed:
            self.fail(ProgramEnded(f"the program ended during {what}"))
        except wire.WireError as exc:
            self.fail(Abort(f"the program broke the protocol during {what}: {exc}"))
        except wire.Unsendable as exc:
            self.fail(Abort(f"the request for {what} is too large to send: {exc}"))

    def lookup(self, names):
        reply = self.request({"op": "lookup", "names": names}, "the lookup of its names")
        found = reply.get("names") if isinstance(reply, dict) else None
        if not isinstance(found, dict):
            self.fail(Abort("the program broke the protocol: a malformed lookup answer"))
        return found


class ProgramFunction:
    """Stands for a function of the program: calls cross the pipe as plain data."""

    __slots__ = ("_name", "_session")

    def __init__(self, name, session):
        self._name, self._session = name, session

    def __repr__(self):
        return f"<program function {self._name}>"

    @property
    def __name__(self):
        return self._name

    def __call__(self, *args, **kwargs):
        session, what = self._session, f"a call to {self._name}"
        try:
            sent_args = [wire.encode(arg) for arg in args]
            sent_kwargs = {key: wire.encode(value) for key, value in kwargs.items()}
        except wire.Unsendable as exc:
            session.fail(InProcessNeeded(f"the tests pass {self._name} {exc}"))
        reply = session.request({"op": "call", "name": self._name, "args": sent_args, "kwargs": sent_kwargs}, what)
        if not isinstance(reply, dict):
            session.fail(Abort(f"the program broke the protocol during {what}"))
        try:
            if "ok" in reply:
                result = wire.decode(reply["ok"])
                _apply_mutations(args, kwargs, reply.get("mutated", {}))
                return result
        except (wire.WireError, TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            session.fail(Abort(f"the program broke the protocol during {what}: {exc}"))
        if "raised" in reply and _pair_of_strings(reply["raised"]):
            name, message = reply["raised"]
            raise _exception(name, message)
        if "unsendable" in reply:
            raise ProgramException(
                f"{self._name} returned {str(reply['unsendable'])[:300]}: only plain data (None, bool, int, float, "
                "complex, str, bytes, list, tuple, set, dict) reaches the tests"
            )
        if "memory" in reply:
            session.fail(ProgramMemory(f"MemoryError: the program ran out of its memory limit in {what}"))
        if "exited" in reply:
            session.fail(Abort(f"the program exited (SystemExit {str(reply['exited'])[:60]}) during {what}"))
        session.fail(Abort(f"the program broke the protocol during {what}: an unknown answer"))


def _pair_of_strings(value):
    return type(value) is list and len(value) == 2 and all(type(item) is str for item in value)


def _exception(name, message):
    """A built-in exception class of that name (so `except ValueError` in the tests works), else ours."""
    kind = getattr(builtins, name, None) if name.isidentifier() else None
    if isinstance(kind, type) and issubclass(kind, Exception):
        return kind(message)
    return ProgramException(f"{name}: {message}")


def _apply_mutations(args, kwargs, mutated):
    """Arguments the program's function changed in place change here too, as they would in-process."""
    if type(mutated) is not dict:
        raise wire.WireError("malformed mutations")
    for key, data in mutated.items():
        target = args[int(key)] if key.isdigit() else kwargs[key]
        _refill(target, wire.decode(data))


def _refill(old, new):
    if type(old) is not type(new):
        raise wire.WireError(f"a {type(old).__name__} argument came back as a {type(new).__name__}")
    if type(old) is list and len(old) == len(new):
        for index, item in enumerate(new):
            if type(old[index]) in (list, dict, set, bytearray) and type(old[index]) is type(item):
                _refill(old[index], item)
            else:
                old[index] = item
    elif type(old) is dict and old.keys() == new.keys():
        for key, item in new.items():
            if type(old[key]) in (list, dict, set, bytearray) and type(old[key]) is type(item):
                _refill(old[key], item)
            else:
                old[key] = item
    elif type(old) in (list, bytearray):
        old[:] = new
    else:
        old.clear()
        old.update(new)


def _describe_failure(info, source, filename):
    kind, value, trace = info
    line = None
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == filename:
            line = trace.tb_lineno
        trace = trace.tb_next
    text = f"{kind.__name__}: {value}".rstrip(": ")
    if line is None:
        return text
    code = source.splitlines()[line - 1].strip() if 0 < line <= len(source.splitlines()) else ""
    return f"{text} (tests line {line}: {code[:160]})"


def judge(spec, session):
    """(status, message) of the tests against the program behind `session`."""
    loaded = session.channel.receive(timeout=max(0.0, session.deadline - time.monotonic()))
    if type(loaded) is not dict or not _pair_of_strings(loaded.get("load")):
        return "error", "the program broke the protocol: a malformed load answer"
    status, message = loaded["load"]
    if status not in LOAD_STATUSES:
        return "error", "the program broke the protocol: an unknown load status"
    if status != "passed":
        return status, message
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    exec(compile(spec["context"], "context", "exec"), namespace)
    entry_points = set(spec["entry_points"])
    wanted = entry_points | (set(spec["names"]) - set(dir(builtins)) - set(namespace))
    for name, kind in session.lookup(sorted(wanted)).items():
        if name not in wanted:
            continue
        if kind == "callable":
            namespace[name] = ProgramFunction(name, session)
        elif type(kind) is list and len(kind) == 2 and kind[0] == "value":
            namespace[name] = wire.decode(kind[1])
        elif type(kind) is list and len(kind) == 2 and kind[0] == "module" and kind[1] in sys.stdlib_module_names:
            namespace[name] = __import__(kind[1])  # the judge's own copy of that standard module
        elif name in entry_points:  # the program lacks it: the context's stub must not stand in for it
            namespace.pop(name, None)
    tests = spec["tests"]
    try:
        exec(compile(tests, "tests", "exec"), namespace)
    except Abort:
        pass
    except AssertionError:
        if session.abort is None:
            return "failed", _describe_failure(sys.exc_info(), tests, "tests")
    except BaseException:  # noqa: BLE001 - any other exception in the tests is the program's error
        if session.abort is None:
            return "error", _describe_failure(sys.exc_info(), tests, "tests")
    if session.abort is not None:  # even if the tests swallowed it
        return session.abort.status, str(session.abort)
    return "passed", ""


def main():
    spec = json.loads(sys.stdin.read())
    ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    to_program, from_program, verdict_fd = spec["fds"]
    channel = wire.Channel(from_program, to_program, spec["max_bytes"])
    session = Session(channel, spec["call_seconds"], time.monotonic() + spec["wall_seconds"])
    try:
        status, message = judge(spec, session)
    except wire.ChannelClosed:
        status, message = "ended", "the program ended before it loaded"
    except wire.ChannelTimeout:
        status, message = "timeout", "the program did not load within its wall-clock limit"
    except (wire.WireError, KeyError, TypeError, ValueError) as exc:
        status, message = "error", f"the program broke the protocol while loading: {exc}"[:2000]
    except Abort as exc:
        status, message = exc.status, str(exc)
    except BaseException as exc:  # noqa: BLE001 - the trusted context itself failed: say so, never pass
        status, message = "error", f"the judge could not run the problem's context: {type(exc).__name__}: {exc}"
    os.write(verdict_fd, json.dumps({"status": status, "message": str(message)[-2000:]}).encode())
    os.close(verdict_fd)
    os._exit(0)


if __name__ == "__main__":
    main()
