"""Enter, and the keys typed behind it.

Enter runs the cell if the kernel finds it complete (is_complete), else adds a line.
The answer may take a while: the keys typed behind the Enter are held
(:class:`~kconsole.repl.typeahead.KeyHold`) and then go to this prompt (a line was
added) or to the next one (the cell runs), so that two lines typed before the first
cell's reply are two cells, in order. A cell found complete is sent at once, while
its prompt draws its last frame (:meth:`EnterPart._start_cell_now`), and redraws
asked for while the answer is awaited are held back (:meth:`EnterPart._redraws_held`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from prompt_toolkit.application import get_app_or_none
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.key_binding import KeyPressEvent

from ..client import KernelError
from ..kernel_connection import exit_command
from .base import ReplParts

#: How long Enter waits for is_complete before falling back to a local rule.
IS_COMPLETE_TIMEOUT = 0.5
#: How long a redraw asked for while Enter waits for is_complete (the keys read with
#: the Enter) or Tab for completions waits for the kernel's answer: a cell the kernel
#: finds complete is then drawn once, accepted, instead of once typed and once
#: accepted, and a menu in the frame after the Tab instead of the second one.
REDRAW_HOLD = 0.05


def _prompt_ended() -> bool:
    """Whether the prompt whose key binding is running has already been ended (by
    Ctrl-C, a restart): its buffer must not be accepted again."""
    app = get_app_or_none()
    return app is not None and app.is_done


class EnterPart(ReplParts):
    """Enter's handler (see the module docstring)."""

    def _on_enter(self, event: KeyPressEvent) -> None:
        """Enter: run the cell if it is complete, else a new line. The kernel decides
        (is_complete), so the answer may take a while; the keys typed behind this Enter
        wait for it (:class:`~kconsole.repl.typeahead.KeyHold`) and then go to this prompt
        (a new line was added) or to the next one (the cell runs)."""
        buf = event.current_buffer
        text = buf.text
        if self._keys.holding:
            return  # not reached: keys behind a waiting Enter are held
        if not text.strip() or (self.conn.ready and self.client.dead.is_set()):
            buf.validate_and_handle()  # nothing to ask: at once, like any prompt
            return
        doc = buf.document
        if doc.line_count > 1 and not doc.on_last_line:
            # Editing inside a multi-line cell: Enter splits the line, as in an editor.
            line = doc.current_line
            buf.insert_text("\n" + line[: len(line) - len(line.lstrip())])
            return
        # Keys already read behind this Enter: a paste without bracketed paste, or keys
        # typed while a cell ran (the terminal echoed them as typed). Either way the
        # text brings its own indentation; the kernel's would come on top of it.
        auto_indent = not self._keys.queued()
        waiting: list[asyncio.Task[None]] = []
        hold = self._keys.start(on_interrupt=lambda: [t.cancel() for t in waiting])
        if self._keys.holds(hold):  # else a Ctrl-C right behind it dropped this Enter
            task = self._finish_enter(buf, hold, auto_indent)
            waiting.append(event.app.create_background_task(task))

    async def _finish_enter(self, buf: Buffer, hold: object, auto_indent: bool) -> None:
        try:
            await self._handle_enter(buf, auto_indent)
        finally:
            self._keys.release(hold)

    async def _handle_enter(self, buf: Buffer, auto_indent: bool = True) -> None:
        if not await self._kernel_ready():
            return  # it never came up: the REPL is leaving (see _watch_start)
        with self._redraws_held():
            await self._decide_enter(buf, auto_indent)

    async def _decide_enter(self, buf: Buffer, auto_indent: bool) -> None:
        while True:
            if _prompt_ended():
                return  # Ctrl-C ended this prompt meanwhile: accepting it again raises
            text = buf.text
            if self.client.dead.is_set():
                buf.validate_and_handle()
                return
            status, indent = await self._completeness(text)
            if _prompt_ended():
                return
            if buf.text == text:
                break
            # Changed meanwhile (a completion asked for before this Enter came in): the
            # Enter is for the text as it is now.
        if status == "unknown":
            lines = text.split("\n")
            status = "complete" if len(lines) == 1 or not lines[-1].strip() else "newline"
        if status in ("complete", "invalid"):
            self._start_cell_now(text)
            buf.validate_and_handle()
        else:
            buf.insert_text("\n" + (indent if status == "incomplete" and auto_indent else ""))

    def _start_cell_now(self, code: str) -> None:
        """Send a cell whose prompt is being accepted, before the prompt ends: the
        kernel runs it while the prompt draws its last frame and goes. Only where the
        loop would run it next without a question (see _loop); its output waits
        (queued, see _show) until the prompt has ended."""
        if (
            self._asking is not self.session
            or not code.strip()
            or self._early_cell is not None
            or self._restart_task is not None
            or self.status.restarting
            or self.keep_kernel_on_exit is not None
            or not self.conn.ready
            or self.client.dead.is_set()
            or self.conn.connection_lost
            or exit_command(code, self.conn.language_info) is not None
        ):
            return
        self._prompt_gone.clear()
        # Created before the prompt's exit is scheduled: the request goes out first.
        self._early_cell = self._start_cell(code, wait_prompt=True)

    @contextlib.contextmanager
    def _redraws_held(self) -> Iterator[None]:
        """While a key waits for the kernel (Enter's is_complete, Tab's completions): a
        redraw asked for meanwhile waits for the answer, at most REDRAW_HOLD s or until
        another key is pressed, so that what the answer changes (the accepted prompt,
        the menu) is drawn in one frame instead of after a frame showing nothing new.
        A redraw still due when it ends is asked for again, unless the prompt is done
        (its accepted frame is drawn anyway)."""
        app = self.session.app
        if "_redraw" in vars(app) or not callable(getattr(app, "_redraw", None)):
            yield  # another prompt_toolkit, or held already
            return
        asked: list[bool] = []

        def hold(render_as_done: bool = False) -> None:
            if render_as_done:
                type(app)._redraw(app, render_as_done=True)
            else:
                asked.append(True)

        def release(_: object = None) -> None:
            if vars(app).get("_redraw") is not hold:
                return
            del app._redraw
            if asked and app.is_running and not app.is_done:
                app.invalidate()

        app._redraw = hold  # type: ignore[method-assign]
        keys = app.key_processor.before_key_press
        keys += release
        timer = asyncio.get_running_loop().call_later(REDRAW_HOLD, release)
        try:
            yield
        finally:
            timer.cancel()
            keys -= release
            release()

    async def _completeness(self, text: str) -> tuple[str, str]:
        try:
            reply = await self.client.is_complete(text, timeout=IS_COMPLETE_TIMEOUT)
        except KernelError:
            return "unknown", ""
        return str(reply.get("status", "unknown")), str(reply.get("indent", ""))
