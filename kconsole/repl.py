"""The interactive console: a prompt_toolkit prompt in front of a kernel client.

Theory of the screen
--------------------
Exactly one party owns the terminal at a time:

* while the prompt is up, prompt_toolkit owns it (raw mode); output that arrives then
  (other clients, background threads) is queued and written in one
  ``run_in_terminal`` call, which lifts the prompt, writes, and redraws it, so typed
  text is never disturbed;
* while a cell runs there is no prompt: output is written straight to the terminal
  in arrival order, SIGINT (Ctrl-C) interrupts the kernel, and an ``input_request``
  brings up a one-line prompt of its own;
* the next ``In [n]:`` appears only after the cell's reply *and* its ``idle``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.filters import completion_is_selected, has_completions
from prompt_toolkit.formatted_text import ANSI, FormattedText
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.lexers import Lexer, PygmentsLexer

from . import paths
from .client import EOFInput, KernelClient, KernelDied, KernelError, KernelTimeout, NoReply
from .console import ConsoleError, KernelConnection
from .output import OutputPrinter
from .protocol import Message

#: How long Enter waits for is_complete before falling back to a local rule.
IS_COMPLETE_TIMEOUT = 0.5
COMPLETE_TIMEOUT = 2.0


class KernelCompleter(Completer):
    """Completions from the kernel's complete_request, at the cursor."""

    def __init__(self, client: KernelClient) -> None:
        self.client = client

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterable[Completion]:
        return []  # only the async path is used: the kernel is remote

    async def get_completions_async(  # type: ignore[override]
        self, document: Document, complete_event: CompleteEvent
    ) -> Any:
        if self.client.dead.is_set():
            return
        # Python str indices are unicode code points, which is what the protocol counts.
        pos = document.cursor_position
        try:
            reply = await self.client.complete(document.text, pos, timeout=COMPLETE_TIMEOUT)
        except KernelError:
            return  # a busy or slow kernel: no menu, never a hang
        if reply.get("status") != "ok":
            return
        start = int(reply.get("cursor_start", pos))
        types = {}
        for t in (reply.get("metadata") or {}).get("_jupyter_types_experimental") or []:
            if isinstance(t, dict) and "text" in t:
                types[t["text"]] = t
        seen = set()
        for match in reply.get("matches") or []:
            if match in seen:
                continue
            seen.add(match)
            meta = types.get(match, {})
            display_meta = f"{meta.get('type') or ''} {meta.get('signature') or ''}".strip()
            yield Completion(match, start_position=start - pos, display_meta=display_meta or None)


def _lexer_for(language_info: dict[str, Any]) -> Lexer | None:
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    name = language_info.get("pygments_lexer") or language_info.get("name")
    if not name:
        return None
    try:
        lexer_cls = type(get_lexer_by_name(str(name)))
    except ClassNotFound:
        return None
    return PygmentsLexer(lexer_cls)


def history_for(language: str) -> History:
    """The persistent history file for ``language`` (in-memory if it can't be written)."""
    d = paths.user_state_dir()
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in language) or "unknown"
    try:
        d.mkdir(parents=True, exist_ok=True)
        return FileHistory(str(d / f"history-{safe}"))
    except OSError:
        return InMemoryHistory()


