"""Logic-of-Thought against its base strategies: CoT vs LoT+CoT and SC vs LoT+SC, per data set.

For each data set and strategy: accuracy with its 95% percentile-bootstrap interval; for each LoT
run, the paired difference to its base run on the same problems (bootstrap interval, McNemar
exact p) and what LoT did: problems augmented, derived expressions and added sentences per
problem, extraction attempts per problem. Runs live in a run store, so an interrupted benchmark
resumes where it stopped when given the same --store.

Data: the ProofWriter dev slice and the FOLIO developer slice (its train split in Logic-LM's
format: FOLIO's validation set is held out, so no FOLIO figure here is a test-set result).

    python benchmarks/logic_of_thought.py                                   # embedded model, 30 per set
    python benchmarks/logic_of_thought.py --limit 10 --samples 3 --datasets proofwriter
    python benchmarks/logic_of_thought.py --engine openai --base-url http://127.0.0.1:8000/v1 --model NAME
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from selfimprove.core.stats import bootstrap_interval, paired_comparison
from selfimprove.engines import base as engines
from selfimprove.runs import runner
from selfimprove.runs.store import RunStore
from selfimprove.strategies import base as strategies
from selfimprove.tasks import base as tasks

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DATASETS = {
    "proofwriter": ("proofwriter", SHARED / "proofwriter" / "dev.jsonl"),
    "folio": ("folio", SHARED / "folio" / "folio_train_logiclm.jsonl"),
}


def strategy_pairs(samples: int, max_tokens: int) -> list[tuple[str, str, dict]]:
    """(base name, LoT name, settings) for each comparison."""
    return [
        ("cot", "lot+cot", {"max_tokens": max_tokens}),
        ("self-consistency", "lot+self-consistency", {"max_tokens": max_tokens, "samples": samples}),
    ]


def lot_summary(rows: list[dict]) -> dict:
    """What Logic-of-Thought did over a run's problems."""
    traces = [r["extra"].get("lot", {}) for r in rows]
    statuses: dict[str, int] = {}
    for trace in traces:
        statuses[trace.get("status", "?")] = statuses.get(trace.get("status", "?"), 0) + 1
    return {
        "statuses": statuses,
        "derived_per_problem": statistics.fmean(len(t.get("derived", [])) for t in traces),
        "added_per_problem": statistics.fmean(len(t.get("added", [])) for t in traces),
        "extraction_attempts_per_problem": statistics.fmean(len(t.get("attempts", [])) for t in traces),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--limit", type=int, default=30, help="problems per data set (the first N)")
    parser.add_argument("--samples", type=int, default=5, help="self-consistency samples")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--engine", default="llama-cpp", choices=["llama-cpp", "openai"])
    parser.add_argument("--model", default=None, help="GGUF path (llama-cpp) or the server's model name (openai)")
    parser.add_argument("--base-url", default=None, help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--api-key-env", default=None, help="environment variable holding the server's key")
    parser.add_argument("--store", default=None, help="run store to keep and resume the runs (default: temporary)")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()

    settings = {"model": args.model}
    if args.engine == "openai":
        settings.update(base_url=args.base_url, api_key_env=args.api_key_env)
    engine = engines.get(args.engine)(**{k: v for k, v in settings.items() if v is not None})
    store = RunStore(args.store or Path(tempfile.mkdtemp()) / "runs.sqlite")
    results = []
    print(f"{'data set':12} {'strategy':22} {'accuracy':>8}  {'95% CI':>15}  {'seconds/pb':>10}  LoT vs base")
    try:
        for dataset in args.datasets:
            task_name, path = DATASETS[dataset]
            task = tasks.get(task_name)(data=str(path))
            for base_name, lot_name, strategy_settings in strategy_pairs(args.samples, args.max_tokens):
                outcomes = {}
                for name in (base_name, lot_name):
                    strategy = strategies.get(name)(**strategy_settings)
                    run = runner.execute(task, strategy, engine, store, limit=args.limit, show_progress=True)
                    rows = store.solutions(run.run_id)
                    outcomes[name] = rows
                    correct = [float(bool(r["correct"])) for r in rows]
                    low, high = bootstrap_interval(correct)
                    seconds = statistics.fmean(sum(s["seconds"] for s in r["samples"]) for r in rows)
                    entry = {
                        "dataset": dataset,
                        "strategy": name,
                        "run_id": run.run_id,
                        "problems": len(rows),
                        "accuracy": statistics.fmean(correct),
                        "interval": [low, high],
                        "seconds_per_problem": seconds,
                    }
                    versus = ""
                    if name == lot_name:
                        base_correct = {r["problem_id"]: bool(r["correct"]) for r in outcomes[base_name]}
                        shared = [r for r in rows if r["problem_id"] in base_correct]
                        paired = paired_comparison(
                            [base_correct[r["problem_id"]] for r in shared], [bool(r["correct"]) for r in shared]
                        )
                        entry["versus_base"] = {
                            "difference": paired.difference,
                            "interval": list(paired.interval),
                            "fixed": paired.b_wins,
                            "broken": paired.b_losses,
                            "p_value": paired.p_value,
                        }
                        entry["lot"] = lot_summary(rows)
                        versus = (
                            f"{100 * paired.difference:+.1f} pts [{100 * paired.interval[0]:+.1f}, "
                            f"{100 * paired.interval[1]:+.1f}], p={paired.p_value:.2f}; "
                            f"derived/pb {entry['lot']['derived_per_problem']:.1f}, "
                            f"added/pb {entry['lot']['added_per_problem']:.1f}, {entry['lot']['statuses']}"
                        )
                    results.append(entry)
                    print(
                        f"{dataset:12} {name:22} {100 * entry['accuracy']:7.1f}%  "
                        f"[{100 * low:5.1f}, {100 * high:5.1f}]  {seconds:10.2f}  {versus}",
                        flush=True,
                    )
    finally:
        engine.close()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
