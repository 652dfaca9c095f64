"""Weak-to-strong: PGR and its interval on hand-built outcomes, the student's flips, the confidence loss, the train
slices, and one run end to end on a tiny random Llama in which the student never sees a gold label."""

import json
import math
from dataclasses import replace

import pytest

from selfimprove.core.errors import ConfigError
from selfimprove.core.stats import performance_gap_recovered
from selfimprove.tasks.arithmetic import ArithmeticTask
from selfimprove.tasks.questions import QuestionsTask
from selfimprove.training.weak_to_strong import (
    TrainSlice,
    W2SSettings,
    answer_in_prompt,
    gold_completion,
    student_flips,
)


def outcomes(right: int, total: int = 10) -> list[bool]:
    return [i < right for i in range(total)]


def test_pgr_on_hand_built_outcomes():
    gap = performance_gap_recovered(outcomes(2), outcomes(5), outcomes(8))
    assert (gap.weak, gap.student, gap.ceiling) == (0.2, 0.5, 0.8)
    assert gap.pgr == pytest.approx(0.5)
    low, high = gap.interval
    assert low <= 0.5 <= high and low >= 0.0 and high <= 1.0  # nested outcomes: the student stays between the two
    assert gap.undefined_resamples < 100
    assert performance_gap_recovered(outcomes(2), outcomes(8), outcomes(8)).pgr == pytest.approx(1.0)
    assert performance_gap_recovered(outcomes(4), outcomes(2), outcomes(8)).pgr == pytest.approx(-0.5)


def test_pgr_interval_is_exactly_the_point_when_nothing_can_vary():
    weak, student, ceiling = [False] * 20, [True, False] * 10, [True] * 20
    gap = performance_gap_recovered(weak, student, ceiling)
    assert gap.pgr == pytest.approx(0.5) and gap.undefined_resamples == 0
    low, high = gap.interval
    assert 0.25 < low < 0.5 < high < 0.75  # the student's own spread: a binomial's on 20 problems


def test_pgr_without_a_gap_is_undefined_and_the_interval_is_joint():
    gap = performance_gap_recovered(outcomes(5), outcomes(7), outcomes(5))
    assert gap.pgr is None and gap.interval is None
    with pytest.raises(ValueError):
        performance_gap_recovered([True], [True, False], [True])
    # paired: the same problems are resampled for all three, so a student equal to the ceiling is PGR 1 in
    # every resample where it is defined
    same = performance_gap_recovered(outcomes(3), [True, False] * 5, [True, False] * 5)
    assert same.interval == (1.0, 1.0)


def test_student_flips_count_repeated_errors():
    weak = [(True, "1"), (False, "2"), (False, "3"), (False, "4"), (True, "5")]
    student = [(True, "1"), (True, "9"), (False, "3"), (False, "8"), (False, "6")]
    flips = student_flips(weak, student)
    assert (flips["fixed"], flips["broken"], flips["both_right"], flips["both_wrong"]) == (1, 1, 1, 2)
    assert flips["same_wrong_answer"] == 1 and flips["difference"] == 0.0


def test_confidence_loss_terms():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    from selfimprove.training.confidence_loss import ConfidenceLoss, confidence_loss

    torch.manual_seed(0)
    logits = torch.randn(2, 6, 11)
    labels = torch.randint(0, 11, (2, 6))
    labels[:, :2] = -100  # the prompt
    expected = F.cross_entropy(logits[:, :-1].reshape(-1, 11), labels[:, 1:].reshape(-1), ignore_index=-100)
    assert confidence_loss(logits, labels, 0.0).item() == pytest.approx(expected.item(), rel=1e-5)
    own = logits.argmax(-1)
    agreeing = torch.where(labels == -100, labels, torch.roll(own, 1, dims=1))  # labels = the model's own argmax
    assert confidence_loss(logits, agreeing, 1.0).item() == pytest.approx(confidence_loss(logits, agreeing, 0.0).item())
    half = confidence_loss(logits, labels, 0.5).item()
    ends = confidence_loss(logits, labels, 0.0).item(), confidence_loss(logits, labels, 1.0).item()
    assert half == pytest.approx(sum(ends) / 2, rel=1e-5) and ends[1] < ends[0]  # own predictions cost less
    loss = ConfidenceLoss(0.75, warmup=0.2)
    alphas = []
    for progress in (0.0, 0.1, 0.2, 0.9):
        loss.progress = progress
        alphas.append(loss.alpha)
    assert alphas == pytest.approx([0.0, 0.375, 0.75, 0.75])
    with pytest.raises(ValueError):
        ConfidenceLoss(1.5)


