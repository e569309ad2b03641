"""Unit tests of conveyor.masking (and secrets.secret_values, which feeds it)."""

from __future__ import annotations

from conveyor.masking import MASK, MIN_SECRET_LENGTH, Masker
from conveyor.secrets import secret_values


def test_masker_replaces_every_occurrence() -> None:
    assert f"a {MASK} b {MASK}" == Masker(["hunter22"]).mask("a hunter22 b hunter22")


def test_masker_masks_longest_value_whole() -> None:
    masker = Masker(["abcd", "abcdefgh"])
    assert f"x{MASK}y" == masker.mask("xabcdefghy")


def test_masker_escapes_regex_characters() -> None:
    assert f"pw={MASK}" == Masker(["a.b*c+"]).mask("pw=a.b*c+")


def test_masker_without_secrets_is_identity() -> None:
    masker = Masker([])
    assert (masker.is_active, masker.mask("hunter22")) == (False, "hunter22")


def test_masker_ignores_too_short_values() -> None:
    assert Masker(["on", "1", ""]).mask("on 1") == "on 1"


def test_masker_masks_values_of_the_minimum_length() -> None:
    value = "x" * MIN_SECRET_LENGTH
    assert Masker([value]).mask(f"a {value}") == f"a {MASK}"


def test_secret_values_picks_set_names_only() -> None:
    env = {"TOKEN": "s3cr3t-value", "EMPTY": "", "OTHER": "x"}
    assert secret_values(["TOKEN", "EMPTY", "MISSING"], env) == {"TOKEN": "s3cr3t-value"}
