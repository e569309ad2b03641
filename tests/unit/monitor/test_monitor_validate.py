"""Every upstream value is checked before it may be served."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conveyor.monitor.validate import (
    Invalid,
    check_id,
    check_ref,
    check_sha,
    check_time,
    check_url,
    epoch_ms_to_time,
)


@pytest.mark.parametrize("sha", ["a" * 40, "0123456789abcdef" * 4, "A" * 40])
def test_check_sha_accepts_40_or_64_hex(sha: str) -> None:
    assert sha.lower() == check_sha(sha)


@pytest.mark.parametrize("sha", ["a" * 39, "a" * 41, "g" * 40, "", None, 42, "a" * 39 + "\n"])
def test_check_sha_rejects_anything_else(sha: object) -> None:
    with pytest.raises(Invalid):
        check_sha(sha)


@pytest.mark.parametrize("ref", ["main", "feature/x-1", "v1.2.3", "a" * 255])
def test_check_ref_accepts_sane_refs(ref: str) -> None:
    assert ref == check_ref(ref)


@pytest.mark.parametrize("ref", ["", "a..b", "../etc", "x\x1b[31m", "x\ny", "a" * 256, None, 1])
def test_check_ref_rejects_dangerous_refs(ref: object) -> None:
    with pytest.raises(Invalid):
        check_ref(ref)


@pytest.mark.parametrize(
    "url", ["https://gitlab.example/p/-/pipelines/1", "http://10.0.0.1:8080/j/"]
)
def test_check_url_accepts_http_urls(url: str) -> None:
    assert url == check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "ftp://x/y",
        "https://",
        "https://u:p@host/x",
        "//host/x",
        "https://h/\r\nX: y",
        None,
        "https://h/" + "a" * 3000,
    ],
)
def test_check_url_rejects_other_urls(url: object) -> None:
    with pytest.raises(Invalid):
        check_url(url)


def test_check_time_parses_z_and_offsets_to_utc() -> None:
    expected = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert expected == check_time("2026-11-23T12:00:00Z")
    assert expected == check_time("2026-11-23T13:00:00.000+01:00")
    assert check_time(None) is None


@pytest.mark.parametrize("value", ["2026-11-23T12:00:00", "yesterday", 12, "9" * 50])
def test_check_time_rejects_naive_or_garbage(value: object) -> None:
    with pytest.raises(Invalid):
        check_time(value)


@pytest.mark.parametrize("value", [0, -1, True, "1", 2**63, None])
def test_check_id_rejects_non_positive_ints(value: object) -> None:
    with pytest.raises(Invalid):
        check_id(value)


def test_epoch_ms_to_time_reads_jenkins_timestamps() -> None:
    assert datetime(2026, 11, 23, 12, 0, tzinfo=UTC) == epoch_ms_to_time(1_795_435_200_000)
    with pytest.raises(Invalid):
        epoch_ms_to_time("1795435200000")
