"""Script mode: code piped on stdin, output to stdout, no screen handling.

How stdin is grouped into cells: :mod:`kconsole.script_input`.
What goes to stdout and what to stderr: :mod:`kconsole.script_output`.

The line that ended a compound cell is the next line of stdin: an ``input()`` in that
cell is answered by it (and the lines after it), and EOF answers as EOF. The prompt is
written as python3 writes it and the answer is not echoed (on a terminal its line is
ended). With a Python kernel the
value of an expression statement (``execute_result``) is not printed: python3 prints
none (``sys.stdout.write()``'s count, ``os.system()``'s status); ``display()`` shows.

Exit status: with a Python kernel the first cell that raises stops the script, as in
``python3``: its traceback goes to stderr and the status is 1 (``SystemExit`` exits with
its code, no traceback; ``KeyboardInterrupt`` with 130, as a shell reports python3's
death by SIGINT). Ctrl-C (SIGINT) interrupts the running cell and, once it has ended
(its traceback shown), stops the script with 130, whatever the kernel; a second Ctrl-C,
or one while no cell runs, leaves at once with 130 (more while the kernel is shut down
are ignored). However it ends, a Python script in a kernel kconsole started waits for
its non-daemon threads first, as python3 does (Ctrl-C there too gives 130). Other
kernels run every cell and the status is 1 if any failed (a cell the kernel went idle on
without ever answering counts as failed, after a short grace). Output the kernel sends
as stderr, tracebacks and kconsole's own notes go to stderr, uncoloured unless it is a
terminal. Stdout is flushed as soon as the output received is printed, so a long cell's
output reaches a pipe as it comes. When stdout is closed (``| head -1``) the running
cell is interrupted and kconsole exits at once with status 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TextIO

from .cell_runner import CellOutcome, CellResult, CellRunner, Page, RunningCell, retrieve
from .client import EOFInput, KernelDied, KernelTimeout, ReplyLost
from .errors import ExitStatus
from .kernel_connection import KernelConnection, exit_command
from .notebook import NotebookRecorder
from .output import OutputPrinter
from .sanitize import terminal_text
from .script_input import CellReader, LineReader, ScriptInputError
from .script_output import ScriptOutput

#: How long a cell whose output can no longer be written gets to stop once interrupted.
INTERRUPT_GRACE = 2.0

#: What :meth:`ScriptRunner._run_one` tells the loop: run the next cell, stop (the
#: status then follows from the cells so far), or leave with this exit status.
_Next = Literal["next", "stop"] | int


def _exit_status(evalue: str) -> tuple[int, str]:
    """The exit status python3 gives for ``SystemExit(evalue)``, and what it prints."""
    value = evalue.strip()
    if value in ("", "None", "False"):
        return 0, ""
    if value == "True":
        return 1, ""
    try:
        return int(value) & 0xFF, ""  # what the OS keeps of the code
    except ValueError:
        return 1, evalue


#: Run after a Python script in a kernel kconsole started: what python3 does at exit
#: (threading._shutdown) before it exits: the threading atexit hooks first (they stop
#: idle concurrent.futures workers), then every non-daemon thread is joined. No name is
#: left in the script's namespace.
_JOIN_THREADS = """\
def _kconsole_join_threads():
    import threading
    for hook in reversed(list(getattr(threading, "_threading_atexits", []))):
        hook()
    while True:
        left = [
            t for t in threading.enumerate()
            if t.is_alive() and not t.daemon
            and t is not threading.current_thread() and t is not threading.main_thread()
        ]
        if not left:
            return
        for t in left:
            t.join()
try:
    _kconsole_join_threads()
finally:
    del _kconsole_join_threads
