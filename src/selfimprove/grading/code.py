"""Program text out of a completion, and the pass@k estimator.

Completions come in two shapes: a base model continuing a prompt (the code runs until a stop
sequence or the next top-level statement that is not part of the solution), and a chat model
answering in Markdown (the code is inside a ```python fence, with prose around it).
"""

from __future__ import annotations

import math
import re

_FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)


def fenced_blocks(text: str) -> list[str]:
    """The contents of every ``` fenced block (an unclosed last fence runs to the end)."""
    return [m.group(1) for m in _FENCE.finditer(text)]


def cut_at(text: str, stops: tuple[str, ...]) -> str:
    """`text` up to the earliest of `stops` (engines cut at stop strings too; files made elsewhere may not)."""
    end = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:end]


def extract_program(text: str, stops: tuple[str, ...] = (), entry_point: str | None = None) -> str | None:
    """The code in a completion: the fenced block that defines `entry_point` (else the first), or the
    completion itself cut at `stops`; None when nothing but whitespace is left."""
    blocks = fenced_blocks(text)
    if blocks:
        defining = [b for b in blocks if entry_point and re.search(rf"\bdef\s+{re.escape(entry_point)}\s*\(", b)]
        code = (defining or blocks)[0]
    else:
        code = cut_at(text, stops)
    code = code.replace("\r\n", "\n").rstrip()
    return code if code.strip() else None


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimate of pass@k from n samples of which c passed (Chen et al. 2021, eq. 1):
    1 - C(n-c, k) / C(n, k), computed as a product so that large n does not overflow."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))
