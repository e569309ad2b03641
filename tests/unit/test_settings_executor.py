"""`[executor]` of conveyor.toml and worker.toml (settings.executor, settings.worker)."""

from __future__ import annotations

import pytest

from conveyor.errors import ConfigError
from conveyor.settings import parse_settings
from conveyor.settings.worker import parse_worker_settings

BROKER = "redis://:p4ssw0rd-broker@redis.internal:6379/0"
PG = "postgresql+psycopg://ci:pw@db/conveyor"
CELERY = """
[server]
store_url_env = "DB_URL"
[executor]
kind = "celery"
broker_url_env = "BROKER_URL"
pending_timeout = 60
"""


def test_local_is_the_default() -> None:
    settings = parse_settings("", {})
    assert settings.executor.kind == "local"


def test_celery_reads_the_broker_url_as_a_secret() -> None:
    settings = parse_settings(CELERY, {"BROKER_URL": BROKER, "DB_URL": PG})
    assert settings.secrets.broker_url == BROKER
    assert BROKER in settings.secrets.values()
    assert "p4ssw0rd-broker" in settings.secrets.values()  # the password alone, masked too
    assert "BROKER_URL" in settings.secret_variables()
    assert BROKER not in repr(settings) and BROKER not in repr(settings.secrets)
    assert settings.executor.pending_timeout == 60


def test_celery_without_a_postgresql_store_is_refused() -> None:
    text = '[executor]\nkind = "celery"\nbroker_url_env = "BROKER_URL"\n'
    with pytest.raises(ConfigError, match="needs the PostgreSQL run store"):
        parse_settings(text, {"BROKER_URL": BROKER})


def test_celery_on_a_sqlite_url_is_refused() -> None:
    with pytest.raises(ConfigError, match="needs the PostgreSQL run store") as caught:
        parse_settings(CELERY, {"BROKER_URL": BROKER, "DB_URL": "sqlite:///x.db"})
    assert BROKER not in str(caught.value)


def test_celery_needs_a_broker_variable() -> None:
    with pytest.raises(ConfigError, match="broker_url_env"):
        parse_settings('[executor]\nkind = "celery"\n', {})


def test_an_unset_broker_variable_names_the_key_never_a_value() -> None:
    with pytest.raises(ConfigError, match=r"executor\.broker_url_env"):
        parse_settings(CELERY, {"DB_URL": PG})


def test_worker_toml_reads_its_secrets_from_the_environment() -> None:
    text = '[worker]\ngrace = 30\n[clone_tokens]\napp = "APP_TOKEN"\n'
    config = parse_worker_settings(text, {"CONVEYOR_BROKER_URL": BROKER, "APP_TOKEN": "t0ken"})
    assert (config.broker_url, dict(config.clone_tokens)) == (BROKER, {"app": "t0ken"})
    assert config.settings.worker.grace == 30
    assert BROKER not in repr(config)


def test_worker_toml_problems_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"worker\.broker_url_env"):
        parse_worker_settings("", {})
    with pytest.raises(ConfigError, match=r"worker\.gracee"):
        parse_worker_settings("[worker]\ngracee = 1\n", {"CONVEYOR_BROKER_URL": BROKER})
