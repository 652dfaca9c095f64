"""The weak-to-strong report: a console table and a self-contained HTML page (`WORK/report.html`).

Read by attribute from `training.weak_to_strong.W2SReport` (reports sit beside training, not above it)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from selfimprove.reports import plots
from selfimprove.reports.html import STYLE, _e, _pct

ORDER = ("weak-base", "weak", "intermediate", "student", "bootstrapped", "ceiling", "strong-base")
ROLE = {
    "weak": "the weak teacher (its labels train the students)",
    "intermediate": "the intermediate model trained on the weak labels",
    "student": "the strong model trained on the weak labels",
    "bootstrapped": "the strong model trained on the intermediate model's labels",
    "ceiling": "the strong model trained on gold labels",
    "weak-base": "the weak model as given, before its gold fine-tuning (reference)",
    "strong-base": "the strong model as given, untrained here (reference)",
}


def _arms(report: Any) -> list[tuple[str, dict]]:
    return [(name, report.arms[name]) for name in ORDER if name in report.arms]


def _gap(gap: dict | None) -> str:
    if not gap:
        return "—"
    if gap["pgr"] is None:
        return "undefined (the ceiling is not above the weak model)"
    interval = gap["interval"]
    text = f"{100 * gap['pgr']:.0f}%"
    return text + (f" [{100 * interval[0]:.0f}%, {100 * interval[1]:.0f}%]" if interval else "")


def _levels(report: Any) -> list[str]:
    return sorted({level for arm in report.arms.values() for level in arm.get("by_level", {})})


def summary_table(report: Any) -> Table:
    table = Table(title="weak-to-strong: greedy accuracy on the same test problems (95% bootstrap)")
    levels = _levels(report)
    for column in ("model", "role", "accuracy", "interval", "problems", *(f"level {x}" for x in levels)):
        table.add_column(column, justify="left" if column in ("model", "role", "interval") else "right")
    for name, arm in _arms(report):
        low, high = arm["interval"]
        by_level = [_pct(arm.get("by_level", {}).get(x)) for x in levels]
        table.add_row(
            name, ROLE[name], _pct(arm["accuracy"]), f"[{_pct(low)}, {_pct(high)}]", str(arm["problems"]), *by_level
        )
    table.caption = f"PGR {_gap(report.pgr)}" + (
        f" · bootstrapped PGR {_gap(report.bootstrapped_pgr)}" if report.bootstrapped_pgr else ""
    )
    return table


def flips_table(report: Any) -> Table:
    f = report.flips
    table = Table(title="student vs weak, per test problem")
    for column in ("fixed", "broken", "both right", "both wrong", "… same wrong answer", "Δ [95%]", "McNemar p"):
        table.add_column(column, justify="right")
    low, high = f["difference_interval"]
    table.add_row(
        str(f["fixed"]), str(f["broken"]), str(f["both_right"]), str(f["both_wrong"]), str(f["same_wrong_answer"]),
        f"{100 * f['difference']:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]", f"{f['p_value']:.3g}",
    )  # fmt: skip
    labels = report.labels
    table.caption = (
        f"weak labels: {labels['rows']} of {labels['problems']} train problems, "
        f"{_pct(labels['accuracy'])} correct (read after training)"
    )
    return table


def render_w2s(report: Any) -> str:
    arms = _arms(report)
    figure = plots.interval_bars(
        [name for name, _ in arms],
        [arm["accuracy"] for _, arm in arms],
        [arm["interval"] for _, arm in arms],
        f"PGR {_gap(report.pgr)}",
        "greedy accuracy (%)",
    )
    levels = _levels(report)
    rows = "".join(
        f"<tr><td><b>{_e(name)}</b></td><td>{_e(ROLE[name])}</td><td><code>{_e(arm['model'])}</code></td>"
        f"<td><code>{_e(arm['run'])}</code></td><td><b>{_pct(arm['accuracy'])}</b> <span class=dim>"
        f"[{_pct(arm['interval'][0])}, {_pct(arm['interval'][1])}]</span></td><td>{arm['problems']}</td>"
        + "".join(f"<td>{_pct(arm.get('by_level', {}).get(x))}</td>" for x in levels)
        + "</tr>"
        for name, arm in arms
    )
    level_heads = "".join(f"<th>level {_e(x)}</th>" for x in levels)
    f, labels = report.flips, report.labels
    low, high = f["difference_interval"]
    flips = (
        f"<tr><td>{f['fixed']}</td><td>{f['broken']}</td><td>{f['both_right']}</td><td>{f['both_wrong']}</td>"
        f"<td>{f['same_wrong_answer']}</td><td>{100 * f['difference']:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]</td>"
        f"<td>{f['p_value']:.3g}</td></tr>"
    )
    bootstrapped = (
        f"<p>Bootstrapped PGR: <b>{_e(_gap(report.bootstrapped_pgr))}</b></p>" if report.bootstrapped_pgr else ""
    )
    seconds = "".join(f"<tr><td>{_e(k)}</td><td>{v:.0f}</td></tr>" for k, v in report.seconds.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>selfimprove: weak-to-strong</title>
{STYLE}</head>
<body data-render="done">
<h1>Weak-to-strong</h1>
<p class=dim>PGR = (student − weak) / (ceiling − weak) (Burns et al. 2023); its interval resamples the test problems
jointly for the three models. Every run is in the work folder's store (<code>selfimprove report RUN --store
WORK/runs.sqlite</code> shows its traces).</p>
<p>PGR: <b>{_e(_gap(report.pgr))}</b></p>{bootstrapped}
<img src="{figure}" alt="accuracy per model">
<table><tr><th>model</th><th>role</th><th>checkpoint</th><th>run</th><th>accuracy [95%]</th><th>problems</th>
{level_heads}</tr>
{rows}</table>
<h2>Student vs weak</h2>
<table><tr><th>fixed</th><th>broken</th><th>both right</th><th>both wrong</th><th>… same wrong answer</th>
<th>Δ accuracy [95%]</th><th>McNemar p</th></tr>{flips}</table>
<p>Weak labels: {labels["rows"]} of {labels["problems"]} train problems, {_pct(labels["accuracy"])} correct
(graded only for this report, after training).</p>
<h2>Seconds per stage</h2><table>{seconds}</table>
</body></html>
"""
