"""`[[schedules]]` of conveyor.toml: pipelines run on a cron schedule (nightly builds).

    [[schedules]]
    id = "nightly"                 # names it in the API; default: its position ("1", "2", …)
    repo = "acme/app"              # a configured [[repos]] entry
    ref = "main"                   # branch or tag to run
    cron = "0 3 * * 1-5"           # five-field cron (croniter), or @daily, @hourly, …
    timezone = "Europe/Paris"      # IANA name the cron is read in (default UTC)
    description = "nightly build"
    variables = {NIGHTLY = "1"}    # the run's variables (as `--var`)

Validated here (pydantic): the cron expression through croniter (never a hand-written
parser), the time zone through zoneinfo, the ref and variable names through
`conveyor.inputs`; the repo being configured and ids being unique are checked by `Settings`.
Reads nothing but what it is given.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from conveyor.inputs import ref_problem, variable_problem

__all__ = ["ScheduleSettings"]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ScheduleSettings(BaseModel):
    """One `[[schedules]]` entry (module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    id: str = Field(default="", max_length=100)
    repo: str
    ref: str
    cron: str
    timezone: str = "UTC"
    description: str = ""
    variables: dict[str, str] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if value and not _ID.match(value):
            raise ValueError("must be letters, digits, '.', '_' or '-' (e.g. \"nightly\")")
        return value

    @field_validator("ref")
    @classmethod
    def _valid_ref(cls, value: str) -> str:
        problem = ref_problem(value)
        if problem is not None:
            raise ValueError(f"the ref {problem} (give a branch or tag name)")
        return value

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError(
                f"{value!r} is not a cron expression (five fields: minute hour day-of-month "
                'month day-of-week, e.g. "0 3 * * *", or @daily, @hourly, …)'
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f'{value!r} is not a time zone (use an IANA name such as "Europe/Paris" or UTC)'
            ) from None
        return value

    @field_validator("variables")
    @classmethod
    def _allowed_variables(cls, value: dict[str, str]) -> dict[str, str]:
        for name in sorted(value):
            problem = variable_problem(name)
            if problem is not None:
                raise ValueError(problem)
        return value
