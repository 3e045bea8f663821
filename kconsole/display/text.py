"""Measuring and styling terminal text.

Widths are in terminal cells: East Asian wide characters take two, combining marks
none. ASCII text (nearly all output) takes the fast path ``len``.
"""

from __future__ import annotations

import re
from functools import lru_cache

#: CSI sequences (colours, cursor moves), OSC sequences (hyperlinks, titles, iTerm2
#: images), APC/DCS strings (kitty images, sixel) and tmux's passthrough DCS (any of
#: those inside, every ESC doubled): none of them take a cell.
ANSI_RE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|\x1bPtmux;[^\x1b]*(?:\x1b\x1b[^\x1b]*)*\x1b\\"
    r"|\x1b[P_^][^\x1b]*\x1b\\"
    r"|\x1b[78=>@-Z\\-_]"  # ESC 7/8 (cursor save/restore around images), keypad modes
)


def strip_ansi(text: str) -> str:
    """``text`` without escape sequences."""
    return ANSI_RE.sub("", text) if "\x1b" in text else text


@lru_cache(maxsize=4096)
def get_cwidth(ch: str) -> int:
    """Cells one character takes (0 for combining marks, 2 for wide characters).

    wcwidth (prompt_toolkit's own dependency) is imported on the first non-ASCII
    character, not with this module: script mode never loads prompt_toolkit at all.
    """
    if ch.isascii():
        return 1 if ch.isprintable() else 0
    from wcwidth import wcwidth

    return max(0, wcwidth(ch))


def cell_width(text: str) -> int:
    """How many terminal cells ``text`` (no escapes, no newlines) takes."""
    if text.isascii():
        return len(text)
    return sum(get_cwidth(c) for c in text)


def display_width(text: str) -> int:
    """Cells taken by ``text`` when it may contain escape sequences."""
    return cell_width(strip_ansi(text))


def rows_of(text: str, columns: int) -> int:
    """How many screen rows the cursor moves down while ``text`` is printed.

    Counts the line breaks ``text`` causes in a terminal ``columns`` wide, wraps of
    long lines included (a line exactly ``columns`` wide does not wrap by itself:
    terminals defer the wrap until the next character). A trailing partial line
    does not count: the cursor is still on it.
    """
    return advance(text, columns)[0]


#: Characters that move the cursor other than by printing (after escapes are gone).
_MOVES = re.compile(r"[\r\b\t]")


def advance(text: str, columns: int, col: int = 0) -> tuple[int, int]:
    """Where the cursor goes while ``text`` is printed from column ``col`` of a
    terminal ``columns`` wide: ``(rows moved down, column at the end)``.

    The column is ``columns`` when a wrap is pending (the last line filled the row:
    terminals wrap only when the next character comes). ``\\r`` goes back to column
    0 of the current row (not of the line, which may have wrapped), ``\\b`` one
    column left, ``\\t`` to the next tab stop (never wrapping), a wide character that
    does not fit on the row wraps before it, escape sequences move nothing. Linear,
    with a fast path for plain ASCII lines (nearly all output).
    """
    columns = max(1, columns)
    col = min(max(0, col), columns)
    rows = 0
    lines = strip_ansi(text).split("\n")
    last = len(lines) - 1
    for i, line in enumerate(lines):
        if line:
            if line.isascii() and line.isprintable():
                wraps, col = _run(col, len(line), columns)
            else:
                wraps, col = _walk(line, col, columns)
            rows += wraps
        if i < last:
            rows += 1
            col = 0
    return rows, col


