"""HumanEval-format problems written here (the real 164 are held out), each with a correct solution and
subtly wrong ones: off-by-one, a missed edge case, float tolerance, a helper the test relies on.

Shapes the official problems have: helpers in the prompt that the test calls (`encode_shift` for a
decoder), `import math` in the prompt used by the test, tests that draw random inputs, tests that
check raised exceptions and float closeness, and several calls per test.
"""

from __future__ import annotations

PROBLEMS = [
    {
        "task_id": "Local/0",
        "entry_point": "running_max",
        "prompt": (
            "from typing import List\n\n\ndef running_max(numbers: List[int]) -> List[int]:\n"
            '    """The largest element seen so far, at each position.\n'
            '    >>> running_max([1, 3, 2, 5])\n    [1, 3, 3, 5]\n    """\n'
        ),
        "canonical_solution": (
            "    out, best = [], None\n    for n in numbers:\n        best = n if best is None else max(best, n)\n"
            "        out.append(best)\n    return out\n"
        ),
        "wrong": [
            "    out, best = [], 0\n    for n in numbers:\n        best = max(best, n)\n        out.append(best)\n"
            "    return out\n",  # wrong for all-negative input
            "    return sorted(numbers)\n",
        ],
        "test": (
            "def check(candidate):\n    assert candidate([]) == []\n"
            "    assert candidate([1, 3, 2, 5]) == [1, 3, 3, 5]\n"
            "    assert candidate([-4, -7, -1]) == [-4, -4, -1]\n"
        ),
    },
    {
        "task_id": "Local/1",
        "entry_point": "decode_shift",
        "prompt": (
            "def encode_shift(s: str) -> str:\n"
            '    """Shifts every letter by 5 in the alphabet."""\n'
            '    return "".join(chr(((ord(ch) + 5 - ord("a")) % 26) + ord("a")) for ch in s)\n\n\n'
            "def decode_shift(s: str) -> str:\n"
            '    """Takes a string encoded with encode_shift and returns the decoded string."""\n'
        ),
        "canonical_solution": '    return "".join(chr(((ord(ch) - 5 - ord("a")) % 26) + ord("a")) for ch in s)\n',
        "wrong": [
            '    return "".join(chr(((ord(ch) - 4 - ord("a")) % 26) + ord("a")) for ch in s)\n',
            '    return "".join(chr(ord(ch) - 5) for ch in s)\n',  # forgets the wrap-around
            # Cheats by redefining the helper the test uses: the judge keeps the prompt's own.
            "    return s\n\n\ndef encode_shift(s):\n    return s\n",
        ],
        "test": (
            "import random\nimport string\n\n\ndef check(candidate):\n    rng = random.Random(7)\n"
            "    for _ in range(50):\n"
            "        word = ''.join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(1, 20)))\n"
            "        assert candidate(encode_shift(word)) == word\n"
        ),
    },
    {
        "task_id": "Local/2",
        "entry_point": "mean_absolute_deviation",
        "prompt": (
            "from typing import List\n\n\ndef mean_absolute_deviation(numbers: List[float]) -> float:\n"
            '    """Average absolute difference between each element and the mean."""\n'
        ),
        "canonical_solution": (
            "    mean = sum(numbers) / len(numbers)\n    return sum(abs(x - mean) for x in numbers) / len(numbers)\n"
        ),
        "wrong": [
            "    mean = sum(numbers) / len(numbers)\n"
            "    return sum(abs(x - mean) for x in numbers) / (len(numbers) - 1)\n",
            "    mean = sum(numbers) / len(numbers)\n    return abs(sum(x - mean for x in numbers)) / len(numbers)\n",
        ],
        "test": (
            "def check(candidate):\n    assert abs(candidate([1.0, 2.0, 3.0]) - 2.0 / 3.0) < 1e-6\n"
            "    assert abs(candidate([1.0, 2.0, 3.0, 4.0]) - 1.0) < 1e-6\n"
            "    assert abs(candidate([1.0, 2.0, 3.0, 4.0, 5.0]) - 6.0 / 5.0) < 1e-6\n"
        ),
    },
    {
        "task_id": "Local/3",
        "entry_point": "find_root",
        "prompt": (
            "import math\n\n\ndef poly(xs: list, x: float) -> float:\n"
            '    """Evaluates the polynomial with coefficients xs at x."""\n'
            "    return sum(coeff * math.pow(x, i) for i, coeff in enumerate(xs))\n\n\n"
            "def find_root(xs: list) -> float:\n"
            '    """A zero of the polynomial xs of odd degree (the largest coefficient non-zero)."""\n'
        ),
        "canonical_solution": (
            "    lo, hi = -1.0, 1.0\n    while poly(xs, lo) * poly(xs, hi) > 0:\n        lo *= 2.0\n        hi *= 2.0\n"
            "    while hi - lo > 1e-10:\n        mid = (lo + hi) / 2.0\n"
            "        if poly(xs, mid) * poly(xs, lo) > 0:\n            lo = mid\n        else:\n            hi = mid\n"
            "    return lo\n"
        ),
        "wrong": [
            "    lo, hi = -1.0, 1.0\n    for _ in range(8):\n        mid = (lo + hi) / 2.0\n"
            "        if poly(xs, mid) * poly(xs, lo) > 0:\n            lo = mid\n        else:\n            hi = mid\n"
            "    return lo\n",  # too few bisection steps, and never widens the bracket
            "    return 0.0\n",
        ],
        "test": (
            "import random\n\n\ndef check(candidate):\n    rng = random.Random(42)\n    for _ in range(30):\n"
            "        ncoeff = 2 * rng.randint(1, 4)\n        coeffs = []\n        for _ in range(ncoeff):\n"
            "            coeff = rng.randint(-10, 10)\n            coeffs.append(coeff if coeff != 0 else 1)\n"
            "        solution = candidate(list(coeffs))\n        assert math.fabs(poly(coeffs, solution)) < 1e-4\n"
        ),
    },
    {
        "task_id": "Local/4",
        "entry_point": "parse_duration",
        "prompt": (
            "def parse_duration(text: str) -> int:\n"
            '    """Seconds in a duration such as "1h2m3s", "45s" or "2m". Raises ValueError on anything else."""\n'
        ),
        "canonical_solution": (
            "    import re\n    match = re.fullmatch(r'(?:(\\d+)h)?(?:(\\d+)m)?(?:(\\d+)s)?', text)\n"
            "    if not text or match is None:\n        raise ValueError(text)\n"
            "    h, m, s = (int(g) if g else 0 for g in match.groups())\n    return 3600 * h + 60 * m + s\n"
        ),
        "wrong": [
            "    import re\n    match = re.fullmatch(r'(?:(\\d+)h)?(?:(\\d+)m)?(?:(\\d+)s)?', text)\n"
            "    if match is None:\n        raise ValueError(text)\n"
            "    h, m, s = (int(g) if g else 0 for g in match.groups())\n"
            "    return 3600 * h + 60 * m + s\n",  # accepts the empty string
            "    import re\n    match = re.fullmatch(r'(?:(\\d+)h)?(?:(\\d+)m)?(?:(\\d+)s)?', text)\n"
            "    if not text or match is None:\n        return -1\n"
            "    h, m, s = (int(g) if g else 0 for g in match.groups())\n    return 3600 * h + 60 * m + s\n",
        ],
        "test": (
            "def check(candidate):\n    assert candidate('1h2m3s') == 3723\n    assert candidate('45s') == 45\n"
            "    assert candidate('2m') == 120\n    for bad in ('', 'h', '3x', '1s2m'):\n        try:\n"
            "            candidate(bad)\n        except ValueError:\n            pass\n        else:\n"
            "            assert False, f'no ValueError for {bad!r}'\n"
        ),
    },
    {
        "task_id": "Local/5",
        "entry_point": "word_counts",
        "prompt": (
            "def word_counts(text: str) -> dict:\n"
            '    """How often each lower-cased word occurs; words are split on whitespace."""\n'
        ),
        "canonical_solution": (
            "    from collections import Counter\n    return Counter(w.lower() for w in text.split())\n"
        ),
        "wrong": [
            "    from collections import Counter\n    return Counter(text.split())\n",
            "    return {w.lower(): 1 for w in text.split()}\n",
        ],
        "test": (
            "def check(candidate):\n    assert candidate('a B b') == {'a': 1, 'b': 2}\n    assert candidate('') == {}\n"
            "    assert candidate('x  x\\tX') == {'x': 3}\n"
        ),
    },
    {
        "task_id": "Local/6",
        "entry_point": "rotate",
        "prompt": (
            'def rotate(items: list, k: int) -> None:\n    """Rotates `items` right by k places, in place."""\n'
        ),
        "canonical_solution": (
            "    if items:\n        k %= len(items)\n        items[:] = items[-k:] + items[:-k] if k else items\n"
        ),
        "wrong": [
            "    if items:\n        k %= len(items)\n        items[:] = items[k:] + items[:k]\n",  # rotates left
            "    items = items[-k:] + items[:-k]\n",  # rebinds the name: the caller's list is unchanged
        ],
        "test": (
            "def check(candidate):\n    xs = [1, 2, 3, 4, 5]\n    candidate(xs, 2)\n    assert xs == [4, 5, 1, 2, 3]\n"
            "    ys = [1, 2, 3]\n    candidate(ys, 3)\n    assert ys == [1, 2, 3]\n"
            "    zs = []\n    candidate(zs, 4)\n    assert zs == []\n"
        ),
    },
    {
        "task_id": "Local/7",
        "entry_point": "next_id",
        "prompt": (
            "def next_id(prefix: str) -> str:\n"
            '    """A new id for `prefix` on each call: prefix-1, prefix-2, ...; each prefix counts on its own."""\n'
        ),
        "canonical_solution": (
            "    counts = next_id.__dict__.setdefault('counts', {})\n"
            "    counts[prefix] = counts.get(prefix, 0) + 1\n    return f'{prefix}-{counts[prefix]}'\n"
        ),
        "wrong": [
            "    next_id.n = getattr(next_id, 'n', 0) + 1\n    return f'{prefix}-{next_id.n}'\n",  # one shared count
            "    return f'{prefix}-1'\n",
        ],
        "test": (
            "def check(candidate):\n    assert candidate('a') == 'a-1'\n    assert candidate('a') == 'a-2'\n"
            "    assert candidate('b') == 'b-1'\n    assert candidate('a') == 'a-3'\n"
        ),
    },
    {
        "task_id": "Local/8",
        "entry_point": "split_pairs",
        "prompt": ('def split_pairs(pairs: list) -> tuple:\n    """([firsts], [seconds]) of a list of 2-tuples."""\n'),
        "canonical_solution": "    return [a for a, _ in pairs], [b for _, b in pairs]\n",
        "wrong": [
            "    return [[a for a, _ in pairs], [b for _, b in pairs]]\n",  # a list, not a tuple
            "    return tuple(zip(*pairs))\n",  # tuples inside, and () for no pairs
        ],
        "test": (
            "def check(candidate):\n    assert candidate([(1, 'x'), (2, 'y')]) == ([1, 2], ['x', 'y'])\n"
            "    assert candidate([]) == ([], [])\n"
        ),
    },
    {
        "task_id": "Local/9",
        "entry_point": "unique_sorted",
        "prompt": (
            "def unique_sorted(items: list) -> list:\n"
            '    """The distinct elements, ascending; 1 and 1.0 count as the same element (the first is kept)."""\n'
        ),
        "canonical_solution": (
            "    seen = {}\n    for x in items:\n        seen.setdefault(x, x)\n    return sorted(seen.values())\n"
        ),
        "wrong": [
            "    return sorted(set(items), reverse=True)\n",
            "    out = []\n    for x in sorted(items):\n        if not out or out[-1] != x:\n"
            "            out.append(x)\n"
            "    return out[:-1] if len(out) > 3 else out\n",
        ],
        "test": (
            "def check(candidate):\n    assert candidate([3, 1, 2, 3, 1]) == [1, 2, 3]\n"
            "    result = candidate([1, 1.0, 2])\n    assert result == [1, 2] and type(result[0]) is int\n"
            "    assert candidate([5, 4, 3, 2, 1]) == [1, 2, 3, 4, 5]\n"
        ),
    },
]


def rows() -> list[dict]:
    """The problems as HumanEval JSONL rows (without the `wrong` solutions)."""
    return [{key: value for key, value in problem.items() if key != "wrong"} for problem in PROBLEMS]
