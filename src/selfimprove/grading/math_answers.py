"""Final answers of competition mathematics: extraction from LaTeX and grading by equivalence.

Extraction takes the last `\\boxed{...}` (braces nested to any depth; `\\fbox` too), else the
last "The answer is ...", else the right-hand side of the last inline `$...$` formula.
Grading uses `math-verify` (Hugging Face): both sides are parsed
into sympy and compared symbolically and numerically, so `\\frac{1}{2}` equals `0.5`,
`(3,\\frac{\\pi}{2})` equals `\\left( 3, \\frac{\\pi}{2} \\right)`, `90^\\circ` equals `90`.
Plain text answers (`\\text{Evelyn}`) fall back to a normalised string comparison.

Votes count equal answers, so `canonical_answer` rewrites an answer into one LaTeX form per
value (sympy's, of the parsed expression) when that form parses back to the same value.
"""

from __future__ import annotations

import re
import threading

from math_verify import parse, verify

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*")
_WORDS = re.compile(r"(?:\\text\{[^{}]*\}|[A-Za-z]{2,}(?: [A-Za-z]+)*)")
_INLINE_MATH = re.compile(r"(?<!\$)\$([^$]+)\$(?!\$)")
_ANSWER_IS = re.compile(r"answer is[:\s]*(.+?)(?:\.\s|\.?$|\n)", re.IGNORECASE | re.MULTILINE)


def _braced(text: str, start: int) -> tuple[str, int] | None:
    """The contents of the brace group opening at `start`, and the index after it."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{" and (i == 0 or text[i - 1] != "\\"):
            depth += 1
        elif text[i] == "}" and text[i - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
    return None


def last_boxed(text: str) -> str | None:
    """The contents of the last complete `\\boxed{...}` (or `\\boxed 5`) in `text`."""
    found = None
    for match in _BOXED.finditer(text):
        at = match.end()
        if at < len(text) and text[at] == "{":
            group = _braced(text, at)
            if group is not None:
                found = group[0]
        else:
            bare = re.match(r"[^\s$]+", text[at:])
            if bare:
                found = bare.group(0)
    return found.strip() if found is not None else None


def extract_math_answer(text: str) -> str | None:
    """The final answer stated in `text` (LaTeX, without surrounding `$`), or None."""
    boxed = last_boxed(text)
    if boxed:
        return boxed
    stated = _ANSWER_IS.findall(text)
    if stated:
        answer = stated[-1].strip().strip("$").strip()
        return answer.rstrip(".").strip() or None
    inline = _INLINE_MATH.findall(text)
    if inline:  # a model that ends with "... so $h = 3.4$": the right-hand side of the last inline formula
        answer = inline[-1].rsplit("=", 1)[-1].strip().rstrip(".,").strip()
        return answer or None
    return None


def _timeout() -> int | None:
    """math-verify times out with SIGALRM, which only the main thread can use."""
    return 5 if threading.current_thread() is threading.main_thread() else None


def _parsed(latex: str) -> list:
    return parse(f"${latex}$", parsing_timeout=_timeout())


def normalised_text(answer: str) -> str:
    """Answer text without LaTeX wrappers, spacing and case, for answers that are words."""
    text = re.sub(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}", r"\1", answer)
    text = re.sub(r"\\[,;:! ]|\\left|\\right|\s+|\$", "", text)
    return text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").lower().strip(".")


def math_equal(reference: str, answer: str | None) -> bool:
    """Whether `answer` is mathematically equal to `reference` (both LaTeX)."""
    if answer is None:
        return False
    if normalised_text(reference) == normalised_text(answer):
        return True
    gold, target = _parsed(reference), _parsed(answer)
    if not gold or not target:
        return False
    return bool(verify(gold, target, timeout_seconds=_timeout()))


def canonical_answer(answer: str) -> str:
    """One LaTeX spelling per value (so that equal answers vote together); the answer itself when
    it does not parse, or when sympy's spelling would not parse back to the same value."""
    import sympy

    if _WORDS.fullmatch(answer.strip()):  # a word would parse as a product of one-letter symbols
        return normalised_text(answer)
    parsed = _parsed(answer)
    if not parsed or not isinstance(parsed[0], sympy.Basic):
        return answer.strip()
    try:
        expression = parsed[0]
        if expression.has(sympy.Float):
            expression = sympy.nsimplify(expression, rational=True)
        spelled = sympy.latex(expression)
    except Exception:  # sympy raises many types on exotic input; keep the answer as written
        return answer.strip()
    again = _parsed(spelled)
    if again and verify(parsed, again, timeout_seconds=_timeout()):
        return spelled
    return answer.strip()
