"""Terminal tables of a run's metrics (rich)."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from selfimprove.runs.correlation import ErrorCorrelation
from selfimprove.runs.metrics import RunMetrics, TurnMetrics


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def metrics_table(run_id: str, label: str, strategy: str, m: RunMetrics) -> Table:
    table = Table(title=f"run {run_id}  ·  {label}", show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("problems", str(m.problems))
    if m.greedy_accuracy is not None:
        table.add_row("greedy CoT accuracy", _pct(m.greedy_accuracy))
    if m.majority_accuracy is not None:
        table.add_row("majority vote accuracy", _pct(m.majority_accuracy))
    if m.vote_rule:
        final = f"{strategy} accuracy ({m.vote_rule})"
    else:
        final = f"{strategy} accuracy" + (f" (maj@{max(m.maj_at_k)})" if m.maj_at_k else "")
    table.add_row(final, _pct(m.accuracy))
    for k, value in m.maj_at_k.items():
        table.add_row(f"  maj@{k}", _pct(value))
    for k, value in m.pass_at_k.items():
        table.add_row(f"  pass@{k}", _pct(value))
    for k, value in m.best_of_n.items():
        table.add_row(f"  best-of-{k} (reward)", _pct(value))
    if m.voted_samples_per_problem and not m.maj_at_k:
        table.add_row("voted samples / problem", f"{m.voted_samples_per_problem:.2f}")
    table.add_row("generated tokens / problem", f"{m.completion_tokens_per_problem:.1f}")
    table.add_row("prompt tokens / problem", f"{m.prompt_tokens_per_problem:.1f}")
    if m.prompt_evaluated_per_problem is not None:
        table.add_row("  of them evaluated", f"{m.prompt_evaluated_per_problem:.1f}")
    table.add_row("seconds / problem", f"{m.seconds_per_problem:.2f}")
    table.add_row("extraction failures", f"{_pct(m.extraction_failure_rate)} of {m.samples} samples")
    if m.length_stop_rate is not None:
        table.add_row("ran to max_tokens", _pct(m.length_stop_rate))
    if m.grade_statuses:
        table.add_row("graded samples", ", ".join(f"{name} {count}" for name, count in m.grade_statuses.items()))
    return table


def breakdown_tables(m: RunMetrics) -> list[Table]:
    """Accuracy by level and by subject, where problems have several."""
    tables = []
    for key, rows in (("level", m.by_level), ("subject", m.by_subject)):
        if not rows:
            continue
        table = Table(title=f"by {key}", header_style="bold")
        for column in (key, "problems", "greedy CoT", "final"):
            table.add_column(column, justify="right")
        for value, row in rows.items():
            table.add_row(value, str(row["problems"]), _pct(row["greedy_accuracy"]), _pct(row["accuracy"]))
        tables.append(table)
    return tables


def _label_parts(label: str) -> tuple[str, str, str]:
    """(task, strategy, model) of a run label "task · strategy · model[ · split]", a model path shortened."""
    parts = [part.strip() for part in label.split(" · ")]
    task, strategy, model = (parts + ["", "", ""])[:3]
    pieces = model.rstrip("/").split("/")
    model = pieces[-1] if "." in pieces[-1] else "/".join(pieces[-2:])  # a file by its name, a folder with its parent
    if len(parts) > 3:
        task = f"{task} ({parts[3]})"
    return task, strategy, model


def runs_table(rows) -> Table:
    """Every run, newest first; readable at 80 columns (task, strategy and model in columns of their own;
    completions per run are in `show`)."""
    table = Table(header_style="bold", pad_edge=False, box=None, collapse_padding=True)
    table.add_column("run", no_wrap=True)
    table.add_column("task", overflow="fold", min_width=10)
    table.add_column("strategy", overflow="fold", min_width=10)
    table.add_column("model", overflow="fold", min_width=14)
    for column in ("n", "acc"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("updated", no_wrap=True)
    for r in rows:
        table.add_row(
            r["run_id"],
            *_label_parts(r["label"]),
            str(r["problems"]),
            _pct(r["accuracy"]),
            datetime.fromtimestamp(r["updated"]).strftime("%m-%d %H:%M"),
        )
    return table


def turns_table(t: TurnMetrics) -> Table:
    table = Table(title=f"self-correction over {len(t.accuracy)} turns ({t.problems} problems)", header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for i, value in enumerate(t.accuracy, start=1):
        table.add_row(f"Acc@t{i}", _pct(value))
    for i in range(len(t.delta)):
        pair = f"t{i + 1}→t{i + 2}"
        table.add_row(f"Δ({pair})", f"{100 * t.delta[i]:+.1f} points")
        table.add_row(f"Δi→c ({pair})", _pct(t.incorrect_to_correct[i]))
        table.add_row(f"Δc→i ({pair})", _pct(t.correct_to_incorrect[i]))
        table.add_row(f"edit distance ({pair})", f"{t.edit_distance[i]:.3f}")
    return table


def print_metrics(
    console: Console, run_id: str, label: str, strategy: str, m: RunMetrics, turns: TurnMetrics | None = None
) -> None:
    console.print(metrics_table(run_id, label, strategy, m))
    for table in breakdown_tables(m):
        console.print(table)
    if turns is not None:
        console.print(turns_table(turns))
    if m.errors is not None and m.errors.problems:
        console.print(error_table(m.errors))
    verdict = baseline_verdict(strategy, m)
    if verdict:
        console.print(verdict)


def error_table(e: ErrorCorrelation) -> Table:
    """Do the wrong samples agree? And how far can the vote's share be trusted?"""
    table = Table(title="error correlation (sampled paths)", header_style="bold")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("problems with ≥ 2 wrong samples", f"{e.with_repeated_errors} of {e.problems}")
    table.add_row("two wrong samples agree", _pct(e.wrong_pair_agreement))
    table.add_row("  all wrong samples one answer", _pct(e.single_wrong_answer_share))
    for b in e.calibration:
        if b.problems:
            table.add_row(f"vote share {b.low:.1f}–{b.high:.1f}: vote accuracy", f"{_pct(b.accuracy)} of {b.problems}")
    c = e.vote_vs_greedy
    if c is not None:
        low, high = c.interval
        interval = f"[{100 * low:+.1f}, {100 * high:+.1f}]"
        flips = f"(+{c.b_wins}/−{c.b_losses}, p={c.p_value:.3f})"
        table.add_row("majority vote − greedy", f"{100 * c.difference:+.1f} pts {interval} {flips}")
    return table


