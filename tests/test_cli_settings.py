"""Each pipeline setting is declared once: every settings field has a CLI flag with its default and its doc."""

from __future__ import annotations

import dataclasses

import pytest
import typer

from selfimprove.cli import app
from selfimprove.cli_settings import field_docs, settings_from
from selfimprove.training.lmsi import LMSIEngines, LMSISettings
from selfimprove.training.score import ScoreSettings
from selfimprove.training.score_pipeline import ScorePipelineSettings
from selfimprove.training.testbed import TestbedEvaluation, TestbedSettings

COMMANDS = {
    "score": (ScoreSettings, ScorePipelineSettings),
    "lmsi": (LMSISettings, LMSIEngines),
    "testbed": (TestbedSettings, TestbedEvaluation),
}


def flags_of(command: str) -> dict:
    click_app = typer.main.get_command(app)
    return {param.name: param for param in click_app.commands[command].params}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_settings_field_has_a_flag_with_its_default_and_its_doc(command):
    flags = flags_of(command)
    for cls in COMMANDS[command]:
        docs = field_docs(cls)
        for field in dataclasses.fields(cls):
            assert field.name in flags, f"{cls.__name__}.{field.name} has no flag on `{command}`"
            default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
            expected = ",".join(default) if isinstance(default, tuple) else default
            assert flags[field.name].default == expected, f"{cls.__name__}.{field.name}: two defaults"
            assert docs.get(field.name), f"{cls.__name__}.{field.name} is not documented where declared"
            assert flags[field.name].help == docs[field.name]


def test_settings_come_back_from_the_parsed_flags():
    parsed = {"formats": "zeroshot-cot, zeroshot-direct", "paths": 4, "device": "cpu", "unrelated": 1}
    settings = settings_from(LMSISettings, parsed)
    assert settings.formats == ("zeroshot-cot", "zeroshot-direct") and settings.paths == 4
    assert settings_from(LMSIEngines, parsed).device == "cpu"


def test_the_fields_the_cli_could_not_reach_before_are_flags_now():
    score = flags_of("score")
    assert {"lora_alpha", "max_grad_norm", "instruction"} <= set(score)
    assert "max_length" in flags_of("testbed")
    assert "--gguf" in flags_of("lmsi")["gguf_type"].opts  # the flag's older name still works
