"""`[[schedules]]` and the per-repo trigger keys of conveyor.toml."""

from __future__ import annotations

import pytest

from conveyor.errors import ConfigError
from conveyor.settings import parse_settings
from tests.unit.test_settings import BASE, ENV


def _schedule(**keys: str) -> str:
    values = {"repo": '"acme/app"', "ref": '"main"', "cron": '"0 3 * * *"', **keys}
    return "\n[[schedules]]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())


def _problems(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, ENV, file="conveyor.toml")
    return str(caught.value)


def test_schedules_take_their_position_as_default_id() -> None:
    settings = parse_settings(BASE + _schedule() + _schedule(id='"nightly"'), ENV)
    assert [s.id for s in settings.schedules] == ["1", "nightly"]
    assert settings.schedules[0].timezone == "UTC"
    assert settings.schedule("nightly") is settings.schedules[1]


def test_schedule_bad_cron_names_the_key() -> None:
    message = _problems(BASE + _schedule(cron='"61 * * * *"'))
    assert "schedules[0].cron" in message
    assert "is not a cron expression" in message


def test_schedule_unknown_time_zone_names_the_key() -> None:
    message = _problems(BASE + _schedule(timezone='"Mars/Olympus"'))
    assert "schedules[0].timezone" in message
    assert "IANA name" in message


def test_schedule_of_an_unconfigured_repo_is_refused() -> None:
    assert "'acme/other' is not configured" in _problems(BASE + _schedule(repo='"acme/other"'))


def test_schedule_ids_are_unique() -> None:
    text = BASE + _schedule(id='"n"') + _schedule(id='"n"')
    assert "'n' is declared twice" in _problems(text)


def test_schedule_refuses_variables_a_trigger_may_not_set() -> None:
    assert "LD_PRELOAD" in _problems(BASE + _schedule(variables='{LD_PRELOAD = "x"}'))


def test_schedule_refuses_an_invalid_ref() -> None:
    assert "schedules[0].ref" in _problems(BASE + _schedule(ref='"a..b"'))


def test_repo_fork_secrets_defaults_to_skip() -> None:
    settings = parse_settings(BASE, ENV)
    assert settings.repos[0].fork_secrets == "skip"
    omit = parse_settings(BASE + 'fork_secrets = "omit"\n', ENV)
    assert omit.repos[0].fork_secrets == "omit"


def test_repo_auto_cancel_defaults_to_conservative() -> None:
    assert parse_settings(BASE, ENV).repos[0].auto_cancel == "conservative"
    assert parse_settings(BASE + 'auto_cancel = "none"\n', ENV).repos[0].auto_cancel == "none"
    assert "auto_cancel" in _problems(BASE + 'auto_cancel = "always"\n')
