"""The memory-capacity report: console tables and a self-contained HTML page (`WORK/report.html`).

Read by attribute from `training.memory.MemoryReport` (reports sit beside training, not above it)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from rich.table import Table

from selfimprove.reports import plots
from selfimprove.reports.html import STYLE, _e, _pct


def _rate(score: Any) -> str:
    low, high = score.exact_interval
    return f"{score.exact}/{score.items} {_pct(score.exact_rate)} [{_pct(low)}, {_pct(high)}]"


def _similar(score: Any) -> str:
    return f"{score.similarity:.2f} (chance {score.chance_similarity:.2f})"


def _reasoning(point: Any) -> str:
    r = point.reasoning
    if r is None:
        return "–"
    low, high = r["interval"]
    change = f"{100 * r['difference']:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"
    return f"{_pct(r['before'])} → {_pct(r['after'])} ({change})"


def _bits(score: Any, synthetic: bool) -> str:
    return f"{score.bits:.0f} / {score.fano_bits:.0f} (chance {score.chance_bits:.0f})" if synthetic else "–"


def baseline_table(report: Any) -> Table:
    synthetic = report.bits_per_item is not None
    table = Table(title="Before training: what each model already recalls (contamination) and its reasoning")
    for head in ("model", "parameters", "trained items: exact", "similarity", "control: exact", "similarity",
                 "bits exact / Fano", "arithmetic"):  # fmt: skip
        table.add_column(head)
    for b in report.baselines:
        reasoning = "–" if b.reasoning is None else _pct(b.reasoning)
        table.add_row(
            b.model, f"{b.parameters:,}", _rate(b.trained), _similar(b.trained), _rate(b.control), _similar(b.control),
            _bits(b.trained, synthetic), reasoning,
        )  # fmt: skip
    return table


def points_table(report: Any) -> Table:
    synthetic = report.bits_per_item is not None
    table = Table(title="After memorising N items for E exposures")
    for head in ("model", "N", "E", "trained: exact", "similarity", "control: exact", "control similarity",
                 "bits exact / Fano", "bits/param", "arithmetic before → after", "loss", "s"):  # fmt: skip
        table.add_column(head)
    for p in report.points:
        per_parameter = f"{p.bits_per_parameter:.4f} / {p.fano_bits_per_parameter:.4f}" if synthetic else "–"
        loss = "–" if p.final_loss is None else f"{p.final_loss:.3f}"
        table.add_row(
            p.model, str(p.count), str(p.exposures), _rate(p.trained), _similar(p.trained), _rate(p.control),
            _similar(p.control), _bits(p.trained, synthetic), per_parameter, _reasoning(p), loss, f"{p.seconds:.0f}",
        )  # fmt: skip
    return table


def quantised_table(report: Any) -> Table | None:
    """The trained items recalled with the checkpoint's weights quantised, beside the float recall."""
    points = [p for p in report.points if p.quantised]
    if not points:
        return None
    synthetic = report.bits_per_item is not None
    table = Table(title="Recall after weight-only quantisation of the trained checkpoint")
    for head in ("model", "N", "E", "weights", "exact", "bits exact / Fano"):
        table.add_column(head)
    for p in points:
        for weights, score in {"float": p.trained, **p.quantised}.items():
            table.add_row(p.model, str(p.count), str(p.exposures), weights, _rate(score), _bits(score, synthetic))
    return table


def _quantised_rows(report: Any) -> str:
    synthetic = report.bits_per_item is not None
    return "".join(
        f"<tr><td><b>{_e(p.model)}</b></td><td>{p.count}</td><td>{p.exposures}</td><td>{_e(weights)}</td>"
        f"<td>{_e(_rate(score))}</td><td>{_e(_bits(score, synthetic))}</td></tr>"
        for p in report.points if p.quantised
        for weights, score in {"float": p.trained, **p.quantised}.items()
    )  # fmt: skip


