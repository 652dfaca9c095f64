"""`selfimprove report`: one self-contained HTML file about one or more runs, read from the store.

No network is needed to view it: plots are PNG data URIs, the style and the small search script are
inline. Sections: summary (accuracy with a 95% bootstrap interval), configs, maj@k and
accuracy-vs-tokens curves (all runs on one plot), breakdowns by level / difficulty / subject,
self-correction turns where a run has them, and a searchable browser of every trace.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from selfimprove.core.stats import bootstrap_interval
from selfimprove.reports import plots
from selfimprove.runs import metrics
from selfimprove.runs.store import RunStore

BREAKDOWN_KEYS = ("level", "difficulty", "subject")


@dataclass
class RunView:
    run_id: str
    label: str
    config: dict[str, Any]
    rows: list[dict[str, Any]]
    metrics: metrics.RunMetrics
    interval: tuple[float, float] | None
    texts: dict[tuple[str, str, int], str]

    @property
    def name(self) -> str:
        return f"{self.run_id[:8]} {self.config.get('strategy', {}).get('strategy', '')}"


def load_run(store: RunStore, run_id: str) -> RunView:
    rows = store.solutions(run_id)
    graded = [float(r["correct"]) for r in rows if r["correct"] is not None]
    label = store.label(run_id)
    texts = {(c["problem_id"], c["step"], c["sample"]): c["text"] for c in store.completion_rows(run_id)}
    return RunView(
        run_id=run_id,
        label=label,
        config=store.config(run_id),
        rows=rows,
        metrics=metrics.compute(rows),
        interval=bootstrap_interval(graded) if graded else None,
        texts=texts,
    )


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _tokens_per_sample(view: RunView, step: str = "sample") -> float | None:
    values = [x["completion_tokens"] for r in view.rows for x in r["samples"] if x["step"] == step]
    return sum(values) / len(values) if values else None


def _curves(views: list[RunView]) -> list[tuple[str, str]]:
    """(caption, image) pairs: maj@k and accuracy-vs-tokens, every run on the same axes."""
    figures = []
    with_k = [v for v in views if v.metrics.maj_at_k]
    greedy = [v for v in views if v.metrics.greedy_accuracy is not None]
    if with_k:
        series = [plots.Series(v.name, list(v.metrics.maj_at_k), list(v.metrics.maj_at_k.values())) for v in with_k]
        lines = [plots.Series(f"{v.name} (greedy)", [], [v.metrics.greedy_accuracy]) for v in greedy]
        for v in (v for v in with_k if v.metrics.best_of_n):
            for what, curve in (("best-of-n", v.metrics.best_of_n), ("pass@k", v.metrics.pass_at_k)):
                series.append(plots.Series(f"{v.name} {what}", list(curve), list(curve.values())))
        image = plots.line_plot(series, "maj@k", "k (samples voted)", "accuracy (%)", log2_x=True, baselines=lines)
        caption = "maj@k (dashed: the same run's greedy answer)"
        if any(v.metrics.best_of_n for v in with_k):
            caption += "; best-of-n by reward and pass@k beside it"
        figures.append((caption, image))
    crosses = [
        plots.Series(f"{v.name} (greedy)", [tokens], [v.metrics.greedy_accuracy])
        for v in greedy
        if (tokens := _tokens_per_sample(v, "greedy"))
    ]
    token_series = []
    for v in views:
        per_sample = _tokens_per_sample(v)
        if v.metrics.maj_at_k and per_sample:
            ks = list(v.metrics.maj_at_k)
            token_series.append(plots.Series(v.name, [k * per_sample for k in ks], list(v.metrics.maj_at_k.values())))
        elif v.metrics.accuracy is not None:
            token_series.append(plots.Series(v.name, [v.metrics.completion_tokens_per_problem], [v.metrics.accuracy]))
    if token_series:
        title = "accuracy vs generated tokens"
        image = plots.line_plot(token_series, title, "generated tokens per problem", "accuracy (%)", baselines=crosses)
        figures.append((f"{title} (×: greedy)", image))
    return figures


def _breakdowns(views: list[RunView]) -> list[str]:
    parts = []
    for key in BREAKDOWN_KEYS:
        table: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for v in views:
            for r in v.rows:
                if key in r["metadata"] and r["correct"] is not None:
                    table[v.name][str(r["metadata"][key])].append(float(r["correct"]))
        if not table:
            continue
        groups = sorted({g for per_run in table.values() for g in per_run}, key=_natural)
        head = "".join(f"<th>{_e(v)}</th>" for v in table)
        body = "".join(
            f"<tr><td>{_e(g)}</td>"
            + "".join(
                f"<td>{_pct(sum(vals) / len(vals))} <span class=dim>(n={len(vals)})</span></td>"
                if (vals := table[name].get(g))
                else "<td>–</td>"
                for name in table
            )
            + "</tr>"
            for g in groups
        )
        bars = {name: [sum(per[g]) / len(per[g]) if per.get(g) else 0.0 for g in groups] for name, per in table.items()}
        chart = ""
        if len(groups) > 1:  # one level is a row of the table, not a chart
            image = plots.grouped_bars(groups, bars, f"accuracy by {key}", "accuracy (%)")
            chart = f'<img src="{image}" alt="accuracy by {_e(key)}">'
        parts.append(f"<h3>By {_e(key)}</h3><table><tr><th>{_e(key)}</th>{head}</tr>{body}</table>{chart}")
    return parts


def _errors(views: list[RunView]) -> str:
    """Error correlation and the vote's calibration, one column per run (runs with sampled paths)."""
    runs = [v for v in views if v.metrics.errors is not None and v.metrics.errors.problems]
    if not runs:
        return ""
    head = "".join(f"<th>{_e(v.run_id)}</th>" for v in runs)

    def row(title: str, cell) -> str:
        return f"<tr><td>{_e(title)}</td>" + "".join(f"<td>{cell(v.metrics.errors)}</td>" for v in runs) + "</tr>"

    def versus(e) -> str:
        c = e.vote_vs_greedy
        if c is None:
            return "–"
        return (f"{100 * c.difference:+.1f} pts [{100 * c.interval[0]:+.1f}, {100 * c.interval[1]:+.1f}] "
                f"<span class=dim>+{c.b_wins}/−{c.b_losses}, p={c.p_value:.3f}</span>")  # fmt: skip

    rows = [
        row("problems with ≥ 2 wrong samples", lambda e: f"{e.with_repeated_errors} of {e.problems}"),
        row("two wrong samples agree", lambda e: _pct(e.wrong_pair_agreement)),
        row("all wrong samples one answer", lambda e: _pct(e.single_wrong_answer_share)),
        row("majority vote − greedy (paired)", versus),
    ]
    def share_bin(i: int):
        return lambda e: f"{_pct(e.calibration[i].accuracy)} <span class=dim>(n={e.calibration[i].problems})</span>"

    for i, edge in enumerate(runs[0].metrics.errors.calibration):
        rows.append(row(f"vote share {edge.low:.1f}–{edge.high:.1f}: vote accuracy", share_bin(i)))
    table = f"<table><tr><th>measure</th>{head}</tr>{''.join(rows)}</table>"
    return f"<h2>Error correlation</h2>{table}{_calibration_plot(runs)}"


