"""`selfimprove`: the command line. Flags map one-to-one onto task, strategy and engine settings."""

from __future__ import annotations

import inspect
import json
import logging
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from selfimprove import engines, strategies, tasks
from selfimprove.cli_settings import settings_from, settings_options
from selfimprove.core.config import default_store_path
from selfimprove.core.errors import ConfigError, SelfImproveError
from selfimprove.quant.settings import QuantSettings
from selfimprove.reports.console import print_metrics, runs_table
from selfimprove.runs import metrics
from selfimprove.runs.store import RunStore
from selfimprove.serve.settings import ServeSettings
from selfimprove.training.lmsi import LMSIEngines, LMSISettings
from selfimprove.training.memory import MemorySettings
from selfimprove.training.process_rewards import ProcessTrainSettings
from selfimprove.training.reward_models import RewardTrainSettings
from selfimprove.training.score import ScoreSettings
from selfimprove.training.score_pipeline import ScorePipelineSettings
from selfimprove.training.testbed import TestbedEvaluation, TestbedSettings
from selfimprove.training.weak_to_strong import W2SSettings

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Make language models reason better and improve themselves, and measure it.",
)
console = Console()
err_console = Console(stderr=True)


def build(kind: str, factory: Callable[..., Any], name: str, values: dict[str, Any]) -> Any:
    """Call `factory` with the settings the user gave; a setting it does not take is a clear error."""
    return factory(**accepted_settings(kind, factory, name, values))


def accepted_settings(kind: str, factory: Callable[..., Any], name: str, values: dict[str, Any]) -> dict[str, Any]:
    """The settings given (None dropped), each one `factory` takes, or a one-line error listing what it takes."""
    params = inspect.signature(factory).parameters
    given = {k: v for k, v in values.items() if v is not None}
    unknown = [k for k in given if k not in params]
    if unknown:
        accepted = ", ".join(p for p in params if p != "self") or "none"
        raise ConfigError(f"{kind} {name!r} takes no setting {', '.join(map(repr, unknown))}; it takes: {accepted}")
    return given


def parse_options(options: list[str], flag: str) -> dict[str, str]:
    parsed = {}
    for item in options:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag} {item!r}: expected KEY=VALUE")
        parsed[key.replace("-", "_")] = value
    return parsed


def build_task(name: str, data: str | None, level: str | None, options: list[str]) -> Any:
    """The task a command's --task, --data, --level and -O flags describe."""
    extra = {key: _coerce(value) for key, value in parse_options(options, "--task-option").items()}
    return build("task", tasks.get(name), name, {"data": data, "level": level, **extra})


def build_part(kind: str, name: str, flags: dict[str, Any], options: list[str], flag: str) -> Any:
    """A strategy or engine from its flags and its KEY=VALUE options (numbers and booleans converted)."""
    registry = {"strategy": strategies, "engine": engines}[kind]
    values = {**flags, **parse_options(options, flag)}
    return build(kind, registry.get(name), name, {key: _coerce(value) for key, value in values.items()})


def engine_spec(name: str, flags: dict[str, Any], options: list[str]) -> Any:
    """An EngineSpec (built by each Ray worker) from the engine flags, checked against the engine's settings here."""
    from selfimprove.engines.spec import EngineSpec

    values = {key: _coerce(value) for key, value in {**flags, **parse_options(options, "--engine-option")}.items()}
    return EngineSpec(name, accepted_settings("engine", engines.get(name), name, values))


def _run_on_ray(address, workers, cpus, gpus, the_task, the_strategy, spec, store, limit, split, batch_size, progress):
    """`selfimprove run --ray`: the same run, its problems sharded across Ray workers; prints the driver's counts."""
    from selfimprove.api import run as run_api
    from selfimprove.runs.ray_executor import RayExecutor, RaySettings, WorkerFailed

    def told(event: Any) -> None:
        if isinstance(event, WorkerFailed):
            state = "restarted" if event.alive_again else "gone"
            console.print(f"[yellow]worker {event.worker} died ({event.error}); {state}; its unsolved problems "
                          f"were dispatched again[/yellow]")  # fmt: skip

    settings = RaySettings(address=None if address == "local" else address, workers=workers, cpus_per_worker=cpus,
                           gpus_per_worker=gpus)  # fmt: skip
    executor = RayExecutor(settings, on_event=told)
    result = run_api(the_task, the_strategy, spec, store=store or default_store_path(), limit=limit, split=split,
                     batch_size=batch_size, progress=progress, executor=executor)  # fmt: skip
    counts = result.shards
    console.print(f"ray: {workers} workers, {counts.dispatched} chunks dispatched, "
                  f"{counts.redispatched_problems} problems re-dispatched, {counts.workers_lost} workers lost, "
                  f"{counts.stored} completions stored")  # fmt: skip
    return result


