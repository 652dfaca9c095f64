"""The control an LMSI run with `--replay` needs: the same rounds with the self-generated rows replaced by labeled
rows from the replay file (the same row count per round, the same fine-tuning settings), so that a gain of LMSI
over it is the self-generated data's and not more training on labeled data (docs/lmsi.md, issue 24).

Each round fine-tunes the previous round's model; evaluate the printed checkpoints with `selfimprove run`
exactly as LMSI evaluated its rounds.

    python benchmarks/lmsi_labeled_control.py --model /tmp/tb24/all/merged --replay /tmp/tb24/all/train.jsonl \
        --rows 2974,3974 --out /tmp/tb24/control -T lora_r=0 -T learning_rate=3e-4 -T epochs=2
"""

from __future__ import annotations

import argparse
from pathlib import Path

from selfimprove.cli import _coerce, parse_options
from selfimprove.training.lmsi import replay_rows
from selfimprove.training.sft import finetune, load_for_training, resolve_sft


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="The model LMSI started from.")
    parser.add_argument("--replay", required=True, help="Labeled prompt/completion JSONL (LMSI's --replay file).")
    parser.add_argument("--rows", required=True, help="Training rows per round, comma-separated (LMSI's counts).")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("-T", dest="sft", action="append", default=[], help="Fine-tuning setting KEY=VALUE.")
    parser.add_argument("--seed", type=int, default=100, help="Row draw seed (round r draws with seed + r).")
    args = parser.parse_args()
    model = args.model
    for number, count in enumerate((int(x) for x in args.rows.split(",")), start=1):
        rows = replay_rows(args.replay, count, seed=args.seed + number)
        network, tokenizer = load_for_training(model)
        overrides = {k: _coerce(v) for k, v in parse_options(args.sft, "-T").items()}
        settings = resolve_sft(overrides, network.num_parameters())
        result = finetune(network, tokenizer, rows, args.out / f"round-{number}", settings)
        del network
        print(f"control round {number}: {len(rows)} labeled rows, {result.steps} steps, "
              f"loss {result.losses[0]:.3f} -> {result.losses[-1]:.3f}; model {result.merged}", flush=True)  # fmt: skip
        model = str(result.merged)


if __name__ == "__main__":
    main()