def _calibration_plot(runs: list[RunView]) -> str:
    """The vote's accuracy against its vote share, one line per run, each point at its bin's middle (empty bins
    left out); the diagonal is a vote share that means what it says."""
    series = []
    for v in runs:
        filled = [b for b in v.metrics.errors.calibration if b.accuracy is not None]
        series.append(plots.Series(v.name, [(b.low + b.high) / 2 for b in filled], [b.accuracy for b in filled]))
    series.append(plots.Series("vote share = accuracy", [0.0, 1.0], [0.0, 1.0]))
    image = plots.line_plot(series, "calibration of the vote", "vote share of the majority answer", "vote accuracy (%)")
    return f'<img src="{image}" alt="vote accuracy by vote share">'


def _pass_at_k(values: dict[int, float]) -> str:
    return ", ".join(f"@{k} {_pct(v)}" for k, v in values.items()) or "–"


def _natural(text: str) -> tuple:
    return (0, float(text), "") if text.replace(".", "", 1).isdigit() else (1, 0.0, text)


def _turns(views: list[RunView]) -> list[str]:
    parts = []
    for v in views:
        t = metrics.turn_metrics(v.rows)
        if t is None:
            continue
        groups = [f"t{i + 1}" for i in range(len(t.accuracy))]
        accuracy = plots.grouped_bars(groups, {"Acc@t": t.accuracy}, f"{v.name}: accuracy per turn", "accuracy (%)")
        steps = [f"t{i + 1}→t{i + 2}" for i in range(len(t.incorrect_to_correct))]
        flips = plots.grouped_bars(
            steps,
            {"i→c": t.incorrect_to_correct, "c→i": t.correct_to_incorrect},
            f"{v.name}: answers changed between turns",
            "problems (%)",
        )
        parts.append(
            f'<h3>{_e(v.name)}</h3><img src="{accuracy}" alt="accuracy per turn"><img src="{flips}" alt="i→c c→i">'
        )
    return parts