def _run(col: int, n: int, columns: int) -> tuple[int, int]:
    """``n`` one-cell characters printed from ``col``: (wraps, column after)."""
    if col + n <= columns:
        return 0, col + n
    rest = n - (columns - col)  # characters after the first wrap
    wraps = -(-rest // columns)
    return wraps, rest - (wraps - 1) * columns


def _walk(line: str, col: int, columns: int) -> tuple[int, int]:
    """The slow path of :func:`advance`: one line with cursor moves or wide text."""
    wraps = 0
    pos = 0
    for m in [*_MOVES.finditer(line), None]:
        seg = line[pos : m.start() if m is not None else len(line)]
        if seg.isascii():
            w, col = _run(col, sum(1 for c in seg if c.isprintable()), columns)
            wraps += w
        else:
            for ch in seg:
                cw = get_cwidth(ch)
                if cw == 0:
                    continue
                if col + cw > columns:
                    wraps += 1
                    col = 0
                col += cw
        if m is None:
            break
        ch = m.group()
        if ch == "\r":
            col = 0
        elif ch == "\b":
            # From a pending wrap the cursor is on the last column: one left of it.
            col = max(0, columns - 2 if col >= columns else col - 1)
        else:  # a tab: the next multiple of 8, at most the last column
            col = min(columns - 1, (min(col, columns - 1) // 8 + 1) * 8)
        pos = m.end()
    return wraps, col


def truncate(text: str, width: int) -> str:
    """``text`` (no escapes) cut to at most ``width`` cells, with an ellipsis if cut."""
    if cell_width(text) <= width:
        return text
    if width <= 0:
        return ""
    out = []
    used = 0
    for ch in text:
        w = get_cwidth(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def pad(text: str, width: int, align: str = "left") -> str:
    """``text`` (escape sequences allowed: they take no cell) padded with spaces to
    ``width`` cells, ``align`` being ``left``, ``right`` or ``center``."""
    gap = width - display_width(text)
    if gap <= 0:
        return text
    if align == "right":
        return " " * gap + text
    if align == "center":
        left = gap // 2
        return " " * left + text + " " * (gap - left)
    return text + " " * gap


def split_to_width(word: str, width: int) -> list[str]:
    """Break a word longer than ``width`` cells into pieces that fit."""
    if width <= 0:
        return [word]
    if word.isascii():
        return [word[i : i + width] for i in range(0, len(word), width)] or [""]
    pieces: list[str] = []
    cur: list[str] = []
    used = 0
    for ch in word:
        w = get_cwidth(ch)
        if used + w > width and cur:
            pieces.append("".join(cur))
            cur, used = [], 0
        cur.append(ch)
        used += w
    pieces.append("".join(cur))
    return pieces


#: Longest URL made an OSC 8 hyperlink (terminals keep some 2 KB).
MAX_URL = 2048
#: The URL schemes made clickable. A click hands the URL to the desktop, and link
#: text can read like any web address: javascript:, data: or a custom scheme (the
#: door to URL-handler exploits) stays plain text.
LINK_SCHEMES = ("http:", "https:", "ftp:", "mailto:", "file:")


class Styler:
    """Turns style names into SGR sequences, or into nothing when colour is off.

    ``hyperlinks`` says whether OSC 8 links are understood by the terminal; when
    not, :meth:`link` leaves the text alone and callers print the URL after it.
    """

    SGR = {
        "bold": "1",
        "dim": "2",
        "italic": "3",
        "underline": "4",
        "strike": "9",
        "code": "36",
        "heading": "1;34",
        "link": "4;34",
        "rule": "2",
        "note": "33",
        "quote": "2;3",
    }

    def __init__(self, color: bool = True, hyperlinks: bool = False) -> None:
        self.color = color
        self.hyperlinks = hyperlinks and color

    def __call__(self, text: str, *styles: str) -> str:
        if not self.color or not text or not styles:
            return text
        codes = ";".join(self.SGR[s] for s in styles if s in self.SGR)
        return f"\x1b[{codes}m{text}\x1b[0m" if codes else text

    def link(self, text: str, url: str) -> str:
        """``text`` as an OSC 8 hyperlink to ``url`` (when the terminal has them)."""
        if not self.hyperlinks or not url:
            return text
        from ..sanitize import url_text

        # The URL is the OSC 8 payload: nothing in it may end the sequence early. Longer
        # than terminals keep (and repeated on every line of the link): no link.
        url = url_text(url)
        if not url or len(url) > MAX_URL or not url.lower().startswith(LINK_SCHEMES):
            return text
        return f"\x1b]8;;{url}\x1b\\{text}\x1b]8;;\x1b\\"
