from typer.testing import CliRunner

from selfimprove.cli import app

runner = CliRunner()


def flat(text: str) -> str:
    """Output without rich's box drawing and line wrapping."""
    return " ".join(text.replace("│", " ").split())


def invoke(*args):
    return runner.invoke(app, list(args))


def test_unknown_names_list_the_valid_ones():
    result = invoke("run", "--task", "nope")
    assert result.exit_code == 2
    assert "unknown task 'nope'" in result.output and "arithmetic" in result.output and "gsm8k" in result.output
    result = invoke("run", "--strategy", "magic")
    assert "unknown strategy 'magic'" in result.output and "self-consistency" in result.output
    result = invoke("run", "--engine", "warp")
    assert "unknown engine 'warp'" in result.output and "llama-cpp" in result.output and "openai" in result.output


def test_missing_dataset_and_model_files(tmp_path):
    result = invoke("run", "--store", str(tmp_path / "s.sqlite"), "--model", str(tmp_path / "m.gguf"))
    assert result.exit_code == 2
    assert "GGUF model file not found" in result.output and "m.gguf" in result.output
    result = invoke(
        "run",
        "--task",
        "gsm8k",
        "--engine",
        "openai",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--model",
        "x",
        "-E",
        "max_retries=0",
        "--data",
        str(tmp_path / "missing.jsonl"),
        "--store",
        str(tmp_path / "s.sqlite"),
    )
    assert result.exit_code == 2
    assert "missing.jsonl: dataset file not found" in result.output


def test_settings_a_strategy_does_not_take():
    result = invoke("run", "--strategy", "cot", "--samples", "4")
    assert result.exit_code == 2
    assert "strategy 'cot' takes no setting 'samples'" in result.output


def test_bad_option_syntax():
    result = invoke("run", "-O", "level")
    assert result.exit_code == 2 and "expected KEY=VALUE" in result.output


def test_show_unknown_run(tmp_path):
    result = invoke("show", "abc", "--store", str(tmp_path / "s.sqlite"))
    assert result.exit_code == 2 and "no run 'abc'" in result.output


def test_list():
    result = invoke("list")
    assert result.exit_code == 0 and "self-consistency" in result.output


def test_config_file_sets_flags_and_flags_win(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('task = "gsm8k"\nsamples = 3\nmax-tokens = 5\n')
    missing = str(tmp_path / "none.jsonl")
    result = invoke("run", "--config", str(config), "--data", missing, "--store", str(tmp_path / "s.sqlite"))
    assert result.exit_code == 2 and "none.jsonl: dataset file not found" in result.output
    result = invoke("run", "--config", str(config), "--task", "nope")
    assert "unknown task 'nope'" in result.output


def test_config_file_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("bogus = 1\n")
    result = invoke("run", "--config", str(bad))
    assert result.exit_code == 2 and "unknown key(s) bogus" in flat(result.output)
    result = invoke("run", "--config", str(tmp_path / "absent.toml"))
    assert result.exit_code == 2 and "config file not found" in flat(result.output)


def test_shipped_demo_config_is_valid():
    from pathlib import Path

    demo = Path(__file__).parents[1] / "configs" / "demo.toml"
    # Every key is accepted (else a config error); the bad task flag then proves flags override the file.
    result = invoke("run", "--config", str(demo), "--task", "nope")
    assert result.exit_code == 2 and "unknown task 'nope'" in result.output


def test_strategy_options_reach_the_strategy():
    result = invoke("run", "--strategy", "adaptive-consistency", "-S", "stop_rule=vibes")
    assert result.exit_code == 2 and "stop_rule 'vibes'" in result.output
    result = invoke("run", "--strategy", "cot", "-S", "batch=3")
    assert result.exit_code == 2 and "takes no setting 'batch'" in result.output
