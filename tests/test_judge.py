"""Judged grading: the tests run in the judge, the program's functions answer over a pipe with plain data.

Every attack here is graded not-passed; honest programs (stateful, mutating, raising, returning
subclasses of built-ins) are graded as they would be in-process.
"""

from __future__ import annotations

import json
import math
import os
import textwrap
from collections import Counter, OrderedDict, namedtuple
from pathlib import Path

import pytest

import humaneval_problems
from selfimprove.grading import wire
from selfimprove.grading.sandbox import JudgedProgram, Limits, Sandbox, detect_isolation, names_needed
from selfimprove.tasks.humaneval import HumanEvalTask
from selfimprove.tasks.mbpp import MBPPTask

LIMITS = Limits(cpu_seconds=2, wall_seconds=6, memory_bytes=512 << 20, message_bytes=1 << 20)
MBPP = Path(__file__).resolve().parents[2] / "shared" / "data" / "mbpp"
needs_data = pytest.mark.skipif(not MBPP.is_dir(), reason="../shared/data not present")


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(LIMITS, workers=2)


def judged(program: str, tests: str = "assert square(3) == 9\nassert square(-2) == 4\n", **fields) -> JudgedProgram:
    program, tests = textwrap.dedent(program), textwrap.dedent(tests)
    return JudgedProgram(program=program, tests=tests, script=f"{program}\n{tests}", **fields)


# --- the wire: plain data only, and a decoder that trusts nothing ---------------------------------------------


def roundtrip(value):
    return wire.decode(json.loads(json.dumps(wire.encode(value))))


def test_plain_values_cross_exactly():
    values = [
        None, True, False, 0, -(10**400), 2**64 + 1, 0.1 + 0.2, -0.0, math.inf, -math.inf, 1e-310, 3 + 4j,
        "", "snow ☃ \udcff", b"\x00\xff", bytearray(b"ab"), [1, [2, [3]]], (1, "a", (None,)), {1, 2}, frozenset({"x"}),
        {"a": 1, (1, 2): [3], 4: {"nested": {5}}}, int, ValueError,
    ]  # fmt: skip
    for value in values:
        back = roundtrip(value)
        assert back == value and type(back) is type(value), value
    assert math.isnan(roundtrip(math.nan))
    assert math.copysign(1, roundtrip(-0.0)) == -1


def test_the_judge_side_refuses_anything_but_exact_builtins():
    class Liar(int):
        def __eq__(self, other):
            return True

    for value in (Liar(1), object(), print, range(3), iter([1]), Counter(a=1), type("Mine", (), {})):
        with pytest.raises(wire.Unsendable):
            wire.encode(value)


def test_the_program_side_sends_subclasses_as_their_base_type():
    Point = namedtuple("Point", "x y")
    assert wire.decode(wire.encode(Point(1, 2), strict=False)) == (1, 2)
    assert type(wire.decode(wire.encode(Counter("aab"), strict=False))) is dict
    assert wire.decode(wire.encode(OrderedDict(b=1), strict=False)) == {"b": 1}
    with pytest.raises(wire.Unsendable):
        wire.encode(object(), strict=False)
    loop: list = []
    loop.append(loop)
    with pytest.raises(wire.Unsendable):
        wire.encode(loop)


@pytest.mark.parametrize(
    "data",
    [
        1, 1.5, {"a": 1}, [], [1], ["i"], ["i", 5], ["i", "zz"], ["f", "nope"], ["x", "1"], ["d", "a"],
        ["s", ["l", ["i", "0x1"]]], ["d", ["l"], None], ["y", "0g"], ["bt", "print"], ["bt", "__import__"],
        ["c", "0x1p0"], ["l", []],
    ],
)  # fmt: skip
def test_the_decoder_refuses_malformed_values(data):
    with pytest.raises(wire.WireError):
        wire.decode(data)


def test_deep_nesting_is_refused():
    deep = ["l"]
    for _ in range(wire.MAX_DEPTH + 5):
        deep = ["l", deep]
    with pytest.raises(wire.WireError):
        wire.decode(deep)


def test_channel_bounds_size_and_time():
    read_fd, write_fd = os.pipe()
    try:
        channel = wire.Channel(read_fd, write_fd, max_bytes=100)
        with pytest.raises(wire.Unsendable):
            channel.send(["s", "x" * 200])
        channel.send({"ok": None})
        assert channel.receive(timeout=1) == {"ok": None}
        with pytest.raises(wire.ChannelTimeout):
            channel.receive(timeout=0.05)
        os.write(write_fd, (10**6).to_bytes(8, "big"))
        with pytest.raises(wire.WireError):
            channel.receive(timeout=1)
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_names_the_tests_need_from_the_program():
    tests = "import math\ndef check(candidate):\n    x = helper(2)\n    assert candidate(x) == math.pi\ncheck(f)\n"
    assert names_needed(tests) == {"helper", "f"}


# --- honest programs are judged as in-process ------------------------------------------------------------------


