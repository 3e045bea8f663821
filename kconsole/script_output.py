"""Script mode's output: stdout and stderr as python3 would write them.

Output the kernel sends as stderr, tracebacks and kconsole's own notes go to stderr,
uncoloured unless it is a terminal. Stdout is flushed as soon as the output received
is printed, so a long cell's output reaches a pipe as it comes. A write that fails
(a closed pipe, a full disk), or the reader of a stdout pipe leaving while nothing is
written (:meth:`ScriptOutput.watch_stdout`), sets :attr:`ScriptOutput.output_lost`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat
from collections.abc import Callable
from typing import Any, TextIO

from .cell_runner import exception_name
from .output import OutputPrinter, error_text
from .protocol import Message
from .sanitize import terminal_text


class ScriptOutput:
    """Where script mode's output goes (see the module docstring)."""

    def __init__(self, printer: OutputPrinter, stderr: TextIO) -> None:
        self.printer = printer
        self.stderr = stderr
        try:
            err_tty = bool(stderr.isatty())
        except (AttributeError, ValueError, OSError):
            err_tty = False
        #: Tracebacks keep the kernel's colours only on a terminal.
        self.err_color = err_tty
        #: Writing the output failed (a closed pipe, a full disk): no more cells run.
        self.write_error: OSError | None = None
        self.output_lost = asyncio.Event()
        #: Stops watching for the reader of a stdout pipe to leave (see watch_stdout).
        self.unwatch_stdout: Callable[[], None] = lambda: None
        self._flush_pending = False
        #: A Python kernel: SystemExit is an exit status, expression values not shown.
        self.python = False
        #: The cell raised SystemExit with this value (a Python kernel).
        self.system_exit: str | None = None
        #: The errors of the cell running are kconsole's own code's (not shown).
        self.quiet_errors = False

    def show(self, msg: Message, own: bool = True) -> None:
        """Print one output message: stderr streams and errors to stderr."""
        if self.write_error is not None:
            return  # stdout is gone: nothing more is said, on stderr either
        t = msg.msg_type
        if t == "stream" and msg.content.get("name") == "stderr":
            if self.system_exit is None:
                self.write_err(str(msg.content.get("text", "")))
            # else: IPython's "To exit: use 'exit'..." warning after a SystemExit
            return
        if t == "error":
            if not self.quiet_errors:
                self.error(msg.content)
            return
        if t == "execute_result" and own and self.python:
            # python3 never prints an expression statement's value (a write()'s count,
            # os.system's status); the kernel's Out[n] would be output python3 has not.
            return
        try:
            self.printer.handle(msg, own=own)
        except OSError as e:
            self.output_failed(e)
            return
        self._flush_soon()

    def broadcast(self, msg: Message) -> None:
        """Output of no cell of ours (background threads after idle): on stdout too,
        in order; the kernel's own status changes as a note."""
        if msg.msg_type == "status":
            state = msg.content.get("execution_state")
            self.note(f"[kernel {state}]")
        elif msg.msg_type != "execute_input":
            self.show(msg)

    def _flush_soon(self) -> None:
        """Flush stdout once the messages already received are printed: a cell's output
        reaches a pipe while the cell runs, as python3's flush=True does, and a closed
        pipe is noticed then (``| head -1``). Not once per message: floods stay fast."""
        if self._flush_pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._flush_pending = True
        loop.call_soon(self._flush_scheduled)

    def _flush_scheduled(self) -> None:
        self._flush_pending = False
        self.flush()

    def error(self, content: dict[str, Any]) -> None:
        """Show an error (its traceback) on stderr; a Python SystemExit is remembered
        instead (python3 exits with the code and prints no traceback)."""
        ename = str(content.get("ename", "Error"))
        if exception_name(ename) == "SystemExit" and self.python:
            self.system_exit = str(content.get("evalue", ""))
            return
        # As the REPL shows it (a traceback that is no list is not split into
        # characters); but a failed cell says something, for its non-zero status.
        text = error_text(content) or "the kernel reported an error and gave no details\n"
        self.write_err(text)

    def write_err(self, text: str) -> None:
        """Write to stderr, after what is pending on stdout (both may be one terminal).

        Kernel text passes the one sanitizer: colours only when stderr is a terminal,
        never a title, clipboard or mode sequence (stderr is often the same screen)."""
        text = terminal_text(text, allow_sgr=self.err_color)
        if not text:
            return
        self.flush()
        with contextlib.suppress(OSError, ValueError):
            self.stderr.write(text)
            self.stderr.flush()

    def note(self, text: str) -> None:
        """One line of kconsole's own, on stderr."""
        self.write_err(text + "\n")

    def finish_views(self) -> None:
        """The widgets the cell displayed, printed once as they ended (a progress bar
        at 100 %): no redraws in a script's output."""
        if self.write_error is not None:
            return
        try:
            self.printer.finish_cell()
        except OSError as e:
            self.output_failed(e)

    def end_cell(self) -> None:
        """A cell is over: its widgets printed, stdout flushed."""
        self.finish_views()
        self.flush()

    def flush(self) -> None:
        """Flush stdout (a failure is a lost output)."""
        if self.write_error is not None:
            return
        try:
            self.printer.flush()
        except OSError as e:
            self.output_failed(e)

    def output_failed(self, error: OSError) -> None:
        """Stdout cannot be written any more: no more cells run."""
        self.unwatch_stdout()
        self.write_error = error
        self.output_lost.set()
        if isinstance(error, BrokenPipeError):
            # The reader is gone (`| head`): nothing more to say, and the interpreter's
            # own flush at exit must not fail again on the dead pipe.
            with contextlib.suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self.printer.stream.fileno())
                os.close(devnull)

    def write_out(self, text: str) -> bool:
        """Write kconsole's own text to stdout; False when stdout is gone."""
        if self.write_error is not None:
            return False
        try:
            self.printer.stream.write(text)
            self.printer.flush()
        except OSError as e:
            self.output_failed(e)
            return False
        return True

    def page(self, text: str) -> None:
        """``obj?`` in a script: the help goes to stdout (no pager), uncoloured in a
        pipe."""
        text = terminal_text(text, allow_sgr=self.printer.color).rstrip("\n") + "\n"
        self.write_out(text)
        self.printer.barrier(text=text)  # not the printer's text: nothing erases it

    def watch_stdout(self) -> None:
        """Notice the reader of a stdout pipe leaving (`| head -1`) while the cell
        prints nothing: a write would fail only at the cell's next output, perhaps
        never. The write end of a pipe whose reader left reports an error, which the
        event loop's selector gives as "readable"; nothing else makes it so."""
        try:
            fd = self.printer.stream.fileno()
            if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                return  # a file or a terminal: no reader to leave
            loop = asyncio.get_running_loop()

            def gone() -> None:
                self.output_failed(BrokenPipeError(errno.EPIPE, "the reader of stdout left"))

            loop.add_reader(fd, gone)
        except (AttributeError, ValueError, OSError, NotImplementedError):
            return  # no such watch here: a failed write still tells

        def unwatch() -> None:
            self.unwatch_stdout = lambda: None
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(fd)

        self.unwatch_stdout = unwatch
