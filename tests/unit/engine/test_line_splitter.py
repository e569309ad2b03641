"""Unit tests of the runner's line splitting: chunk boundaries, bad bytes, long lines."""

from __future__ import annotations

from conveyor.engine.runner import CUT_MARKER, MAX_LINE_CHARS, _LineSplitter


def _split(*chunks: bytes) -> list[str]:
    splitter = _LineSplitter()
    lines: list[str] = []
    for chunk in chunks:
        lines += splitter.feed(chunk)
    return lines + splitter.feed(b"", final=True)


def test_splitter_joins_lines_across_chunks() -> None:
    assert _split(b"ab", b"c\nd", b"e\n") == ["abc", "de"]


def test_splitter_keeps_last_line_without_newline() -> None:
    assert _split(b"a\nb") == ["a", "b"]


def test_splitter_keeps_empty_lines() -> None:
    assert _split(b"\n\na\n") == ["", "", "a"]


def test_splitter_decodes_character_split_across_chunks() -> None:
    euro = "€".encode()
    assert _split(euro[:1], euro[1:] + b"\n") == ["€"]


def test_splitter_replaces_invalid_bytes() -> None:
    assert _split(b"a\xffb\n") == ["a\ufffdb"]


def test_splitter_strips_crlf() -> None:
    assert _split(b"a\r\nb\r\n") == ["a", "b"]


def test_splitter_cuts_long_line_in_one_chunk() -> None:
    assert _split(b"x" * (MAX_LINE_CHARS + 5) + b"\ny\n") == [
        "x" * MAX_LINE_CHARS + CUT_MARKER,
        "y",
    ]


def test_splitter_cuts_long_line_across_chunks_and_drops_rest() -> None:
    half = b"x" * (MAX_LINE_CHARS // 2 + 1)
    lines = _split(half, half, half, b"tail\nnext\n")
    assert lines == ["x" * MAX_LINE_CHARS + CUT_MARKER, "next"]


def test_splitter_cut_unfinished_line_at_end() -> None:
    assert _split(b"y" * (MAX_LINE_CHARS + 1)) == ["y" * MAX_LINE_CHARS + CUT_MARKER]
