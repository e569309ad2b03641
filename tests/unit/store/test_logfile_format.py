"""Pure parts of store.logfiles and store.logreader: job-name encoding, line parsing,
timestamp text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
from hypothesis import given
from hypothesis import strategies as st

from conveyor.model import LogRecord, Stream
from conveyor.records import format_ts, log_to_dict
from conveyor.store.logfiles import TimestampCache, decode_job_name, encode_job_name
from conveyor.store.logreader import parse_log_lines

T0 = datetime(2026, 11, 23, 12, 0, 0, 999999, tzinfo=UTC)


@given(st.text(max_size=15))
def test_encode_job_name_is_reversible(name: str) -> None:
    # 15 characters of up to 4 UTF-8 bytes, 3 characters each, stay under the hash limit.
    assert decode_job_name(encode_job_name(name)) == name


@given(st.text(max_size=60))
def test_encode_job_name_is_one_safe_path_segment(name: str) -> None:
    stem = encode_job_name(name)
    assert "/" not in stem
    assert stem not in ("", ".", "..")
    assert not stem.startswith(".")


def test_encode_job_name_of_matrix_job() -> None:
    assert encode_job_name("test [PY=3.12, OS=linux]") == (
        "test%20%5BPY%3D3%2E12%2C%20OS%3Dlinux%5D"
    )


def test_encode_job_name_hashes_long_names_and_keeps_them_apart() -> None:
    first, second = encode_job_name("x" * 300 + "a"), encode_job_name("x" * 300 + "b")
    assert len(first) < 200
    assert first != second
    assert decode_job_name(first) is None


def record(n: int, text: str = "hello") -> LogRecord:
    return LogRecord(T0, "r1", "build", "make", Stream.STDOUT, n, text)


def line(rec: LogRecord) -> bytes:
    return orjson.dumps(log_to_dict(rec)) + b"\n"


def test_parse_log_lines_leaves_a_partial_line() -> None:
    data = line(record(1)) + line(record(2))[:10]
    records, used = parse_log_lines(data)
    assert [r.n for r in records] == [1]
    assert used == len(line(record(1)))


def test_parse_log_lines_skips_corrupt_lines() -> None:
    data = line(record(1)) + b'{"ts": broken\n' + b'{"n": 3}\n' + line(record(4))
    records, _ = parse_log_lines(data)
    assert [r.n for r in records] == [1, 4]


def test_parse_log_lines_round_trips_text() -> None:
    text = 'quote " back\\slash \u00e9 \t tab [MASKED]'
    records, _ = parse_log_lines(line(record(1, text)))
    assert records[0].text == text


# hypothesis takes naive bounds and attaches the zone itself.
_MOMENTS = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@given(st.lists(_MOMENTS, min_size=1, max_size=20))
def test_timestamp_cache_matches_format_ts(moments: list[datetime]) -> None:
    cache = TimestampCache()
    assert [cache.format(m) for m in moments] == [format_ts(m) for m in moments]


def test_timestamp_cache_converts_other_zones() -> None:
    local = T0.astimezone(timezone(timedelta(hours=-5)))
    assert TimestampCache().format(local) == "2026-11-23T12:00:00.999Z"