def _print_wide(line: str) -> None:
    console.print(line, soft_wrap=True)  # one training step, one line, however wide


def _store(path: Path | None) -> RunStore:
    return RunStore(path or default_store_path())


@app.command()
def run(
    config: Path | None = typer.Option(
        None,
        "--config",
        is_eager=True,
        callback=lambda ctx, value: _load_config(ctx, value),
        help="TOML file whose keys are this command's flags (task = 'gsm8k', samples = 16, ...); flags win.",
    ),
    task: str = typer.Option("arithmetic", help="Task name: " + ", ".join(tasks.names())),
    strategy: str = typer.Option("self-consistency", help="Strategy name: " + ", ".join(strategies.names())),
    engine: str = typer.Option("llama-cpp", help="Engine name: " + ", ".join(engines.names())),
    model: str | None = typer.Option(
        None, help="GGUF path (llama-cpp; default: embedded Gemma 3 270M) or server model name (openai)."
    ),
    base_url: str | None = typer.Option(None, help="OpenAI-compatible server URL, e.g. http://127.0.0.1:8000/v1."),
    api_key_env: str | None = typer.Option(None, help="Environment variable holding the server's API key."),
    data: str | None = typer.Option(None, help="Local dataset file (or hub dataset name) for the task."),
    level: str | None = typer.Option(None, help="Arithmetic difficulty: 1..6, a range 1-6 or a list 1,3."),
    task_option: list[str] = typer.Option([], "--task-option", "-O", help="Extra task setting KEY=VALUE."),
    engine_option: list[str] = typer.Option([], "--engine-option", "-E", help="Extra engine setting KEY=VALUE."),
    strategy_option: list[str] = typer.Option(
        [], "--strategy-option", "-S", help="Extra strategy setting KEY=VALUE (e.g. stop_rule=window)."
    ),
    samples: int | None = typer.Option(None, help="Samples per problem (self-consistency, adaptive: the most)."),
    turns: int | None = typer.Option(None, help="Attempts per problem (self-correct)."),
    turn_samples: int | None = typer.Option(None, help="Samples voted in each turn (self-correct)."),
    temperature: float | None = typer.Option(None, help="Sampling temperature."),
    top_p: float | None = typer.Option(None, help="Nucleus sampling threshold."),
    top_k: int | None = typer.Option(None, help="Top-k sampling (0 = off)."),
    max_tokens: int | None = typer.Option(None, help="Most tokens per completion."),
    seed: int | None = typer.Option(None, help="Sampling seed (same seed, same samples)."),
    limit: int | None = typer.Option(None, help="Solve only the first N test problems."),
    split: str = typer.Option("test", help="Problems to solve: test, or train (samples to train a reward model on)."),
    batch_size: int = typer.Option(4, help="Problems handed to the strategy at a time."),
    store: Path | None = typer.Option(None, help="Run store file (default: $SELFIMPROVE_HOME/runs.sqlite)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show llama.cpp's and our debug logs."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    ray: str | None = typer.Option(
        None,
        "--ray",
        help="Shard the problems across Ray workers: 'local' starts a cluster here, 'auto' or "
        "HOST:PORT joins one. Each worker builds its own engine from these flags.",
    ),
    workers: int = typer.Option(2, help="Ray workers (--ray), each holding one engine."),
    cpus_per_worker: float = typer.Option(1.0, help="CPUs Ray reserves per worker (--ray)."),
    gpus_per_worker: float = typer.Option(0.0, help="GPUs Ray reserves per worker (--ray)."),
) -> None:
    """Run a strategy on a task's test problems; re-running the same command resumes it."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING)

    def work() -> None:
        from selfimprove.api import run as run_api

        the_task = build_task(task, data, level, task_option)
        sampling = dict(samples=samples, turns=turns, turn_samples=turn_samples, temperature=temperature,
                        top_p=top_p, top_k=top_k, max_tokens=max_tokens, seed=seed)  # fmt: skip
        the_strategy = build_part("strategy", strategy, sampling, strategy_option, "--strategy-option")
        if split not in ("test", "train"):
            raise ConfigError(f"--split must be test or train, got {split!r}")
        next(iter(the_task.problems(split, limit=1)), None)  # a bad dataset fails before a model loads
        connection = dict(model=model, base_url=base_url, api_key_env=api_key_env)
        if engine == "llama-cpp":
            connection["verbose"] = verbose or None
        if ray is not None:
            result = _run_on_ray(ray, workers, cpus_per_worker, gpus_per_worker, the_task, the_strategy,
                                 engine_spec(engine, connection, engine_option), store, limit, split, batch_size,
                                 progress)  # fmt: skip
        else:
            the_engine = build_part("engine", engine, connection, engine_option, "--engine-option")
            try:
                result = run_api(the_task, the_strategy, the_engine, store=store or default_store_path(),
                                 limit=limit, split=split, batch_size=batch_size, progress=progress)  # fmt: skip
            finally:
                the_engine.close()
        if result.completions_reused:
            console.print(f"resumed run {result.run_id}: reused {result.completions_reused} stored completions, "
                          f"generated {result.completions_generated}")  # fmt: skip
        print_metrics(console, result.run_id, result.label, the_strategy.name, result.metrics, result.turns)

    _guard(work)


@app.command("runs")
def list_runs(store: Path | None = typer.Option(None, help="Run store file.")) -> None:
    """List the runs in the store, newest first."""

    def work() -> None:
        run_store = _store(store)
        console.print(runs_table(run_store.runs()))

    _guard(work)


@app.command()
def show(
    run_id: str = typer.Argument(..., help="Run id or a unique prefix of one."),
    problem: str | None = typer.Option(None, help="Print this problem's trace (question, answer, LoT, votes)."),
    store: Path | None = typer.Option(None, help="Run store file."),
) -> None:
    """Print a run's metrics, computed from the store; with --problem, that problem's whole trace."""

    def work() -> None:
        run_store = _store(store)
        found = run_store.find_run(run_id)
        if problem is None:
            _show(run_store, found)
            return
        from selfimprove.reports.console import problem_trace

        rows = [r for r in run_store.solutions(found) if r["problem_id"] == problem]
        if not rows:
            raise ConfigError(f"run {found} has no solved problem {problem!r}")
        console.print(problem_trace(rows[0]))

    _guard(work)


@app.command()
def report(
    run_ids: list[str] = typer.Argument(..., help="Run ids (or unique prefixes); several runs share the plots."),
    output: Path = typer.Option(Path("report.html"), "--output", "-o", help="HTML file to write."),
    store: Path | None = typer.Option(None, help="Run store file."),
) -> None:
    """Write one self-contained HTML report (plots embedded, no network needed) about the runs."""

    def work() -> None:
        from selfimprove.reports.html import build_report

        run_store = _store(store)
        page = build_report(run_store, run_ids)
        output.write_text(page, encoding="utf-8")
        console.print(f"wrote {output} ({len(page) // 1024} KiB)")

    _guard(work)


@app.command()
def compare(
    run_a: str = typer.Argument(..., help="Baseline run (id or prefix)."),
    run_b: str = typer.Argument(..., help="Run compared against it."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    store: Path | None = typer.Option(None, help="Run store file."),
) -> None:
    """Paired comparison on shared problems: accuracy difference with a paired bootstrap interval,
    McNemar's exact test, problems won and lost."""

    def work() -> None:

        from selfimprove.reports.compare import as_json as to_json
        from selfimprove.reports.compare import compare_runs
        from selfimprove.reports.console import comparison_table

        a_id, b_id, result = compare_runs(_store(store), run_a, run_b)
        if as_json:
            typer.echo(json.dumps(to_json(a_id, b_id, result), indent=2))
        else:
            console.print(comparison_table(a_id, b_id, result))

    _guard(work)


@app.command()
def grade(
    task: str = typer.Option(..., help="Task name: " + ", ".join(tasks.names())),
    data: str | None = typer.Option(None, help="The task's dataset file (its test problems)."),
    completions: Path = typer.Option(..., help="JSONL of {task_id, completion}; several rows per task for pass@k."),
    k: str | None = typer.Option(None, help="pass@k values to report, e.g. 1,10,100 (default 1, 2, 4, ... up to n)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write each completion's result here (JSONL)."),
    task_option: list[str] = typer.Option([], "--task-option", "-O", help="Extra task setting KEY=VALUE."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Grade completions made elsewhere and print pass@k with the count of each outcome."""

    def work() -> None:

        from rich.progress import Progress

        from selfimprove.reports.console import grade_table
        from selfimprove.runs.external import grade_file

        the_task = build("task", tasks.get(task), task, {"data": data, **parse_options(task_option, "--task-option")})
        sandbox = getattr(the_task, "sandbox", lambda: None)()
        if sandbox is not None:
            for gap in sandbox.isolation.gaps():
                console.print(f"[yellow]sandbox: {gap}[/yellow]")
        wanted = [int(x) for x in k.split(",")] if k else None
        rows = sum(1 for line in completions.open(encoding="utf-8") if line.strip()) if completions.is_file() else 0
        with Progress(disable=not progress, console=console) as bar:
            handle = bar.add_task("grading", total=rows)
            report = grade_file(the_task, completions, wanted, lambda done: bar.update(handle, completed=done))
        console.print(grade_table(str(completions), report))
        if output is not None:
            with output.open("w", encoding="utf-8") as out:
                for r in report.results:
                    row = {"task_id": r.task_id, "line": r.line, "passed": r.passed, "result": r.detail}
                    row["judged_in_process"] = r.judged_in_process
                    out.write(json.dumps(row) + "\n")
            console.print(f"wrote {output}")

    _guard(work)


@app.command()
@settings_options(LMSISettings, LMSIEngines, aliases={"gguf_type": "--gguf"})
def lmsi(
    task: str = typer.Option("arithmetic", help="Task name: " + ", ".join(tasks.names())),
    data: str | None = typer.Option(None, help="Local dataset file for the task (its train split is sampled)."),
    level: str | None = typer.Option(None, help="Arithmetic difficulty: 1..6, a range 1-6 or a list 1,3."),
    task_option: list[str] = typer.Option([], "--task-option", "-O", help="Extra task setting KEY=VALUE."),
    model: str | None = typer.Option(
        None, help="Model to improve: checkpoint folder, hub name, .gguf (default: embedded)."
    ),
    teacher: str | None = typer.Option(None, help="Distillation: this model samples the paths, --model is trained."),
    out: Path = typer.Option(..., "--out", help="Work folder: datasets, checkpoints, run store. Re-run to resume."),
    sft_option: list[str] = typer.Option(
        [], "--sft-option", "-T", help="Fine-tuning setting KEY=VALUE (epochs, learning_rate, lora_r, batch_size ...)."
    ),
    **settings: Any,
) -> None:
    """LMSI: sample, vote, keep, fine-tune with LoRA, evaluate before and after — no labels used."""
    from selfimprove.reports.training import round_tables
    from selfimprove.training.lmsi import lmsi as run_lmsi
    from selfimprove.training.sft import SFTSettings

    def work() -> None:
        loop_settings, engines_used = settings_from(LMSISettings, settings), settings_from(LMSIEngines, settings)
        overrides = {k: _coerce(v) for k, v in parse_options(sft_option, "--sft-option").items()}
        SFTSettings.scaled_to(0, **overrides)  # an unknown setting fails now, before any model loads
        the_task = build_task(task, data, level, task_option)

        def show_round(report: Any) -> None:
            for table in round_tables(report):
                console.print(table)
            console.print(f"improved model: {report.merged}")

        run_lmsi(the_task, model, out, loop_settings, overrides, engines_used, teacher, console.print, show_round)

    _guard(work)


@app.command()
@settings_options(W2SSettings)
def w2s(
    task: str = typer.Option("arithmetic", help="Task name: " + ", ".join(tasks.names())),
    data: str | None = typer.Option(None, help="Local dataset file for the task (its train split is labeled)."),
    level: str | None = typer.Option(None, help="Arithmetic difficulty: 1..6, a range 1-6 or a list 1,3."),
    task_option: list[str] = typer.Option([], "--task-option", "-O", help="Extra task setting KEY=VALUE."),
    weak: str = typer.Option(..., help="The weak teacher: checkpoint folder, hub name or .gguf."),
    strong: str = typer.Option(..., help="The strong student: checkpoint folder, hub name or .gguf."),
    intermediate: str | None = typer.Option(
        None, help="Bootstrapping: this model learns from the weak labels and labels for the strong one."
    ),
    out: Path = typer.Option(..., "--out", help="Work folder: labels, checkpoints, runs, report. Re-run to resume."),
    sft_option: list[str] = typer.Option(
        [], "--sft-option", "-T", help="Fine-tuning setting KEY=VALUE (epochs, learning_rate, lora_r, batch_size ...)."
    ),
    **settings: Any,
) -> None:
    """Weak-to-strong: fine-tune the strong model on the weak model's answers and on gold, evaluate all three on the
    test split and report the performance gap recovered (PGR) with its interval; see docs/weak_to_strong.md."""
    from selfimprove.reports.weak_to_strong import flips_table, summary_table
    from selfimprove.training.sft import SFTSettings
    from selfimprove.training.weak_to_strong import weak_to_strong

    def work() -> None:
        w2s_settings = settings_from(W2SSettings, settings)
        overrides = {k: _coerce(v) for k, v in parse_options(sft_option, "--sft-option").items()}
        SFTSettings.scaled_to(0, **overrides)  # an unknown setting fails now, before any model loads
        the_task = build_task(task, data, level, task_option)
        report = weak_to_strong(the_task, weak, strong, out, w2s_settings, overrides, intermediate, console.print)
        console.print(summary_table(report))
        console.print(flips_table(report))
        console.print(f"report: {out / 'report.html'}")

    _guard(work)


@app.command("memory")
@settings_options(MemorySettings)
def memory_command(
    model: list[str] = typer.Option(
        ...,
        help="Model to measure (repeat for several): checkpoint folder, hub name, .gguf, 'embedded', or "
        "scratch:HIDDENxLAYERS (a fresh testbed-architecture decoder).",
    ),
    out: Path = typer.Option(..., "--out", help="Work folder: checkpoints, runs, report. Re-run to resume."),
    sft_option: list[str] = typer.Option(
        [], "--sft-option", "-T", help="Fine-tuning setting KEY=VALUE (learning_rate, lora_r, batch_size ...)."
    ),
    **settings: Any,
) -> None:
    """Memory capacity: fine-tune on N items for E exposures, recall them from their keys, and a control set never
    trained on, before and after; items and bits per parameter, reasoning cost; see docs/memory.md."""
    from selfimprove.reports.memory import baseline_table, points_table, quantised_table
    from selfimprove.training.memory import memory
    from selfimprove.training.sft import SFTSettings

    def work() -> None:
        memory_settings = settings_from(MemorySettings, settings)
        overrides = {k: _coerce(v) for k, v in parse_options(sft_option, "--sft-option").items()}
        SFTSettings.scaled_to(0, **overrides)  # an unknown setting fails now, before any model loads
        models = [None if m == "embedded" else m for m in model]
        report = memory(models, out, memory_settings, overrides, console.print)
        console.print(baseline_table(report))
        console.print(points_table(report))
        if (quantised := quantised_table(report)) is not None:
            console.print(quantised)
        console.print(f"report: {out / 'report.html'}")

    _guard(work)


@app.command()
@settings_options(ScoreSettings, ScorePipelineSettings)
def score(
    task: str = typer.Option("arithmetic", help="Task name: " + ", ".join(tasks.names())),
    data: str | None = typer.Option(None, help="Local dataset file for the task (its train split trains)."),
    level: str | None = typer.Option(None, help="Arithmetic difficulty: 1..6, a range 1-6 or a list 1,3."),
    task_option: list[str] = typer.Option([], "--task-option", "-O", help="Extra task setting KEY=VALUE."),
    model: str | None = typer.Option(
        None, help="Model to train: checkpoint folder, hub name, .gguf (default: embedded)."
    ),
    out: Path = typer.Option(..., "--out", help="Work folder: checkpoints, logs, run store. Re-run to resume."),
    **settings: Any,
) -> None:
    """SCoRe: two-stage multi-turn RL that trains a model to correct itself; then `self-correct` on the test
    split before and after (and after the single-turn baseline with --baseline), side by side."""
    from selfimprove.reports.training import self_correction_table, training_curve_table
    from selfimprove.training.score_pipeline import score as run_score

    def work() -> None:
        trainer_settings = settings_from(ScoreSettings, settings)  # bad settings fail before any model loads
        pipeline = settings_from(ScorePipelineSettings, settings)
        the_task = build_task(task, data, level, task_option)
        report = run_score(the_task, model, out, trainer_settings, pipeline, log=_print_wide)
        for name, curve in report.curves.items() if report.evaluation is not None else ():
            title = f"{name}: sampled episodes (T {trainer_settings.temperature}) by blocks of steps"
            console.print(training_curve_table(curve, title))
        if report.evaluation is not None:
            title = f"{the_task.name}: self-correct (2 turns, greedy), test split"
            console.print(self_correction_table(report.evaluation, title))

    _guard(work)


quant_app = typer.Typer(no_args_is_help=True, help="Quantization: what each GGUF type costs a model.")
app.add_typer(quant_app, name="quant")


@quant_app.command("sweep")
@settings_options(QuantSettings)
def quant_sweep_command(
    out: Path = typer.Option(..., "--out", help="Work folder: variants, runs, report. Re-run to resume."),
    model: str | None = typer.Option(
        None, help="F16/F32 .gguf, or a checkpoint folder with --template (default: the embedded model, dequantised)."
    ),
    **settings: Any,
) -> None:
    """GGUF quantisations of one model against its unquantised reference: KL divergence (streamed), same-top-token
    rate, perplexity ratio, size, speed, peak memory, accuracy with paired flips; see docs/quantization.md."""
    from selfimprove.quant.sweep import quant_sweep
    from selfimprove.reports.quantization import sweep_table

    def work() -> None:
        source = None if model in (None, "embedded") else model
        report = quant_sweep(source, out, settings_from(QuantSettings, settings), console.print)
        console.print(sweep_table(report))
        console.print(f"report: {out / 'report.html'}")

    _guard(work)


@quant_app.command("family")
def quant_family_command(
    sweep: list[str] = typer.Option(..., help="A sweep's work folder (repeat: one per model size)."),
    out: Path = typer.Option(..., "--out", help="The HTML page to write."),
) -> None:
    """Accuracy against bytes on disk, one line per model size, from finished sweeps (the comparison at equal
    memory of Lee et al. 2024)."""
    from selfimprove.core.files import atomic_write_text
    from selfimprove.reports.quantization import load_report, render_family

    def work() -> None:
        atomic_write_text(out, render_family([load_report(folder) for folder in sweep]))
        console.print(f"family page: {out}")

    _guard(work)


reward_app = typer.Typer(no_args_is_help=True, help="Reward models: train one or an ensemble (best-of-n uses them).")
app.add_typer(reward_app, name="reward")


@reward_app.command("train")
@settings_options(RewardTrainSettings)
def reward_train(
    out: Path = typer.Option(..., "--out", help="Folder for the members and ensemble.json. Re-run to resume."),
    model: str | None = typer.Option(None, help="Base model: checkpoint folder, hub name, .gguf (default: embedded)."),
    preferences: Path | None = typer.Option(
        None, help="JSONL of {prompt, chosen, rejected} or {prompt, responses, ranking} rows."
    ),
    from_run: str | None = typer.Option(
        None, help="Make preferences from this run's graded samples (right over wrong); give the run's task flags."
    ),
    task: str = typer.Option("arithmetic", help="The run's task (with --from-run): " + ", ".join(tasks.names())),
    data: str | None = typer.Option(None, help="The run's task dataset file (with --from-run)."),
    level: str | None = typer.Option(None, help="The run's arithmetic levels (with --from-run)."),
    task_option: list[str] = typer.Option([], "--task-option", "-O", help="Extra task setting KEY=VALUE."),
    per_problem: int = typer.Option(8, help="Preferences made per problem (with --from-run)."),
    list_size: int = typer.Option(2, help="Responses per preference made from a run: 2 = pairs, more = ranked lists."),
    store: Path | None = typer.Option(None, help="Run store file (with --from-run)."),
    **settings: Any,
) -> None:
    """Train a reward model, or an ensemble (--members K), with the pairwise or listwise loss; print each
    member's held-out accuracy and the ensemble's under every aggregator."""
    from selfimprove.rewards.preferences import load_preferences
    from selfimprove.training.reward_models import preferences_from_run
    from selfimprove.training.reward_models import reward_train as train

    def work() -> None:
        trainer_settings = settings_from(RewardTrainSettings, settings)
        if (preferences is None) == (from_run is None):
            raise ConfigError("give one of --preferences FILE or --from-run RUN_ID")
        if preferences is not None:
            rows = load_preferences(preferences)
        else:
            run_store = _store(store)
            the_task = build_task(task, data, level, task_option)
            rows = preferences_from_run(
                run_store, run_store.find_run(from_run), the_task, per_problem, list_size, trainer_settings.seed
            )
        report = train(model, rows, out, trainer_settings, progress=_print_wide)
        for member in report.members:
            accuracy = "–" if member.dev_accuracy is None else f"{100 * member.dev_accuracy:.1f}%"
            console.print(f"{member.path}: held-out pair accuracy {accuracy}, {member.seconds:.0f} s")
        for rule, accuracy in report.ensemble_dev_accuracy.items():
            console.print(f"ensemble ({rule}): held-out pair accuracy {100 * accuracy:.1f}%")
        console.print(f"best-of-n with it: selfimprove run --strategy best-of-n -S reward_model={out}")

    _guard(work)


@reward_app.command("train-process")
@settings_options(ProcessTrainSettings)
def reward_train_process(
    out: Path = typer.Option(..., "--out", help="Folder for the process reward model. Re-run to resume."),
    from_run: str = typer.Option(..., help="The run whose graded samples are cut into steps and labelled."),
    model: str | None = typer.Option(None, help="Base model: checkpoint folder, hub name, .gguf (default: embedded)."),
    task: str = typer.Option("arithmetic", help="The run's task: " + ", ".join(tasks.names())),
    data: str | None = typer.Option(None, help="The run's task dataset file."),
    level: str | None = typer.Option(None, help="The run's arithmetic levels."),
    task_option: list[str] = typer.Option([], "--task-option", "-O", help="Extra task setting KEY=VALUE."),
    store: Path | None = typer.Option(None, help="Run store file."),
    **settings: Any,
) -> None:
    """Train a process reward model on a run's samples, each step labelled by checking its arithmetic (the
    last step by the answer's grade); best-of-n then ranks by its steps (-S step_reduce=min|product|last)."""
    from selfimprove.training.process_rewards import process_reward_train, step_examples_from_run

    def work() -> None:
        trainer_settings = settings_from(ProcessTrainSettings, settings)
        run_store = _store(store)
        the_task = build_task(task, data, level, task_option)
        examples = step_examples_from_run(run_store, run_store.find_run(from_run), the_task)
        report = process_reward_train(model, examples, out, trainer_settings, progress=_print_wide)
        accuracy = "–" if report.dev_step_accuracy is None else f"{100 * report.dev_step_accuracy:.1f}%"
        console.print(f"{report.path}: {report.train_paths} paths trained on, held-out step accuracy {accuracy}")

    _guard(work)


@app.command()
@settings_options(TestbedSettings, TestbedEvaluation)
def testbed(
    out: Path = typer.Option(..., "--out", help="Folder for the model (out/merged), checkpoints and evaluation runs."),
    **settings: Any,
) -> None:
    """Train a small transformer from scratch on the arithmetic task's easy levels (CPU, minutes), then
    report its greedy accuracy per level: a model LMSI can visibly improve (`selfimprove lmsi --model OUT/merged`)."""
    from selfimprove.training.testbed import testbed as train_and_evaluate

    def work() -> None:
        model, evaluation = settings_from(TestbedSettings, settings), settings_from(TestbedEvaluation, settings)
        report = train_and_evaluate(out, model, evaluation)
        losses = f"loss {report.losses[0]:.3f} → {report.losses[-1]:.3f}" if report.losses else ""
        console.print(f"testbed: {report.steps} steps in {report.seconds:.0f} s, {losses}; model at {report.merged}")
        for level, accuracy in report.accuracy.items():
            trained = "trained" if level in report.trained_levels else "held out"
            evaluated = evaluation.evaluate
            console.print(f"level {level} ({trained}): greedy accuracy {100 * (accuracy or 0):.1f}% of {evaluated}")

    _guard(work)


@app.command()
@settings_options(ServeSettings)
def serve(
    engine: str = typer.Option("llama-cpp", help="Engine name: " + ", ".join(engines.names())),
    model: str | None = typer.Option(
        None, help="GGUF path (llama-cpp; default: embedded Gemma 3 270M), checkpoint (hf) or upstream model (openai)."
    ),
    base_url: str | None = typer.Option(None, help="Upstream OpenAI-compatible server URL (engine openai)."),
    api_key_env: str | None = typer.Option(None, help="Environment variable holding the upstream server's key."),
    engine_option: list[str] = typer.Option([], "--engine-option", "-E", help="Extra engine setting KEY=VALUE."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show llama.cpp's and our debug logs."),
    **settings: Any,
) -> None:
    """Serve an OpenAI-compatible API whose model name picks a strategy (`self-consistency-8/MODEL`); see
    docs/serve.md."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING)

    def work() -> None:
        try:
            from selfimprove.serve.server import serve as serve_forever
        except ImportError as exc:
            raise ConfigError(
                f"selfimprove serve needs fastapi and uvicorn: pip install 'selfimprove[serve]' ({exc})"
            ) from None

        served = settings_from(ServeSettings, settings)
        connection = dict(model=model, base_url=base_url, api_key_env=api_key_env)
        if engine == "llama-cpp":
            connection["verbose"] = verbose or None
        the_engine = build_part("engine", engine, connection, engine_option, "--engine-option")
        console.print(f"serving {engine} at http://{served.host}:{served.port}/v1 (Ctrl-C stops)")
        serve_forever(the_engine, served)

    _guard(work)


@app.command("export-gguf")
def export_gguf_command(
    model: Path = typer.Option(..., "--model", help="Hugging Face checkpoint folder (e.g. LMSI's round-1/sft/merged)."),
    out: Path = typer.Option(..., "--out", help="GGUF file to write."),
    out_type: str = typer.Option(
        "f16", "--type", help="f16 (exact), f32, bf16, q8_0, or a llama.cpp k-quant (q4_k_m: may undo a small change)."
    ),
    template: Path | None = typer.Option(
        None, help="GGUF of the same architecture whose metadata and tokenizer are kept (default: the embedded model)."
    ),
) -> None:
    """Export a trained checkpoint to GGUF so llama.cpp serves it (`run --engine llama-cpp --model OUT`)."""
    from selfimprove.training.gguf_export import default_template, export_checkpoint

    def work() -> None:
        written = export_checkpoint(model, default_template(None, template), out, out_type)
        console.print(f"wrote {written} ({written.stat().st_size / 2**20:.0f} MiB, {out_type})")

    _guard(work)


@app.command("list")
def list_names() -> None:
    """List the registered tasks, strategies and engines."""
    console.print(f"tasks: {', '.join(tasks.names())}")
    console.print(f"strategies: {', '.join(strategies.names())}")
    console.print(f"engines: {', '.join(engines.names())}")


def _show(run_store: RunStore, run_id: str, limit: int | None = None) -> None:
    rows = run_store.solutions(run_id)
    if limit is not None:
        rows = [r for r in rows if r["position"] < limit]
    config = run_store.config(run_id)
    label = run_store.label(run_id)
    strategy_name = config.get("strategy", {}).get("strategy", "final")
    print_metrics(console, run_id, label, strategy_name, metrics.compute(rows), metrics.turn_metrics(rows))


def _load_config(ctx: typer.Context, path: Path | None) -> Path | None:
    """Read a TOML config into the command's defaults, so explicit flags still override it."""
    if path is None:
        return None
    try:
        with open(path, "rb") as handle:
            values = tomllib.load(handle)
    except FileNotFoundError:
        raise typer.BadParameter(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise typer.BadParameter(f"{path}: invalid TOML ({exc})") from None
    known = {p.name for p in ctx.command.params}
    defaults = {key.replace("-", "_"): value for key, value in values.items()}
    unknown = sorted(set(defaults) - known)
    if unknown:
        raise typer.BadParameter(f"{path}: unknown key(s) {', '.join(unknown)}; keys are the flags of `run`")
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return path


def _coerce(value: Any) -> Any:
    """Engine options from -E arrive as text; numbers and booleans become themselves."""
    if not isinstance(value, str):
        return value
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def _guard(work: Callable[[], None]) -> None:
    """Our errors print as one clear line and exit 2; Ctrl-C exits 130 (what was stored stays stored)."""
    try:
        work()
    except SelfImproveError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err_console.print("interrupted: everything generated so far is stored; re-run the same command to resume")
        raise typer.Exit(130) from None


if __name__ == "__main__":  # pragma: no cover
    app()
