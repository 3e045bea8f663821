"""Printing what a kernel publishes on IOPub to the terminal (or a pipe).

One :class:`OutputPrinter` per console. The REPL hands it every IOPub message that
carries output, in arrival order; it writes text to its stream and never reads
anything back. Rich MIME bundles are rendered by :mod:`kconsole.display`.

Theory of the screen tracking
-----------------------------
To replace output in place (``update_display_data``, ``clear_output``) the printer
remembers what it wrote since the start of the current *region*: the output of one
request (a new parent msg_id starts a new region) since its last clear. Moving the
cursor up over that text and erasing below is only correct when (a) nothing else
wrote to the terminal since (the REPL calls :meth:`barrier` when it does), (b) the
region started at column 0, and (c) the whole region is still on screen, checked by
counting the rows it takes at the current width. When any of those is unknown or
false, the new version is simply printed below: never a wrong erase. In a pipe
nothing is ever erased. The stream path (output floods) only appends to a list and
adds a length; rows are counted only when an erase is about to happen.
"""

from __future__ import annotations

import os
import re
from typing import Any, TextIO

from .display.config import DisplayConfig, RenderContext
from .display.registry import Rendered, RendererRegistry, default_registry
from .display.terminal import TerminalCapabilities, capabilities_from_env
from .display.text import rows_of, strip_ansi
from .protocol import Message
from .sanitize import plain_line, terminal_text

OUTPUT_TYPES = frozenset(
    {
        "stream",
        "execute_result",
        "display_data",
        "update_display_data",
        "error",
        "clear_output",
        "execute_input",
    }
)


#: Longest text handed to the stream in one write (see _write).
_WRITE_CHUNK = 64 * 1024

#: Colour codes at the end of a text: they move no cursor, so a text ending in a newline
#: and then a reset (kconsole's red for stderr, many kernels' colours) ends a line.
_TRAILING_SGR = re.compile(r"(?:\x1b\[[0-9;:]*m)+\Z")


def _ends_line(text: str) -> bool:
    if text.endswith("\n"):
        return True
    if not text.endswith("m"):
        return False
    return _TRAILING_SGR.sub("", text[-256:]).endswith("\n")


def _shown(text: str) -> int:
    """Characters of ``text`` that take cells: a rich display's weight in the screen
    tracking (an image is escapes and a few rows; counted whole it seemed to fill the
    screen, and clear_output or an update then printed below instead of erasing it)."""
    return len(strip_ansi(text)) if "\x1b" in text else len(text)


