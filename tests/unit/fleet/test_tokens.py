"""Run tokens (fleet.tokens): made from the run id under a key, checked in constant time."""

from __future__ import annotations

from conveyor.fleet.tokens import run_token, token_run_id, verify

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


def test_run_token_names_its_run_and_verifies() -> None:
    token = run_token(KEY, "20261207T120000Z-abc.1")
    assert token.startswith("20261207T120000Z-abc.1:")
    assert (token_run_id(token), verify(KEY, token)) == ("20261207T120000Z-abc.1",) * 2


def test_run_tokens_differ_by_run_and_key() -> None:
    assert run_token(KEY, "r1") != run_token(KEY, "r2")
    assert run_token(KEY, "r1") != run_token(OTHER_KEY, "r1")
    assert run_token(KEY, "r1") == run_token(KEY, "r1")


def test_verify_refuses_forged_and_malformed_tokens() -> None:
    token = run_token(KEY, "r1")
    mac = token.rpartition(":")[2]
    assert verify(OTHER_KEY, token) is None
    assert verify(KEY, "r2:" + mac) is None  # another run's id with this run's mac
    for bad in ("", "r1", ":" + mac, "r1:", "r1:zz", "r1:" + mac + "é"):
        assert verify(KEY, bad) is None, bad
