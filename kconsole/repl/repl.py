"""The interactive console: a prompt_toolkit prompt in front of a kernel client.

:class:`Repl` keeps the loop (prompt, run, repeat) and the kernel's lifecycle (its
start under the first prompt, restart, replacement, death, exit); each other concern
is a part of its own, in the manner of ptpython:

* :mod:`.screen`: the one owner of the terminal while a prompt is up (output above
  the prompt, the barrier each prompt leaves);
* :mod:`.status`: the prompt, continuation, rprompt and toolbar, from one state object;
* :mod:`.key_bindings`, :mod:`.enter`, :mod:`.typeahead`: the keys, Enter and the keys
  typed behind it;
* :mod:`.sigint`: one SIGINT handler for the whole session;
* :mod:`.stdin`: the editor answering a kernel's input_request;
* :mod:`.questions`: y/n questions (restart, exit);
* :mod:`.cells`: a cell's run; :mod:`.recording`: the session's notebook (``--save``,
  Ctrl-X s);
* :mod:`.layout`: the prompt session; :mod:`.style`: input styles;
* :mod:`.completion` (Tab), :mod:`.history` (file + kernel history), :mod:`.pager`
  (pager, editor).

The rules of the screen: while a prompt is up prompt_toolkit owns the terminal (raw
mode) and output is written above it; while a cell runs there is no prompt, output is
written in arrival order and SIGINT (Ctrl-C) interrupts the kernel; a pager or editor
gets the terminal with SIGINT ignored; the next ``In [n]:`` appears only after the
cell's reply *and* its ``idle``; the first ``In [1]:`` of a kernel kconsole started
appears at once, while the kernel boots (``starting`` in the toolbar), and Enter, Tab
and F1 wait for the kernel's answer. Every cell is recorded in memory
(:class:`~kconsole.notebook.NotebookRecorder`), so Ctrl-X s works without ``--save``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import TextIO

from prompt_toolkit.application import get_app_or_none
from prompt_toolkit.history import History

from ..client import KernelError
from ..errors import ExitStatus
from ..kernel_connection import (
    SELF_EXIT_WAIT,
    ConsoleError,
    KernelConnection,
    exit_command,
)
from ..notebook import NotebookRecorder
from ..output import OutputPrinter
from ..protocol import Message
from ..transport import TransportError
from .cells import CellsPart
from .completion import KernelCompleter
from .enter import EnterPart
from .history import DEFAULT_HISTORY_SIZE, SessionHistory, history_for, merge_kernel_history
from .layout import build_session, lexer_for, replay_typed_ahead
from .questions import QuestionsPart
from .recording import RecordingPart
from .screen import ScreenPart
from .sigint import SigintPart
from .status import Status
from .stdin import StdinPart
from .typeahead import KeyHold


class _KernelNeverCameUp(Exception):
    """Ends the prompt when a kernel that was starting failed (Repl._start_error)."""


class Repl(CellsPart, EnterPart, QuestionsPart, SigintPart, StdinPart, RecordingPart, ScreenPart):
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
        self.client = conn.client
        #: Why the kernel never came up (a start still under way failed).
        self._start_error: ConsoleError | None = None
        #: The death of the kernel was told above the prompt (as it happened): a cell
        #: it took down does not tell it again.
        self._death_told = False
        self._start_watch: asyncio.Task[None] | None = None
        self.printer = printer
        self.stdout = stdout or sys.stdout
        self.show_other_output = show_other_output
        self.banner = banner
        self.merge_kernel_history = merge_kernel_history
        self.toolbar = toolbar
        self.vi_mode = vi_mode
        self.confirm_exit = confirm_exit
        self.status = Status(conn, toolbar=toolbar, vi_mode=vi_mode)
        self.keep_kernel_on_exit = None
        self._next_input = ""
        #: Counts restarts (an input_request of an earlier kernel is not answered).
        self._generation = 0
        self._restart_task = None
        #: Double Ctrl-C: the restart question asked while a cell runs.
        self._restart_offer = None
        #: Ctrl-X r: the restart question asked at the prompt.
        self._question = None
        self._init_recording(recorder)
        self._init_screen()
        self._init_cells()
        self._init_sigint()
        self._init_stdin()
        self._init_prompt(history, history_size, style)

    def _init_prompt(self, history: History | None, history_size: int, style: str | None) -> None:
        # Until a starting kernel answers, its kernelspec says what language it speaks.
        conn = self.conn
        language_info = conn.language_info or {"name": conn.spec.language if conn.spec else ""}
        language = str(language_info.get("name") or "unknown")
        self.history = history if history is not None else history_for(language, history_size)
        if isinstance(self.history, SessionHistory):
            # A history file that fails is said once, then kept in memory.
            self.history.on_problem = self.note
            if self.history.problem is not None:
                self.note(self.history.problem)
        self.completer = KernelCompleter(
            self.client, wait_ready=self._kernel_ready, hold_redraws=self._redraws_held
        )
        self.session = build_session(self, language_info, style=style)
        #: Keys typed behind an Enter that waits (for is_complete or the kernel's
        #: start) are held until it is done: each Enter acts as if pressed on its own.
        self._keys = KeyHold(self.session.app)
        self._bind_client()
        replay_typed_ahead(self.session)

    @property
    def execution_count(self) -> int:
        """The last execution count (the prompt shows the next)."""
        return self.status.count

    @execution_count.setter
    def execution_count(self, count: int) -> None:
        self.status.count = count

    def _bind_client(self) -> None:
        # Once: the connection's client is the same object for the whole session (a
        # port clash or a replacement kernel moves it to another transport).
        self.client = self.completer.client = self.status.client = self.conn.client
        self.client.on_broadcast = self._on_broadcast
        self.client.on_dead = self._on_dead
        self.client.on_status = self._on_status
        self.client.on_restarted = self._on_new_kernel  # restarted by its server
        self.client.on_note = self.note

    def _on_status(self, msg: Message, own: bool) -> None:
        if self.status.on_status(msg, own, self._prompt_active):
            self._invalidate()

    def _on_dead(self, reason: str) -> None:
        if self.status.restarting:
            return  # a restart stops the old kernel: expected, not news
        if self.conn.kernel_gone:
            # A restarted Jupyter Server forgot its kernels: nothing to restart.
            offer = (
                f" Press Enter to {self.conn.replace_offer}, Ctrl-D to leave."
                if self.conn.can_replace
                else ""
            )
            text = f"[kconsole] {self.conn.control.gone_reason}.{offer}"
        elif self.conn.unreachable:
            # Refused or given up on: the kernel may be running still; "died" is not true.
            text = f"[kconsole] {reason}; the kernel cannot be reached from here."
        else:
            hint = " Press Enter to restart it." if self.conn.can_restart else ""
            text = f"[kconsole] the kernel died: {reason}.{hint}"
            self._death_told = True
        self._emit(lambda: self.printer.note(text))
        self._invalidate()

    def _on_new_kernel(self) -> None:
        """A restarted or replaced kernel answers now: a fresh count and state, the
        old kernel's views and death forgotten."""
        self.status.reset()
        self._generation += 1
        self.printer.kernel_restarted()
        self._death_told = False
        self._invalidate()

    async def _restart_kernel(self) -> bool:
        """Restart the kernel (the caller checked can_restart); say how it went."""
        self.status.restarting = True
        self._invalidate()
        self.note("restarting the kernel...")
        try:
            await self.conn.restart()
        except (KernelError, ConsoleError, TransportError) as e:
            self.note(f"restart failed: {e}")
            return False
        finally:
            self.status.restarting = False
            self._invalidate()
        self._on_new_kernel()
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
        self.status.restarting = True
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
            self.status.restarting = False
            self._invalidate()
        self.status.relabel()
        self._on_new_kernel()
        self.note(f"new kernel {self.conn.kernel_id or ''} started")
        return True

    async def _merge_kernel_history(self) -> None:
        if self.merge_kernel_history:
            await merge_kernel_history(self.history, self.client)

    async def _fetch_execution_count(self) -> None:
        with contextlib.suppress(KernelError, asyncio.TimeoutError):
            reply = await asyncio.wait_for(
                self.client.execute("", silent=True, store_history=False), 5.0
            )
            count = reply.content.get("execution_count")
            if isinstance(count, int):
                self.execution_count = count

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
        lexer = lexer_for(self.conn.language_info)
        if lexer is not None:
            self.session.lexer = lexer
        self._start_recording()
        self.status.came_up()  # its label, and the end of its "starting"
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
                    code = await self._ask(self.session, self.status.prompt, default=default)
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
                return ExitStatus.KERNEL_DIED
            if not code.strip():
                continue
            status = await self._after_cell(await self.run_cell(code))
            if status is not None:
                return status

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
