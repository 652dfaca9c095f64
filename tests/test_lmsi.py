"""LMSI end to end on a tiny random Llama: sample unlabeled, vote, build the four formats, LoRA fine-tune,
merge, evaluate before/after; labels never reach selection; every stage resumes."""

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")

from selfimprove.core.errors import ConfigError  # noqa: E402
from selfimprove.core.types import Problem  # noqa: E402
from selfimprove.engines.hf import HFEngine, load_causal_lm  # noqa: E402
from selfimprove.tasks.arithmetic import ArithmeticTask  # noqa: E402
from selfimprove.training.formats import FORMATS, KeptPath, training_rows  # noqa: E402
from selfimprove.training.lmsi import LMSI, LMSISettings, calibration_table  # noqa: E402
from selfimprove.training.sft import SFTSettings  # noqa: E402
from tiny_models import tiny_llama  # noqa: E402


class CountingFactory:
    """Builds real hf engines from a checkpoint folder and remembers which models it was asked for."""

    def __init__(self):
        self.sources = []

    def __call__(self, source):
        self.sources.append(source)
        return HFEngine(model=source, batch_size=32)


@pytest.fixture(scope="module")
def base_checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny") / "base"
    model, tokenizer = tiny_llama(seed=1, hidden=48)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_training_formats_follow_the_paper():
    task = ArithmeticTask(level=1, shots=1)
    problems = list(task.problems("train", limit=3))
    kept = [KeptPath(p, str(i), f" Step {i}. The answer is {i}.") for i, p in enumerate(problems)]
    rows = training_rows(kept, task, shots=2)
    assert [r["format"] for r in rows[:4]] == list(FORMATS) and len(rows) == 12
    fewshot_cot, fewshot_direct, zeroshot_cot, zeroshot_direct = rows[:4]
    assert fewshot_cot["prompt"] == task.format_prompt(problems[0]) and fewshot_cot["completion"] == kept[0].path
    assert fewshot_direct["prompt"].count("Question: ") == 3 and fewshot_direct["completion"] == " The answer is 0."
    assert problems[0].question not in fewshot_direct["prompt"].split("\n\n")[0]  # never its own exemplar
    assert zeroshot_cot["prompt"].endswith("Answer: Let's think step by step.")
    assert zeroshot_direct == {
        "prompt": f"Question: {problems[0].question}\nAnswer:",
        "completion": " The answer is 0.",
        "format": "zeroshot-direct",
        "problem_id": problems[0].id,
    }


def test_selection_never_sees_a_label_and_calibration_buckets(tmp_path):
    from doubles import ScriptedEngine
    from selfimprove.runs import runner
    from selfimprove.runs.store import RunStore
    from selfimprove.strategies.self_consistency import SelfConsistency

    task = ArithmeticTask(level=1)
    store = RunStore(tmp_path / "runs.sqlite")
    strategy = SelfConsistency(samples=2, greedy_baseline=False)
    engine = ScriptedEngine(lambda prompt, i: " The answer is 1.")
    outcome = runner.execute(task, strategy, engine, store, limit=5, split="train", unlabeled=True, show_progress=False)
    rows = store.solutions(outcome.run_id)
    assert [r["problem_id"] for r in rows] == [p.id for p in task.problems("train", limit=5)]
    assert all(r["reference"] is None and r["correct"] is None for r in rows)
    assert all(x["correct"] is None for r in rows for x in r["samples"])
    assert store.config(outcome.run_id)["task"]["unlabeled"] is True
    table = calibration_table([(1.0, True), (0.9, False), (0.5, True), (0.1, None)])
    assert [row["questions"] for row in table] == [1, 0, 1, 0, 2]
    assert table[-1]["accuracy"] == 0.5 and table[2]["accuracy"] == 1.0 and table[0]["accuracy"] is None