def baseline_verdict(strategy: str, m: RunMetrics) -> str | None:
    """One honest line when the run's strategy does not beat its own greedy baseline on these problems."""
    if m.greedy_accuracy is None or m.accuracy is None or m.accuracy > m.greedy_accuracy:
        return None
    relation = "equals" if m.accuracy == m.greedy_accuracy else "is below"
    return (
        f"note: {strategy} ({_pct(m.accuracy)}) {relation} the greedy answer ({_pct(m.greedy_accuracy)}) on these "
        f"{m.problems} problems: this model's sampled paths do not beat its single greedy path here."
    )


def comparison_table(a_id: str, b_id: str, c) -> Table:
    """A PairedComparison as a table: B relative to A."""
    table = Table(title=f"{b_id} vs {a_id} on {c.shared} shared problems", header_style="bold")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row(f"accuracy A ({a_id})", _pct(c.accuracy_a))
    table.add_row(f"accuracy B ({b_id})", _pct(c.accuracy_b))
    table.add_row("B - A", f"{100 * c.difference:+.1f} points")
    table.add_row("95% paired bootstrap", f"[{100 * c.interval[0]:+.1f}, {100 * c.interval[1]:+.1f}]")
    table.add_row("McNemar exact p", f"{c.p_value:.4g}")
    table.add_row("B right, A wrong (won)", str(c.b_wins))
    table.add_row("A right, B wrong (lost)", str(c.b_losses))
    table.add_row("both right / both wrong", f"{c.both_right} / {c.both_wrong}")
    return table


