"""Where recent output is on the screen, and redrawing a part of it in place.

Theory of the screen log
------------------------
A display that is updated (``update_display_data``, a widget whose model changed) is
redrawn where it is while it is still on screen, whatever was printed after it. The
log knows where that is without asking the terminal: it counts the rows the cursor
moved down since the display was printed, in one coordinate, the *row clock*:

* the printer's own text is counted by :func:`~kconsole.display.text.advance` (line
  feeds, wraps of long lines at the current width, ``\\r``/``\\b``/``\\t``, wide
  characters), lazily: texts are only appended to a list while they come and counted
  in one go when a redraw needs the figure (or once 64 KB are pending), and nothing
  is counted at all while no display is tracked, so output floods cost nothing;
* what others write is told by the console: rows it knows it wrote (a prompt that
  was accepted: prompt_toolkit's own layout height), or text it wrote (a banner, an
  input() prompt), or that it does not know (a pager, an editor, keys echoed while a
  cell ran), in which case everything is forgotten and later updates print below.

A block (one display) starts at column 0 of row ``top`` and takes ``rows`` rows; the
cursor is ``d = clock - top`` rows below its first row. The terminal scrolls by as
many rows as the cursor could not move down, so the row at the top of the screen is
the furthest the clock ever got, less the height; a block is on screen while its
first row is not above that (the cursor moves up only when kconsole shrinks a block
or erases output, and what scrolled off does not come back then).

The redraw moves the cursor only relatively (no absolute position is ever known):
up ``d`` rows, rewrite the block's rows (each erased first), and back down to where
the output ends, at its column. A new version with fewer rows deletes the rows left
over (``CSI n M``: what follows moves up); one with more rows first makes room: index
down (``ESC D``, which scrolls at the bottom and keeps the column) and come back,
then insert rows after the old version (``CSI n L``: what follows moves down). It
does not use the terminal's one saved-cursor slot: images drawn with sixel use it.
Only when all of the block, grown, still fits on screen with the output below it;
else the caller prints the new version below (and that copy is tracked from then
on). After a resize the rows are not known (terminals re-wrap differently): every
block is forgotten.
"""

from __future__ import annotations

from collections.abc import Hashable

from .text import advance

#: Pending text is counted once it is this long (a flood is counted in chunks).
_SETTLE_CHARS = 64 * 1024