def test_the_whole_loop_runs_resumes_and_the_adapter_changes_outputs(base_checkpoint, tmp_path):
    task = ArithmeticTask(level=1, shots=0)
    settings = LMSISettings(paths=4, max_tokens=24, train_limit=8, test_limit=4, eval_samples=2, shots=2)
    sft = SFTSettings(epochs=4, learning_rate=3e-3, lora_r=8, lora_alpha=16, batch_size=8, logging_steps=2)
    factory = CountingFactory()
    lines = []
    loop = LMSI(task, base_checkpoint, tmp_path / "work", settings, sft=sft, make_engine=factory, log=lines.append)
    (report,) = loop.run()

    assert report.questions == 8 and report.kept_paths >= report.kept_questions > 0
    rows = [json.loads(x) for x in (tmp_path / "work/round-1/train.jsonl").read_text().splitlines()]
    assert len(rows) == report.training_rows == 4 * report.kept_paths
    assert report.losses[-1] < report.losses[0]  # the LoRA fit the kept paths
    assert set(report.evaluation) == {"greedy", "maj@2"}
    assert report.evaluation["greedy"]["problems"] == 4
    assert factory.sources == [base_checkpoint, base_checkpoint, report.merged]

    # The saved adapter reloads onto the base model and changes what it generates.
    from peft import PeftModel

    base, tokenizer, _ = load_causal_lm(base_checkpoint)
    prompt = f"Question: {next(task.problems(limit=1)).question}\nAnswer:"
    ids = tokenizer(prompt, return_tensors="pt")
    before = base.generate(**ids, max_new_tokens=12, do_sample=False)
    adapted = PeftModel.from_pretrained(base, str(tmp_path / "work/round-1/sft/adapter"))
    after = adapted.generate(**ids, max_new_tokens=12, do_sample=False)
    assert before.tolist() != after.tolist()

    # A finished round is not redone; with its report gone, every stage reuses what it stored.
    again = LMSI(task, base_checkpoint, tmp_path / "work", settings, sft=sft, make_engine=factory, log=lines.append)
    assert again.run()[0].merged == report.merged and len(factory.sources) == 3
    (tmp_path / "work/round-1/report.json").unlink()
    redone = again.run()[0]
    assert redone.losses == report.losses and redone.evaluation == report.evaluation
    assert redone.kept_paths == report.kept_paths


def test_bad_settings_are_refused(tmp_path):
    from selfimprove.core.errors import ConfigError

    with pytest.raises(ConfigError, match="min_share"):
        LMSI(ArithmeticTask(), None, tmp_path, LMSISettings(min_share=2))
    with pytest.raises(ConfigError, match="unknown fine-tuning setting"):
        SFTSettings.scaled_to(10, lora_rank=4)
    with pytest.raises(ConfigError, match="unknown training format"):
        training_rows([KeptPath(Problem("a", "q"), "1", "p")], ArithmeticTask(), formats=("few-shot",))