def test_train_slices_are_disjoint_and_keep_test():
    task = ArithmeticTask(level=2, shots=0)
    first, second = TrainSlice(task, 0, 5), TrainSlice(task, 5, 7)
    a = [p.id for p in first.problems("train")]
    b = [p.id for p in second.problems("train")]
    assert a == [f"train-{i}" for i in range(5)] and b == [f"train-{i}" for i in range(5, 12)]
    assert [p.id for p in second.problems("train", limit=2)] == ["train-5", "train-6"]
    assert [p.id for p in second.problems("test", limit=3)] == [p.id for p in task.problems("test", limit=3)]
    assert second.describe()["train_slice"] == [5, 7] and second.name == "arithmetic"


def test_gold_completion_and_exemplar_problems():
    task = ArithmeticTask(level=1, shots=0)
    problem = next(task.problems("train", limit=1))
    assert gold_completion(task, problem, "reasoning") == " " + problem.metadata["solution"]
    assert gold_completion(task, problem, "answer") == f" The answer is {problem.reference}."
    bare = QuestionsTask(items=[{"question": "How many legs has a spider?", "answer": 8}])
    spider = next(bare.problems("test"))
    assert gold_completion(bare, spider, "reasoning") == " The answer is 8."
    assert gold_completion(bare, replace(spider, reference=None), "reasoning") is None
    stated = replace(spider, metadata={"solution": "Spiders have eight legs, 4 pairs."})
    assert gold_completion(bare, stated, "reasoning") == " Spiders have eight legs, 4 pairs. The answer is 8."
    few_shot = ArithmeticTask(level=1, shots=2)
    exemplar, other = list(few_shot.problems("train", limit=3))[0], list(few_shot.problems("train", limit=3))[2]
    assert answer_in_prompt(few_shot.format_prompt(exemplar), exemplar)
    assert not answer_in_prompt(few_shot.format_prompt(other), other)


def test_settings_ranges_name_the_field():
    with pytest.raises(ConfigError, match="labeler"):
        W2SSettings(labeler="oracle")
    with pytest.raises(ConfigError, match="target"):
        W2SSettings(target="gold")
    with pytest.raises(ConfigError, match="confidence_weight"):
        W2SSettings(confidence_weight=2.0)
    with pytest.raises(ConfigError, match="train_limit"):
        W2SSettings(train_limit=0)


GOLD = "9876543210"


class SentinelTask(ArithmeticTask):
    """Arithmetic whose train references (and worked solutions) are a number no labeler would write."""

    def problems(self, split="test", limit=None):
        for problem in super().problems(split, limit):
            if split == "train":
                solution = f"{problem.metadata['solution']} Really, the answer is {GOLD}."
                problem = replace(problem, reference=GOLD, metadata={**problem.metadata, "solution": solution})
            yield problem


