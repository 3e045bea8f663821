"""The interactive console: a prompt_toolkit prompt in front of a kernel client.

Theory of the screen
--------------------
Exactly one party owns the terminal at a time:

* while a prompt is up (the cell prompt, or the one-line prompt of an
  ``input_request``), prompt_toolkit owns it (raw mode); output that arrives then
  (other clients, background threads, a cell's output racing its input_request) is
  queued and written in one go above it (:meth:`Repl._write_above`: the prompt is
  erased, the text written, the prompt redrawn), so typed text is never disturbed.
  The terminal stays in raw mode meanwhile: prompt_toolkit's ``run_in_terminal``
  switches to cooked mode, where a Ctrl-D typed at that moment is swallowed by the tty
  and an Enter arrives as a newline;
* while a cell runs there is no prompt: output is written straight to the terminal
  in arrival order, SIGINT (Ctrl-C) interrupts the kernel;
* a pager or editor (``obj?``, F1, ``%edit``) gets the terminal with SIGINT ignored
  by kconsole, so Ctrl-C belongs to it;
* one SIGINT handler serves the whole session (:meth:`Repl._on_sigint`): while a cell
  runs it interrupts the kernel, at a prompt it does what Ctrl-C there does. The
  prompts are told not to install their own (prompt_toolkit's would replace it, and
  it loads ctypes to restore the C-level handler each time).
* widget state (comm messages) goes to the printer's model store at once, printing
  nothing; a view whose models changed is redrawn by a timer at most every
  :data:`VIEW_REDRAW_INTERVAL` seconds, through the same rules (above the prompt when
  one is up), and once more at the end of the cell (a bar's last state). Each prompt
  reports the rows it left on screen when accepted (``_measure_prompt``), so that a
  display printed before it is still redrawn where it is;
* the next ``In [n]:`` appears only after the cell's reply *and* its ``idle``;
* the first ``In [1]:`` of a kernel kconsole started appears at once, while the kernel
  boots (``starting`` in the toolbar): its banner is written above the prompt when the
  kernel answers, and Enter, Tab and F1 wait for that answer, so the user types while
  the kernel starts instead of watching it start.

Keys beyond prompt_toolkit's editing: Ctrl-C at the prompt clears the line, while a
cell runs it interrupts the kernel, and a second Ctrl-C within
:data:`DOUBLE_CTRL_C` seconds (same cell still running) offers to restart it;
Ctrl-X r restarts the kernel from the prompt (after a y/N question answered with
Enter, the typed text is kept), Ctrl-X s saves the session as a notebook; Ctrl-D on an
empty prompt exits (after a question when ``confirm_exit``); Ctrl-Z suspends; Tab
where only indentation precedes the cursor indents. Keys typed ahead (during a cell,
a paste without bracketed paste, behind an Enter that waits for is_complete) act one
by one, as if each was pressed on its own (:class:`~kconsole.repl_ui.KeyHold`).
Every cell is recorded in memory (:class:`~kconsole.notebook.NotebookRecorder`) so
Ctrl-X s works without ``--save`` (a long stream output keeping only its start and end).

Module map: :mod:`.completion` (Tab), :mod:`.history` (file + kernel history),
:mod:`.pager` (pager, editor), :mod:`.notebook` (``--save``, Ctrl-X s),
:mod:`.repl_ui` (toolbar, y/n questions, styles).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import shutil
import signal
import struct
import sys
import termios
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.application import get_app, get_app_or_none, in_terminal, run_in_terminal
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.document import Document
from prompt_toolkit.filters import (
    Condition,
    completion_is_selected,
    emacs_insert_mode,
    has_completions,
    is_done,
    is_searching,
    vi_insert_mode,
)
from prompt_toolkit.formatted_text import ANSI, FormattedText
from prompt_toolkit.history import DummyHistory, History, InMemoryHistory
from prompt_toolkit.input.typeahead import store_typeahead
from prompt_toolkit.input.vt100_parser import Vt100Parser
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.key_binding.key_processor import KeyPress
from prompt_toolkit.layout.processors import (
    ConditionalProcessor,
    HighlightMatchingBracketProcessor,
    Processor,
    Transformation,
    TransformationInput,
)
from prompt_toolkit.lexers import Lexer, PygmentsLexer

from .client import (
    EOFInput,
    KernelClient,
    KernelDied,
    KernelError,
    KernelTimeout,
    NoReply,
    ReplyLost,
)
from .completion import KernelCompleter
from .display.terminal import take_typed_ahead
from .display.widgets import COMM_TYPES
from .history import (
    DEFAULT_HISTORY_SIZE,
    IndexedAutoSuggest,
    SessionHistory,
    history_for,
    kernel_history_inputs,
    load_history_at_once,
    search_history_quickly,
)
from .kernel_connection import (
    EXIT_KERNEL_DIED,
    GONE_FROM_SERVER,
    SELF_EXIT_WAIT,
    ConsoleError,
    KernelConnection,
    exit_command,
    payloads_of,
)
from .notebook import STREAM_KEPT_CHARS, NotebookRecorder
from .output import OutputPrinter
from .pager import edit_file, page
from .protocol import Message
from .repl_ui import (
    KeyHold,
    ask_yes_no,
    check_style,
    connection_kind,
    input_style,
    kernel_label,
    toolbar_fragments,
    vi_mode_name,
    wrap_words,
)
from .sanitize import terminal_text
from .transport import TransportError

#: How many spaces Tab inserts where only indentation precedes the cursor.
INDENT = 4
#: How long Enter waits for is_complete before falling back to a local rule.
IS_COMPLETE_TIMEOUT = 0.5
#: How long a redraw asked for while Enter waits for is_complete (the keys read with
#: the Enter) or Tab for completions waits for the kernel's answer: a cell the kernel
#: finds complete is then drawn once, accepted, instead of once typed and once
#: accepted, and a menu in the frame after the Tab instead of the second one.
REDRAW_HOLD = 0.05
#: How long F1 / Shift-Tab wait for an inspect_reply.
INSPECT_TIMEOUT = 3.0
#: How many lines Shift-Tab prints above the prompt (F1 pages the whole text).
SHORT_HELP_LINES = 12
#: How many entries of the kernel's history are merged at start.
KERNEL_HISTORY_TAIL = 1000
#: How long the start waits for the kernel's history (a busy kernel answers late).
KERNEL_HISTORY_TIMEOUT = 3.0
#: A second Ctrl-C this many seconds after the first, same cell running: offer a restart.
DOUBLE_CTRL_C = 2.0
#: How long a widget view waits to be redrawn after its model changed: views are
#: redrawn at most this often (a bar updated a thousand times a second costs 25).
VIEW_REDRAW_INTERVAL = 0.04
#: run()'s exit status when the kernel died and could not be restarted.
KERNEL_DIED_EXIT = EXIT_KERNEL_DIED  # the console-wide status, re-exported for callers


def _lexer_for(language_info: dict[str, Any]) -> Lexer | None:
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    name = str(language_info.get("pygments_lexer") or language_info.get("name") or "")
    if not name:
        return None
    if name.lower() in _PYTHON_LEXERS:
        # ipykernel names IPython's lexer, which pygments can only find by scanning
        # plugin entry points and importing IPython: ~30 ms and 7 MB before the first
        # prompt. Pygments' own Python lexer highlights the same code.
        from pygments.lexers.python import PythonLexer

        return PygmentsLexer(PythonLexer)
    try:
        lexer_cls = type(get_lexer_by_name(name))
    except ClassNotFound:
        return None
    return PygmentsLexer(lexer_cls)


_PYTHON_LEXERS = frozenset({"ipython3", "ipython", "python3", "python", "ipython2"})


class _KernelNeverCameUp(Exception):
    """Ends the prompt when a kernel that was starting failed (Repl._start_error)."""


class _HideInput(Processor):
    """Shows nothing of what is typed (a password prompt, like getpass in a tty)."""

    def apply_transformation(self, ti: TransformationInput) -> Transformation:
        return Transformation([], source_to_display=lambda i: 0, display_to_source=lambda i: 0)


def _prompt_ended() -> bool:
    """Whether the prompt whose key binding is running has already been ended (by
    Ctrl-C, a restart): its buffer must not be accepted again."""
    app = get_app_or_none()
    return app is not None and app.is_done


class Repl:
    """The interactive loop. ``run()`` returns the exit status.

    ``show_other_output``: print what other clients of the kernel run and print.
    ``recorder``: a :class:`~kconsole.notebook.NotebookRecorder` that gets every cell
    run here; it is saved when ``run()`` returns (``--save``). Without one, cells are
    recorded anyway, for Ctrl-X s, long stream outputs by their start and end.
    ``merge_kernel_history``: add the kernel's recent history to Up/Ctrl-R at start.
    ``history``: the input history (default: the per-language file, of which
    ``history_size`` entries are loaded).
    ``toolbar``: the bottom toolbar (kernel, state, count, connection).
    ``vi_mode``: vi editing keys (the toolbar shows the input mode).
    ``confirm_exit``: Ctrl-D asks before leaving (``exit`` typed never asks).
    ``style``: a Pygments style name for the input (None: ``kconsole``, readable on dark
    and light backgrounds); ValueError if unknown.
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
        history_size: int = DEFAULT_HISTORY_SIZE,
        toolbar: bool = True,
        vi_mode: bool = False,
        confirm_exit: bool = True,
        style: str | None = None,
    ) -> None:
        self.conn = conn
        self.client: KernelClient = conn.client
        #: Why the kernel never came up (a start still under way failed).
        self._start_error: ConsoleError | None = None
        self._start_watch: asyncio.Task[None] | None = None
        self.printer = printer
        self.stdout = stdout or sys.stdout
        self.show_other_output = show_other_output
        self.banner = banner
        #: Saved at exit only when given (--save); Ctrl-X s saves it any time.
        self._save_at_exit = recorder is not None
        # Without --save only Ctrl-X s reads it: long stream outputs keep their start
        # and end, nothing is written to a temporary file.
        self.recorder = recorder if recorder is not None else NotebookRecorder("", keep_all=False)
        self.merge_kernel_history = merge_kernel_history
        self.toolbar = toolbar
        self.vi_mode = vi_mode
        self.confirm_exit = confirm_exit
        self.execution_count = 0
        #: The execution_count of the running cell's execute_input, when one came.
        self._input_count: int | None = None
        self.keep_kernel_on_exit: bool | None = None
        self._next_input = ""
        self._prompt_active = False
        self._pending_output: list[tuple[Message, bool]] = []
        #: Rows the last prompt took on screen once accepted (None: not known).
        self._prompt_rows: int | None = None
        self._view_timer: asyncio.TimerHandle | None = None
        #: Keys waiting unread in the terminal at the last look (see _keys_echoed).
        self._keys_waiting = 0
        # Widgets are drawn live, and their redraws wait for the terminal's owner.
        printer.live_widgets = True
        printer.on_views_changed = self._views_changed
        printer.screen_disturbed = self._keys_echoed
        #: The kernel's state as caused by others (busy/idle), or dead/restarting.
        self._other_state = "idle"
        #: The kernel's state for the toolbar: every status except those of our own
        #: short requests at the prompt (Tab, F1, Enter's is_complete).
        self._state = "idle" if conn.ready else "starting"
        self._kind = connection_kind(conn)
        self._label = kernel_label(conn)
        #: A restart in progress (the toolbar says so; the death it causes is expected).
        self._restarting = False
        self._save_path_chosen = False
        #: Counts restarts (an input_request of an earlier kernel is not answered).
        self._generation = 0
        self._restart_task: asyncio.Task[bool] | None = None
        #: Double Ctrl-C: the restart question asked while a cell runs.
        self._restart_offer: asyncio.Task[None] | None = None
        #: Ctrl-X r: the restart question asked at the prompt.
        self._question: asyncio.Task[None] | None = None
        self._cell_serial = 0
        self._cell_running = False
        #: The prompt session reading keys now (SIGINT goes to it), and how many
        #: holders of the SIGINT handler there are (see _sigint_handled).
        self._asking: PromptSession[Any] | None = None
        self._sigint_depth = 0
        self._exec_task: asyncio.Future[Message] | None = None
        #: A cell sent to the kernel as its prompt was accepted, before the prompt has
        #: ended (see _start_cell_now): its run overlaps the prompt's last frame.
        self._early_cell: asyncio.Future[Message] | None = None
        #: Set once the prompt that sent _early_cell has ended (its input() waits).
        self._prompt_gone = asyncio.Event()
        #: A wait outside any cell that Ctrl-C stops (a new kernel being started on a
        #: server), and whether Ctrl-C did stop it.
        self._sigint_stops: asyncio.Future[Any] | None = None
        self._stopped_by_sigint = False
        self._last_sigint: tuple[int, float] | None = None
        #: One prompt at a time while a cell runs (input() and the restart question).
        self._tty_lock = asyncio.Lock()
        # Until a starting kernel answers, its kernelspec says what language it speaks.
        language_info = conn.language_info or {"name": conn.spec.language if conn.spec else ""}
        language = str(language_info.get("name") or "unknown")
        self.history: History = (
            history if history is not None else history_for(language, history_size)
        )
        if isinstance(self.history, SessionHistory):
            # A history file that fails is said once, then kept in memory.
            self.history.on_problem = self.note
            if self.history.problem is not None:
                self.note(self.history.problem)
        self.completer = KernelCompleter(
            self.client, wait_ready=self._kernel_ready, hold_redraws=self._redraws_held
        )
        self.session: PromptSession[str] = PromptSession(
            history=self.history,
            lexer=_lexer_for(language_info),
            completer=self.completer,
            complete_while_typing=False,
            enable_history_search=True,
            key_bindings=self._key_bindings(),
            multiline=True,
            prompt_continuation=self._continuation,
            rprompt=self._rprompt,
            bottom_toolbar=self._toolbar if toolbar else None,
            # prompt_toolkit's AutoSuggestFromHistory scans every entry on every key.
            auto_suggest=IndexedAutoSuggest(),
            input_processors=[ConditionalProcessor(HighlightMatchingBracketProcessor(), ~is_done)],
            vi_mode=vi_mode,
            style=input_style(style),
            # The chosen style alone colours the input: prompt_toolkit's fallback is
            # pygments' default, made for white paper (pure blue names on black).
            include_default_pygments_style=False,
            enable_suspend=True,  # Ctrl-Z stops kconsole (in cooked mode), `fg` resumes
        )
        load_history_at_once(self.session.default_buffer)
        search_history_quickly(self.session.default_buffer)
        # The input() prompt: one line, its own history (pdb commands, answers). Built at
        # the first input_request: most sessions never need its ~0.5 MB.
        self._input_session: PromptSession[str] | None = None
        #: Keys typed behind an Enter that waits (for is_complete or the kernel's
        #: start) are held until it is done: each Enter acts as if pressed on its own.
        self._keys = KeyHold(self.session.app)
        self._bind_client()
        typed = take_typed_ahead()
        if typed:
            # Read from the terminal with the answers to kconsole's startup query: the
            # first prompt reads them before the terminal, as if typed at it.
            parsed: list[KeyPress] = []
            parser = Vt100Parser(parsed.append)
            parser.feed(typed)
            parser.flush()
            store_typeahead(self.session.app.input, parsed)

    def _bind_client(self) -> None:
        # Again once a starting kernel is up: a port clash during its start replaces
        # the connection's client.
        self.client = self.completer.client = self.conn.client
        self.client.on_broadcast = self._on_broadcast
        self.client.on_dead = self._on_dead
        self.client.on_status = self._on_status
        self.client.on_note = self.note

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
        if self._toolbar_visible():
            return FormattedText([])  # the toolbar says it
        if self.client.dead.is_set():
            return FormattedText([("ansired bold", "[kernel dead]")])
        if self.conn.connection_lost:
            return FormattedText([("ansired bold", "[connection lost]")])
        if self._restarting:
            return FormattedText([("ansiyellow", "[kernel restarting]")])
        if not self.conn.ready:
            return FormattedText([("ansiyellow", "[kernel starting]")])
        if self._other_state in ("busy", "restarting", "starting"):
            return FormattedText([("ansiyellow", f"[kernel {self._other_state}]")])
        return FormattedText([])

    def _toolbar_visible(self) -> bool:
        # prompt_toolkit draws the bottom toolbar only once the terminal answered a
        # cursor position request (PROMPT_TOOLKIT_NO_CPR=1, dumb terminals: never).
        app = get_app_or_none()
        return self.toolbar and app is not None and app.renderer.height_is_known

    def _toolbar(self) -> FormattedText:
        dead = self.client.dead.is_set()
        if self._restarting:
            state = "restarting"
        elif dead:
            state = "dead"
        else:
            state = self._state
        return toolbar_fragments(
            self._label,
            state,
            self.execution_count,
            "lost" if (dead and not self._restarting) or self.conn.connection_lost else self._kind,
            vi_mode_name() if self.vi_mode else "",
        )

    def _invalidate(self) -> None:
        if self._prompt_active:
            self.session.app.invalidate()

    def _key_bindings(self) -> KeyBindings:
        kb = KeyBindings()
        selected = has_completions & completion_is_selected
        editing = ~is_searching  # in Ctrl-R search, Enter accepts the search (default)

        @kb.add("enter", filter=editing & ~selected)
        def _enter(event: KeyPressEvent) -> object:
            self._on_enter(event)
            # What it changes on screen redraws itself (the text, the accepted prompt);
            # Enter alone is no reason to draw the prompt again.
            return NotImplemented

        @kb.add("enter", filter=editing & selected)
        def _accept_completion(event: KeyPressEvent) -> None:
            # The selected completion is already in the text: Enter just closes the menu.
            event.current_buffer.complete_state = None

        typing = vi_insert_mode | emacs_insert_mode

        @Condition
        def in_leading_whitespace() -> bool:
            before = get_app().current_buffer.document.current_line_before_cursor
            return not before.strip()

        # Tab where only indentation precedes the cursor indents, as in IPython: there
        # is nothing to complete there, and the kernel would offer every name it knows.
        @kb.add("tab", filter=editing & typing & in_leading_whitespace & ~has_completions)
        def _indent(event: KeyPressEvent) -> None:
            event.current_buffer.insert_text(" " * INDENT)

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

        # eager: prompt_toolkit's emacs keys have Ctrl-X r y (yank); without it Ctrl-X r
        # would wait for a third key.
        @kb.add("c-x", "r", eager=True)
        def _restart(event: KeyPressEvent) -> None:
            # The keys behind it (an answer typed ahead) are for the question.
            hold = self._keys.start()
            self._question = event.app.create_background_task(self._restart_from_prompt(hold))

        @kb.add("c-x", "s", eager=True)
        def _save(event: KeyPressEvent) -> None:
            self.save_notebook()

        return kb

    def _on_enter(self, event: KeyPressEvent) -> None:
        """Enter: run the cell if it is complete, else a new line. The kernel decides
        (is_complete), so the answer may take a while; the keys typed behind this Enter
        wait for it (:class:`~kconsole.repl_ui.KeyHold`) and then go to this prompt
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
            or self._restarting
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

    async def _show_inspection(self, document: Document, *, full: bool) -> None:
        """The kernel's help on the name at the cursor (inspect_request: nothing runs).
        ``full`` pages it, else its first lines are printed above the prompt."""
        if not await self._kernel_ready() or self.client.dead.is_set():
            return
        try:
            reply = await self.client.inspect(
                document.text, document.cursor_position, 0, timeout=INSPECT_TIMEOUT
            )
        except KernelError:
            return
        text = ""
        if reply.get("status") == "ok" and reply.get("found"):
            text = terminal_text(
                str((reply.get("data") or {}).get("text/plain", "")), allow_progress=False
            )
        if not text.strip():
            text = "[kconsole] no help found for the name at the cursor"
        if full:
            async with self._in_terminal():
                await page(text, self.stdout)
            return
        lines = text.rstrip("\n").split("\n")
        if len(lines) > SHORT_HELP_LINES:
            lines = [*lines[:SHORT_HELP_LINES], "\x1b[2m... (F1 shows all of it)\x1b[0m"]
        short = "\n".join(lines)

        def show() -> None:
            self.stdout.write(short + "\x1b[0m\n")
            self.stdout.flush()
            # Not the printer's text: never erased; counted, so that a display above
            # it is still redrawn where it is.
            self.printer.barrier(text=short + "\n")

        self._write_above(show)

    # -- output while a prompt is up ----------------------------------------------------

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

    def _on_broadcast(self, msg: Message) -> None:
        if msg.msg_type == "status":
            state = msg.content.get("execution_state")
            self._emit(lambda: self.printer.note(f"[kernel {state}]"))
            return
        if self.show_other_output or msg.msg_type in COMM_TYPES:
            # Widget models change from background threads and other clients too:
            # the views this console shows must follow them.
            self._show(msg, own=False)

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

    def _on_status(self, msg: Message, own: bool) -> None:
        state = str(msg.content.get("execution_state") or "")
        if not state or (state == "starting" and self.conn.ready):
            return  # a kernel's boot announcement, read late: it is long up
        changed = False
        if not own and state != self._other_state:
            self._other_state = state
            changed = True
        # Our own requests while a prompt is up are Tab, F1 and Enter's is_complete:
        # a flicker of busy, not worth a redraw.
        if not (own and self._prompt_active) and state != self._state:
            self._state = state
            changed = True
        if changed:
            self._invalidate()

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

    def _on_dead(self, reason: str) -> None:
        if self._restarting:
            return  # a restart stops the old kernel: expected, not news
        if self.conn.kernel_gone:
            # A restarted Jupyter Server forgot its kernels: nothing to restart.
            offer = (
                f" Press Enter to {self.conn.replace_offer}, Ctrl-D to leave."
                if self.conn.can_replace
                else ""
            )
            text = f"[kconsole] {GONE_FROM_SERVER}.{offer}"
        elif self.conn.unreachable:
            # Refused or given up on: the kernel may be running still; "died" is not true.
            text = f"[kconsole] {reason}; the kernel cannot be reached from here."
        else:
            hint = " Press Enter to restart it." if self.conn.can_restart else ""
            text = f"[kconsole] the kernel died: {reason}.{hint}"
        self._emit(lambda: self.printer.note(text))
        self._invalidate()

    # -- keys: save, restart --------------------------------------------------------------

    def save_notebook(self) -> Path | None:
        """Ctrl-X s: write the cells run so far; to the --save path if there is one,
        else to ./kconsole-YYYYmmdd-HHMMSS.ipynb (chosen at the first save)."""
        rec = self.recorder
        if not self._save_at_exit and not self._save_path_chosen:
            rec.path = Path.cwd() / time.strftime("kconsole-%Y%m%d-%H%M%S.ipynb")
            self._save_path_chosen = True
        try:
            path = rec.save()
        except OSError as e:
            self.note(f"could not save the notebook: {e}")
            return None
        n, cut = len(rec.cells), rec.outputs_cut()
        said = f"saved {n} cell{'s' if n != 1 else ''} to {path}"
        if cut:
            # Said here, not only in the notebook: the user may not open it soon.
            outputs, their = ("outputs", "their") if cut != 1 else ("output", "its")
            said += (
                f" ({cut} long {outputs} kept only {their} first and last"
                f" {STREAM_KEPT_CHARS // 1024} K characters; --save FILE.ipynb keeps"
                " every output whole)"
            )
        self.note(said)
        return path

    async def _restart_from_prompt(self, hold: object) -> None:
        """Ctrl-X r: ask, then restart; the prompt and its text stay meanwhile. The
        keys are held from Ctrl-X r on: the question reads them first, the prompt gets
        what it leaves (typed after the answer's Enter)."""
        try:
            ok = await self._ask_restart_at_prompt()
        finally:
            self._keys.release(hold)
        if ok:
            # Not a task of the prompt's application: those are cancelled when the
            # prompt ends (Enter while restarting), and a restart must not stop halfway.
            self._restart_task = asyncio.ensure_future(self._restart_kernel())

    async def _ask_restart_at_prompt(self) -> bool:
        if not self.conn.can_restart:
            self.note("this kernel cannot be restarted: kconsole only attached to it")
            return False
        if not self.conn.ready:
            self.note("the kernel is still starting")
            return False
        if self._restart_task is not None and not self._restart_task.done():
            return False
        async with self._in_terminal():
            self._keys.hand_over()
            try:
                return await ask_yes_no("Restart the kernel? [y/N] ", default=False)
            finally:
                self._keys.take_back()

    async def _restart_kernel(self) -> bool:
        """Restart the kernel (the caller checked can_restart); say how it went."""
        self._restarting = True
        self._invalidate()
        self.note("restarting the kernel...")
        try:
            await self.conn.restart()
        except (KernelError, ConsoleError, TransportError) as e:
            self.note(f"restart failed: {e}")
            return False
        finally:
            self._restarting = False
            self._invalidate()
        self.execution_count = 0
        self._generation += 1
        self._state = self._other_state = "idle"
        self.printer.kernel_restarted()
        if self._exec_task is not None and not self._exec_task.done():
            # The old kernel will never answer the running cell: stop waiting for it.
            self._exec_task.cancel()
        self.note("kernel restarted")
        self._invalidate()
        return True

    async def _wait_restart(self) -> None:
        task, self._restart_task = self._restart_task, None
        if task is not None:
            with contextlib.suppress(Exception):
                await task

    # -- running cells ----------------------------------------------------------------

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

    async def _ask_input(self, prompt: str, password: bool) -> str:
        """Answer an input_request with a one-line editor (Ctrl-C interrupts the
        kernel, Ctrl-D sends EOF); a password is not echoed and not remembered."""
        if self._input_session is None:
            self._input_session = PromptSession(
                history=InMemoryHistory(), vi_mode=self.vi_mode, enable_suspend=True
            )
        session = self._input_session
        if password:
            session = PromptSession(
                history=DummyHistory(), input_processors=[_HideInput()], enable_suspend=True
            )
        generation = self._generation
        try:
            async with self._prompt_during_cell():
                if generation != self._generation:
                    raise NoReply  # asked by a kernel restarted while we waited our turn
                return await self._ask(session, ANSI(terminal_text(prompt, allow_progress=False)))
        except KeyboardInterrupt:
            asyncio.ensure_future(self._interrupt())
            raise NoReply from None
        except EOFError:
            raise EOFInput from None

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

    def _on_sigint(self) -> None:
        """SIGINT: at a prompt, what Ctrl-C does there (a `kill -INT`: the raw terminal
        reads Ctrl-C as a key); while a cell runs, interrupt it; else nothing."""
        if self._prompt_active:
            if self._asking is not None and self._asking.app.is_running:
                self._asking.app.key_processor.send_sigint()
        elif self._cell_running:
            self._sigint()
        elif self._sigint_stops is not None and not self._sigint_stops.done():
            self._stopped_by_sigint = True
            self._sigint_stops.cancel()

    @contextlib.contextmanager
    def _sigint_handled(self) -> Iterator[None]:
        """Install :meth:`_on_sigint` (once; nested uses share it)."""
        loop = asyncio.get_running_loop()
        self._sigint_depth += 1
        if self._sigint_depth == 1:
            loop.add_signal_handler(signal.SIGINT, self._on_sigint)
        try:
            yield
        finally:
            self._sigint_depth -= 1
            if self._sigint_depth == 0:
                loop.remove_signal_handler(signal.SIGINT)

    def _sigint(self) -> None:
        """Ctrl-C while a cell runs: interrupt; again within DOUBLE_CTRL_C s (same cell):
        ask whether to restart a restartable kernel, else stop waiting for the cell."""
        if self.conn.connection_lost:
            # Nothing reaches the kernel now (an interrupt neither): stop waiting for
            # the cell rather than for a reconnect that may take minutes.
            self._stop_waiting("the connection to the server is lost")
            return
        now = time.monotonic()
        last, self._last_sigint = self._last_sigint, (self._cell_serial, now)
        if last is not None and last[0] == self._cell_serial and now - last[1] <= DOUBLE_CTRL_C:
            if not self.conn.can_restart:
                # A kernel kconsole may not restart, deaf to the interrupt: the console
                # at least must not be stuck with it.
                self._last_sigint = None
                self._stop_waiting("the kernel did not stop on the interrupt")
                return
            if self._restart_offer is None or self._restart_offer.done():
                self._last_sigint = None
                self._restart_offer = asyncio.ensure_future(self._offer_restart())
                return
        asyncio.ensure_future(self._interrupt())

    def _stop_waiting(self, why: str) -> None:
        """Give up on the running cell (the kernel may still run it): back to a prompt."""
        task = self._exec_task
        if task is None or task.done():
            return
        task.cancel()
        self.note(f"stopped waiting for the cell: {why} (output it still sends is shown)")

    async def _offer_restart(self) -> None:
        # The restart happens with the terminal still ours: an input() of the old kernel
        # waiting for its turn must not get a prompt meanwhile.
        async with self._prompt_during_cell():
            if await ask_yes_no("Restart the kernel? [y/N] ", default=False):
                await self._restart_kernel()

    async def _interrupt(self) -> None:
        try:
            what = await self.conn.interrupt()
        except Exception as e:  # a failing interrupt must not take the console down
            what = f"interrupt failed: {e}"
        self._emit(lambda: self.printer.note(f"^C: {what}"))

    def _on_own_output(self, msg: Message) -> None:
        if msg.msg_type == "execute_input":
            # The cell's number as the kernel counts it: the prompt's source when the
            # execute_reply never comes (bash_kernel on `for i in 1 2; do`).
            count = msg.content.get("execution_count")
            if isinstance(count, int):
                self._input_count = count
        if self.recorder is not None:
            self.recorder.add_output(msg)
        self._show(msg, own=True)

    async def run_cell(
        self, code: str, started: asyncio.Future[Message] | None = None
    ) -> Message | None:
        """Execute one cell with Ctrl-C bound to interrupting the kernel (``started``:
        its request already sent, see _start_cell_now). None when the kernel died or
        was restarted before answering."""
        with self._sigint_handled():
            return await self._run_cell(code, started)

    def _start_cell(self, code: str, *, wait_prompt: bool = False) -> asyncio.Future[Message]:
        """Send ``code``: the task that waits for its reply and idle. ``wait_prompt``:
        sent while its prompt ends, so an input() it asks for waits for that."""
        self._cell_serial += 1
        self._cell_running = True
        self._input_count = None
        self.recorder.start_cell(code)
        on_input: Callable[[str, bool], Awaitable[str]] = self._ask_input
        if wait_prompt:

            async def on_input(prompt: str, password: bool) -> str:
                await self._prompt_gone.wait()  # one prompt at a time
                return await self._ask_input(prompt, password)

        task = self._exec_task = asyncio.ensure_future(
            self.client.execute(
                code,
                on_output=self._on_own_output,
                on_input=on_input,
                on_idle_lost=lambda: self.printer.note(
                    "[kconsole] the kernel's idle status never came; some output may be lost"
                ),
            )
        )
        return task

    async def _run_cell(
        self, code: str, started: asyncio.Future[Message] | None = None
    ) -> Message | None:
        if started is None:
            if self.conn.connection_lost:
                self.note(
                    "the connection to the server is lost: the cell waits for it (Ctrl-C stops)"
                )
            task = self._start_cell(code)
        else:
            task = started
        reply: Message | None = None
        try:
            await asyncio.wait({task})
            if not task.cancelled():  # cancelled: a restart abandoned the cell
                reply = task.result()
        except KernelDied:
            pass
        except ReplyLost as e:
            self.printer.note(f"[kconsole] {e}; the cell is left as it is")
            if self._input_count is not None:
                self.execution_count = self._input_count
        except BaseException as e:
            task.cancel()
            if isinstance(e, asyncio.CancelledError) and self._restart_offer is not None:
                # The console is leaving (SIGTERM/SIGHUP): nobody may answer.
                self._restart_offer.cancel()
            raise
        finally:
            self._cell_running = False
            self._exec_task = None
            if self._restart_offer is not None:
                # The restart question is still up (the cell ended meanwhile): it owns
                # the terminal until answered.
                offer, self._restart_offer = self._restart_offer, None
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await offer
            self.printer.finish_cell()  # widgets not drawn live (output to a file)
            self.printer.end_line()
            self.printer.flush()
            self.recorder.finish_cell(reply)
        if reply is None:
            return None
        count = reply.content.get("execution_count")
        if isinstance(count, int):
            self.execution_count = count
        payloads = payloads_of(reply.content)
        if any(p.get("source") == "ask_exit" for p in payloads):
            self.recorder.discard_last()  # `exit` is not part of the work being saved
        await self._handle_payloads(payloads)
        return reply

    async def _handle_payloads(self, payloads: list[dict[str, Any]]) -> None:
        for p in payloads:
            source = p.get("source")
            if source == "page":
                data = p.get("data") or {}
                text = data.get("text/plain") if isinstance(data, dict) else data
                if isinstance(text, str) and text:
                    await page(text, self.stdout)
                    self.printer.barrier()
            elif source == "set_next_input":
                text = p.get("text")
                self._next_input = text if isinstance(text, str) else ""
            elif source == "ask_exit":
                # Only a real True keeps (ipykernel sends None for a plain ask_exit()).
                self.keep_kernel_on_exit = p.get("keepkernel") is True
            elif source == "edit_magic":
                filename, line = p.get("filename"), p.get("line_number")
                if isinstance(filename, str) and filename:
                    await edit_file(filename, line if isinstance(line, int) else 0)
                    self.printer.barrier()

    async def _restart_dead_kernel(self) -> bool | None:
        """Restart (or replace) a dead kernel before running a cell: whether it worked;
        None when Ctrl-C stopped the wait (back to the prompt, the kernel still dead)."""
        if self.conn.can_restart:
            return await self._restart_kernel()
        if self.conn.can_replace:
            return await self._replace_kernel()
        return False

    async def _replace_kernel(self) -> bool | None:
        """A new kernel on the server in place of one it lost; say how it went. Ctrl-C
        stops the wait (a server may take the whole --timeout to answer): None."""
        self._restarting = True
        self._invalidate()
        self.note("starting a new kernel on the server... (Ctrl-C stops waiting)")
        replacing = asyncio.ensure_future(self.conn.replace_kernel())
        self._sigint_stops, self._stopped_by_sigint = replacing, False
        try:
            await replacing
        except ConsoleError as e:
            self.note(str(e))
            return False
        except asyncio.CancelledError:
            if not (self._stopped_by_sigint and replacing.cancelled()):
                raise  # the console is leaving (SIGTERM): not ours to swallow
            self.note("stopped waiting for the new kernel; Enter tries again, Ctrl-D leaves")
            return None
        finally:
            self._sigint_stops = None
            self._restarting = False
            self._invalidate()
        self._bind_client()
        self._label = kernel_label(self.conn)
        self.execution_count = 0
        self._generation += 1
        self._state = self._other_state = "idle"
        self.printer.kernel_restarted()
        self.note(f"new kernel {getattr(self.client.transport, 'kernel_id', '')} started")
        return True

    def _print_banner(self) -> None:
        info = self.client.kernel_info
        banner = str(info.get("banner") or "").rstrip()
        lines = [f"kconsole: {self.conn.label}"] if self.conn.label else []
        if banner:
            lines.append(banner)
        lines.append(
            "Ctrl-D exits, Ctrl-C interrupts the kernel (twice: restart), Tab completes, "
            "Shift-Tab/F1 show help on the name at the cursor, "
            "Ctrl-X r restarts the kernel, Ctrl-X s saves the session as a notebook."
        )
        width = shutil.get_terminal_size().columns
        text = terminal_text("\n".join(lines), allow_progress=False)
        banner = wrap_words(text, width) + "\n\n"
        self.stdout.write(banner)
        self.stdout.flush()
        self.printer.barrier(text=banner)

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
        # TypeError: a reply whose "history" is not a list (the client's list() of it);
        # the kernel's history is a bonus, never a reason not to start.
        with contextlib.suppress(KernelError, TypeError):
            items = await self.client.history(
                timeout=KERNEL_HISTORY_TIMEOUT,
                hist_access_type="tail",
                n=KERNEL_HISTORY_TAIL,
                raw=True,
                output=False,
            )
            self.history.merge(kernel_history_inputs(items))

    def _start_recording(self) -> None:
        spec = self.conn.spec
        self.recorder.set_kernel(
            self.client.kernel_info,
            name=spec.name if spec is not None else "",
            display_name=spec.display_name if spec is not None else "",
        )

    def _save_recording(self) -> None:
        if not self._save_at_exit:
            return
        try:
            path = self.recorder.save()
        except OSError as e:
            self.printer.note(f"[kconsole] could not save the notebook: {e}")
        else:
            self.printer.note(f"[kconsole] notebook saved to {path}")
        self.printer.flush()

    async def run(self) -> int:
        """Prompt, run, repeat until Ctrl-D, ``exit`` or a dead unrestartable kernel.

        Raises ConsoleError when a kernel that was still starting never came up."""
        if self.conn.ready:
            self._kernel_came_up()
        else:
            self._start_watch = asyncio.ensure_future(self._watch_start())
        try:
            if not self.conn.fresh:  # a kernel we just started has neither to offer
                await asyncio.gather(self._fetch_execution_count(), self._merge_kernel_history())
            with self._sigint_handled():
                return await self._loop()
        finally:
            if self._start_watch is not None:
                self._start_watch.cancel()
            self._save_recording()

    async def _kernel_ready(self) -> bool:
        """Wait for a kernel that is still starting; False if it never came up."""
        if not self.conn.ready:
            try:
                await self.conn.wait_ready()
            except ConsoleError:
                return False
        if self.client is not self.conn.client:
            self._bind_client()  # replaced during the start (a port clash)
        return True

    async def _watch_start(self) -> None:
        try:
            await self.conn.wait_ready()
        except ConsoleError as e:
            self._start_error = e
            # The running prompt: session.app, or (TERM=dumb) the separate application
            # prompt_toolkit runs for a dumb terminal, which session.app is not.
            app = get_app_or_none() or self.session.app
            if self._prompt_active and app.is_running:
                # Already leaving (Enter accepted just now): _loop sees _start_error.
                with contextlib.suppress(Exception):
                    app.exit(exception=_KernelNeverCameUp())
            return
        self._kernel_came_up()

    def _kernel_came_up(self) -> None:
        """The kernel answered: what its kernel_info tells (banner, lexer, label)."""
        self._bind_client()
        self._label = kernel_label(self.conn)
        lexer = _lexer_for(self.conn.language_info)
        if lexer is not None:
            self.session.lexer = lexer
        self._start_recording()
        # Its "starting" announcement (if we heard it) is over too.
        if self._state == "starting":
            self._state = "idle"
        if self._other_state == "starting":
            self._other_state = "idle"
        if self.banner:
            self._emit(self._print_banner)
        self._invalidate()

    async def _loop(self) -> int:
        while True:
            if self._start_error is not None:
                raise self._start_error
            default, self._next_input = self._next_input, ""
            accepted = False
            try:
                with self._prompting():
                    code = await self._ask(self.session, self._prompt, default=default)
                accepted = True
            except _KernelNeverCameUp:
                continue  # raised at the top
            except KeyboardInterrupt:
                await self._wait_restart()
                continue
            except EOFError:
                await self._wait_restart()
                if self.confirm_exit and not await self._ask_exit():
                    continue
                return 0
            finally:
                early, self._early_cell = self._early_cell, None
                self._prompt_gone.set()
                if early is not None and not accepted:  # not reached: it was accepted
                    early.cancel()
                    self._cell_running, self._exec_task = False, None
            if early is not None:
                # Sent as Enter accepted it (_start_cell_now): what follows below held.
                status = await self._after_cell(await self.run_cell(code, early))
                if status is not None:
                    return status
                continue
            await self._wait_restart()  # Enter while Ctrl-X r restarts: run on the new one
            if not code.strip() and not self.conn.ready:
                continue  # nothing to run: back to a prompt, not a wait without one
            if not await self._kernel_ready():
                continue  # raised at the top
            keep = exit_command(code, self.conn.language_info)
            if keep is not None:
                # Leaving is ours to do, not the kernel's (see exit_command); a dead
                # kernel is not restarted first just to be left.
                self.keep_kernel_on_exit = keep
                return 0
            revived = await self._restart_dead_kernel() if self.client.dead.is_set() else True
            if revived is None:
                continue  # Ctrl-C stopped waiting for a new kernel: the prompt again
            if not revived:
                if self.conn.kernel_gone:
                    gone = "gone from the server"
                else:
                    gone = "unreachable" if self.conn.unreachable else "dead"
                self.printer.note(f"[kconsole] the kernel is {gone}; leaving.")
                self.printer.flush()
                return KERNEL_DIED_EXIT
            if not code.strip():
                continue
            status = await self._after_cell(await self.run_cell(code))
            if status is not None:
                return status

    async def _after_cell(self, reply: Message | None) -> int | None:
        """The exit status when the console leaves after a cell (its kernel died and
        cannot be restarted, or the cell asked to exit), else None."""
        if reply is None and self.client.dead.is_set() and not self.conn.can_restart:
            self.printer.note(f"[kconsole] the kernel died: {self.client.dead_reason}")
            self.printer.flush()
            return KERNEL_DIED_EXIT
        if self.keep_kernel_on_exit is not None:
            await self._check_self_exit()
            return 0
        return None

    async def _check_self_exit(self) -> None:
        """After ``exit()`` ran inside code (ipykernel then stops itself): a kernel
        the console was to keep may be gone, and the user is told so."""
        conn = self.conn
        if self.keep_kernel_on_exit or conn.owns_kernel or not conn.ends_itself_on_exit:
            return
        if await conn.wait_gone(SELF_EXIT_WAIT):
            self.printer.note(
                "[kconsole] the kernel ended itself: exit() inside code stops an IPython "
                "kernel (exit typed alone leaves it running); nothing is left running"
            )
            self.printer.flush()

    async def _ask_exit(self) -> bool:
        with self._prompting():
            return await ask_yes_no("Do you really want to exit ([y]/n)? ", default=True)


__all__ = [
    "KERNEL_DIED_EXIT",
    "Repl",
    "KernelCompleter",
    "check_style",
    "page",
    "history_for",
    "KernelTimeout",
]