def grade_table(source: str, report) -> Table:
    """A GradeReport: pass@k, problems and samples, and how many completions ended in each outcome."""
    table = Table(title=f"graded {source}", header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("problems graded", f"{report.problems_graded} of {report.problems_total}")
    fewest, most = min(report.samples_per_problem.values()), max(report.samples_per_problem.values())
    table.add_row("completions / problem", str(fewest) if fewest == most else f"{fewest}–{most}")
    for k, value in report.pass_at_k.items():
        table.add_row(f"pass@{k}", _pct(value))
    for status, count in report.statuses.items():
        table.add_row(f"  {status}", str(count))
    if report.judged_in_process:
        table.add_row("judged in-process", f"{report.judged_in_process} (their tests need the program's objects)")
    return table


def problem_trace(row: dict) -> Group:
    """One solved problem: question, answer and reference, votes, and each part of the trace in `extra`
    (Logic-of-Thought's propositions, relations, derived expressions and augmented context in sections)."""
    parts: list = [
        Text(f"problem {row['problem_id']}", style="bold"),
        Text(row.get("question") or "(question not stored)"),
        Text(f"answer {row['answer']!s}  ·  reference {row['reference']!s}  ·  correct {row['correct']}"),
    ]
    if row["votes"]:
        parts.append(Text("votes: " + ", ".join(f"{a}: {c}" for a, c in row["votes"].items())))
    scored = [x for x in row["samples"] if x.get("reward") is not None]
    if scored:
        parts.append(Text("samples by reward:", style="bold"))
        chosen = row["extra"].get("chosen_sample")
        for x in sorted(scored, key=lambda x: -x["reward"]):
            members = x.get("reward_members")
            spread = f"  members {', '.join(f'{v:+.3f}' for v in members)}" if members else ""
            mark = "*" if x["index"] == chosen and x["step"] == "sample" else " "
            line = f" {mark}#{x['index']} reward {x['reward']:+.3f}  answer {x['answer']!s}  correct {x['correct']}"
            parts.append(Text(line + spread))
    lot = row["extra"].get("lot")
    if lot:
        parts.append(Text(f"Logic-of-Thought: {lot['status']}", style="bold"))
        for i, attempt in enumerate(lot.get("attempts", [])):
            parts.append(Text(f"  extraction attempt {i}: {attempt['error'] or 'parsed'}"))
        for symbol, meaning in lot.get("propositions", {}).items():
            parts.append(Text(f"  {symbol}: {meaning}"))
        for title in ("relations", "derived", "added"):
            if lot.get(title):
                parts.append(Text(f" {title}:", style="bold"))
                parts.extend(Text(f"  {item}") for item in lot[title])
        if lot.get("augmented_context"):
            parts.append(Text(" augmented context:", style="bold"))
            parts.append(Text(lot["augmented_context"]))
    if row["extra"].get("tree"):
        parts.extend(tree_lines(row["extra"]["tree"]))
    for key, value in row["extra"].items():
        if key not in ("lot", "tree"):
            parts.append(Text(f"{key}: {value}"))
    return Group(*parts)


def tree_lines(tree: dict) -> list[Text]:
    """A tree-of-thoughts search as an indented outline: each step with its value and ratings, what was kept,
    which leaves answered what, and the path to the best leaf marked with *."""
    nodes = {n["id"]: n for n in tree["nodes"]}
    on_path: set[int] = set()
    cursor = tree.get("best")
    while cursor is not None:
        on_path.add(cursor)
        cursor = nodes[cursor]["parent"]
    children: dict[int | None, list[dict]] = {}
    for node in tree["nodes"]:
        children.setdefault(node["parent"], []).append(node)
    best = nodes.get(tree.get("best"))
    header = f"Tree of thoughts: {len(nodes) - 1} steps"
    if best is not None:
        header += f", best leaf #{best['id']} answers {best['answer']!s}"
    lines = [Text(header, style="bold")]

    def walk(node: dict, indent: int) -> None:
        mark = "*" if node["id"] in on_path else " "
        value = "" if node["value"] is None else f" v={node['value']:g} ({'/'.join(r or '?' for r in node['ratings'])})"
        if node["final"]:
            grade = "ungraded" if node["correct"] is None else "right" if node["correct"] else "wrong"
            state = f" leaf → {node['answer']!s} ({grade})"
        else:
            state = " kept" if node["kept"] else " pruned"
        lines.append(Text(f"{'  ' * indent}{mark} #{node['id']}{value}{state}: {node['step']}"))
        for child in children.get(node["id"], []):
            walk(child, indent + 1)

    for child in children.get(0, []):
        walk(child, 1)
    return lines
