"""The pure parts of engine/dotenv.py and engine/cache.py: dotenv lines and cache keys."""

from __future__ import annotations

import pytest

from conveyor.engine.cache import cache_folder, cache_keys
from conveyor.engine.dotenv import DotenvError, parse_dotenv
from conveyor.model import Cache


def test_parse_dotenv_splits_at_first_equals_and_strips() -> None:
    text = "A=1\n B = two words \nURL=https://x.test/?a=b\nQ='kept'\nEMPTY=\n"
    assert parse_dotenv(text, "b.env") == {
        "A": "1",
        "B": "two words",
        "URL": "https://x.test/?a=b",
        "Q": "'kept'",
        "EMPTY": "",
    }


def test_parse_dotenv_later_line_wins() -> None:
    assert parse_dotenv("A=1\nA=2\n", "b.env") == {"A": "2"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A=1\n\nB=2\n", "b.env:2: not KEY=VALUE"),
        ("# comment\n", "b.env:1: not KEY=VALUE"),
        ("#A=1\n", "b.env:1: invalid variable name '#A'"),
        ("MY-VAR=1\n", "b.env:1: invalid variable name 'MY-VAR'"),
        ("=1\n", "b.env:1: invalid variable name ''"),
    ],
)
def test_parse_dotenv_refuses_what_gitlab_refuses(text: str, message: str) -> None:
    with pytest.raises(DotenvError) as caught:
        parse_dotenv(text, "b.env")
    assert str(caught.value).startswith(message)


def test_cache_keys_expand_variables_then_fallbacks() -> None:
    cache = Cache(key="deps-$REF", fallback_keys=("deps-$MAIN", "deps-main"))
    env = {"REF": "feature", "MAIN": "main", "CACHE_FALLBACK_KEY": "global"}
    assert cache_keys(cache, env, None) == ["deps-feature", "deps-main", "global"]


def test_cache_keys_from_files_use_prefix_and_default() -> None:
    cache = Cache(key_files=("deps.lock",), key_prefix="lock-$X")
    assert cache_keys(cache, {"X": "1"}, "abc") == ["lock-1-abc"]
    assert cache_keys(cache, {"X": "1"}, None) == ["lock-1-default"]
    assert cache_keys(Cache(key_files=("deps.lock",)), {}, None) == ["default"]


def test_cache_keys_empty_expansion_is_default() -> None:
    assert cache_keys(Cache(key="$UNSET"), {}, None) == ["default"]


def test_cache_folder_is_one_visible_segment() -> None:
    assert [cache_folder(k) for k in ("deps-1", "a b", ".locks", "x%y")] == [
        "deps-1",
        "a%20b",
        "%2Elocks",
        "x%25y",
    ]