"""


class ScriptSigint:
    """Ctrl-C (SIGINT) in script mode. While a cell runs it interrupts it, as in python3
    (whose KeyboardInterrupt then ends the script with 130); a second one before that
    cell ends, or one while no cell runs, leaves at once: the task that installed the
    watch is cancelled (:attr:`left`)."""

    def __init__(self, interrupt: Callable[[], Awaitable[str]]) -> None:
        self._interrupt = interrupt
        #: The running cell's task, while one runs.
        self.running: asyncio.Future[Any] | None = None
        #: The interrupt Ctrl-C sent to the running cell, once it did.
        self.interrupting: asyncio.Task[str] | None = None
        #: Ctrl-C left the script (the task cancelled is the one that installed this).
        self.left = False
        #: Ctrl-C was pressed at all: the script ends with 130, and more is ignored.
        self.seen = False
        self._main: asyncio.Task[Any] | None = None

    @property
    def interrupted(self) -> bool:
        """Whether Ctrl-C interrupted the cell running (or the last one that ran)."""
        return self.interrupting is not None

    def install(self) -> Callable[[], None]:
        """Take SIGINT for the running task; returns the undo."""
        loop = asyncio.get_running_loop()
        self._main = asyncio.current_task()
        try:
            previous = signal.getsignal(signal.SIGINT)
            loop.add_signal_handler(signal.SIGINT, self._on_sigint)
        except (ValueError, RuntimeError, NotImplementedError, OSError):
            return lambda: None  # not the main thread: Ctrl-C keeps asyncio's meaning

        def undo() -> None:
            with contextlib.suppress(ValueError, RuntimeError, OSError):
                loop.remove_signal_handler(signal.SIGINT)
                # After a Ctrl-C kconsole is leaving (the kernel is being shut down, a
                # bounded wait): pressing it again must not cut that short with a
                # traceback, or leave the kernel to be killed. Else asyncio.run's own.
                signal.signal(signal.SIGINT, signal.SIG_IGN if self.seen else previous)

        return undo

    def _on_sigint(self) -> None:
        self.seen = True
        running = self.running
        if running is not None and not running.done() and self.interrupting is None:
            self.interrupting = asyncio.ensure_future(self._interrupt())
            self.interrupting.add_done_callback(retrieve)
            return
        self.left = True
        if self._main is not None:
            self._main.cancel()

    def uncancel(self) -> None:
        """The cancellation Ctrl-C caused is handled: asyncio.run must not count it (a
        later cancel would then be taken for a task cancelled twice, and re-raised)."""
        uncancel = getattr(self._main, "uncancel", None)  # Python >= 3.11
        if uncancel is not None:
            uncancel()


class ScriptRunner:
    """Runs piped code cell by cell; ``run()`` returns the exit status.

    ``stderr`` gets the kernel's stderr output, tracebacks and kconsole's notes (see
    the module docstring). ``recorder``: a :class:`~kconsole.notebook.NotebookRecorder`
    that gets every cell; it is saved when ``run()`` returns.
    """

    def __init__(
        self,
        conn: KernelConnection,
        printer: OutputPrinter,
        stdin: TextIO | None = None,
        stderr: TextIO | None = None,
        *,
        recorder: NotebookRecorder | None = None,
    ) -> None:
        self.conn = conn
        self.recorder = recorder
        self.printer = printer
        self.reader = LineReader(stdin or sys.stdin)
        self.stderr = stderr or sys.stderr
        self.out = ScriptOutput(printer, self.stderr)
        self.cells = CellRunner(
            conn,
            printer,
            recorder=recorder,
            show=self.out.show,
            ask_input=self._answer_input,
            note=lambda text: self.out.note(f"kconsole: {text}"),
            end_output=self.out.end_cell,
        )
        self.source = CellReader(self.reader, self._cell_status)
        self.failed = False
        #: Stdin could not be read as text: no more cells run.
        self.input_error: ScriptInputError | None = None
        self._kernel_died = False
        #: The script ran `exit(keep_kernel=True)`: the session keeps the kernel if it can.
        self.keep_kernel_on_exit = False
        self.sigint = ScriptSigint(lambda: self.conn.interrupt())
        conn.client.on_broadcast = self.out.broadcast

    @property
    def python(self) -> bool:
        """Whether the kernel is a Python one (python3's grouping and exit rules)."""
        return self.out.python

    @property
    def write_error(self) -> OSError | None:
        """Why the output could not be written (then no more cells run)."""
        return self.out.write_error

    @property
    def system_exit(self) -> str | None:
        """The value of the SystemExit a cell raised (a Python kernel)."""
        return self.out.system_exit

    def _error(self, content: dict[str, Any]) -> None:
        self.out.error(content)

    async def _answer_input(self, prompt: str, password: bool) -> str:
        shown = terminal_text(prompt, allow_sgr=self.printer.color)
        if not self.out.write_out(shown):
            raise EOFInput
        try:
            line = await self.reader.readline()
        except ScriptInputError as e:
            self.input_error = e  # reported after the cell, which gets EOF meanwhile
            raise EOFInput from None
        if line is None:
            raise EOFInput
        if prompt and self.printer.tty:
            # Piped input is not echoed. On a terminal the prompt's line is ended so that
            # the cell's next output (a display redrawn below) does not run into it; in
            # a pipe or a file the bytes are python3's (``name? got alice``).
            self.out.write_out("\n")
            shown += "\n"
        # The prompt is not the printer's: no clear_output erases it (it is counted, so
        # that a display above it is still updated where it is).
        self.printer.barrier(text=shown)
        # The line end is not part of the answer, a CRLF one (a Windows file) included.
        return line.removesuffix("\n").removesuffix("\r")

    async def _cell_status(self, code: str) -> str:
        try:
            reply = await self.conn.client.is_complete(code, timeout=2.0)
        except KernelTimeout:
            return "unknown"
        return str(reply.get("status", "unknown"))

    async def _next_cell_unless_lost(self) -> str | None:
        """The next cell, or None as soon as nobody reads stdout any more: a script
        whose stdin is slow to come (``(echo ...; sleep 60) | kconsole | head -1``)
        must not keep kconsole waiting for code whose output cannot be shown."""
        nxt = asyncio.ensure_future(self.source.next_cell())
        lost = asyncio.ensure_future(self.out.output_lost.wait())
        try:
            await asyncio.wait({nxt, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not nxt.done():
                nxt.cancel()
        if nxt.cancelled():
            return None
        return nxt.result()

    async def run(self) -> int:
        """Run the cells of stdin until EOF (or the script stops); the exit status."""
        if self.recorder is None:
            return await self._run()
        spec = self.conn.spec
        self.recorder.set_kernel(
            self.conn.client.kernel_info,
            name=spec.name if spec is not None else "",
            display_name=spec.display_name if spec is not None else "",
        )
        try:
            return await self._run()
        finally:
            try:
                self.recorder.save()
            except OSError as e:
                print(f"kconsole: could not save the notebook: {e}", file=self.stderr)

    async def _execute(self, code: str, *, silent: bool = False) -> CellResult | None:
        """Run one cell (recorded unless ``silent``: kconsole's own code); None when
        its output could not be written (it is interrupted)."""
        cell = self.cells.start(code, silent=silent, record=not silent)
        try:
            if await self._wait_unless_lost(cell):
                await self.cells.wait(cell)  # done: raises what the client failed with
        finally:
            result = self.cells.finish(cell, end_output=not silent)
        return None if self.out.output_lost.is_set() else result

    async def _wait_unless_lost(self, cell: RunningCell) -> bool:
        """Wait for the cell, unless nobody reads its output any more (`| head -1`):
        then stop it rather than let the kernel flood on, and do not wait long for it.
        Whether the cell ended with its output read."""
        lost: asyncio.Future[Any] = asyncio.ensure_future(self.out.output_lost.wait())
        self.sigint.running, self.sigint.interrupting = cell.task, None
        try:
            await asyncio.wait({cell.task, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.sigint.running = None
            lost.cancel()
        if not self.out.output_lost.is_set():
            return True
        if not cell.task.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.conn.interrupt(), INTERRUPT_GRACE)
            await asyncio.wait({cell.task}, timeout=INTERRUPT_GRACE)
        if not cell.task.done():
            cell.abandon()
            with contextlib.suppress(BaseException):
                await cell.task
        cell.abandon()  # a death after the output went is moot
        return False

    async def _run(self) -> int:
        language = self.conn.language_info.get("name")
        self.out.python = self.source.python = language == "python"
        self.source.bash = language == "bash"
        self.out.watch_stdout()
        unwatch_sigint = self.sigint.install()
        try:
            status = await self._run_cells()
            ended = not (self._kernel_died or self.write_error or self.input_error)
            joined = ended and self.python and self.conn.owns_kernel
            if joined and await self._join_threads():
                status = ExitStatus.INTERRUPTED  # python3's status for Ctrl-C at that point
        except asyncio.CancelledError:
            if not self.sigint.left:
                raise
            self.sigint.uncancel()
            self.out.flush()
            return ExitStatus.INTERRUPTED
        finally:
            unwatch_sigint()
            self.out.unwatch_stdout()
        return status

    async def _join_threads(self) -> bool:
        """Wait for the script's threads, as python3 does before it exits; their output
        still comes meanwhile. Only in a kernel kconsole started (and shuts down next):
        an attached kernel's threads are none of the script's business. True when
        Ctrl-C interrupted the wait (the traceback, of kconsole's code, is not shown)."""
        self.out.quiet_errors = True
        try:
            with contextlib.suppress(KernelDied, KernelTimeout, ReplyLost):
                await self._execute(_JOIN_THREADS, silent=True)
        finally:
            self.out.quiet_errors = False
        self.out.flush()
        return self.sigint.interrupted

    async def _gone_from_server(self) -> bool:
        """Whether the server deleted the kernel (then said, in one line)."""
        if not await self.conn.gone_from_server():
            return False
        self._kernel_died = True
        self.out.flush()
        print(f"kconsole: {self.conn.control.gone_reason}", file=self.stderr)
        return True

    async def _run_cells(self) -> int:
        while True:
            code: str | None = None
            try:
                code = await self._next_cell_unless_lost()
            except ScriptInputError as e:
                self.input_error = e
            if self.input_error is not None:
                self.out.note(f"kconsole: {self.input_error}")
                return 1
            if self.write_error is not None:
                return 1  # the reader left while the code was still to come
            if code is None:
                break
            keep = exit_command(code, self.conn.language_info)
            if keep is not None:
                # The console leaves; the kernel is not told to end itself.
                self.keep_kernel_on_exit = keep
                break
            step = await self._run_one(code)
            if step == "stop":
                break
            if step != "next":
                return int(step)
        return 1 if self.failed else 0

    async def _run_one(self, code: str) -> _Next:
        """Run one cell of the script, and say what comes next."""
        result = await self._execute(code)
        if result is not None and result.outcome is CellOutcome.KERNEL_DIED:
            self._kernel_died = True
            self.out.flush()
            if self.conn.kernel_gone:
                # Deleted, culled or forgotten by a restart: not a death to debug.
                print(f"kconsole: {self.conn.control.gone_reason}", file=self.stderr)
            else:
                print(f"kconsole: kernel died: {result.detail}", file=self.stderr)
            return ExitStatus.KERNEL_DIED
        if result is not None and result.outcome is CellOutcome.REPLY_LOST:
            return await self._reply_lost(result)
        if result is None or result.reply is None:
            if not isinstance(self.write_error, BrokenPipeError):
                why = f"kconsole: cannot write the output: {self.write_error}"
                print(why, file=self.stderr)
            return 1
        if self.input_error is not None:
            self.out.note(f"kconsole: {self.input_error}")  # rather than the cell's EOFError
            return 1
        return await self._after_reply(result)

    async def _reply_lost(self, result: CellResult) -> _Next:
        """The kernel is idle again but said nothing of the cell: a failed cell."""
        if not self.sigint.interrupted and await self._gone_from_server():
            return ExitStatus.KERNEL_DIED  # deleted: the server's shutdown lost the reply
        self.out.note(f"kconsole: {result.detail}")
        self.failed = True
        if self.sigint.interrupted:
            # Ctrl-C met the kernel outside the cell's code (ipykernel then drops the
            # reply): still a script stopped by Ctrl-C.
            return ExitStatus.INTERRUPTED
        return "stop" if self.python else "next"

    async def _after_reply(self, result: CellResult) -> _Next:
        """What the reply of a cell means for the script: its page payloads shown on
        stdout, an error shown if only the reply told it, python3's rules."""
        for p in result.payloads:
            if isinstance(p, Page):
                self.out.page(p.text)
        error = result.error
        if error is not None and not result.error_shown:
            self.out.error(error)  # a kernel that says it in the reply only
        interrupted = result.ename == "KeyboardInterrupt"
        if interrupted and not self.sigint.interrupted and await self._gone_from_server():
            # Nobody pressed Ctrl-C: the server interrupted the kernel to delete it.
            return ExitStatus.KERNEL_DIED
        if self.sigint.interrupted and self.system_exit is None:
            # Ctrl-C stops the script once the cell it interrupted has ended, however
            # it ended: the signal may have reached the kernel just after its code.
            return ExitStatus.INTERRUPTED
        if self.system_exit is not None:
            status, message = _exit_status(self.system_exit)
            if message:
                self.out.note(message)
            return status
        if error is not None:
            self.failed = True
            if self.python and interrupted:
                return ExitStatus.INTERRUPTED  # python3 dies of SIGINT: a shell says 130
            if self.python:
                return "stop"  # python3 stops at the first exception
        if result.ask_exit is not None:
            self.cells.discard_recorded()  # `exit` is not part of the work being saved
            self.keep_kernel_on_exit = result.ask_exit.keep_kernel
            return "stop"
        return "next"
