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

Displays updated in place
-------------------------
An update of a display (``update_display_data`` of a ``display_id``) and the live
view of a widget (:mod:`kconsole.display.widgets`; redrawn when the comm messages of
its models change them) are redrawn where they are for as long as they are on screen,
whatever was printed after them: the :class:`~kconsole.display.live.ScreenLog` counts
the rows since, the printer's and those the console reports through
:meth:`OutputPrinter.barrier` (an accepted prompt, a banner). When the old version
has scrolled off, or the console wrote what it could not count (a pager), the new
version is printed below and tracked from then on. The REPL draws widget views live
(:attr:`OutputPrinter.live_widgets`); script mode prints each view once, as it is
when its cell ends (:meth:`OutputPrinter.finish_cell`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TextIO

from .display.config import DisplayConfig, RenderContext
from .display.live import ScreenLog
from .display.registry import Rendered, RendererRegistry, default_registry
from .display.terminal import TerminalCapabilities, capabilities_from_env
from .display.text import rows_of, strip_ansi
from .display.widgets import COMM_TYPES, WidgetStore, widget_model_id
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
#: Most widget views kept live (the oldest stops being redrawn), and most views a
#: script-mode cell prints at its end.
MAX_VIEWS = 32


@dataclass
class _View:
    """A widget view on screen: its block's key, what it shows, what it depends on."""

    model_id: str
    #: Text before the view in its block (an execute_result's ``Out[n]:``).
    prefix: str = ""
    text: str = ""
    deps: set[str] = field(default_factory=set)
    #: A model it depends on changed since it was drawn.
    dirty: bool = False
    #: The text to draw, rendered by prepare_views() (None: nothing new).
    pending: str | None = None


#: Colour codes at the end of a text: they move no cursor, so a text ending in a newline
#: and then a reset (kconsole's red for stderr, many kernels' colours) ends a line.
_TRAILING_SGR = re.compile(r"(?:\x1b\[[0-9;:]*m)+\Z")


def _ends_line(text: str) -> bool:
    if text.endswith("\n"):
        return True
    if not text.endswith("m"):
        return False
    return _TRAILING_SGR.sub("", text[-256:]).endswith("\n")


def error_text(content: dict[str, Any]) -> str:
    """What an ``error`` (or an error reply) shows, newline-terminated: its traceback;
    without one ``ename: evalue``, the evalue alone when ename is empty (bash_kernel
    puts the exit status there), nothing when both are empty (as jupyter console)."""
    tb = content.get("traceback")
    if not tb or not isinstance(tb, list):
        ename, evalue = str(content.get("ename") or ""), str(content.get("evalue") or "")
        tb = [f"{ename}: {evalue}" if ename else evalue] if ename or evalue else []
    return "".join(str(line) + "\n" for line in tb)


def _shown(text: str) -> int:
    """Characters of ``text`` that take cells: a rich display's weight in the screen
    tracking (an image is escapes and a few rows; counted whole it seemed to fill the
    screen, and clear_output or an update then printed below instead of erasing it)."""
    return len(strip_ansi(text))  # strip_ansi returns text itself when it has no ESC


def _with_prompt(prompt: str, body: str) -> str:
    """An ``Out[n]:`` prompt and its value: on the same line when the value is one
    line, else on a line of its own; ending with a newline."""
    sep = "\n" if ("\n" in body or "\x1b_G" in body or "\x1bP" in body) else ""
    return f"{prompt}{sep}{body}" + ("" if body.endswith("\n") else "\n")


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
        # Screen tracking (see the module docstring). Entries are [key, text].
        self._entries: list[list[Any]] = []
        self._chars = 0
        self._limit = 0
        self._region_ok = True
        self._parent: str | None = None
        self._pending_clear = False
        #: The terminal's width when the first entry was written: after a resize the
        #: rows the entries take are not known (some terminals re-wrap, some cut).
        self._entries_cols = 0
        #: Where displays that may be updated are on the screen (see the module doc).
        self._log = ScreenLog()
        #: The kernel's widget models, fed by its comm messages.
        self.widgets = WidgetStore()
        #: Draw widget views live on a terminal, redrawn as their models change (the
        #: REPL); else each view is printed once, as it is when its cell ends
        #: (finish_cell).
        self.live_widgets = False
        #: Called when views need a redraw (the REPL schedules redraw_views, at most
        #: some 25 times a second); None: they are redrawn at once.
        self.on_views_changed: Callable[[], None] | None = None
        #: Says whether something was written to the terminal that the printer cannot
        #: count (keys echoed while a cell runs): positions are then forgotten.
        self.screen_disturbed: Callable[[], bool] | None = None
        self._views: dict[Hashable, _View] = {}
        self._view_serial = 0
        self._views_dirty = False
        #: Views displayed in script mode, printed by finish_cell: (key, model_id).
        self._deferred: list[tuple[Hashable, str]] = []

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

    def _write(self, text: str, key: Hashable | None = None) -> None:
        """Write ``text`` and track it; with ``key``, as a block that can be redrawn
        (a display with an id, a widget view; its text may be empty: a hidden view)."""
        if not text and key is None:
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
        if text:
            self._at_line_start = _ends_line(text)
        if self.tty:
            self._track(text, key)

    def _track(self, text: str, key: Hashable | None) -> None:
        if key is None:
            self._log.text(text)
        else:
            cols, lines = self._size()
            self._log.add(key, text, cols, lines)
        if not self._entries:
            self._entries_cols = self._size()[0]
        self._entries.append([key, text])
        self._chars += _shown(text)
        if self._chars > self._limit:
            # More text than a screen can hold: the region start has scrolled away.
            # Forget all but the last entry (a display may still be updated alone).
            last = self._entries[-1]
            self._entries = [last] if _shown(last[1]) <= self._limit else []
            self._chars = sum(_shown(e[1]) for e in self._entries)
            self._region_ok = False

    def _raw(self, text: str) -> None:
        """Write a line end of the printer's own (tracked, not part of any entry)."""
        self.stream.write(text)
        if self.tty:
            self._log.text(text)

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
        for key in self._log.erased(rows):
            self._views.pop(key, None)  # erased with the region: gone, not redrawn

    def _clear_region(self) -> None:
        """Erase this region's output if it is all still on screen; forget it anyway."""
        self._pending_clear = False
        if self.tty and self._region_ok and self._entries:
            cols, lines = self._size()
            rows = rows_of("".join(e[1] for e in self._entries), cols)
            if rows < lines and cols == self._entries_cols:
                self._erase_rows(rows)
            elif not self._at_line_start:
                self._raw("\n")
                self._at_line_start = True
        elif not self._at_line_start:
            self._raw("\n")
            self._at_line_start = True
        self._entries = []
        self._chars = 0
        self._region_ok = True

    def barrier(
        self, *, at_line_start: bool = False, rows: int | None = None, text: str | None = None
    ) -> None:
        """Something else wrote to the terminal: never erase above this point.

        The REPL calls this after it prints anything itself (the prompt line of an
        accepted input, a banner); output printed before it is then never cleared
        (``clear_output``) or re-printed. ``at_line_start``: that writer left the
        cursor at column 0 (a finished prompt does, whatever the printer's last text
        ended with).

        Displays before it are still redrawn in place when an update comes, if the
        writer said how far it moved the cursor: ``rows`` (it wrote that many rows from
        column 0 and ended at column 0 below them) or ``text`` (what it wrote, from
        where the printer's output ended). Without either, where they are is not known
        and their updates are printed below.
        """
        if text is not None:
            if self.tty:
                self._log.text(text)
            if text:
                self._at_line_start = at_line_start or _ends_line(text)
        elif rows is not None:
            self._log.moved(rows)
        else:
            self._log.lost()
        if at_line_start:
            self._at_line_start = True
        self._entries = []
        self._chars = 0
        self._region_ok = self._at_line_start
        self._pending_clear = False

    def forget_positions(self) -> None:
        """Something the printer cannot count may have moved the cursor: displays
        printed so far are no longer redrawn in place (their updates print below)."""
        self._log.lost()

    def kernel_restarted(self) -> None:
        """The kernel restarted: its widget models are gone (views stay as drawn)."""
        self.widgets.clear()
        self._views.clear()
        self._deferred.clear()

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
        if t in COMM_TYPES:
            changed = self.widgets.handle(t, c)
            if changed and self._views:
                self._mark(changed)
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
            mid = self._widget(c.get("data"))
            if mid is not None:
                # A widget as the cell's value (`slider` alone on the last line): its
                # view is live with the Out[n] prompt in front.
                self._show_view(mid, None, prompt)
                return
            body = self.render_bundle(c.get("data", {}), c.get("metadata", {}))
            self._write(_with_prompt(prompt, body))
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
        key = ("display", str(display_id)) if display_id is not None else None
        mid = self._widget(content.get("data"))
        if mid is not None:
            if update and key is not None and not (self.live_widgets and self.tty):
                # Script mode: the view printed at the cell's end is the display's last.
                self._deferred = [d for d in self._deferred if d[0] != key]
            self._show_view(mid, key, update=update)
            return
        body = self.render_bundle(content.get("data", {}), content.get("metadata", {}))
        if not body.endswith("\n"):
            body += "\n"
        if self._pending_clear:
            self._clear_region()
        if key is not None:
            self._views.pop(key, None)  # a display that showed a widget shows this now
        if update and key is not None and self.tty and self._replace(key, body):
            return
        self._ensure_newline()
        self._write(body, key)

    def _replace(self, key: Hashable, body: str) -> bool:
        """Redraw block ``key`` as ``body`` where it is, if it is still on screen
        (see :class:`~kconsole.display.live.ScreenLog`); False (nothing written) if not."""
        if self.screen_disturbed is not None and self.screen_disturbed():
            # A line typed ahead was echoed where the output ends: rows nobody counted.
            self._log.lost()
            return False
        cols, lines = self._size()
        seq = self._log.redraw(key, body, cols, lines)
        if seq is None:
            return False
        self.stream.write(seq)
        # The region's text as it is now on screen: a later clear_output counts its rows.
        for e in reversed(self._entries):
            if e[0] == key:
                self._chars += _shown(body) - _shown(e[1])
                e[1] = body
                break
        return True

    # -- widgets ----------------------------------------------------------------------

    def _widget(self, data: Any) -> str | None:
        """The model id of a bundle showing a widget kconsole has the model of (never
        with ``--plain``: its text/plain is shown, as for any rich output)."""
        if self.config.plain:
            return None
        mid = widget_model_id(data)
        return mid if mid is not None and mid in self.widgets else None

    def _view_text(self, view: _View) -> str:
        text, view.deps = self.widgets.render(view.model_id, self.context(), self.registry)
        if view.prefix:
            text = _with_prompt(view.prefix, text.removesuffix("\n"))
        return text

    def _show_view(
        self, model_id: str, key: Hashable | None, prefix: str = "", *, update: bool = False
    ) -> None:
        """Print a view of a widget now (live), or at the cell's end (script mode)."""
        if key is None:
            self._view_serial += 1
            key = ("view", self._view_serial)
        view = _View(model_id, prefix)
        if not (self.live_widgets and self.tty):
            # Not redrawn (script mode, or output going to a file): printed once, as
            # the cell leaves it.
            if len(self._deferred) < MAX_VIEWS:
                self._deferred.append((key, model_id))
            return
        text = self._view_text(view)
        view.text = text
        if self._pending_clear:
            self._clear_region()
        self._views.pop(key, None)
        if update and self.tty and self._replace(key, text):
            self._views[key] = view
            return
        self._ensure_newline()
        self._write(text, key)
        if self.tty:
            self._views[key] = view
            while len(self._views) > MAX_VIEWS:
                oldest = next(iter(self._views))
                self._views.pop(oldest)
                self._log.forget(oldest)

    def _mark(self, changed: set[str]) -> None:
        hit = False
        for view in self._views.values():
            if not view.dirty and not changed.isdisjoint(view.deps):
                view.dirty = hit = True
        if hit:
            self._views_dirty = True
            if self.on_views_changed is not None:
                self.on_views_changed()
            else:
                self.redraw_views()

    def prepare_views(self) -> bool:
        """Render the views whose models changed; whether any looks different now
        (then :meth:`redraw_views` has something to draw)."""
        if not self._views_dirty:
            return any(v.pending is not None for v in self._views.values())
        self._views_dirty = False
        changed = False
        for view in self._views.values():
            if view.dirty:
                view.dirty = False
                text = self._view_text(view)
                view.pending = text if text != view.text else None
            changed = changed or view.pending is not None
        return changed

    def redraw_views(self) -> None:
        """Redraw the widget views whose models changed since they were drawn: in
        place while on screen, else below (a new copy, tracked from then on)."""
        if not self.prepare_views():
            return
        for key, view in list(self._views.items()):
            text, view.pending = view.pending, None
            if text is None:
                continue
            view.text = text
            if self._replace(key, text):
                continue
            if text:  # a view that shows nothing now is not printed below
                self._ensure_newline()
                self._write(text, key)

    def finish_cell(self) -> None:
        """A cell ended: print the widgets it displayed that are not drawn live (script
        mode, output to a file), as they are now (a progress bar at its end)."""
        deferred, self._deferred = self._deferred, []
        for _key, model_id in deferred:
            text, _ = self.widgets.render(model_id, self.context(), self.registry)
            if text:
                self._ensure_newline()
                self._write(text)

    def flush(self) -> None:
        self.stream.flush()

    def end_line(self) -> None:
        """End a last line of output left without its newline (``print(x, end='')``, a
        ``\\r`` progress bar): the next prompt is drawn from column 0, over it otherwise.
        Widget views still to redraw are drawn first (a bar's last state)."""
        self.redraw_views()
        self._ensure_newline()

    def note(self, text: str) -> None:
        """A one-line message from kconsole itself (kernel died, interrupted...)."""
        self._ensure_newline()
        # Notes quote the kernel at times (why it died): no escapes of its own get through.
        text = terminal_text(text, allow_sgr=False, allow_progress=False)
        self._write(self._style(text, "33") + "\n")
