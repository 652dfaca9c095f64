"""Console tables for training commands: LMSI (what was kept, how vote share tracked accuracy, before/after) and
SCoRe (the sampled episodes over training, self-correction before/after)."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def round_tables(report: Any) -> list[Table]:
    """The tables of one `training.lmsi.RoundReport` (read by attribute: reports sit beside training, not above)."""
    summary = Table(title=f"LMSI round {report.round}: {report.model}")
    summary.add_column("stage")
    summary.add_column("result")
    summary.add_column("seconds", justify="right")
    seconds = report.seconds
    summary.add_row(
        "sample + select",
        f"{report.kept_paths} paths kept from {report.kept_questions}/{report.questions} questions",
        f"{seconds.get('sample', 0) + seconds.get('select', 0):.0f}",
    )
    losses = f"loss {report.losses[0]:.3f} → {report.losses[-1]:.3f}" if report.losses else "no loss logged"
    summary.add_row(
        "train", f"{report.training_rows} rows, {report.steps} steps, {losses}", f"{seconds.get('train', 0):.0f}"
    )
    summary.add_row("evaluate", "test split, before and after", f"{seconds.get('evaluate', 0):.0f}")

    calibration = Table(title="vote share vs accuracy of the kept answer (labels read for this table only)")
    for column in ("vote share", "questions", "accuracy"):
        calibration.add_column(column, justify="right")
    for row in report.calibration:
        calibration.add_row(row["share"], str(row["questions"]), _pct(row["accuracy"]))

    evaluation = Table(title="test split: before vs after (paired bootstrap 95% interval)")
    for column in ("mode", "problems", "before", "after", "after − before", "fixed / broken", "McNemar p"):
        evaluation.add_column(column, justify="right")
    for mode, row in report.evaluation.items():
        low, high = row["difference_interval"]
        evaluation.add_row(
            mode,
            str(row["problems"]),
            _pct(row["before"]),
            _pct(row["after"]),
            f"{100 * row['difference']:+.1f} pts [{100 * low:+.1f}, {100 * high:+.1f}]",
            f"{row['fixed']} / {row['broken']}",
            f"{row['p_value']:.3f}",
        )
    return [summary, calibration, evaluation]


def self_correction_table(rows: list[dict], title: str) -> Table:
    """`training.score.compare_self_correction` rows: Acc@t1, Acc@t2, Δ, i→c, c→i, edit distance per model."""
    table = Table(title=title)
    for column in ("model", "problems", "Acc@t1", "Acc@t2", "Δ(t1,t2)", "Δ i→c", "Δ c→i", "edit distance"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in rows:
        table.add_row(
            row["model"],
            str(row["problems"]),
            _pct(row["acc_t1"]),
            _pct(row["acc_t2"]),
            f"{100 * row['delta']:+.1f}",
            _pct(row["incorrect_to_correct"]),
            _pct(row["correct_to_incorrect"]),
            f"{row['edit_distance']:.2f}",
        )
    return table


def training_curve_table(rows: list[dict], title: str) -> Table:
    """`training.score.training_curve` rows: sampled rewards, KL and edit distance per block of steps."""
    table = Table(title=title)
    for column in ("steps", "stage", "r1", "r2", "KL 1", "KL 2", "edit"):
        table.add_column(column, justify="left" if column in ("steps", "stage") else "right")
    for row in rows:
        reward, kl = row["reward"], row["kl"]
        second = len(reward) > 1
        table.add_row(
            row["steps"],
            row["stage"],
            f"{reward[0]:.2f}",
            f"{reward[1]:.2f}" if second else "—",
            f"{kl[0]:.3f}",
            f"{kl[1]:.3f}" if second else "—",
            "—" if row["edit_distance"] is None else f"{row['edit_distance']:.3f}",
        )
    return table
