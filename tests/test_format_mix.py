"""Which formats a run's samples took, by hand-built rows: shares, accuracy, greedy apart from samples."""

from __future__ import annotations

from selfimprove.runs.format_mix import mix_of
from selfimprove.tasks.arithmetic import ArithmeticTask
from selfimprove.tasks.arithmetic_solutions import SOLUTION_FORMATS, write_solution


def test_shares_and_accuracy_per_format():
    problem = next(
        p
        for p in ArithmeticTask(level=4, shots=0).problems("train", limit=200)
        if len({write_solution(p.metadata["structure"], f) for f in SOLUTION_FORMATS}) == 5
    )
    structure = problem.metadata["structure"]
    taken = ["chain", "chain", "words", "places"]
    texts = {(problem.id, "sample", i): write_solution(structure, f) for i, f in enumerate(taken)}
    texts[(problem.id, "sample", 1)] = texts[(problem.id, "sample", 1)][:-5] + "777."  # a chain path that slipped
    texts[(problem.id, "greedy", 0)] = write_solution(structure, "grouped")
    samples = [{"step": "sample", "index": i, "correct": i != 1} for i in range(4)]
    samples.append({"step": "greedy", "index": 0, "correct": True})
    rows = [{"problem_id": problem.id, "samples": samples}]
    mix = mix_of(rows, texts, {problem.id: structure})
    assert {f: (m.completions, m.share, m.accuracy) for f, m in mix.items()} == {
        "chain": (2, 0.5, 0.5),
        "words": (1, 0.25, 1.0),
        "places": (1, 0.25, 1.0),
    }
    greedy = mix_of(rows, texts, {problem.id: structure}, "greedy")
    assert list(greedy) == ["grouped"] and greedy["grouped"].accuracy == 1.0
