"""The screen: the one owner of the terminal while a prompt is up.

While a prompt is up (the cell prompt, an ``input_request``'s one-line prompt, a
question), prompt_toolkit owns the terminal in raw mode; output that arrives then is
queued and written in one go above the prompt (:meth:`ScreenPart._write_above`: the
prompt is erased, the text written, the prompt redrawn), so typed text is never
disturbed. While no prompt is up, output goes straight to the terminal. Each prompt
ends with a barrier (:meth:`~kconsole.output.OutputPrinter.barrier`): what it left on
screen is not the printer's to erase. Widget views are redrawn by a timer at most
every :data:`VIEW_REDRAW_INTERVAL` seconds, through the same rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import shutil
import struct
import sys
import termios
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.application import in_terminal, run_in_terminal

from ..display.widgets import COMM_TYPES
from ..protocol import Message
from ..sanitize import terminal_text
from .base import ReplParts
from .layout import wrap_words

#: How long a widget view waits to be redrawn after its model changed: views are
#: redrawn at most this often (a bar updated a thousand times a second costs 25).
VIEW_REDRAW_INTERVAL = 0.04


class ScreenPart(ReplParts):
    """Output above the prompt, the prompts' turns, and what each left on screen."""

    def _init_screen(self) -> None:
        self._prompt_active = False
        self._pending_output: list[tuple[Message, bool]] = []
        #: Rows the last prompt took on screen once accepted (None: not known).
        self._prompt_rows: int | None = None
        self._view_timer: asyncio.TimerHandle | None = None
        #: Keys waiting unread in the terminal at the last look (see _keys_echoed).
        self._keys_waiting = 0
        #: The prompt session reading keys now (SIGINT goes to it).
        self._asking = None
        #: One prompt at a time while a cell runs (input() and the restart question).
        self._tty_lock = asyncio.Lock()
        # Widgets are drawn live, and their redraws wait for the terminal's owner.
        self.printer.live_widgets = True
        self.printer.on_views_changed = self._views_changed
        self.printer.screen_disturbed = self._keys_echoed

    def _invalidate(self) -> None:
        if self._prompt_active:
            self.session.app.invalidate()

    def note(self, text: str) -> None:
        """Show a one-line message from kconsole, above the prompt if it is up."""
        self._emit(lambda: self.printer.note(f"[kconsole] {text}"))

    def _emit(self, fn: Callable[[], Any]) -> None:
        def write() -> None:
            fn()
            self.printer.flush()

        if self._prompt_active:
            self._write_above(write)
        else:
            write()

    def _write_above(self, write: Callable[[], None]) -> None:
        """Run ``write`` (terminal output) above the prompt that is up, in raw mode.

        Uses prompt_toolkit's renderer the way ``run_in_terminal`` does, minus its
        switch to cooked mode; falls back to ``run_in_terminal`` when another use of
        the terminal is in progress or this prompt_toolkit lacks the pieces.
        """
        app = self._asking.app if self._asking is not None else None
        try:
            ready = (
                app is not None
                and app.is_running
                and not app.is_done
                and not app._running_in_terminal
                and (app._running_in_terminal_f is None or app._running_in_terminal_f.done())
                and not (app.output.responds_to_cpr and app.renderer.waiting_for_cpr)
            )
        except AttributeError:  # another prompt_toolkit version
            ready = False
        if not ready or app is None:
            run_in_terminal(write)
            return
        app.renderer.erase()
        try:
            write()
        finally:
            app.renderer.reset()
            app._request_absolute_cursor_position()
            type(app)._redraw(app)  # the class's: never held (see _redraws_held)

    def _show(self, msg: Message, own: bool) -> None:
        """Print an output message now, or above the prompt when one is up."""
        if msg.msg_type in COMM_TYPES:
            # Widget state: nothing printed now (a changed view is redrawn soon, see
            # _views_changed), so no prompt redraw for each of a bar's updates.
            self.printer.handle(msg, own=own)
            return
        if not self._prompt_active:
            self.printer.handle(msg, own=own)
            return
        self._pending_output.append((msg, own))
        if self._early_cell is not None:
            return  # the prompt is ending, its cell running: drained below it (_prompting)
        if len(self._pending_output) == 1:
            # One write drains everything queued meanwhile: a flood of other clients'
            # output redraws the prompt once per batch, not once per message.
            asyncio.get_running_loop().call_soon(self._flush_pending)

    def _flush_pending(self) -> None:
        if self._prompt_active and self._early_cell is not None:
            return  # the prompt is ending: drained below it once it has (_prompting)
        if self._prompt_active:
            self._write_above(self._drain_above)
        else:
            self._drain_output()  # the prompt ended meanwhile (or drained it already)

    def _drain_above(self) -> None:
        self._drain_output()
        # The prompt is redrawn below: from column 0, not after a line left open.
        self.printer.end_line()
        self.printer.flush()

    def _drain_output(self) -> None:
        batch, self._pending_output = self._pending_output, []
        for m, own in batch:
            self.printer.handle(m, own=own)
        self.printer.flush()

    def _views_changed(self) -> None:
        """A widget model that a view on screen shows changed: redraw soon (updates
        that come meanwhile are drawn with it)."""
        if self._view_timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not from the event loop (a test): at once
            self._redraw_views()
            return
        self._view_timer = loop.call_later(VIEW_REDRAW_INTERVAL, self._redraw_views)

    def _redraw_views(self) -> None:
        self._view_timer = None
        if self.printer.prepare_views():
            self._emit(self.printer.redraw_views)

    def _keys_echoed(self) -> bool:
        """Whether a line was typed since the last look while no prompt reads it: the
        cooked terminal echoed it, Enter included, where the output ends, a row the
        printer cannot count. (It waits unread until the next prompt takes it; a cooked
        terminal counts only whole lines, and text without its Enter moves no row.)"""
        if self._prompt_active:
            return False  # raw mode: nothing is echoed
        try:
            buf = fcntl.ioctl(sys.stdin.fileno(), termios.FIONREAD, b"\0\0\0\0")
        except (OSError, ValueError, AttributeError):
            return False
        waiting = int(struct.unpack("i", buf)[0])
        more, self._keys_waiting = waiting > self._keys_waiting, waiting
        return more

    def _measure_prompt(self, app: Any) -> None:
        """After each render of a prompt: once it is drawn as accepted (it stays on
        screen), how many rows it takes, for the printer's count (see barrier)."""
        if not app.is_done:
            return
        try:
            size = app.output.get_size()
            height = app.layout.container.preferred_height(size.columns, size.rows).preferred
            self._prompt_rows = min(int(height), size.rows)
        except Exception:  # another prompt_toolkit: not known
            self._prompt_rows = None

    @contextlib.contextmanager
    def _prompting(self) -> Iterator[None]:
        if self._keys_echoed():
            self.printer.forget_positions()  # keys typed during the cell were echoed
        self._prompt_rows = None
        self._prompt_active = True
        try:
            yield
        finally:
            self._prompt_active = False
            self._keys_waiting = 0  # the prompt read what was typed ahead
            # The prompt's last state (the accepted line, an input() answer, a question)
            # stays on screen below the printer's output: nothing printed before it is
            # cleared, and a display updated later is redrawn above it when the rows it
            # took are known (see _measure_prompt), else printed below it. prompt_toolkit
            # leaves the cursor at column 0 below it, even after output without a final
            # newline.
            self.printer.barrier(at_line_start=True, rows=self._prompt_rows)
            if self._pending_output:  # queued for a run_in_terminal that never ran
                self._drain_output()

    @contextlib.asynccontextmanager
    async def _in_terminal(self) -> AsyncIterator[None]:
        """prompt_toolkit's ``in_terminal``, then a barrier: what was written there (a
        question, a pager's leftovers) is not the printer's to erase."""
        try:
            async with in_terminal():
                yield
        finally:
            self.printer.barrier()

    @contextlib.asynccontextmanager
    async def _prompt_during_cell(self) -> AsyncIterator[None]:
        """A prompt while a cell runs (input(), the restart question): one at a time,
        output queued above it, and Ctrl-C read as a key by prompt_toolkit (the raw
        terminal sends no SIGINT; one sent by `kill` reaches this prompt)."""
        async with self._tty_lock:
            self.printer.flush()
            with self._prompting():
                yield

    async def _ask(self, session: PromptSession[Any], message: Any, **kwargs: Any) -> Any:
        """``session.prompt_async`` with the session's SIGINT handling (_on_sigint)."""
        previous, self._asking = self._asking, session
        session.app.after_render += self._measure_prompt

        async def prompt() -> tuple[bool, Any]:
            # Ctrl-C ends a prompt with KeyboardInterrupt, which a task would raise out
            # of the event loop: it comes back as a value and is raised here.
            try:
                return False, await session.prompt_async(message, handle_sigint=False, **kwargs)
            except KeyboardInterrupt:
                return True, None

        # In a task of its own, shielded: the console's cancellation reaches this code
        # first, not prompt_toolkit's wait for the terminal (see below).
        run = asyncio.ensure_future(prompt())
        try:
            interrupted, answer = await asyncio.shield(run)
            if interrupted:
                raise KeyboardInterrupt
            return answer
        except asyncio.CancelledError:
            # SIGTERM/SIGHUP cancel the console. A prompt cancelled directly would wait
            # for what a key of it runs in the terminal before it ends: for Ctrl-X r's
            # question, an answer nobody may give. It goes first. (A pager is left to
            # end: its thread could not be stopped anyway.)
            question = self._question
            if question is not None and not question.done():
                question.cancel()
                with contextlib.suppress(BaseException):
                    await question
            run.cancel()
            with contextlib.suppress(BaseException):
                await run
            raise
        finally:
            self._asking = previous
            session.app.after_render -= self._measure_prompt

    def _on_broadcast(self, msg: Message) -> None:
        if msg.msg_type == "status":
            state = msg.content.get("execution_state")
            self._emit(lambda: self.printer.note(f"[kernel {state}]"))
            return
        if self.show_other_output or msg.msg_type in COMM_TYPES:
            # Widget models change from background threads and other clients too:
            # the views this console shows must follow them.
            self._show(msg, own=False)

    def _print_banner(self) -> None:
        info = self.client.kernel_info
        banner = str(info.get("banner") or "").rstrip()
        lines = [f"kconsole: {self.conn.label}"] if self.conn.label else []
        if banner:
            lines.append(banner)
        # Restarting is only offered for a kernel kconsole can restart (not one it only
        # attached to): the banner does not promise keys that would only say "cannot".
        restarts = self.conn.can_restart
        lines.append(
            "Ctrl-D exits, Ctrl-C interrupts the kernel"
            + (" (twice: restart)" if restarts else "")
            + ", Tab completes, Shift-Tab/F1 show help on the name at the cursor, "
            + ("Ctrl-X r restarts the kernel, " if restarts else "")
            + "Ctrl-X s saves the session as a notebook."
        )
        width = shutil.get_terminal_size().columns
        text = terminal_text("\n".join(lines), allow_progress=False)
        banner = wrap_words(text, width) + "\n\n"
        self.stdout.write(banner)
        self.stdout.flush()
        self.printer.barrier(text=banner)
