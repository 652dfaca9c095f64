"""CLI options derived from settings dataclasses, so each setting is declared, defaulted and documented once.

A pipeline's settings dataclass documents each field with the string literal right after it (as
TRL's configs do with `help`); `settings_options` turns every field into a typer option with that
default and that text as its help, and `settings_from` builds the dataclass back from the parsed
options. A field the CLI should not offer is skipped by name; a flag may keep an older alias.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import textwrap
import typing
from collections.abc import Callable
from typing import Any

import typer


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Each field's documentation: the string literal that follows it in the class body."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for node, after in zip(body, body[1:]):
        documented = isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and documented:
            if isinstance(after.value.value, str):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    return field.default_factory()  # type: ignore[misc]


def _is_text_tuple(annotation: Any) -> bool:
    return typing.get_origin(annotation) is tuple


def option_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def settings_parameters(
    cls: type, skip: tuple[str, ...] = (), aliases: dict[str, str] | None = None
) -> list[inspect.Parameter]:
    """One keyword parameter per field of `cls`, its default a typer.Option carrying the field's doc."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    parameters = []
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        annotation, default = hints[field.name], _default(field)
        if _is_text_tuple(annotation):  # a tuple of names is given as one comma-separated string
            annotation, default = str, ",".join(default)
        flag = option_name(field.name)
        if annotation is bool:  # a switch both ways: --merge-requests / --no-merge-requests
            flag = f"{flag}/--no-{flag[2:]}"
        flags = [flag, *([aliases[field.name]] if aliases and field.name in aliases else [])]
        option = typer.Option(default, *flags, help=docs.get(field.name, ""))
        parameters.append(inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                            annotation=annotation))  # fmt: skip
    return parameters


def settings_options(*specs: type | tuple[type, tuple[str, ...]], aliases: dict[str, str] | None = None) -> Callable:
    """Decorates a typer command taking `**settings`: adds every field of each settings class as an option.
    A spec is a class, or (class, fields to skip)."""

    def decorate(command: Callable) -> Callable:
        signature = inspect.signature(command)
        own = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        hints = typing.get_type_hints(command)
        added = []
        for spec in specs:
            cls, skip = spec if isinstance(spec, tuple) else (spec, ())
            added += settings_parameters(cls, skip, aliases)
        command.__signature__ = signature.replace(parameters=own + added)  # type: ignore[attr-defined]
        command.__annotations__ = {**hints, **{p.name: p.annotation for p in added}}
        return command

    return decorate


def settings_from(cls: type, values: dict[str, Any], **fixed: Any) -> Any:
    """The dataclass `cls` from parsed options (the fields it has), plus `fixed` values."""
    hints = typing.get_type_hints(cls)
    given = {}
    for field in dataclasses.fields(cls):
        if field.name in values:
            value = values[field.name]
            if _is_text_tuple(hints[field.name]) and isinstance(value, str):
                value = tuple(part.strip() for part in value.split(",") if part.strip())
            given[field.name] = value
    return cls(**given, **fixed)
