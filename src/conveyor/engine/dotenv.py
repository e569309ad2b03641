"""GitLab `artifacts:reports:dotenv`: variables a job hands to the jobs that fetch its
artifacts.

After a job (whatever its outcome, as GitLab collects reports), the files named by
`Artifacts.dotenv` are read from its workspace and parsed the way GitLab's
`ParseDotenvArtifactService` does: every line is `KEY=VALUE` split at the first `=`, key and
value stripped of surrounding blanks; keys are ASCII letters, digits and `_` (at most 255);
quotes are kept as written, nothing is expanded, and empty lines or comments are invalid.
The files together may hold at most 5 KiB and 20 variables (GitLab's self-managed limits);
a later file or line overrides an earlier one. The parsed variables are saved as
`<run_dir>/dotenv/<job>.json`, so a resumed run still has them; a job that receives
artifacts from it (`PlannedJob.artifacts_from`) gets them above its own variables and below
`--var` and secrets (GitLab's precedence: dotenv ranks above job variables, below pipeline
variables). A missing file is a warning line; an invalid one fails a job that succeeded,
like GitLab's rejected upload. Values reach commands only as environment variables, and
log lines name the keys only. `parse_dotenv` is pure; the rest is the file-system edge,
synchronous (attempt.py calls it through `asyncio.to_thread`).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from conveyor.engine.artifacts import dotenv_dir, safe_segment

__all__ = [
    "DOTENV_MAX_BYTES",
    "DOTENV_MAX_VARIABLES",
    "DotenvError",
    "DotenvReport",
    "checked_variables",
    "collect_dotenv",
    "dotenv_path",
    "parse_dotenv",
    "received_dotenv",
    "save_dotenv",
    "write_dotenv",
]

DOTENV_MAX_BYTES = 5 * 1024  # GitLab: "Dotenv Artifact Too Big"
DOTENV_MAX_VARIABLES = 20  # GitLab self-managed default (`dotenv_variables` plan limit)
_KEY = re.compile(r"[A-Za-z0-9_]{1,255}\Z")


class DotenvError(ValueError):
    """A dotenv report GitLab would reject; the message says where and how to fix it."""


@dataclass(frozen=True, slots=True)
class DotenvReport:
    """What collecting a job's dotenv report found: the variables (in file order), the
    files that did not exist, and the reason the report was refused (None: accepted)."""

    variables: dict[str, str]
    missing: tuple[str, ...] = ()
    error: str | None = None


def parse_dotenv(text: str, file: str) -> dict[str, str]:
    """The variables of one dotenv file; DotenvError names the first bad line."""
    variables: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep:
            raise DotenvError(
                f"{file}:{number}: not KEY=VALUE (GitLab's dotenv allows no empty line or comment)"
            )
        if not _KEY.match(key):
            raise DotenvError(
                f"{file}:{number}: invalid variable name {key[:40]!r} "
                "(use ASCII letters, digits and _)"
            )
        variables[key] = value.strip()
    return variables


def dotenv_path(run_dir: Path, job: str) -> Path:
    """`<run_dir>/dotenv/<job>.json` with the job name made one safe path segment."""
    return dotenv_dir(run_dir) / f"{safe_segment(job)}.json"


def _check_inside(workspace: Path, name: str) -> Path:
    path = (workspace / name).resolve()
    if not path.is_relative_to(workspace.resolve()):
        raise DotenvError(f"{name}: outside the job's folder (give a path inside the project)")
    return path


def _read_report(workspace: Path, files: Iterable[str]) -> DotenvReport:
    variables: dict[str, str] = {}
    missing: list[str] = []
    size = 0
    for name in files:
        path = _check_inside(workspace, name)
        if not path.is_file():
            missing.append(name)
            continue
        data = path.read_bytes()
        size += len(data)
        if size > DOTENV_MAX_BYTES:
            raise DotenvError(
                f"{name}: the dotenv report is larger than {DOTENV_MAX_BYTES} bytes "
                "(GitLab's limit: export fewer or shorter variables)"
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise DotenvError(f"{name}: not UTF-8 text (write the file as UTF-8)") from None
        variables.update(parse_dotenv(text, name))
    if len(variables) > DOTENV_MAX_VARIABLES:
        raise DotenvError(
            f"the dotenv report has {len(variables)} variables, more than GitLab's "
            f"{DOTENV_MAX_VARIABLES} (export fewer)"
        )
    return DotenvReport(variables, tuple(missing))


def save_dotenv(workspace: Path, files: Iterable[str], dest: Path) -> DotenvReport:
    """Parse the job's dotenv files in `workspace` and save the variables to `dest`
    (written to a temporary name, then renamed: a reader never sees half a file). A refused
    report saves nothing and comes back with its `error`."""
    try:
        report = _read_report(workspace, files)
    except DotenvError as exc:
        report = DotenvReport({}, error=str(exc))
    write_dotenv(dest, report.variables)
    return report


def write_dotenv(dest: Path, variables: dict[str, str]) -> None:
    """Save a job's dotenv variables as `dest` (written to a temporary name, then renamed);
    none: `dest` is removed, so an earlier attempt's variables never outlive this one."""
    dest.unlink(missing_ok=True)
    if variables:
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".partial")
        partial.write_text(json.dumps(variables), encoding="utf-8")
        partial.replace(dest)


def checked_variables(data: object) -> dict[str, str]:
    """Saved dotenv variables that came from elsewhere (a worker's upload): a JSON object of
    names to strings within GitLab's limits, else DotenvError."""
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise DotenvError("dotenv variables must be a JSON object of names to strings")
    bad = next((key for key in data if not _KEY.match(key)), None)
    if bad is not None:
        raise DotenvError(f"invalid variable name {bad[:40]!r} (use ASCII letters, digits and _)")
    if len(data) > DOTENV_MAX_VARIABLES:
        raise DotenvError(f"{len(data)} variables, more than GitLab's {DOTENV_MAX_VARIABLES}")
    if sum(len(k) + len(v) for k, v in data.items()) > DOTENV_MAX_BYTES:
        raise DotenvError(f"the variables are larger than {DOTENV_MAX_BYTES} bytes")
    return dict(data)


async def collect_dotenv(
    files: Iterable[str], workspace: Path, dest: Path, say: Callable[[str], None]
) -> str | None:
    """Save a job's dotenv report (see `save_dotenv`) and say what happened on system lines
    (names only, never values); returns why the report was refused, None when accepted."""
    report = await asyncio.to_thread(save_dotenv, workspace, tuple(files), dest)
    for name in report.missing:
        say(f"artifacts:reports:dotenv: {name} does not exist (no variable exported from it)")
    if report.error is not None:
        reason = f"artifacts:reports:dotenv: {report.error}"
        say(reason)
        return reason
    if report.variables:
        say(f"artifacts:reports:dotenv: exported {', '.join(report.variables)}")
    return None


def received_dotenv(run_dir: Path, jobs: Iterable[str]) -> dict[str, str]:
    """The saved dotenv variables of `jobs`, merged in order (a later job wins). Jobs that
    saved none, or whose file is unreadable, give nothing."""
    merged: dict[str, str] = {}
    if not dotenv_dir(run_dir).is_dir():  # the common case: nobody saved any
        return merged
    for job in jobs:
        try:
            data = json.loads(dotenv_path(run_dir, job).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            merged.update({str(k): str(v) for k, v in data.items()})
    return merged
