"""The README's Python snippet, exactly as written, on the real embedded GGUF (standing for "your GGUF")."""

from __future__ import annotations

import contextlib
import io

import pytest

from test_api import python_snippet

pytestmark = pytest.mark.slow


def test_the_readme_python_snippet_runs_on_a_real_gguf(embedded_model, tmp_path, monkeypatch):
    monkeypatch.setenv("SELFIMPROVE_HOME", str(tmp_path))  # the snippet's default store goes here
    source = python_snippet().replace('"model.gguf"', repr(str(embedded_model)))
    assert source != python_snippet()
    printed = io.StringIO()
    namespace: dict = {}
    with contextlib.redirect_stdout(printed):
        exec(compile(source, "README.md", "exec"), namespace)  # our own README, not model output
    result = namespace["result"]
    assert result.metrics.problems == 2 and result.metrics.samples == 2 * (8 + 1)  # 8 votes and the greedy one
    assert 0.0 <= result.metrics.accuracy <= 1.0 and sorted(result.metrics.maj_at_k) == [1, 2, 4, 8]
    assert result.metrics.completion_tokens_per_problem > 0
    accuracy, maj, tokens = printed.getvalue().split(" ", 2)
    assert float(accuracy) == result.metrics.accuracy and float(tokens.split()[-1]) == pytest.approx(
        result.metrics.completion_tokens_per_problem
    )
    assert (tmp_path / "runs.sqlite").is_file()
