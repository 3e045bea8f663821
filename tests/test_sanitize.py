"""The one filter kernel text passes through before it reaches the terminal."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kconsole.sanitize import plain_line, terminal_text, url_text

# What may be left: SGR sequences and nothing else that starts with ESC or is C1.
_SGR = re.compile(r"\x1b\[[0-9;:]*m")
_BAD = re.compile(r"[\x00-\x07\x0b-\x1f\x7f-\x9f]")


def leftover_controls(out: str) -> list[str]:
    """Control characters in ``out`` once its SGR sequences are removed (\\r and \\b
    are allowed: progress bars)."""
    return [c for c in _BAD.findall(_SGR.sub("", out)) if c not in "\r\b"]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("plain text\n\tindented", "plain text\n\tindented"),
        ("\x1b[1;31mred\x1b[0m", "\x1b[1;31mred\x1b[0m"),
        ("\x1b[38:2:1:2:3mrgb\x1b[m", "\x1b[38:2:1:2:3mrgb\x1b[m"),
        ("copy\x1b]52;c;aGFja2Vk\x07!", "copy!"),
        ("\x1b]0;title\x1b\\x", "x"),
        ("\x1b]2;title\x07x", "x"),
        ("a\x1bP1$qm\x1b\\b", "ab"),
        ("a\x1b_Gf=100;AAAA\x1b\\b", "ab"),
        ("a\x1b^pm\x1b\\b\x1bXsos\x1b\\c", "abc"),
        ("\x1b[?1049hscreen\x1b[?1049l", "screen"),
        ("\x1b[2J\x1b[Hhome\x1b[5A", "home"),
        ("\x9b?1049h8bit\x9d0;t\x9cend", "8bitend"),
        ("\x1b]8;;http://x\x1b\\\x1b]52;c;eA==\x07\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("unterminated \x1b]52;c;aGk= and the rest", "unterminated "),
        ("lone \x1b", "lone "),
        ("\x1bcreset", "reset"),
        ("\x1b(Bcharset", "charset"),
        ("bell\x07 nul\x00 del\x7f", "bell nul del"),
        ("50%\r100%\b!", "50%\r100%\b!"),
        ("\x01zero-width\x02", "zero-width"),
        ("\x1b[1;31", ""),
        ("\x1b[31;1$m", ""),
    ],
)
def test_terminal_text_keeps_colours_and_drops_every_other_sequence(raw: str, clean: str) -> None:
    assert terminal_text(raw) == clean


def test_sgr_and_progress_can_be_dropped_too() -> None:
    assert terminal_text("\x1b[31mx\x1b[0m\r\b", allow_sgr=False, allow_progress=False) == "x"
    assert plain_line("a\nb\tc\x1b[1md") == "a b cd"


def test_url_text_cannot_end_an_osc_8_early() -> None:
    assert url_text("http://example.com/a?b=1#c") == "http://example.com/a?b=1#c"
    url = url_text("http://x/\x1b\\\x1b]52;c;eA==\x07 ä")
    assert all(" " < c < "\x7f" for c in url)
    assert url == "http://x/%20%C3%A4"


def test_runs_of_escapes_are_filtered_in_linear_time() -> None:
    for unit in ("\x1b]", "\x1b[", "\x1b[1m", "\x9d\x1b\\", "\x1b\x1b[", "\x1b]8;;\x1b]"):
        text = unit * (200_000 // len(unit))  # quadratic would take hours
        t0 = time.perf_counter()
        terminal_text(text)
        assert time.perf_counter() - t0 < 1.0, unit


_PIECES = st.sampled_from(
    [
        "\x1b",
        "[",
        "]",
        "P",
        "_",
        "^",
        "X",
        "\\",
        "\x07",
        "\x9b",
        "\x9c",
        "\x9d",
        "\x90",
        "\x9f",
        "m",
        "1",
        ";",
        "?",
        "h",
        "\r",
        "\b",
        "\n",
        "a",
        "é",
        "\x00",
        "\x18",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES | st.text(max_size=5), max_size=60).map("".join))
def test_no_control_sequence_survives_but_sgr(text: str) -> None:
    out = terminal_text(text)
    assert not leftover_controls(out)
    # Idempotent: what is left is exactly what the filter keeps.
    assert terminal_text(out) == out
    bare = terminal_text(text, allow_sgr=False, allow_progress=False)
    assert not _BAD.search(bare) and "\r" not in bare and "\b" not in bare and "\x1b" not in bare


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_text_without_controls_is_kept_unchanged(text: str) -> None:
    plain = _BAD.sub("", text)
    assert terminal_text(plain) == plain


_LONG_PIECES = st.sampled_from(
    ["plain text ", "\n", "\t", "\r", "\b", "é", "°", "\xa0", "✓", "中", "😀", "\ud800"]
    + ["\x00", "\x07", "\x7f", "\x85", "\x9b", "\x9f", "\x1b[31m", "\x1b]0;t\x07", "\x1b"]
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_LONG_PIECES, max_size=40).map("".join),
    st.integers(min_value=1, max_value=9),
)
def test_long_texts_checked_in_byte_slices_filter_as_the_regex_does(text: str, chunk: int) -> None:
    # Long texts are checked in slices of their Latin-1 bytes where they can be: made
    # short here, so that controls land at every slice boundary and in every kind of
    # slice (ASCII, Latin-1, past U+00FF). The output must be the regex filter's.
    from unittest import mock

    from kconsole import sanitize

    with (
        mock.patch.object(sanitize, "_SCAN_CHUNK", chunk),
        mock.patch.object(sanitize, "_SCAN_BYTES_FROM", 1),
    ):
        for sgr in (False, True):
            for progress in (False, True):
                want = sanitize._DROPPED[sgr, progress].sub("", text)
                assert terminal_text(text, allow_sgr=sgr, allow_progress=progress) == want


def test_a_control_deep_in_a_long_text_is_found() -> None:
    # Past the first slices, in each kind of text: ASCII, Latin-1, and beyond U+00FF.
    for filler in ("x", "é", "✓"):
        text = filler * 300_000 + "\x1b]52;c;aGFja2Vk\x07" + filler * 10
        assert terminal_text(text) == filler * 300_010
        assert terminal_text(filler * 300_000 + "\x85") == filler * 300_000
