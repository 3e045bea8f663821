"""The interactive console: a prompt_toolkit prompt in front of a kernel client.

Theory of the screen
--------------------
Exactly one party owns the terminal at a time:

* while a prompt is up (the cell prompt, or the one-line prompt of an
  ``input_request``), prompt_toolkit owns it (raw mode); output that arrives then
  (other clients, background threads, a cell's output racing its input_request) is
  queued and written in one ``run_in_terminal`` call, which lifts the prompt, writes,
  and redraws it, so typed text is never disturbed;
* while a cell runs there is no prompt: output is written straight to the terminal
  in arrival order, SIGINT (Ctrl-C) interrupts the kernel;
* a pager or editor (``obj?``, F1, ``%edit``) gets the terminal with SIGINT ignored
  by kconsole, so Ctrl-C belongs to it;
* the next ``In [n]:`` appears only after the cell's reply *and* its ``idle``.

Module map: :mod:`.completion` (Tab), :mod:`.history` (file + kernel history),
:mod:`.pager` (pager, editor), :mod:`.notebook` (``--save``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.application import in_terminal, run_in_terminal
from prompt_toolkit.document import Document
from prompt_toolkit.filters import completion_is_selected, has_completions, is_searching
from prompt_toolkit.formatted_text import ANSI, FormattedText
from prompt_toolkit.history import DummyHistory, History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout.processors import (
    Processor,
    Transformation,
    TransformationInput,
)
from prompt_toolkit.lexers import Lexer, PygmentsLexer

from .client import EOFInput, KernelClient, KernelDied, KernelError, KernelTimeout, NoReply
from .completion import KernelCompleter
from .console import ConsoleError, KernelConnection
from .history import SessionHistory, history_for, kernel_history_inputs
from .notebook import NotebookRecorder
from .output import OutputPrinter
from .pager import edit_file, page
from .protocol import Message

#: How long Enter waits for is_complete before falling back to a local rule.
IS_COMPLETE_TIMEOUT = 0.5
#: How long F1 / Shift-Tab wait for an inspect_reply.
INSPECT_TIMEOUT = 3.0
#: How many lines Shift-Tab prints above the prompt (F1 pages the whole text).
SHORT_HELP_LINES = 12
#: How many entries of the kernel's history are merged at start.
KERNEL_HISTORY_TAIL = 1000
#: How long the start waits for the kernel's history (a busy kernel answers late).
KERNEL_HISTORY_TIMEOUT = 3.0


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


class _HideInput(Processor):
    """Shows nothing of what is typed (a password prompt, like getpass in a tty)."""

    def apply_transformation(self, ti: TransformationInput) -> Transformation:
        return Transformation([], source_to_display=lambda i: 0, display_to_source=lambda i: 0)


class Repl:
    """The interactive loop. ``run()`` returns the exit status.

    ``show_other_output``: print what other clients of the kernel run and print.
    ``recorder``: a :class:`~kconsole.notebook.NotebookRecorder` that gets every cell
    run here; it is saved when ``run()`` returns.
    ``merge_kernel_history``: add the kernel's recent history to Up/Ctrl-R at start.
    ``history``: the input history (default: the per-language file).
    """

    def __init__(
        self,
        conn: KernelConnection,
        printer: OutputPrinter,
        *,
        show_other_output: bool = True,
        banner: bool = True,
        stdout: TextIO | None = None,
        recorder: NotebookRecorder | None = None,
        merge_kernel_history: bool = True,
        history: History | None = None,
    ) -> None:
        self.conn = conn
        self.client: KernelClient = conn.client
        self.printer = printer
        self.stdout = stdout or sys.stdout
        self.show_other_output = show_other_output
        self.banner = banner
        self.recorder = recorder
        self.merge_kernel_history = merge_kernel_history
        self.execution_count = 0
        self.keep_kernel_on_exit: bool | None = None
        self._next_input = ""
        self._prompt_active = False
        self._pending_output: list[tuple[Message, bool]] = []
        #: The kernel's state as caused by others (busy/idle), or dead/restarting.
        self._other_state = "idle"
        language = str(conn.language_info.get("name") or "unknown")
        self.history: History = history if history is not None else history_for(language)
        self.session: PromptSession[str] = PromptSession(
            history=self.history,
            lexer=_lexer_for(conn.language_info),
            completer=KernelCompleter(self.client),
            complete_while_typing=False,
            enable_history_search=True,
            key_bindings=self._key_bindings(),
            multiline=True,
            prompt_continuation=self._continuation,
            rprompt=self._rprompt,
            include_default_pygments_style=True,
        )
        # The input() prompt: one line, its own history (pdb commands, answers).
        self._input_session: PromptSession[str] = PromptSession(history=InMemoryHistory())
        self.client.on_broadcast = self._on_broadcast
        self.client.on_dead = self._on_dead
        self.client.on_status = self._on_status

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

    def _rprompt(self) -> FormattedText:
        if self.client.dead.is_set():
            return FormattedText([("ansired bold", "[kernel dead]")])
        if self._other_state in ("busy", "restarting", "starting"):
            return FormattedText([("ansiyellow", f"[kernel {self._other_state}]")])
        return FormattedText([])

    def _key_bindings(self) -> KeyBindings:
        kb = KeyBindings()
        selected = has_completions & completion_is_selected
        editing = ~is_searching  # in Ctrl-R search, Enter accepts the search (default)

        @kb.add("enter", filter=editing & ~selected)
        async def _enter(event: KeyPressEvent) -> None:
            await self._on_enter(event)

        @kb.add("enter", filter=editing & selected)
        def _accept_completion(event: KeyPressEvent) -> None:
            # The selected completion is already in the text: Enter just closes the menu.
            event.current_buffer.complete_state = None

        @kb.add("escape", "enter")
        def _newline(event: KeyPressEvent) -> None:
            event.current_buffer.insert_text("\n")

        @kb.add("f1")
        async def _help(event: KeyPressEvent) -> None:
            await self._show_inspection(event.current_buffer.document, full=True)

        @kb.add("s-tab", filter=~has_completions)
        async def _sig(event: KeyPressEvent) -> None:
            await self._show_inspection(event.current_buffer.document, full=False)

        @kb.add("c-c")
        def _clear(event: KeyPressEvent) -> None:
            event.app.exit(exception=KeyboardInterrupt, style="class:aborting")

        return kb

    async def _on_enter(self, event: KeyPressEvent) -> None:
        buf = event.current_buffer
        doc = buf.document
        text = buf.text
        if not text.strip() or self.client.dead.is_set():
            buf.validate_and_handle()
            return
        if doc.line_count > 1 and not doc.on_last_line:
            # Editing inside a multi-line cell: Enter splits the line, as in an editor.
            line = doc.current_line
            buf.insert_text("\n" + line[: len(line) - len(line.lstrip())])
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

    async def _show_inspection(self, document: Document, *, full: bool) -> None:
        """The kernel's help on the name at the cursor (inspect_request: nothing runs).
        ``full`` pages it, else its first lines are printed above the prompt."""
        if self.client.dead.is_set():
            return
        try:
            reply = await self.client.inspect(
                document.text, document.cursor_position, 0, timeout=INSPECT_TIMEOUT
            )
        except KernelError:
            return
        text = ""
        if reply.get("status") == "ok" and reply.get("found"):
            text = str((reply.get("data") or {}).get("text/plain", ""))
        if not text.strip():
            text = "[kconsole] no help found for the name at the cursor"
        if full:
            async with in_terminal():
                await page(text, self.stdout)
            return
        lines = text.rstrip("\n").split("\n")
        if len(lines) > SHORT_HELP_LINES:
            lines = [*lines[:SHORT_HELP_LINES], "\x1b[2m... (F1 shows all of it)\x1b[0m"]
        short = "\n".join(lines)

        def show() -> None:
            self.stdout.write(short + "\x1b[0m\n")
            self.stdout.flush()

        await run_in_terminal(show)

    # -- output while a prompt is up ----------------------------------------------------

    def _show(self, msg: Message, own: bool) -> None:
        """Print an output message now, or above the prompt when one is up."""
        if not self._prompt_active:
            self.printer.handle(msg, own=own)
            return
        self._pending_output.append((msg, own))
        if len(self._pending_output) == 1:
            # One run_in_terminal drains everything queued meanwhile: a flood of other
            # clients' output redraws the prompt once per batch, not once per message.
            run_in_terminal(self._drain_output)

    def _drain_output(self) -> None:
        batch, self._pending_output = self._pending_output, []
        for m, own in batch:
            self.printer.handle(m, own=own)
        self.printer.flush()

    def _on_broadcast(self, msg: Message) -> None:
        if msg.msg_type == "status":
            state = msg.content.get("execution_state")
            self._emit(lambda: self.printer.note(f"[kernel {state}]"))
            return
        if self.show_other_output:
            self._show(msg, own=False)

    def _on_status(self, msg: Message, own: bool) -> None:
        if own:
            return
        state = str(msg.content.get("execution_state") or "")
        if state and state != self._other_state:
            self._other_state = state
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
            run_in_terminal(write)
        else:
            write()

    def _on_dead(self, reason: str) -> None:
        hint = " Press Enter to restart it." if self.conn.can_restart else ""
        self._emit(lambda: self.printer.note(f"[kconsole] the kernel died: {reason}.{hint}"))

    # -- running cells ----------------------------------------------------------------

    @contextlib.contextmanager
    def _prompting(self) -> Iterator[None]:
        self._prompt_active = True
        try:
            yield
        finally:
            self._prompt_active = False
            if self._pending_output:  # queued for a run_in_terminal that never ran
                self._drain_output()

    async def _ask_input(self, prompt: str, password: bool) -> str:
        """Answer an input_request with a one-line editor (Ctrl-C interrupts the
        kernel, Ctrl-D sends EOF); a password is not echoed and not remembered."""
        self.printer.flush()
        loop = asyncio.get_running_loop()
        # prompt_toolkit reads Ctrl-C as a key in raw mode; our SIGINT handler would
        # fight its own.
        loop.remove_signal_handler(signal.SIGINT)
        session = self._input_session
        if password:
            session = PromptSession(history=DummyHistory(), input_processors=[_HideInput()])
        try:
            with self._prompting():
                return await session.prompt_async(ANSI(prompt))
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
        self._emit(lambda: self.printer.note(f"^C: {what}"))

    def _on_own_output(self, msg: Message) -> None:
        if self.recorder is not None:
            self.recorder.add_output(msg)
        self._show(msg, own=True)

    async def run_cell(self, code: str) -> Message | None:
        """Execute one cell with Ctrl-C bound to interrupting the kernel."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self._sigint)
        if self.recorder is not None:
            self.recorder.start_cell(code)
        reply: Message | None = None
        try:
            reply = await self.client.execute(
                code,
                on_output=self._on_own_output,
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
            if self.recorder is not None:
                self.recorder.finish_cell(reply)
        count = reply.content.get("execution_count")
        if isinstance(count, int):
            self.execution_count = count
        payloads = reply.content.get("payload") or []
        if self.recorder is not None and any(p.get("source") == "ask_exit" for p in payloads):
            self.recorder.discard_last()  # `exit` is not part of the work being saved
        await self._handle_payloads(payloads)
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
        self._other_state = "idle"
        self.printer.note("[kconsole] kernel restarted")
        self.printer.flush()
        return True

    def _print_banner(self) -> None:
        info = self.client.kernel_info
        banner = str(info.get("banner") or "").rstrip()
        lines = [f"kconsole: {self.conn.label}"] if self.conn.label else []
        if banner:
            lines.append(banner)
        lines.append(
            "Ctrl-D exits, Ctrl-C interrupts the kernel, Tab completes, "
            "Shift-Tab/F1 show help on the name at the cursor."
        )
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

    async def _merge_kernel_history(self) -> None:
        if not self.merge_kernel_history or not isinstance(self.history, SessionHistory):
            return
        with contextlib.suppress(KernelError):
            items = await self.client.history(
                timeout=KERNEL_HISTORY_TIMEOUT,
                hist_access_type="tail",
                n=KERNEL_HISTORY_TAIL,
                raw=True,
                output=False,
            )
            self.history.merge(kernel_history_inputs(items))

    def _start_recording(self) -> None:
        if self.recorder is None:
            return
        spec = self.conn.spec
        self.recorder.set_kernel(
            self.client.kernel_info,
            name=spec.name if spec is not None else "",
            display_name=spec.display_name if spec is not None else "",
        )

    def _save_recording(self) -> None:
        if self.recorder is None:
            return
        try:
            path = self.recorder.save()
        except OSError as e:
            self.printer.note(f"[kconsole] could not save the notebook: {e}")
        else:
            self.printer.note(f"[kconsole] notebook saved to {path}")
        self.printer.flush()

    async def run(self) -> int:
        """Prompt, run, repeat until Ctrl-D, ``exit`` or a dead unrestartable kernel."""
        if self.banner:
            self._print_banner()
        self._start_recording()
        try:
            await asyncio.gather(self._fetch_execution_count(), self._merge_kernel_history())
            return await self._loop()
        finally:
            self._save_recording()

    async def _loop(self) -> int:
        while True:
            default, self._next_input = self._next_input, ""
            try:
                with self._prompting():
                    code = await self.session.prompt_async(self._prompt, default=default)
            except KeyboardInterrupt:
                continue
            except EOFError:
                return 0
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


__all__ = ["Repl", "KernelCompleter", "page", "history_for", "KernelTimeout"]