def _curves(report: Any) -> list[str]:
    synthetic = report.bits_per_item is not None
    by_model_exposures: dict[str, list[Any]] = defaultdict(list)
    by_model_count: dict[str, list[Any]] = defaultdict(list)
    for p in report.points:
        by_model_exposures[f"{p.model} E={p.exposures}"].append(p)
        by_model_count[f"{p.model} N={p.count}"].append(p)
    figures = []
    counts = {p.count for p in report.points}
    if len(counts) > 1:
        series = [plots.Series(k, [p.count for p in v], [p.trained.exact_rate for p in v])
                  for k, v in by_model_exposures.items()]  # fmt: skip
        control = [plots.Series(f"{k} (control)", [p.count for p in v], [p.control.exact_rate for p in v])
                   for k, v in by_model_exposures.items()]  # fmt: skip
        figures.append(plots.line_plot(series + control, "Items recalled exactly vs items trained on", "N items",
                                       "recalled exactly (%)", log2_x=True))  # fmt: skip
        if synthetic:
            bits = [plots.Series(k, [p.count for p in v], [p.trained.fano_bits for p in v])
                    for k, v in by_model_exposures.items()]  # fmt: skip
            figures.append(plots.line_plot(bits, "Bits stored (Fano lower bound) vs items trained on", "N items",
                                           "bits", log2_x=True, percent=False))  # fmt: skip
    if len({p.exposures for p in report.points}) > 1:
        series = [plots.Series(k, [p.exposures for p in v], [p.trained.exact_rate for p in v])
                  for k, v in by_model_count.items()]  # fmt: skip
        figures.append(plots.line_plot(series, "Items recalled exactly vs exposures", "exposures (epochs)",
                                       "recalled exactly (%)", log2_x=True))  # fmt: skip
    return figures


def render_memory(report: Any) -> str:
    synthetic = report.bits_per_item is not None
    baselines = "".join(
        f"<tr><td><b>{_e(b.model)}</b></td><td>{b.parameters:,}</td><td>{_e(_rate(b.trained))}</td>"
        f"<td>{_e(_similar(b.trained))}</td><td>{_e(_rate(b.control))}</td><td>{_e(_similar(b.control))}</td>"
        f"<td>{'–' if b.reasoning is None else _pct(b.reasoning)}</td></tr>"
        for b in report.baselines
    )
    points = "".join(
        f"<tr><td><b>{_e(p.model)}</b></td><td>{p.count}</td><td>{p.exposures}</td><td>{_e(_rate(p.trained))}</td>"
        f"<td>{_e(_similar(p.trained))}</td><td>{_e(_rate(p.control))}</td><td>{_e(_similar(p.control))}</td>"
        f"<td>{_e(_bits(p.trained, synthetic))}</td>"
        f"<td>{f'{p.fano_bits_per_parameter:.4f}' if synthetic else '–'}</td><td>{_e(_reasoning(p))}</td>"
        f"<td><code>{_e(p.checkpoint)}</code></td></tr>"
        for p in report.points
    )
    figures = "".join(f'<img src="{f}" alt="capacity curve">' for f in _curves(report))
    items = f"synthetic people, {report.bits_per_item:.2f} bits per item" if synthetic else _e(report.settings["items"])
    seconds = "".join(f"<tr><td>{_e(k)}</td><td>{v:.0f}</td></tr>" for k, v in report.seconds.items())
    quantised_rows = _quantised_rows(report)
    quantised = (
        "<h2>After weight-only quantisation</h2><table><tr><th>model</th><th>N</th><th>E</th><th>weights</th>"
        f"<th>exact</th><th>bits exact / Fano</th></tr>{quantised_rows}</table>"
        if quantised_rows
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>selfimprove: memory capacity</title>
{STYLE}</head>
<body data-render="done">
<h1>Memory capacity</h1>
<p class=dim>Items: {items}. Exact: the greedy generation from the key begins with the value (line ends
normalised; case and punctuation count), with a Wilson 95% interval. Similarity: 1 − normalised edit distance to
the value, beside the same generations scored against another item's value (chance). Bits: log2 of each field's
set for every field recalled exactly / the Fano lower bound on the information recalled (0 at chance);
Allen-Zhu &amp; Li 2024 report about 2 bits per parameter at saturation. Control items are never trained on.</p>
<h2>Before training</h2>
<table><tr><th>model</th><th>parameters</th><th>trained items: exact</th><th>similarity</th><th>control: exact</th>
<th>similarity</th><th>arithmetic</th></tr>{baselines}</table>
<h2>After memorising</h2>
{figures}
<table><tr><th>model</th><th>N</th><th>E</th><th>trained: exact</th><th>similarity</th><th>control: exact</th>
<th>control similarity</th><th>bits exact / Fano</th><th>Fano bits / parameter</th><th>arithmetic before → after</th>
<th>checkpoint</th></tr>{points}</table>
{quantised}
<h2>Seconds per stage</h2><table>{seconds}</table>
</body></html>
"""
