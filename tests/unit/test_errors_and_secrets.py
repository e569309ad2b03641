import pytest

from conveyor.errors import (
    ConfigError,
    ConflictError,
    ConveyorError,
    GitError,
    IncludeFetchError,
    Problem,
    RunCanceled,
    RunEnding,
    StoreError,
    UpstreamError,
    UpstreamRateLimited,
    UsageError,
    WebhookRejected,
)
from conveyor.secrets import looks_like_secret, read_secret


def test_problem_renders_file_line_col() -> None:
    assert str(Problem(".conveyor.yml", 12, 5, "bad")) == ".conveyor.yml:12:5: bad"
    assert str(Problem("conveyor.toml", 0, 0, "bad")) == "conveyor.toml: bad"


def test_config_error_sorts_problems_by_position() -> None:
    error = ConfigError([Problem("f", 9, 1, "late"), Problem("f", 2, 3, "early")])
    assert str(error) == "f:2:3: early\nf:9:1: late"
    assert error.exit_code == 2


def test_usage_error_exits_2() -> None:
    assert UsageError("x").exit_code == 2


def test_rate_limited_keeps_reset_time() -> None:
    error = UpstreamRateLimited("rate limited", reset_at=None, status_code=429)
    assert (error.kind, error.status_code, error.reason) == ("rate_limited", 429, "rate limited")


@pytest.mark.parametrize(
    "value",
    [
        "ghp_abcdefghijklmnop",
        "glpat-xxxxxxxxxxxxxxxxxxxx",
        "xoxb-1-2-3",
        "https://hooks.slack.com/services/T/B/X",
        "a8f5f167f44f4964e6c998dee827110c",
    ],
)
def test_looks_like_secret_flags_tokens(value: str) -> None:
    assert looks_like_secret(value)


@pytest.mark.parametrize("value", ["GITLAB_TOKEN", "GITHUB_WEBHOOK_SECRET_FOR_PROD_DEPLOYS"])
def test_looks_like_secret_accepts_variable_names(value: str) -> None:
    assert not looks_like_secret(value)


def test_read_secret_returns_value() -> None:
    assert read_secret({"T": "s3cret-value"}, "T", key="repos[0].secret_env") == "s3cret-value"


def test_read_secret_missing_names_key_and_variable() -> None:
    with pytest.raises(ConfigError) as info:
        read_secret({}, "GITLAB_TOKEN", key="monitor.targets[0].token_env")
    assert "monitor.targets[0].token_env" in str(info.value)
    assert "GITLAB_TOKEN is not set" in str(info.value)


def test_read_secret_short_token_never_shows_value() -> None:
    with pytest.raises(ConfigError) as info:
        read_secret({"T": "tiny-token"}, "T", key="k", min_length=20)
    assert "implausibly short" in str(info.value)
    assert "tiny-token" not in str(info.value)


def test_read_secret_rejects_a_literal_in_place_of_a_name() -> None:
    with pytest.raises(ConfigError, match="not an environment variable name"):
        read_secret({}, "ghp_literal-token", key="k")


def _tree(cls: type[ConveyorError]) -> list[type[ConveyorError]]:
    return [cls, *(c for sub in cls.__subclasses__() for c in _tree(sub))]


def test_every_error_carries_exit_code_http_status_and_code() -> None:
    for cls in _tree(ConveyorError):
        assert isinstance(cls.exit_code, int), cls
        assert 400 <= cls.http_status <= 599, cls
        assert cls.code and cls.code == cls.code.lower(), cls


def test_conflict_error_exits_2_and_answers_409() -> None:
    error = ConflictError("run 7: job 'deploy' is not a manual job waiting to be played")
    assert (error.exit_code, error.http_status, error.code) == (2, 409, "conflict")
    assert not isinstance(error, UsageError)


def test_run_canceled_is_a_conflict_with_its_own_code() -> None:
    error = RunCanceled("run 7: the run was canceled, its jobs can no longer be retried")
    assert (error.exit_code, error.http_status, error.code) == (2, 409, "run_canceled")
    assert isinstance(error, ConflictError)


def test_run_ending_is_a_conflict_with_its_own_code() -> None:
    error = RunEnding("run 7: its last job ended and its final record was not written")
    assert (error.exit_code, error.http_status, error.code) == (2, 409, "run_ending")
    assert isinstance(error, ConflictError)


def test_git_error_is_an_upstream_failure_of_the_api() -> None:
    assert (GitError("x").exit_code, GitError.http_status, GitError.code) == (1, 502, "git_failed")


def test_store_error_hides_its_message_from_the_api() -> None:
    error = StoreError("/srv/conveyor.db: database is locked")
    assert (error.http_status, error.code) == (503, "store_unavailable")
    assert error.http_message is not None
    assert "conveyor.db" not in error.http_message


def test_webhook_rejected_sets_its_status_per_delivery() -> None:
    error = WebhookRejected("webhook: bad signature", http_status=401, code="bad_signature")
    assert (error.http_status, error.code, WebhookRejected.http_status) == (
        401,
        "bad_signature",
        400,
    )


def test_upstream_errors_map_to_gateway_statuses() -> None:
    statuses = {c.__name__: (c.http_status, c.code) for c in _tree(UpstreamError)}
    assert statuses["UpstreamTimeout"] == (504, "upstream_timeout")
    assert statuses["UpstreamRateLimited"] == (429, "upstream_rate_limited")
    assert statuses["UpstreamAuthError"] == (502, "upstream_error")


def test_include_fetch_error_is_in_the_tree() -> None:
    assert (IncludeFetchError.exit_code, IncludeFetchError.http_status) == (2, 422)
    assert issubclass(IncludeFetchError, ConveyorError)