def test_right_and_wrong_answers(sandbox):
    assert sandbox.judge(judged("def square(x):\n    return x * x\n")).status == "passed"
    result = sandbox.judge(judged("def square(x):\n    return x * abs(x)\n"))
    assert result.status == "failed" and "tests line 2" in result.message and "square(-2)" in result.message
    assert not result.judged_in_process


def test_state_lives_in_the_program_and_mutated_arguments_come_back(sandbox):
    program = """
        calls = 0
        def counter():
            global calls
            calls += 1
            return calls
        def fill(xs, table, seen, *, extra):
            xs.sort(); xs[0].append(9) if isinstance(xs[0], list) else None
            table["new"] = len(xs); seen.add("s"); extra.append("k")
    """
    tests = """
        assert counter() == 1 and counter() == 2
        xs, table, seen, extra = [[1], [0]], {"a": [1]}, set(), []
        fill(xs, table, seen, extra=extra)
        assert xs == [[0, 9], [1]] and table == {"a": [1], "new": 2} and seen == {"s"} and extra == ["k"]
        ys = [3, 1, 2]
        assert fill(ys, {}, set(), extra=[]) is None and ys == [1, 2, 3]
    """
    result = sandbox.judge(judged(program, tests))
    assert result.status == "passed", result.message


def test_exceptions_cross_by_type_name(sandbox):
    program = (
        "class Mine(Exception):\n    pass\n"
        "def f(x):\n    if x < 0:\n        raise ValueError('negative')\n    raise Mine('own')\n"
    )
    tests = """
        try:
            f(-1)
        except ValueError as exc:
            assert str(exc) == 'negative'
        f(1)
    """
    result = sandbox.judge(judged(program, tests))
    assert result.status == "error" and "Mine: own" in result.message


def test_a_program_module_the_tests_read_is_the_judges_own(sandbox):
    program = "import sys\ndef size(t):\n    return sys.getsizeof(t)\n"
    assert sandbox.judge(judged(program, "assert size((1, 2)) == sys.getsizeof((1, 2))\n")).passed
    assert sandbox.judge(judged("def kind(t, k):\n    return [x for x in t if isinstance(x, k)]\n",
                                "assert kind((1, 'a', 2.0), str) == ['a']\n")).passed  # fmt: skip


def test_a_missing_function_and_a_broken_program_are_errors(sandbox):
    assert "NameError" in sandbox.judge(judged("def other(x):\n    return 1\n")).message
    result = sandbox.judge(judged("def square(x) return 1\n"))
    assert result.status == "error" and "SyntaxError" in result.message


def test_limits_per_call_and_per_program():
    program = "import time\ndef square(x):\n    time.sleep(3)\n    return x * x\n"
    result = Sandbox(Limits(call_seconds=0.5, wall_seconds=6), workers=1).judge(judged(program))
    assert result.status == "timeout" and "0.5 s" in result.message and result.seconds < 2.5
    spin = Sandbox(LIMITS, workers=1).judge(judged("def square(x):\n    while True:\n        pass\n"))
    assert spin.status == "timeout" and "CPU limit" in spin.message
    hungry = Sandbox(LIMITS, workers=1).judge(judged("def square(x):\n    return len(bytearray(20 * 1024 ** 3))\n"))
    assert hungry.status == "memory"


# --- attacks: each is graded not-passed ------------------------------------------------------------------------

FORGE_AND_EXIT = """
    import json, os
    def forge(found):
        for fd in (3, 4):  # the judged mode's pipes
            try:
                os.write(fd, b'{{"status": "passed"}}')
            except OSError:
                pass
        with open("result", "w") as out:  # the in-process mode's result record
            out.write(json.dumps({{"nonce": {nonce}, "status": "passed", "message": ""}}))
        os._exit(0)
    def square(x):
        {search}
        forge(found)
"""