@pytest.fixture(scope="module")
def strong_checkpoint(tmp_path_factory):
    pytest.importorskip("trl")
    from tiny_models import tiny_llama

    folder = tmp_path_factory.mktemp("tiny") / "strong"
    model, tokenizer = tiny_llama(seed=2, hidden=32)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_weak_to_strong_end_to_end_the_student_never_sees_gold(tmp_path, strong_checkpoint):
    from doubles import ScriptedEngine
    from selfimprove.engines.hf import HFEngine
    from selfimprove.training.weak_to_strong import WeakToStrong

    task = SentinelTask(level=1, shots=0)
    weak_answers = {p.id: ("7" if int(p.id.split("-")[1]) % 2 else GOLD) for p in task.problems("train", limit=12)}
    weak = ScriptedEngine(lambda prompt, i: f" Counting. The answer is {weak_answers.get(prompt.problem_id, '3')}.")
    built = []

    def make_engine(source):
        built.append(source)
        return weak if source == "weak" else HFEngine(model=source, batch_size=16)

    settings = W2SSettings(weak_gold=0, train_limit=6, test_limit=4, max_tokens=8, confidence_weight=0.5)
    sft = {"epochs": 1, "batch_size": 4, "lora_r": 0, "max_length": 128}
    loop = WeakToStrong(
        task, "weak", strong_checkpoint, tmp_path, settings, sft, make_engine=make_engine, log=lambda m: None
    )
    report = loop.run()

    def one(pattern):
        (found,) = tmp_path.glob(pattern)
        return found

    labels = [json.loads(line) for line in one("weak-labels-*.jsonl").read_text().splitlines()]
    assert [r["problem_id"] for r in labels] == [f"train-{i}" for i in range(6)]
    # the labeler saw no reference: its run stores none; its odd answers are 7, its even ones happen to be gold
    assert [r["answer"] for r in labels] == [GOLD if i % 2 == 0 else "7" for i in range(6)]
    assert all(r["completion"].startswith(" Counting. The answer is") for r in labels)
    assert all("Really, the answer is" not in r["completion"] for r in labels)  # no gold solution in the w2s arm
    gold = [json.loads(line) for line in one("gold-*.jsonl").read_text().splitlines()]
    assert all(r["completion"].endswith(f"Really, the answer is {GOLD}.") for r in gold) and len(gold) == 6
    train_runs = [r for r in loop.store.runs() if r["label"].endswith("· train")]
    assert len(train_runs) == 1
    assert all(s["reference"] is None and s["correct"] is None for s in loop.store.solutions(train_runs[0]["run_id"]))

    assert set(report.arms) == {"weak", "student", "ceiling", "strong-base"}
    assert all(arm["problems"] == 4 for arm in report.arms.values())
    assert report.labels == {"rows": 6, "problems": 6, "unlabeled": 0, "accuracy": 0.5}
    assert report.flips["problems"] == 4
    assert report.pgr["pgr"] is None or math.isfinite(report.pgr["pgr"])
    assert (tmp_path / "report.html").read_text().count("<img") == 1
    for name in ("student", "ceiling"):
        assert (one(f"{name}-*") / "merged" / "config.json").is_file()

    # a second run reuses every stage: nothing is trained or generated again
    before = {name: (one(f"{name}-*") / "done.json").stat().st_mtime for name in ("student", "ceiling")}
    calls = len(weak.calls)
    again = WeakToStrong(
        task, "weak", strong_checkpoint, tmp_path, settings, sft, make_engine=make_engine, log=lambda m: None
    )
    assert again.run().arms == report.arms
    assert len(weak.calls) == calls
    assert before == {name: (one(f"{name}-*") / "done.json").stat().st_mtime for name in ("student", "ceiling")}

    # another student setting in the same folder trains a new student only; labels and ceiling are reused
    plain = replace(settings, confidence_weight=0.0)
    third = WeakToStrong(task, "weak", strong_checkpoint, tmp_path, plain, sft, make_engine=make_engine, log=print)
    assert third.run().arms["ceiling"] == report.arms["ceiling"] and len(weak.calls) == calls
    assert len(list(tmp_path.glob("student-*"))) == 2 and len(list(tmp_path.glob("ceiling-*"))) == 1


