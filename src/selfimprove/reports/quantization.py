"""The quantization sweep's report: a console table and a self-contained HTML page (`WORK/report.html`) with
accuracy and KL divergence against bits per weight, and each variant's flips against the reference.

Read by attribute from `quant.sweep.QuantReport`."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from selfimprove.reports import plots
from selfimprove.reports.html import STYLE, _e, _pct

HEADS = ("variant", "bits/weight", "MB", "KLD mean", "median", "p99", "same top", "PPL ratio", "accuracy",
         "flips c→w / w→c", "prompt tok/s", "decode tok/s", "peak MB")  # fmt: skip


def _cells(v: Any) -> list[str]:
    d, speed = v.divergence, v.speed or {}
    accuracy = "–"
    if v.accuracy is not None:
        low, high = v.interval
        accuracy = f"{_pct(v.accuracy)} [{_pct(low)}, {_pct(high)}]"
    flips = "–" if v.flips is None else f"{len(v.flips['correct_to_wrong'])} / {len(v.flips['wrong_to_correct'])}"
    return [
        v.label, f"{v.bits_per_weight:.2f}", f"{v.bytes / 1e6:.0f}", f"{d['kl_mean']:.4f}", f"{d['kl_median']:.4f}",
        f"{d['kl_p99']:.3f}", _pct(d["same_top_rate"]), f"{d['perplexity_ratio']:.3f}", accuracy, flips,
        f"{speed['prompt_tps']:.0f}" if speed else "–", f"{speed['decode_tps']:.1f}" if speed else "–",
        f"{speed['peak_rss_bytes'] / 1e6:.0f}" if speed else "–",
    ]  # fmt: skip


def sweep_table(report: Any) -> Table:
    table = Table(title=f"Quantization sweep of {report.model} (reference: {report.reference_made})")
    for head in HEADS:
        table.add_column(head)
    for v in report.variants:
        table.add_row(*_cells(v))
    return table


def markdown_table(report: Any) -> str:
    lines = ["| " + " | ".join(HEADS) + " |", "|" + "---|" * len(HEADS)]
    lines += ["| " + " | ".join(_cells(v)) + " |" for v in report.variants]
    return "\n".join(lines)


def _figures(report: Any) -> list[str]:
    measured = [v for v in report.variants if v.label != "reference"]
    if not measured:
        return []
    kld = plots.line_plot([plots.Series("KLD mean", [v.bits_per_weight for v in measured],
                                        [v.divergence["kl_mean"] for v in measured])],
                          "KL divergence to the reference", "bits per weight", "KLD (nats)", percent=False)  # fmt: skip
    figures = [kld]
    scored = [v for v in report.variants if v.accuracy is not None]
    if scored:
        figures.append(plots.line_plot([plots.Series("accuracy", [v.bits_per_weight for v in scored],
                                                     [v.accuracy for v in scored])],
                                       "Task accuracy", "bits per weight", "accuracy"))  # fmt: skip
    return figures


def render_quantization(report: Any) -> str:
    rows = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in _cells(v)) + "</tr>" for v in report.variants)
    heads = "".join(f"<th>{_e(h)}</th>" for h in HEADS)
    flips = "".join(
        f"<tr><td><b>{_e(v.label)}</b></td><td>{_e(', '.join(v.flips['correct_to_wrong']) or '–')}</td>"
        f"<td>{_e(', '.join(v.flips['wrong_to_correct']) or '–')}</td></tr>"
        for v in report.variants if v.flips is not None
    )  # fmt: skip
    levels = "".join(
        f"<tr><td><b>{_e(v.label)}</b></td>"
        + "".join(f"<td>level {_e(k)}: {_pct(a)} of {int(n)}</td>" for k, (a, n) in v.by_level.items())
        + "</tr>"
        for v in report.variants if v.by_level
    )  # fmt: skip
    figures = "".join(f'<img src="{f}" alt="sweep plot">' for f in _figures(report))
    s = report.settings
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>selfimprove: quantization sweep</title>
{STYLE}</head>
<body data-render="done">
<h1>Quantization sweep: {_e(report.model)}</h1>
<p class=dim>Reference: <code>{_e(report.reference)}</code> ({_e(report.reference_made)}). KLD: KL(reference ‖ variant)
over {s["kld_tokens"]} positions, from the reference's top {s["top_k"]} tokens plus its tail mass (a lower bound on the
full KL, tight when the top tokens carry the mass). Same top: the variant's likeliest next token is the
reference's. Accuracy: {_e(s["task"])} levels {_e(s["levels"])}, {s["shots"]}-shot greedy, {s["problems"]} test
problems, Wilson 95% interval. Flips: problems the reference got right and the variant wrong (c→w), and the
reverse.</p>
<table><tr>{heads}</tr>{rows}</table>
{figures}
<h2>By level</h2><table>{levels}</table>
<h2>Flips against the reference</h2>
<table><tr><th>variant</th><th>correct → wrong</th><th>wrong → correct</th></tr>{flips}</table>
</body></html>
"""


def load_report(folder: str) -> Any:
    """A finished (or partial) sweep's report.json as a QuantReport, for the family page."""
    import json
    from pathlib import Path

    from selfimprove.core.errors import ConfigError
    from selfimprove.quant.sweep import QuantReport, VariantResult

    path = Path(folder) / "report.json"
    if not path.is_file():
        raise ConfigError(f"--sweep {folder}: no report.json (run `selfimprove quant sweep --out {folder}` first)")
    data = json.loads(path.read_text())
    data["variants"] = [VariantResult(**v) for v in data["variants"]]
    return QuantReport(**data)


def render_family(reports: list[Any]) -> str:
    """Lee et al. 2024's comparison at equal memory: accuracy against bytes on disk, one line per model size, so
    a larger model quantised to a smaller one's size can be read off against the smaller one unquantised."""
    series = []
    rows = []
    for report in reports:
        scored = sorted((v for v in report.variants if v.accuracy is not None), key=lambda v: v.bytes)
        name = f"{report.model} ({scored[0].parameters:,} parameters)" if scored else report.model
        if scored:
            series.append(plots.Series(name, [v.bytes / 1e6 for v in scored], [v.accuracy for v in scored]))
        for v in scored:
            low, high = v.interval
            rows.append(f"<tr><td>{_e(name)}</td><td>{_e(v.label)}</td><td>{v.bytes / 1e6:.2f}</td>"
                        f"<td>{v.bits_per_weight:.2f}</td><td>{_pct(v.accuracy)} [{_pct(low)}, {_pct(high)}]</td>"
                        f"<td>{v.divergence['kl_mean']:.4f}</td></tr>")  # fmt: skip
    figure = plots.line_plot(series, "Accuracy at equal memory", "MB on disk", "accuracy") if series else ""
    image = f'<img src="{figure}" alt="accuracy vs bytes">' if figure else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>selfimprove: quantization at equal memory</title>
{STYLE}</head>
<body data-render="done">
<h1>Accuracy against bytes, one line per model size</h1>
{image}
<table><tr><th>model</th><th>variant</th><th>MB</th><th>bits/weight</th><th>accuracy</th><th>KLD mean</th></tr>
{"".join(rows)}</table>
</body></html>
"""