class ScreenLog:
    """The rows of recent output, counted so that blocks can be redrawn in place.

    ``max_blocks`` bounds how many blocks are tracked (the oldest is forgotten).
    """

    def __init__(self, max_blocks: int = 64) -> None:
        self.max_blocks = max_blocks
        #: key -> [top row, rows], in the order they were printed.
        self._blocks: dict[Hashable, list[int]] = {}
        self._row = 0
        self._col = 0
        self._pending: list[str] = []
        self._pending_chars = 0
        self._cols = 0
        #: The screen height last heard of: blocks further up are dropped as counted.
        self._lines = 0
        #: The row at the top of the screen: the furthest the screen has scrolled. The
        #: cursor moves up only when a redraw shrinks a block or clear_output erases,
        #: and what scrolled off does not come back then.
        self._screen_top = 0

    # -- what was written ------------------------------------------------------------

    def text(self, text: str) -> None:
        """``text`` was written where the cursor is (the printer's or anyone's)."""
        if not self._blocks:
            return  # nothing to place: rows need no counting
        self._pending.append(text)
        self._pending_chars += len(text)
        if self._pending_chars > _SETTLE_CHARS:
            self._settle()

    def moved(self, rows: int) -> None:
        """Someone else wrote ``rows`` rows from column 0, leaving the cursor at column
        0 of the row below (an accepted prompt)."""
        if not self._blocks:
            return
        self._settle()
        if self._col != 0:
            self.lost()  # it did not start where we think: nothing is known
            return
        self._row += max(0, rows)
        self._scrolled(self._lines)

    def lost(self) -> None:
        """Where earlier output is is no longer known (a pager, a resize...)."""
        self._blocks.clear()
        self._pending = []
        self._pending_chars = 0
        self._row = self._col = self._screen_top = 0

    def erased(self, rows: int) -> list[Hashable]:
        """The last ``rows`` rows were erased and the cursor is at column 0 of the
        first of them; returns the keys of the blocks that went with them."""
        if not self._blocks:
            return []
        self._settle()
        self._row -= rows
        self._col = 0
        gone = [k for k, (top, n) in self._blocks.items() if top + n > self._row]
        for k in gone:
            del self._blocks[k]
        if self._row < self._screen_top:
            # It began above the first row known to be on screen (before the first block,
            # or scrolled off): where the cursor is now is not known for sure.
            self.lost()
        return gone

    def add(self, key: Hashable, text: str, cols: int, lines: int) -> None:
        """``text`` (ending with a newline) is printed now from column 0 as block
        ``key``, replacing any earlier block of that key, on a screen ``cols`` x
        ``lines``."""
        self._lines = lines
        if not self._blocks or cols != self._cols:
            self.lost()
            self._cols = cols
        else:
            self._settle()
            if self._col != 0:
                # The printer is at a line start, the count says otherwise (a width
                # the terminal sees differently): start again from here.
                self.lost()
                self._cols = cols
        self._blocks.pop(key, None)
        rows, self._col = advance(text, cols, 0)
        self._blocks[key] = [self._row, rows]
        self._row += rows
        self._scrolled(lines)
        while len(self._blocks) > self.max_blocks:
            del self._blocks[next(iter(self._blocks))]

    def forget(self, key: Hashable) -> None:
        """Stop tracking block ``key`` (its output may stay on screen)."""
        self._blocks.pop(key, None)

    # -- redrawing ---------------------------------------------------------------------

    def redraw(self, key: Hashable, text: str, cols: int, lines: int) -> str | None:
        """The terminal output that replaces block ``key`` with ``text`` (ending with a
        newline) where it is and leaves the cursor where it was; None when that cannot
        be done (not tracked, scrolled off, resized, no room): the caller prints it
        below. The log counts the redraw as done once this returns a string."""
        if key not in self._blocks:
            return None
        self._lines = lines
        if cols != self._cols:
            self.lost()
            return None
        self._settle()
        if key not in self._blocks:
            return None  # scrolled off while the text after it was counted
        self._scrolled(lines)
        top, old = self._blocks[key]
        if top < self._screen_top:
            del self._blocks[key]  # scrolled off: it can never come back
            return None
        d = self._row - top
        new, end_col = advance(text, cols, 0)
        delta = new - old
        if (
            d < old
            or d + max(0, delta) >= lines  # grown, its first row would scroll off
            or end_col != 0
            or self._col >= cols  # a pending wrap cannot be restored by moving
        ):
            return None
        out: list[str] = []
        if d == old and self._col == 0:
            # Nothing after the block (the usual update: an animation, a progress
            # display): up to its first row and erase to the end of the screen, which
            # also clears graphics (a sixel or kitty image), that erasing lines leaves.
            out.append((f"\x1b[{d}A" if d else "") + "\r\x1b[J" + text)
            self._resized(key, top, new, delta, lines)
            return "".join(out)
        if delta > 0:
            # Room below the output first: at the bottom of the screen this scrolls.
            out.append("\x1bD" * delta + f"\x1b[{delta}A")
        # Up to the block's first row (not at all for an empty block at the end: CSI 0 A
        # would move one row, 0 meaning the default).
        out.append((f"\x1b[{d}A" if d else "") + "\r")
        if delta > 0:
            if old:
                out.append(f"\x1b[{old}B")
            out.append(f"\x1b[{delta}L\r")
            if old:
                out.append(f"\x1b[{old}A")
        if new:
            out.append("\x1b[2K\x1b[B" * (new - 1) + "\x1b[2K")
            if new > 1:
                out.append(f"\x1b[{new - 1}A")
            out.append("\r" + text)
        if delta < 0:
            out.append(f"\x1b[{-delta}M")
        if d - old:
            out.append(f"\x1b[{d - old}B")
        out.append(f"\r\x1b[{self._col}C" if self._col else "\r")
        self._resized(key, top, new, delta, lines)
        return "".join(out)

    def _resized(self, key: Hashable, top: int, new: int, delta: int, lines: int) -> None:
        """Count block ``key`` (first row ``top``) redrawn ``new`` rows high: ``delta``
        rows more than before, by which every block below it and the cursor move."""
        for b in self._blocks.values():
            if b[0] > top:
                b[0] += delta
        self._blocks[key][1] = new
        self._row += delta
        self._scrolled(lines)

    # -- counting ----------------------------------------------------------------------

    def _settle(self) -> None:
        if self._pending:
            text = "".join(self._pending)
            self._pending = []
            self._pending_chars = 0
            rows, self._col = advance(text, self._cols, self._col)
            self._row += rows
            if rows:
                self._scrolled(self._lines)

    def _scrolled(self, lines: int) -> None:
        """The cursor is at its lowest yet: the screen's top follows it down, and the
        blocks above it are gone (neither redrawn nor worth counting for)."""
        if lines <= 0:
            return
        top = self._row - (lines - 1)
        if top > self._screen_top:
            self._screen_top = top
            for k in [k for k, b in self._blocks.items() if b[0] < top]:
                del self._blocks[k]