ATTACKS = {
    "forge from frame locals": FORGE_AND_EXIT.format(
        nonce="found",
        search="""import sys
        found, frame = None, sys._getframe()
        while frame is not None:
            found = found or frame.f_locals.get("nonce")
            frame = frame.f_back""",
    ),
    "forge from gc referrers": FORGE_AND_EXIT.format(
        nonce="found",
        search="""import gc
        found = next((o["nonce"] for o in gc.get_objects() if isinstance(o, dict) and o.get("nonce")), None)""",
    ),
    "forge from /proc/self/mem": FORGE_AND_EXIT.format(
        nonce="found",
        search="""import re
        found = None
        with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", 0) as mem:
            for line in maps:
                start, end = (int(x, 16) for x in line.split()[0].split("-"))
                if "rw" not in line.split()[1] or end - start > 1 << 26:
                    continue
                try:
                    mem.seek(start)
                    hit = re.search(rb"[0-9a-f]{32}", mem.read(end - start))
                except OSError:
                    continue
                found = found or (hit and hit.group().decode())""",
    ),
    "forge from the parent's memory": FORGE_AND_EXIT.format(
        nonce="found",
        search="""import os
        found = None
        for pid in os.listdir("/proc"):
            try:
                found = found or open(f"/proc/{pid}/mem", "rb").read(1).hex()
            except (OSError, ValueError):
                pass""",
    ),
    "__eq__ always true": "class Any:\n    def __eq__(self, o):\n        return True\n    __ne__ = lambda s, o: False\n"
    "    __hash__ = lambda s: 0\ndef square(x):\n    return Any()\n",
    "int subclass lying": "class L(int):\n    def __eq__(self, o):\n        return True\n    __hash__ = int.__hash__\n"
    "def square(x):\n    return L(0)\n",
    "str subclass lying": "class L(str):\n    __eq__ = lambda s, o: True\ndef square(x):\n    return L('')\n",
    "list subclass lying": "class L(list):\n    __eq__ = lambda s, o: True\ndef square(x):\n    return L()\n",
    "__bool__ always true": "class T:\n    __bool__ = lambda s: True\n    __eq__ = lambda s, o: T()\n"
    "def square(x):\n    return T()\n",
    "SystemExit inside __eq__": "class E:\n    def __eq__(self, o):\n        raise SystemExit(0)\n"
    "def square(x):\n    return E()\n",
    "SystemExit in the call": "import sys\ndef square(x):\n    sys.exit(0)\n",
    "patching builtins and assert": "import builtins\nbuiltins.AssertionError = type('Q', (Exception,), {})\n"
    "builtins.__build_class__ = None\nbuiltins.abs = lambda x: 0\ndef square(x):\n    return -1\n",
    "an exception named like a judge's": "class SystemExit(Exception):\n    pass\nclass KeyboardInterrupt(Exception):\n"
    "    pass\ndef square(x):\n    raise SystemExit('quiet')\n",
    "a reply too large to send": "def square(x):\n    return 'x' * (4 << 20)\n",
    "killing every process it can": "import os, signal\ndef square(x):\n    os.kill(-1, signal.SIGKILL)\n",
    "a forged protocol message at load": "import os\n"
    "os.write(4, (20).to_bytes(8, 'big') + b'{\"status\":\"passed\"}  ')\ndef square(x):\n    return 0\n",
    "closing its pipes": "import os\nos.close(3)\nos.close(4)\ndef square(x):\n    return x * x\n",
    "exiting at load": "import os\nos._exit(0)\n",
}
if detect_isolation().hidden_home:  # without a mount namespace the data sets are readable: an isolation gap
    ATTACKS["reading the data sets from disk"] = (
        f"import glob\nfound = glob.glob({str(MBPP.parent)!r} + '/**/*.jsonl', recursive=True)\n"
        "def square(x):\n    return x * x if found else -1\n"
    )


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attacks_are_not_passed(sandbox, name):
    result = sandbox.judge(judged(ATTACKS[name]))
    assert not result.passed, (name, result)
    assert not result.judged_in_process


def test_tests_that_swallow_an_abort_still_get_its_verdict(sandbox):
    tests = "try:\n    square(3)\nexcept BaseException:\n    pass\nassert True\n"
    result = sandbox.judge(judged("import os\ndef square(x):\n    os._exit(0)\n", tests))
    assert result.status == "error" and "ended during a call to square" in result.message


def test_the_harness_carries_on_after_a_batch_of_attacks(sandbox):
    batch = [judged(source) for source in ATTACKS.values()] + [judged("def square(x):\n    return x * x\n")]
    results = sandbox.run_many(batch)
    assert [r.passed for r in results] == [False] * len(ATTACKS) + [True]


# --- the tasks -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def humaneval_task(tmp_path_factory) -> HumanEvalTask:
    path = tmp_path_factory.mktemp("humaneval") / "local.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in humaneval_problems.rows()))
    return HumanEvalTask(data=str(path), timeout=6)


def test_humaneval_correct_solutions_pass_and_subtly_wrong_ones_fail(humaneval_task):
    problems = {p.id: p for p in humaneval_task.problems()}
    pairs = [(problems[row["task_id"]], row["canonical_solution"]) for row in humaneval_problems.PROBLEMS]
    wrong = [(problems[row["task_id"]], code) for row in humaneval_problems.PROBLEMS for code in row["wrong"]]
    humaneval_task.grade_many(pairs + wrong)
    failing = {p.id: humaneval_task.grade_detail(p, code) for p, code in pairs if not humaneval_task.grade(p, code)}
    assert failing == {}
    passing = [(p.id, code) for p, code in wrong if humaneval_task.grade(p, code)]
    assert passing == []
    assert not any(humaneval_task.outcome(p, code).judged_in_process for p, code in pairs + wrong)


@needs_data
def test_mbpp_rows_that_need_the_programs_objects_are_judged_in_process_and_say_so():
    task = MBPPTask(data=str(MBPP / "mbpp_train.jsonl"))
    problems = {p.id: p for p in task.problems()}
    reasons = {pid: task.judged_program(p, p.reference or "").in_process for pid, p in problems.items()}
    assert {pid for pid, why in reasons.items() if why} == {"601", "927"}
    pair = problems["601"]
    result = task.outcome(pair, pair.reference)
    assert result.passed and result.judged_in_process and "Pair" in result.message
    wrong = pair.reference.split("def max_chain_length")[0] + "def max_chain_length(a, n):\n    return 0\n"
    assert task.grade_detail(pair, wrong).startswith("failed: AssertionError")
