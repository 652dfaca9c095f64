"""Plots as PNG bytes (matplotlib, Agg backend), embedded in the HTML report as data URIs."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class Series:
    label: str
    x: Sequence[float]
    y: Sequence[float]


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the install
        from selfimprove.core.errors import ConfigError

        raise ConfigError("reports need matplotlib: pip install 'selfimprove[report]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def line_plot(
    series: Sequence[Series],
    title: str,
    xlabel: str,
    ylabel: str,
    log2_x: bool = False,
    baselines: Sequence[Series] = (),
    percent: bool = True,
) -> str:
    """Several runs' curves on one plot; a run with one point is drawn as a marker. A baseline with no x is a
    dashed horizontal line (greedy accuracy beside maj@k); with one x, a cross (greedy's cost and accuracy).
    `percent`: y values are fractions drawn as percentages; else drawn as they are (bits, counts)."""
    plt = _pyplot()
    scale = 100 if percent else 1
    fig, ax = plt.subplots(figsize=(6, 3.6))
    colours = {}
    for s in series:
        (line,) = ax.plot(list(s.x), [scale * v for v in s.y], marker="o", label=s.label)
        colours[s.label] = line.get_color()
    for b in baselines:
        colour = colours.get(b.label.removesuffix(" (greedy)"), "grey")
        if len(b.x):
            ax.plot(list(b.x), [scale * v for v in b.y], marker="x", markersize=9, linestyle="none", color=colour,
                    label=b.label)  # fmt: skip
        else:
            ax.axhline(scale * b.y[0], linestyle="--", linewidth=1, color=colour, label=b.label)
    if log2_x:
        ax.set_xscale("log", base=2)
        ticks = sorted({x for s in series for x in s.x})
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def grouped_bars(groups: Sequence[str], bars: dict[str, Sequence[float]], title: str, ylabel: str) -> str:
    """One group of bars per category (a level, a subject, a turn), one bar per series."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(groups) * max(1, len(bars))), 3.6))
    width = 0.8 / max(1, len(bars))
    for i, (label, values) in enumerate(bars.items()):
        positions = [g + i * width for g in range(len(groups))]
        ax.bar(positions, [100 * v for v in values], width=width, label=label)
    ax.set_xticks([g + width * (len(bars) - 1) / 2 for g in range(len(groups))], list(groups))
    ax.set(title=title, ylabel=ylabel)
    ax.set_ylim(0, max([100 * v for values in bars.values() for v in values] + [1.0]) * 1.1)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def interval_bars(
    labels: Sequence[str], values: Sequence[float], intervals: Sequence[Sequence[float]], title: str, ylabel: str
) -> str:
    """One bar per model with its interval as an error bar (values and intervals are fractions)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(labels)), 3.6))
    heights = [100 * v for v in values]
    below = [100 * (v - low) for v, (low, _) in zip(values, intervals)]
    above = [100 * (high - v) for v, (_, high) in zip(values, intervals)]
    ax.bar(range(len(labels)), heights, yerr=[below, above], capsize=4, color="#4c72b0")
    ax.set_xticks(range(len(labels)), list(labels))
    ax.set(title=title, ylabel=ylabel)
    ax.set_ylim(0, max([100 * high for _, high in intervals] + [1.0]) * 1.1)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)