def test_the_cli_runs_a_round_and_prints_its_tables(base_checkpoint, tmp_path):
    from typer.testing import CliRunner

    from selfimprove.cli import app

    args = ["lmsi", "--model", base_checkpoint, "--level", "1", "-O", "shots=0", "--out", str(tmp_path / "w"),
            "--paths", "2", "--train-limit", "4", "--test-limit", "2", "--eval-samples", "2", "--max-tokens", "12",
            "--formats", "zeroshot-cot,zeroshot-direct", "-T", "epochs=1", "-T", "batch_size=4"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for text in ("LMSI round 1", "vote share", "before", "maj@2", "improved model:"):
        assert text in result.output
    bad = CliRunner().invoke(app, [*args[:-4], "-T", "lora_rank=3"])
    assert bad.exit_code == 2 and "unknown fine-tuning setting" in bad.output


def test_a_teacher_samples_and_the_student_is_trained(base_checkpoint, tmp_path):
    teacher = tmp_path / "teacher"
    model, tokenizer = tiny_llama(seed=7, hidden=48)
    model.save_pretrained(teacher)
    tokenizer.save_pretrained(teacher)
    factory = CountingFactory()
    settings = LMSISettings(paths=2, max_tokens=12, train_limit=4, test_limit=2, eval_samples=2)
    sft = SFTSettings(epochs=1, learning_rate=3e-3, lora_r=4, lora_alpha=8, batch_size=4)
    loop = LMSI(ArithmeticTask(level=1, shots=0), base_checkpoint, tmp_path / "w", settings, sft=sft,
                make_engine=factory, teacher=str(teacher), log=lambda line: None)  # fmt: skip
    (report,) = loop.run()
    # The teacher samples; the student (base) is what is evaluated before, and trained into `merged`.
    assert factory.sources == [str(teacher), base_checkpoint, report.merged]
    assert report.model == base_checkpoint


def test_each_round_is_exported_to_gguf_and_the_next_round_samples_the_export(base_checkpoint, tmp_path):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from tiny_models import gguf_template

    template = tmp_path / "template.gguf"
    config = AutoConfig.from_pretrained(base_checkpoint)
    gguf_template(template, "llama", config, config.vocab_size, tied=False)
    _, tokenizer, _ = load_causal_lm(base_checkpoint)
    sampled_from = []

    def sampler(source):
        """A real engine on what the export wrote: transformers reads the GGUF's weights."""
        sampled_from.append(str(source))
        if not str(source).endswith(".gguf"):
            return HFEngine(model=source, batch_size=32)
        path = Path(source)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
        return HFEngine.from_loaded(model, tokenizer, source=str(path))

    settings = LMSISettings(paths=2, max_tokens=12, train_limit=4, test_limit=2, eval_samples=2, rounds=2,
                            gguf_type="f32", gguf_template=str(template))  # fmt: skip
    sft = SFTSettings(epochs=1, learning_rate=3e-3, lora_r=4, lora_alpha=8, batch_size=4)
    loop = LMSI(ArithmeticTask(level=1, shots=0), base_checkpoint, tmp_path / "w", settings, sft=sft,
                make_sampler=sampler, log=lambda line: None)  # fmt: skip
    first, second = loop.run()
    assert first.gguf.endswith("round-1/sft/model-f32.gguf") and Path(first.gguf).is_file()
    assert sampled_from == [base_checkpoint, first.gguf]
    assert "export" in first.seconds and Path(second.gguf).is_file()

    merged = AutoModelForCausalLM.from_pretrained(first.merged, dtype=torch.float32).state_dict()
    path = Path(first.gguf)
    exported = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    for name, value in exported.state_dict().items():
        assert torch.equal(value, merged[name]), name

    with pytest.raises(ConfigError, match="unknown GGUF type"):
        LMSI(ArithmeticTask(), None, tmp_path, LMSISettings(gguf_type="q3"))
    with pytest.raises(ConfigError, match="did not come from a GGUF"):
        LMSI(ArithmeticTask(), base_checkpoint, tmp_path, LMSISettings(gguf_type="f16"))


def test_replay_mixes_labeled_rows_into_the_round_and_bad_files_are_named(tmp_path):
    from selfimprove.core.errors import DataError
    from selfimprove.training.lmsi import replay_rows

    labeled = tmp_path / "train.jsonl"
    rows = [{"prompt": f"Q{i}\nAnswer:", "completion": f" {i}"} for i in range(50)]
    labeled.write_text("".join(json.dumps(row) + "\n" for row in rows))
    drawn = replay_rows(labeled, 10, seed=3)
    assert len(drawn) == 10 and len({r["prompt"] for r in drawn}) == 10 and drawn == replay_rows(labeled, 10, seed=3)
    assert drawn != replay_rows(labeled, 10, seed=4) and len(replay_rows(labeled, 500)) == 50

    task = ArithmeticTask(level=1, shots=0)
    kept = [KeptPath(p, "1", " The answer is 1.") for p in task.problems("train", limit=3)]
    loop = LMSI(task, None, tmp_path / "w", LMSISettings(formats=("fewshot-cot",), replay=str(labeled)), log=print)
    rows = loop._dataset(tmp_path / "w", kept, 1)
    assert [r["format"] for r in rows] == ["fewshot-cot"] * 3 + ["replay"] * 3  # as many as its own rows
    assert loop._dataset(tmp_path / "w", kept, 1) == rows  # written once, reused

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt": "Q", "completion": " 1"}\n{"prompt": "Q"}\n')
    with pytest.raises(DataError, match=r"broken.jsonl:2: field 'completion': missing"):
        LMSI(task, None, tmp_path / "x", LMSISettings(replay=str(broken)))
    with pytest.raises(ConfigError, match="replay_rows"):
        LMSI(task, None, tmp_path / "x", LMSISettings(replay_rows=-1))
