"""Command-line options that several commands share (`run`/`plan`: the event; `run`/`play`:
the execution; `serve`/`monitor`: the settings file), and the parsing of `--var K=V`.

One definition each, so both commands describe a pipeline run the same way. Imports only
click and the core model: these modules load on every start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from conveyor.errors import UsageError
from conveyor.inputs import check_variable_names, ref_problem
from conveyor.model import EventKind

__all__ = [
    "config_option",
    "event_options",
    "execution_options",
    "input_option",
    "parse_inputs",
    "parse_vars",
    "strict_option",
]

F = TypeVar("F", bound=Callable[..., Any])


def parse_vars(pairs: Sequence[str]) -> dict[str, str]:
    """`--var K=V` pairs as a mapping; a pair without `=` or with an empty key is an error,
    and so is a variable no trigger may set (`BASH_ENV`, `LD_PRELOAD`…: conveyor.inputs)."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--var {pair!r}: expected KEY=VALUE (e.g. --var DEPLOY=1)")
        values[key.strip()] = value
    check_variable_names(values, where="--var")
    return values


def parse_inputs(pairs: Sequence[str]) -> dict[str, str]:
    """`--input NAME=VALUE` pairs as a mapping of text (the pipeline file's spec:inputs
    types them); a pair without `=` or with an empty name is an error."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--input {pair!r}: expected NAME=VALUE (e.g. --input env=prod)")
        values[name.strip()] = value
    return values


def _checked_ref(_ctx: click.Context, _param: click.Parameter, ref: str | None) -> str | None:
    """`--ref` as git's rules for branch and tag names allow it (conveyor.inputs)."""
    problem = None if ref is None else ref_problem(ref)
    if problem is not None:
        raise click.BadParameter(f"the ref {problem} (give a branch or tag name)")
    return ref


def event_options(function: F) -> F:
    """`-f FILE`, `--event`, `--ref`, `--sha` and `--var K=V`… (parameters `file`,
    `event`, `ref`, `sha`, `variables`)."""
    decorators = [
        click.option(
            "-f",
            "--file",
            "file",
            type=click.Path(path_type=Path, dir_okay=False),
            help="Pipeline file (default: .conveyor.yml, then .gitlab-ci.yml).",
        ),
        click.option(
            "--event",
            "event",
            type=click.Choice([str(kind) for kind in EventKind]),
            default="push",
            show_default=True,
            help="The event to run the pipeline for.",
        ),
        click.option(
            "--ref",
            callback=_checked_ref,
            help="Branch or tag name (default: the current git branch).",
        ),
        click.option("--sha", help="Commit (default: the ref's commit, else HEAD)."),
        click.option(
            "--var",
            "variables",
            multiple=True,
            metavar="K=V",
            help="A variable for every job (repeatable); wins over the file's.",
        ),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def execution_options(function: F) -> F:
    """`--concurrency N` and `--json` (parameters `concurrency`, `as_json`)."""
    decorators = [
        click.option(
            "--concurrency",
            type=click.IntRange(min=1),
            help="Jobs at once (default: the pipeline's, else the cores, at least 4).",
        ),
        click.option(
            "--json",
            "as_json",
            is_flag=True,
            help="Print the run record as JSON on stdout (job lines go to stderr).",
        ),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def config_option(help_text: str, default: str = "conveyor.toml") -> Callable[[F], F]:
    """`-c/--config FILE`, default `conveyor.toml` (parameter `config_path`)."""
    return click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=Path(default),
        show_default=True,
        help=help_text,
    )


def strict_option(function: F) -> F:
    """`--strict` (parameter `strict`): a GitLab include that cannot be read is an error."""
    return click.option(
        "--strict",
        is_flag=True,
        help="Fail on a GitLab include that cannot be read (and the jobs that need it).",
    )(function)


def input_option(function: F) -> F:
    """`--input NAME=VALUE`, repeatable (parameter `inputs`): a value for the GitLab
    file's own `spec:inputs`, as GitLab takes them when a pipeline is created."""
    return click.option(
        "--input",
        "inputs",
        multiple=True,
        metavar="NAME=VALUE",
        help="A value for the file's spec:inputs (repeatable; typed as the spec says: "
        "number, true/false, JSON array).",
    )(function)