def error_text(content: dict[str, Any]) -> str:
    """What an ``error`` (or an error reply) shows, newline-terminated: its traceback;
    without one ``ename: evalue``, the evalue alone when ename is empty (bash_kernel
    puts the exit status there), nothing when both are empty (as jupyter console)."""
    tb = content.get("traceback")
    if not tb or not isinstance(tb, list):
        ename, evalue = str(content.get("ename") or ""), str(content.get("evalue") or "")
        tb = [f"{ename}: {evalue}" if ename else evalue] if ename or evalue else []
    return "".join(str(line) + "\n" for line in tb)


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class OutputPrinter:
    """Writes IOPub output messages to ``stream``.

    ``own`` tells whether the message answers a request of this console; output of
    other clients is prefixed with their execution count so it is told apart.

    ``config`` holds the user's display settings, ``capabilities`` what the terminal
    can do (from :func:`kconsole.display.detect_terminal`; by default guessed from
    the environment), ``tty`` whether ``stream`` is a terminal (by default asked of
    the stream). Rich output needs none of them to work.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        color: bool = True,
        config: DisplayConfig | None = None,
        capabilities: TerminalCapabilities | None = None,
        tty: bool | None = None,
        registry: RendererRegistry | None = None,
    ) -> None:
        self.stream = stream
        self.color = color
        self.config = config or DisplayConfig()
        self.tty = _isatty(stream) if tty is None else tty
        self.caps = capabilities or capabilities_from_env(os.environ, is_tty=self.tty)
        self.registry = registry or default_registry()
        self._at_line_start = True
        # Screen tracking (see the module docstring). Entries are [display_id, text,
        # weight]: weight is the characters the text shows (see _shown).
        self._entries: list[list[Any]] = []
        self._chars = 0
        self._limit = 0
        self._region_ok = True
        self._parent: str | None = None
        self._pending_clear = False
        #: The terminal's width when the first entry was written: after a resize the
        #: rows the entries take are not known (some terminals re-wrap, some cut).
        self._entries_cols = 0

    # -- terminal -------------------------------------------------------------------

    def _size(self) -> tuple[int, int]:
        cfg_w = self.config.width
        if self.tty:
            try:
                size = os.get_terminal_size(self.stream.fileno())
                return cfg_w or size.columns, size.lines
            except (AttributeError, ValueError, OSError):
                pass
        try:
            cols = int(os.environ.get("COLUMNS", "80"))
        except ValueError:
            cols = 80
        return cfg_w or cols, 24

    def context(self) -> RenderContext:
        """The render context for a bundle printed now (the terminal may have resized)."""
        width, height = self._size()
        return RenderContext(
            width=max(10, width),
            height=max(3, height),
            color=self.color,
            tty=self.tty,
            caps=self.caps,
            config=self.config,
        )

    # -- helpers --------------------------------------------------------------------

    def _write(self, text: str, display_id: str | None = None, weight: int | None = None) -> None:
        """Write ``text``; ``weight`` is the characters it shows, when not all of its
        length (a rich display's escapes: an image is mostly escapes)."""
        if not text:
            return
        if self._pending_clear:
            self._clear_region()
        if len(text) <= _WRITE_CHUNK:
            self.stream.write(text)
        else:
            # In slices: the stream encodes what it is given in one piece, and a flood's
            # message is some 100-300 KB of text.
            for i in range(0, len(text), _WRITE_CHUNK):
                self.stream.write(text[i : i + _WRITE_CHUNK])
        self._at_line_start = _ends_line(text)
        if self.tty:
            self._track(text, display_id, len(text) if weight is None else weight)

    def _track(self, text: str, display_id: str | None, weight: int) -> None:
        if not self._entries:
            self._entries_cols = self._size()[0]
        self._entries.append([display_id, text, weight])
        self._chars += weight
        if self._chars > self._limit:
            # More text than a screen can hold: the region start has scrolled away.
            # Forget all but the last entry (a display may still be updated alone).
            last = self._entries[-1]
            self._entries = [last] if last[2] <= self._limit else []
            self._chars = sum(e[2] for e in self._entries)
            self._region_ok = False

    def _ensure_newline(self) -> None:
        if not self._at_line_start:
            self._write("\n")

    def _style(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def _new_region(self, parent: str | None) -> None:
        self._parent = parent
        self._entries = []
        self._chars = 0
        self._pending_clear = False
        self._region_ok = self._at_line_start
        if self.tty:
            cols, rows = self._size()
            # Escapes and colour codes take characters but no cells: allow 4x.
            self._limit = 4 * cols * rows

    def _erase_rows(self, rows: int) -> None:
        # Up to the first row of what is replaced, then erase to the end of screen.
        self.stream.write("\r" + (f"\x1b[{rows}A" if rows else "") + "\x1b[J")
        self._at_line_start = True

    def _clear_region(self) -> None:
        """Erase this region's output if it is all still on screen; forget it anyway."""
        self._pending_clear = False
        if self.tty and self._region_ok and self._entries:
            cols, lines = self._size()
            rows = rows_of("".join(e[1] for e in self._entries), cols)
            if rows < lines and cols == self._entries_cols:
                self._erase_rows(rows)
            elif not self._at_line_start:
                self.stream.write("\n")
                self._at_line_start = True
        elif not self._at_line_start:
            self.stream.write("\n")
            self._at_line_start = True
        self._entries = []
        self._chars = 0
        self._region_ok = True

    def barrier(self, *, at_line_start: bool = False) -> None:
        """Something else wrote to the terminal: never erase above this point.

        The REPL calls this after it prints anything itself (the prompt line of an
        accepted input, a banner); output printed before it is then never updated in
        place, only re-printed. ``at_line_start``: that writer left the cursor at column
        0 (a finished prompt does, whatever the printer's last text ended with).
        """
        if at_line_start:
            self._at_line_start = True
        self._entries = []
        self._chars = 0
        self._region_ok = self._at_line_start
        self._pending_clear = False

    def render(self, data: dict[str, Any], metadata: dict[str, Any]) -> Rendered:
        """Render a MIME bundle for this terminal (never raises)."""
        return self.registry.render(data, metadata or {}, self.context())

    def render_bundle(self, data: dict[str, Any], metadata: dict[str, Any]) -> str:
        """The terminal text for a MIME bundle (notes about failed renderers first)."""
        r = self.render(data, metadata)
        notes = "".join(self._style(n, "33") + "\n" for n in r.notes)
        return notes + r.text

    # -- messages -------------------------------------------------------------------

    def handle(self, msg: Message, *, own: bool = True) -> None:
        """Print one IOPub message (non-output types are ignored)."""
        t = msg.msg_type
        c = msg.content
        if t == "stream":
            # The hot path of output floods: no rendering, no regex, no flush.
            parent = msg.parent_header.get("msg_id") if msg.parent_header else None
            if parent != self._parent:
                self._new_region(parent)
            text = c.get("text", "")
            if not text:
                return
            # Kernel text is data: only its colours and progress redraws reach the terminal,
            # and its colours only when colour is on (a pipe gets plain text, as errors do).
            text = terminal_text(text, allow_sgr=self.color)
            if c.get("name") == "stderr" and self.color and text.strip():
                text = self._style(text, "31")
            self._write(text)
            return
        if t not in OUTPUT_TYPES:
            return
        parent = msg.parent_id
        if parent != self._parent:
            self._new_region(parent)
        if t == "execute_result":
            self._ensure_newline()
            count = plain_line(str(c.get("execution_count")))
            prompt = self._style(f"Out[{count}]: ", "31;1")
            body = self.render_bundle(c.get("data", {}), c.get("metadata", {}))
            sep = "\n" if ("\n" in body or "\x1b_G" in body or "\x1bP" in body) else ""
            text = f"{prompt}{sep}{body}" + ("" if body.endswith("\n") else "\n")
            self._write(text, weight=_shown(text))
        elif t == "display_data":
            self._display(c, update=False)
        elif t == "update_display_data":
            self._display(c, update=True)
        elif t == "clear_output":
            if c.get("wait"):
                self._pending_clear = True
            else:
                self._clear_region()
        elif t == "error":
            text = error_text(c)
            if text:
                self._ensure_newline()
                self._write(terminal_text(text, allow_sgr=self.color))
        elif t == "execute_input" and not own:
            self._ensure_newline()
            count = plain_line(str(c.get("execution_count")))
            head = self._style(f"[remote] In [{count}]: ", "32")
            code = terminal_text(str(c.get("code", "")), allow_sgr=False, allow_progress=False)
            self._write(head + code.rstrip("\n") + "\n")

    def _display(self, content: dict[str, Any], *, update: bool) -> None:
        transient = content.get("transient") or {}
        display_id = transient.get("display_id") if isinstance(transient, dict) else None
        display_id = str(display_id) if display_id is not None else None
        body = self.render_bundle(content.get("data", {}), content.get("metadata", {}))
        if not body.endswith("\n"):
            body += "\n"
        if self._pending_clear:
            self._clear_region()
        if update and display_id is not None and self.tty and self._redraw(display_id, body):
            return
        self._ensure_newline()
        self._write(body, display_id, _shown(body))

    def _redraw(self, display_id: str, body: str) -> bool:
        """Replace the display's last version where it is, re-printing what the printer
        wrote after it below the new version; False (nothing written) unless all of it is
        still on screen and nothing else wrote since (the entries end at a barrier)."""
        entries = self._entries
        at = next((i for i in range(len(entries) - 1, -1, -1) if entries[i][0] == display_id), -1)
        if at < 0:
            return False
        cols, lines = self._size()
        if cols != self._entries_cols:
            # Resized since: where the old version is on the screen is not known.
            self._entries = []
            self._chars = 0
            self._region_ok = False
            return False
        rows = rows_of("".join(e[1] for e in entries[at:]), cols)
        if rows >= lines:
            return False
        after = entries[at + 1 :]
        self._erase_rows(rows)
        self._entries = entries[:at]
        self._chars = sum(e[2] for e in self._entries)
        self._write(body, display_id, _shown(body))
        for did, text, weight in after:
            self._write(text, did, weight)
        return True

    def flush(self) -> None:
        self.stream.flush()

    def end_line(self) -> None:
        """End a last line of output left without its newline (``print(x, end='')``, a
        ``\\r`` progress bar): the next prompt is drawn from column 0, over it otherwise."""
        self._ensure_newline()

    def note(self, text: str) -> None:
        """A one-line message from kconsole itself (kernel died, interrupted...)."""
        self._ensure_newline()
        # Notes quote the kernel at times (why it died): no escapes of its own get through.
        text = terminal_text(text, allow_sgr=False, allow_progress=False)
        self._write(self._style(text, "33") + "\n")