def _trace(v: RunView, row: dict[str, Any]) -> str:
    mark = {True: "✓", False: "✗", None: "·"}[row["correct"]]
    samples = []
    for x in row["samples"]:
        text = v.texts.get((row["problem_id"], x["step"], x["index"]), "")
        ok = {True: "✓", False: "✗", None: ""}[x["correct"]]
        samples.append(
            f"<details class=sample><summary>{_e(x['step'])} #{x['index']} → {_e(x['answer'])} {ok} "
            f"<span class=dim>{x['completion_tokens']} tokens</span>"
            + (f" <span class=dim>· {_e(x['detail'])}</span>" if x.get("detail") else "")
            + f"</summary><pre>{_e(text)}</pre></details>"
        )
    votes = ", ".join(f"{_e(a)}: {c}" for a, c in row["votes"].items()) or "–"
    extra = "".join(
        f"<div><b>{_e(k)}</b>: <code>{_e(json.dumps(val, ensure_ascii=False))}</code></div>"
        for k, val in row["extra"].items()
    )
    searchable = " ".join(
        [row["problem_id"], row.get("question") or "", str(row["answer"]), str(row["reference"])]
        + [v.texts.get((row["problem_id"], x["step"], x["index"]), "") for x in row["samples"]]
    ).lower()
    return (
        f'<details class="trace" data-search="{_e(searchable)}"><summary><span class=mark>{mark}</span> '
        f"{_e(row['problem_id'])} — answer {_e(row['answer'])}, reference {_e(row['reference'])}"
        + (f", confidence {row['confidence']:.2f}" if row["confidence"] is not None else "")
        + f"</summary><p class=question>{_e(row.get('question') or '(question not stored)')}</p>"
        f"<div><b>votes</b>: {votes}</div>{extra}{''.join(samples)}</details>"
    )