def test_finetune_trains_through_the_given_loss(tmp_path):
    pytest.importorskip("trl")
    from selfimprove.training.confidence_loss import ConfidenceLoss
    from selfimprove.training.sft import SFTSettings, finetune
    from tiny_models import tiny_llama

    class Counted(ConfidenceLoss):
        calls = 0
        seen_progress: list = []

        def __call__(self, outputs, labels, num_items_in_batch=None):
            Counted.calls += 1
            Counted.seen_progress.append(self.progress)
            return super().__call__(outputs, labels, num_items_in_batch)

    model, tokenizer = tiny_llama(seed=4, hidden=32)
    rows = [{"prompt": f"Question: {i} + 1?\nAnswer:", "completion": f" The answer is {i + 1}."} for i in range(8)]
    loss = Counted(0.5, warmup=0.5)
    settings = SFTSettings(epochs=1, batch_size=2, lora_r=0, max_length=64, save_steps=100)
    result = finetune(model, tokenizer, rows, tmp_path, settings, loss=loss, callbacks=(loss.callback(),))
    assert result.steps == 4 and Counted.calls == 4
    assert Counted.seen_progress == [0.0, 0.25, 0.5, 0.75]  # α warmed up with the trainer's steps
    assert all(math.isfinite(x) for x in result.losses)


def test_bootstrapping_through_an_intermediate_model(tmp_path, strong_checkpoint):
    """The intermediate model learns from the weak labels, then its own answers (here scripted: the plumbing is
    under test) train the bootstrapped student; PGR is reported for both students."""
    from doubles import ScriptedEngine
    from selfimprove.engines.hf import HFEngine
    from selfimprove.training.weak_to_strong import WeakToStrong

    task = ArithmeticTask(level=1, shots=0)
    weak = ScriptedEngine(lambda prompt, i: " The answer is 7.")
    middle = ScriptedEngine(lambda prompt, i: " I think. The answer is 5.")
    middle.name = "scripted-intermediate"  # runs are identified by their engine: another model, other runs

    def make_engine(source):
        if source == "weak":
            return weak
        return middle if "/intermediate-" in str(source) else HFEngine(model=source, batch_size=16)

    settings = W2SSettings(train_limit=4, test_limit=3, max_tokens=6)
    sft = {"epochs": 1, "batch_size": 4, "lora_r": 0, "max_length": 96}
    loop = WeakToStrong(
        task, "weak", strong_checkpoint, tmp_path, settings, sft, strong_checkpoint, make_engine, log=lambda m: None
    )
    report = loop.run()
    assert list(report.arms) == ["weak", "student", "ceiling", "intermediate", "bootstrapped", "strong-base"]
    (relabeled,) = tmp_path.glob("intermediate-labels-*.jsonl")
    rows = [json.loads(line) for line in relabeled.read_text().splitlines()]
    assert {r["answer"] for r in rows} == {"5"} and len(rows) == 4
    assert report.bootstrapped_pgr is not None and "bootstrapped" in (tmp_path / "report.html").read_text()
    assert [c[0] for c in middle.calls] == [f"train-{i}" for i in range(4)] + [f"test-{i}" for i in range(3)]


def test_the_weak_supervisors_gold_problems_are_not_the_students(tmp_path):
    from selfimprove.training.weak_to_strong import WeakToStrong

    task = ArithmeticTask(level=2, shots=0)
    loop = WeakToStrong(task, "weak", "strong", tmp_path, W2SSettings(weak_gold=5, train_limit=8), log=lambda m: None)
    supervisor = loop._gold_rows("weak-gold", TrainSlice(task, 0, 5))
    ceiling = loop._gold_rows("gold", loop.students)
    assert [r["problem_id"] for r in supervisor] == [f"train-{i}" for i in range(5)]
    assert [r["problem_id"] for r in ceiling] == [f"train-{i}" for i in range(5, 13)]
    assert supervisor[0]["stage"] != ceiling[0]["stage"] and len(list(tmp_path.glob("*.jsonl"))) == 2
