"""Request ids and the log masker (pure)."""

from __future__ import annotations

import io
import logging

import orjson
import structlog
from hypothesis import given
from hypothesis import strategies as st

from conveyor.logconfig import SecretMasker, configure_logging
from conveyor.masking import MASK, MIN_SECRET_LENGTH
from conveyor.server.middleware import new_request_id


def test_request_id_sane_value_is_kept() -> None:
    assert new_request_id("req-42.a:b") == "req-42.a:b"


def test_request_id_unsafe_value_is_replaced() -> None:
    for given_id in (None, "", "x" * 200, "bad id\n", "<script>"):
        made = new_request_id(given_id)
        assert made != given_id
        assert len(made) == 32


def test_generated_request_ids_are_distinct_hex() -> None:
    made = [new_request_id(None) for _ in range(1000)]
    assert len(set(made)) == 1000
    assert all(int(made_id, 16) >= 0 and len(made_id) == 32 for made_id in made)


def test_masker_masks_nested_values() -> None:
    masker = SecretMasker(["tok123456", "tok1"])
    event = masker(None, "info", {"event": "x tok123456", "extra": {"a": ["tok1"]}, "n": 3})
    assert event == {"event": f"x {MASK}", "extra": {"a": [MASK]}, "n": 3}


@given(st.text(min_size=MIN_SECRET_LENGTH), st.text(), st.text())
def test_masker_never_leaves_the_secret(secret: str, before: str, after: str) -> None:
    masked = SecretMasker([secret]).mask(before + secret + after)
    assert secret not in masked or secret in MASK


def test_configured_logging_masks_json_lines() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging(json=True, secrets=["hunter2-very-secret"], stream=out)
    try:
        structlog.get_logger("t").warning("t.event", url="https://x/hunter2-very-secret")
        logging.getLogger("uvicorn.error").error("boom hunter2-very-secret")
    finally:
        structlog.reset_defaults()
        root.handlers[:], root.level = saved
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert "hunter2" not in out.getvalue()
    assert lines[0]["url"] == f"https://x/{MASK}"
    assert lines[1]["logger"] == "uvicorn.error"