def render(views: list[RunView]) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    summary = "".join(
        f"<tr><td><code>{_e(v.run_id)}</code></td><td>{_e(v.label)}</td><td>{v.metrics.problems}</td>"
        f"<td><b>{_pct(v.metrics.accuracy)}</b>"
        + (f" <span class=dim>[{_pct(v.interval[0])}, {_pct(v.interval[1])}]</span>" if v.interval else "")
        + f"</td><td>{_pct(v.metrics.greedy_accuracy)}</td><td>{_pass_at_k(v.metrics.pass_at_k)}</td>"
        f"<td>{_pct(v.metrics.extraction_failure_rate)} <span class=dim>of {v.metrics.samples}</span></td>"
        f"<td>{_pct(v.metrics.length_stop_rate)}</td>"
        f"<td>{v.metrics.completion_tokens_per_problem:.0f}</td><td>{v.metrics.seconds_per_problem:.2f}</td></tr>"
        for v in views
    )
    configs = "".join(
        f"<details><summary>{_e(v.run_id)} config</summary><pre>{_e(json.dumps(v.config, indent=2))}</pre></details>"
        for v in views
    )
    figures = "".join(f'<img src="{src}" alt="{_e(title)}">' for title, src in _curves(views))
    breakdowns = "".join(_breakdowns(views)) or "<p class=dim>No run has levels, difficulties or subjects.</p>"
    turns = "".join(_turns(views))
    errors = _errors(views)
    traces = "".join(f"<h3>{_e(v.run_id)} · {_e(v.label)}</h3>" + "".join(_trace(v, r) for r in v.rows) for v in views)
    return _PAGE.format(
        style=STYLE,
        title=_e("selfimprove report: " + ", ".join(v.run_id for v in views)),
        generated=_e(now),
        summary=summary,
        configs=configs,
        figures=figures or "<p class=dim>No curves: no run has samples to vote over.</p>",
        breakdowns=breakdowns,
        turns=(f"<h2>Self-correction turns</h2>{turns}" if turns else "") + errors,
        traces=traces,
    )


def build_report(store: RunStore, run_ids: list[str]) -> str:
    return render([load_run(store, store.find_run(r)) for r in run_ids])


STYLE = """<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { border-bottom: 1px solid #ddd; padding: .3em .7em; text-align: left; vertical-align: top; }
img { max-width: 100%; margin: .5em 1em .5em 0; }
.dim { color: #888; font-size: 90%; }
details.trace { border: 1px solid #e3e3e3; border-radius: 4px; margin: .3em 0; padding: .3em .6em; }
details.sample { margin-left: 1.5em; }
pre { white-space: pre-wrap; background: #f7f7f7; padding: .5em; }
.mark { font-weight: bold; }
#search { width: 60%; padding: .4em; font-size: 14px; }
</style>"""
"""The report pages' shared inline style."""

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
{style}</head>
<body data-render="pending">
<h1>selfimprove report</h1>
<p class=dim>Generated {generated}. Everything below is computed from the run store.</p>
<h2>Summary</h2>
<table><tr><th>run</th><th>task · strategy · model</th><th>problems</th><th>accuracy [95% bootstrap]</th>
<th>greedy CoT</th><th>pass@k</th><th>extraction failures</th><th>ran to max_tokens</th><th>gen. tokens / problem</th>
<th>s / problem</th></tr>
{summary}</table>
{configs}
<h2>Curves</h2>{figures}
<h2>Breakdown</h2>{breakdowns}
{turns}
<h2>Traces</h2>
<p><input id="search" type="search" placeholder="search questions, answers and samples">
<span id="shown" class=dim></span></p>
{traces}
<script>
(function () {{
  var traces = Array.prototype.slice.call(document.querySelectorAll("details.trace"));
  var shown = document.getElementById("shown");
  function filter() {{
    var q = document.getElementById("search").value.toLowerCase();
    var n = 0;
    traces.forEach(function (t) {{
      var hit = !q || t.getAttribute("data-search").indexOf(q) >= 0;
      t.style.display = hit ? "" : "none";
      if (hit) n++;
    }});
    shown.textContent = n + " of " + traces.length + " problems";
  }}
  document.getElementById("search").addEventListener("input", filter);
  filter();
  window.addEventListener("load", function () {{
    var images = Array.prototype.slice.call(document.images);
    var loaded = images.filter(function (i) {{ return i.complete && i.naturalWidth > 0; }}).length;
    document.body.setAttribute("data-images", loaded + "/" + images.length);
    document.body.setAttribute("data-render", "done");
  }});
}})();
</script>
</body></html>
"""