class Repl:
    """The interactive loop. ``run()`` returns the exit status."""

    def __init__(
        self,
        conn: KernelConnection,
        printer: OutputPrinter,
        *,
        show_other_output: bool = True,
        banner: bool = True,
        stdout: TextIO | None = None,
    ) -> None:
        self.conn = conn
        self.client = conn.client
        self.printer = printer
        self.stdout = stdout or sys.stdout
        self.show_other_output = show_other_output
        self.banner = banner
        self.execution_count = 0
        self.keep_kernel_on_exit: bool | None = None
        self._next_input = ""
        self._prompt_active = False
        self._pending_broadcast: list[Message] = []
        self._dead_reported = False
        language = str(conn.language_info.get("name") or "unknown")
        self.session: PromptSession[str] = PromptSession(
            history=history_for(language),
            lexer=_lexer_for(conn.language_info),
            completer=KernelCompleter(self.client),
            complete_while_typing=False,
            enable_history_search=True,
            key_bindings=self._key_bindings(),
            multiline=True,
            prompt_continuation=self._continuation,
            include_default_pygments_style=True,
        )
        self._input_session: PromptSession[str] = PromptSession(history=InMemoryHistory())
        self.client.on_broadcast = self._on_broadcast
        self.client.on_dead = self._on_dead

    # -- prompt pieces ----------------------------------------------------------------

    def _prompt(self) -> FormattedText:
        return FormattedText(
            [
                ("ansigreen", "In ["),
                ("ansibrightgreen bold", str(self.execution_count + 1)),
                ("ansigreen", "]: "),
            ]
        )

    def _continuation(self, width: int, line_number: int, wrap_count: int) -> FormattedText:
        return FormattedText([("ansigreen", " " * max(0, width - 5) + "...: ")])

    def _key_bindings(self) -> KeyBindings:
        kb = KeyBindings()

        @kb.add("enter", filter=~(has_completions & completion_is_selected))
        async def _enter(event: KeyPressEvent) -> None:
            await self._on_enter(event)

        @kb.add("escape", "enter")
        def _newline(event: KeyPressEvent) -> None:
            event.current_buffer.insert_text("\n")

        @kb.add("f1")
        async def _help(event: KeyPressEvent) -> None:
            await self._show_inspection(event.current_buffer.document)

        @kb.add("s-tab", filter=~has_completions)
        async def _sig(event: KeyPressEvent) -> None:
            await self._show_inspection(event.current_buffer.document)

        @kb.add("c-c")
        def _clear(event: KeyPressEvent) -> None:
            event.app.exit(exception=KeyboardInterrupt, style="class:aborting")

        return kb

    async def _on_enter(self, event: KeyPressEvent) -> None:
        buf = event.current_buffer
        text = buf.text
        if not text.strip() or self.client.dead.is_set():
            buf.validate_and_handle()
            return
        status, indent = await self._completeness(text)
        if buf.text != text:
            return  # the user kept typing while we asked: their keys win
        if status in ("complete", "invalid"):
            buf.validate_and_handle()
        elif status == "incomplete":
            buf.insert_text("\n" + indent)
        else:
            lines = text.split("\n")
            if len(lines) == 1 or not lines[-1].strip():
                buf.validate_and_handle()
            else:
                buf.insert_text("\n")

    async def _completeness(self, text: str) -> tuple[str, str]:
        try:
            reply = await self.client.is_complete(text, timeout=IS_COMPLETE_TIMEOUT)
        except KernelError:
            return "unknown", ""
        return str(reply.get("status", "unknown")), str(reply.get("indent", ""))

    async def _show_inspection(self, document: Document) -> None:
        try:
            reply = await self.client.inspect(
                document.text, document.cursor_position, 0, timeout=2.0
            )
        except KernelError:
            return
        text = ""
        if reply.get("status") == "ok" and reply.get("found"):
            text = str((reply.get("data") or {}).get("text/plain", ""))
        if not text:
            return

        def show() -> None:
            self.stdout.write(text.rstrip("\n") + "\n")
            self.stdout.flush()

        await run_in_terminal(show)

    # -- output while the prompt is up ----------------------------------------------

    def _on_broadcast(self, msg: Message) -> None:
        if msg.msg_type == "status":
            state = msg.content.get("execution_state")
            self._emit(lambda: self.printer.note(f"[kernel {state}]"))
            return
        if not self.show_other_output:
            return
        if not self._prompt_active:
            self.printer.handle(msg, own=False)
            return
        self._pending_broadcast.append(msg)
        if len(self._pending_broadcast) == 1:
            # One run_in_terminal drains everything queued meanwhile: a flood of other
            # clients' output redraws the prompt once per batch, not once per message.
            run_in_terminal(self._drain_broadcast)

    def _drain_broadcast(self) -> None:
        batch, self._pending_broadcast = self._pending_broadcast, []
        for m in batch:
            self.printer.handle(m, own=False)
        self.printer.flush()

    def _emit(self, fn: Any) -> None:
        if self._prompt_active:
            run_in_terminal(lambda: (fn(), self.printer.flush()))
        else:
            fn()
            self.printer.flush()

    def _on_dead(self, reason: str) -> None:
        hint = " Press Enter to restart it." if self.conn.can_restart else ""
        self._emit(lambda: self.printer.note(f"[kconsole] the kernel died: {reason}.{hint}"))

    # -- running cells ----------------------------------------------------------------

    async def _ask_input(self, prompt: str, password: bool) -> str:
        self.printer.flush()
        loop = asyncio.get_running_loop()
        loop.remove_signal_handler(signal.SIGINT)
        try:
            return await self._input_session.prompt_async(ANSI(prompt), is_password=password)
        except KeyboardInterrupt:
            asyncio.ensure_future(self._interrupt())
            raise NoReply from None
        except EOFError:
            raise EOFInput from None
        finally:
            loop.add_signal_handler(signal.SIGINT, self._sigint)

    def _sigint(self) -> None:
        asyncio.ensure_future(self._interrupt())

    async def _interrupt(self) -> None:
        try:
            what = await self.conn.interrupt()
        except Exception as e:  # a failing interrupt must not take the console down
            what = f"interrupt failed: {e}"
        self.printer.note(f"^C: {what}")
        self.printer.flush()

    async def run_cell(self, code: str) -> Message | None:
        """Execute one cell with Ctrl-C bound to interrupting the kernel."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self._sigint)
        try:
            reply = await self.client.execute(
                code,
                on_output=self.printer.handle,
                on_input=self._ask_input,
                on_idle_lost=lambda: self.printer.note(
                    "[kconsole] the kernel's idle status never came; some output may be lost"
                ),
            )
        except KernelDied:
            return None
        finally:
            loop.remove_signal_handler(signal.SIGINT)
            self.printer.flush()
        count = reply.content.get("execution_count")
        if isinstance(count, int):
            self.execution_count = count
        await self._handle_payloads(reply.content.get("payload") or [])
        return reply

    async def _handle_payloads(self, payloads: list[dict[str, Any]]) -> None:
        for p in payloads:
            source = p.get("source")
            if source == "page":
                data = p.get("data") or {}
                text = data.get("text/plain") if isinstance(data, dict) else str(data)
                if text:
                    await page(str(text), self.stdout)
            elif source == "set_next_input":
                self._next_input = str(p.get("text", ""))
            elif source == "ask_exit":
                self.keep_kernel_on_exit = bool(p.get("keepkernel", False))
            elif source == "edit_magic":
                await edit_file(str(p.get("filename", "")), int(p.get("line_number") or 0))

    async def _restart_dead_kernel(self) -> bool:
        if not self.conn.can_restart:
            return False
        self.printer.note("[kconsole] restarting the kernel...")
        self.printer.flush()
        try:
            await self.conn.restart()
        except (KernelError, ConsoleError) as e:
            self.printer.note(f"[kconsole] restart failed: {e}")
            return False
        self.execution_count = 0
        self.printer.note("[kconsole] kernel restarted")
        self.printer.flush()
        return True

    def _print_banner(self) -> None:
        info = self.client.kernel_info
        banner = str(info.get("banner") or "").rstrip()
        lines = [f"kconsole: {self.conn.label}"] if self.conn.label else []
        if banner:
            lines.append(banner)
        lines.append("Ctrl-D exits, Ctrl-C interrupts the kernel, Tab completes, F1 shows help.")
        self.stdout.write("\n".join(lines) + "\n\n")
        self.stdout.flush()

    async def _fetch_execution_count(self) -> None:
        with contextlib.suppress(KernelError, asyncio.TimeoutError):
            reply = await asyncio.wait_for(
                self.client.execute("", silent=True, store_history=False), 5.0
            )
            count = reply.content.get("execution_count")
            if isinstance(count, int):
                self.execution_count = count

    async def run(self) -> int:
        """Prompt, run, repeat until Ctrl-D, ``exit`` or a dead unrestartable kernel."""
        if self.banner:
            self._print_banner()
        await self._fetch_execution_count()
        while True:
            default, self._next_input = self._next_input, ""
            self._prompt_active = True
            try:
                code = await self.session.prompt_async(self._prompt, default=default)
            except KeyboardInterrupt:
                continue
            except EOFError:
                return 0
            finally:
                self._prompt_active = False
            if self.client.dead.is_set() and not await self._restart_dead_kernel():
                self.printer.note("[kconsole] the kernel is dead; leaving.")
                self.printer.flush()
                return 1
            if not code.strip():
                continue
            reply = await self.run_cell(code)
            if reply is None and self.client.dead.is_set() and not self.conn.can_restart:
                self.printer.note(f"[kconsole] the kernel died: {self.client.dead_reason}")
                self.printer.flush()
                return 1
            if self.keep_kernel_on_exit is not None:
                return 0


async def page(text: str, stdout: TextIO) -> None:
    """Show ``text`` through the user's pager ($PAGER, else ``less -R``), or print it."""
    pager = os.environ.get("PAGER") or "less -R"
    if not stdout.isatty():
        stdout.write(text.rstrip("\n") + "\n")
        return
    try:
        argv = shlex.split(pager)
    except ValueError:
        argv = ["less", "-R"]
    loop = asyncio.get_running_loop()

    def run() -> None:
        try:
            subprocess.run(argv, input=text.encode("utf-8", "replace"), check=False)
        except OSError:
            stdout.write(text.rstrip("\n") + "\n")
            stdout.flush()

    await loop.run_in_executor(None, run)


async def edit_file(filename: str, line: int) -> None:
    """Open ``filename`` in $EDITOR (edit_magic payload)."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    argv = [*shlex.split(editor)]
    if line:
        argv.append(f"+{line}")
    argv.append(filename)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(OSError):
        await loop.run_in_executor(None, lambda: subprocess.run(argv, check=False))


__all__ = ["Repl", "KernelCompleter", "page", "history_for", "KernelTimeout"]
