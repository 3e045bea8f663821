"""Script mode: code piped on stdin, output to stdout, no screen handling.

Theory of the cells
-------------------
With a Python kernel (``language_info.name == "python"``) kconsole groups the lines
itself, by Python's own rules, one top-level statement per cell, so that the output is
that of ``python3 FILE``: a simple statement ends with its last line (once brackets,
strings and backslash continuations are closed); a compound one (``def``, ``for``,
``class``, a decorator, a one-line ``if x: y``...) ends before the next line at column 0
that does not continue it (``else``, ``elif``, ``except``, ``finally``, the function
after a decorator). Blank lines and comments never end a block. A string-literal
statement (a module docstring) goes with the statement after it, so that the kernel
does not echo it, and is dropped at the end. IPython's ``%%cell`` magics run until a
blank line; ``%line`` magics and ``!shell`` lines are one line each.
Other kernels are asked ``is_complete`` for each new line, as the Python REPL does for
piped input, and a blank line closes a block; a kernel that answers "unknown" (it cannot
tell) gets cells delimited by blank lines, and when it runs bash (bash_kernel) only at
those where ``bash -n`` finds the code complete: a blank line in a loop, a function or
a heredoc does not cut it (the kernel would wait for the rest for ever).

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
import errno
import os
import queue
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

from .client import EOFInput, KernelDied, KernelTimeout, ReplyLost
from .errors import KconsoleError
from .kernel_connection import (
    EXIT_KERNEL_DIED,
    GONE_FROM_SERVER,
    KernelConnection,
    exit_command,
    payloads_of,
)
from .notebook import NotebookRecorder
from .output import OutputPrinter, error_text
from .protocol import Message
from .sanitize import terminal_text

#: A logical line starting so opens a compound statement (or is a stray clause of one:
#: the kernel reports it). ``match`` is a soft keyword: a header ending in ":" says it.
_COMPOUND = re.compile(r"(?:if|elif|else|for|while|try|except|finally|with|def|class|async)\b|@")
#: A line at column 0 starting so continues the compound statement before it.
_CONTINUES = re.compile(r"(?:else|elif|except|finally)\b")
#: A string literal alone (possibly implicitly concatenated, with a prefix).
_STRING_START = re.compile(r"[rRbBuUfF]{0,2}['\"]")


class PythonLexer:
    """What the tokenizer knows at the end of each line fed: whether a bracket, a string
    or a backslash continuation is open, and the last significant character of the
    logical line so far. Only what cell boundaries need: no tokens are built."""

    def __init__(self) -> None:
        self.depth = 0
        #: The open string's quote (one or three quote characters), or None.
        self.quote: str | None = None
        self.backslash = False
        self.last = ""

    @property
    def open(self) -> bool:
        """Whether the logical line goes on after the lines fed so far."""
        return self.depth > 0 or self.quote is not None or self.backslash

    def feed(self, line: str) -> None:
        """Take one physical line (ending with "\\n")."""
        if not self.open:
            self.last = ""
        self.backslash = False
        i, n = 0, len(line)
        while i < n:
            c = line[i]
            if self.quote is not None:
                if c == "\\":
                    i += 2  # an escaped character, an escaped newline included
                elif line.startswith(self.quote, i):
                    i += len(self.quote)
                    self.quote = None
                    self.last = c
                elif c == "\n" and len(self.quote) == 1:
                    self.quote = None  # unterminated: the kernel reports the error
                    i += 1
                else:
                    i += 1
                continue
            if c == "#":
                break
            if c in "'\"":
                self.quote = c * 3 if line.startswith(c * 3, i) else c
                i += len(self.quote)
                continue
            if c == "\\" and line[i + 1 :] in ("\n", ""):
                self.backslash = True
                break
            if c in "([{":
                self.depth += 1
            elif c in ")]}":
                self.depth = max(0, self.depth - 1)
            if not c.isspace():
                self.last = c
            i += 1


def _is_string_statement(code: str) -> bool:
    """Whether ``code`` (one complete simple statement) is only a string literal."""
    import ast
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes: the kernel warns itself
            body = ast.parse(code).body
    except (SyntaxError, ValueError):
        return False
    return (
        len(body) == 1
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    )


class PythonCellGrouper:
    """Groups lines of a Python script into cells, one top-level statement each (see
    the module docstring). Sans IO: :meth:`feed` one line at a time, :meth:`finish` at
    EOF."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.lines: list[str] = []
        self.lexer = PythonLexer()
        #: None (no code yet), "first" (in the first logical line), "simple",
        #: "compound" or "magic" (an IPython %%cell magic).
        self.kind: str | None = None
        self.head = ""
        #: The last logical line at column 0 is a decorator: the next one belongs to it.
        self.decorator = False
        #: A docstring is held for the next statement.
        self.held = False

    def feed(self, line: str) -> tuple[str | None, bool]:
        """Offer one line; returns ``(cell, taken)``.

        ``cell`` is a complete cell or None. ``taken`` is False when the line was not
        taken because it starts the next cell: offer it again (a cell is then always
        returned, so this cannot loop).
        """
        # CRLF or a missing final newline must not change the grouping (python3 does
        # not care); the kernel gets plain "\n".
        if not line.endswith("\n"):
            line += "\n"
        if line.endswith("\r\n"):
            line = line[:-2] + "\n"
        if self.kind == "magic":
            if not line.strip():
                return self._take(), True
            self.lines.append(line)
            return None, True
        if self.lexer.open:
            # Inside brackets, a string or after a backslash: whatever it is, it is ours.
            self.lines.append(line)
            self.lexer.feed(line)
            return self._line_done()
        body = line.lstrip(" \t\f")
        if body.isspace() or body.startswith("#"):
            # Blank lines and comments never end a block (python3 ignores them).
            if self.kind is not None or body.startswith("#"):
                self.lines.append(line)
            return None, True
        at_col0 = line.lstrip("\f")[:1] not in (" ", "\t")
        if self.kind is None:
            if body.startswith("%%") and self.held:
                return self._take(), False  # a cell magic must be its cell's first line
            if body.startswith("%%"):
                self.kind = "magic"
                self.lines.append(line)
                return None, True
            if body.startswith(("%", "!")):
                self.kind = "simple"  # IPython line magics and shell escapes: one line
                self.lines.append(line)
                return self._take(), True
            self.kind = "first"
            self.head = body
        elif (
            self.kind == "compound"
            and at_col0
            and not self.decorator
            and not _CONTINUES.match(body)
        ):
            return self._take(), False
        if at_col0:
            self.decorator = body.startswith("@")
        self.lines.append(line)
        self.lexer.feed(line)
        return self._line_done()

    def _line_done(self) -> tuple[str | None, bool]:
        if self.lexer.open:
            return None, True
        if self.kind == "first":
            compound = _COMPOUND.match(self.head) or self.lexer.last == ":"
            self.kind = "compound" if compound else "simple"
        if self.kind == "simple":
            if _STRING_START.match(self.head) and _is_string_statement("".join(self.lines)):
                self.kind = None  # a docstring: sent with the next statement
                self.held = True
                return None, True
            return self._take(), True
        return None, True

    def _take(self) -> str | None:
        lines = self.lines
        if not self.lexer.open:
            # Trailing blank lines of a block go, but not one a backslash joins to the
            # line before it: that blank line is what ends the statement.
            while lines and lines[-1].isspace():
                if len(lines) > 1 and lines[-2].endswith("\\\n"):
                    break
                lines.pop()
        has_code = self.kind is not None or self.held
        self._reset()
        return "".join(lines) if has_code else None

    def finish(self) -> str | None:
        """At EOF: the last cell, or None when nothing but blanks, comments and string
        literals is left (a string statement does nothing; a kernel would echo it)."""
        if self.kind is None:
            self._reset()
            return None
        return self._take()


def split_python_cells(text: str) -> list[str]:
    """The cells :class:`PythonCellGrouper` makes of a whole script (for tests and
    tools: script mode feeds it line by line)."""
    grouper = PythonCellGrouper()
    cells: list[str] = []
    # Lines end where script mode ends them: at "\n", "\r\n" or a lone "\r".
    for m in re.finditer(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z", text):
        line = m.group()
        taken = False
        while not taken:
            cell, taken = grouper.feed(line)
            if cell is not None:
                cells.append(cell)
    last = grouper.finish()
    if last is not None:
        cells.append(last)
    return cells


class ScriptInputError(KconsoleError):
    """Stdin cannot be read as text (bytes not in its encoding, an unknown encoding)."""


#: PEP 263: ``# -*- coding: latin-1 -*-`` on one of the first two lines.
_CODING = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")


def _settle(fut: asyncio.Future[str], line: str, error: BaseException | None) -> None:
    """Hand a line (or the error reading it) read in the stdin thread to its reader."""
    if fut.done():  # the reader was cancelled meanwhile
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(line)


class LineReader:
    """Reads stdin one line at a time without blocking the event loop; a line read
    ahead (the one that ended a cell) can be put back for the next reader.

    A stream with a binary buffer (sys.stdin) is decoded here as python3 decodes a
    source file: UTF-8 unless a coding declaration on line 1 or 2 names another
    encoding, a byte order mark skipped, whatever the locale.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.eof = False
        self._back: list[str] = []
        self._binary = getattr(stream, "buffer", None)
        self.encoding = "utf-8"
        self.line_number = 0
        self._may_declare = False
        #: Reads asked of the stdin thread: (loop, future) pairs.
        self._jobs: (
            queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, asyncio.Future[str]]] | None
        ) = None

    def unread(self, line: str) -> None:
        """Put ``line`` back: the next :meth:`readline` returns it."""
        self._back.append(line)

    async def readline(self) -> str | None:
        """The next line, None at EOF; raises ScriptInputError (then EOF follows)."""
        if self._back:
            return self._back.pop()
        if self.eof:
            return None
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[str] = loop.create_future()
        if self._jobs is None:
            # One daemon thread, not the loop's executor: asyncio.run joins that at exit,
            # and a read that never returns (a writer that goes on, Ctrl-C pressed while
            # waiting for a line) would keep kconsole from ever leaving.
            self._jobs = queue.SimpleQueue()
            threading.Thread(target=self._serve, daemon=True, name="kconsole-stdin").start()
        self._jobs.put((loop, fut))
        try:
            line = await fut
        except ScriptInputError:
            self.eof = True
            raise
        if not line:
            self.eof = True
            return None
        return line

    def _serve(self) -> None:
        assert self._jobs is not None
        while True:
            loop, fut = self._jobs.get()
            try:
                line, error = self._read(), None
            except BaseException as e:  # handed to the reader, whatever it is
                line, error = "", e
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle, fut, line, error)

    def _read(self) -> str:
        if self._binary is None:
            line = self.stream.readline()
            self.line_number += 1
        else:
            raw = self._binary.readline()
            self.line_number += 1
            # Line 2 may declare it only after a comment or blank line 1 (as in python3).
            if self.line_number == 1 or (self.line_number == 2 and self._may_declare):
                self._may_declare = raw.lstrip()[:1] in (b"#", b"")
                self._declared_coding(raw)
            try:
                line = raw.decode(self.encoding)
            except UnicodeDecodeError as e:
                raise ScriptInputError(
                    f"line {self.line_number} of stdin is not valid {self.encoding}"
                    f" (byte {raw[e.start]:#04x}); declare its encoding with `# coding: ...`"
                ) from None
        if self.line_number == 1:
            # A byte order mark (a file saved on Windows): python3 skips it, and a
            # kernel given it would fail on the first statement.
            line = line.removeprefix("\ufeff")
        return line

    def _declared_coding(self, raw: bytes) -> None:
        m = _CODING.match(raw)
        if m is None:
            return
        import codecs

        name = m.group(1).decode("ascii", "replace")
        try:
            self.encoding = codecs.lookup(name).name
        except LookupError:
            raise ScriptInputError(
                f"line {self.line_number} of stdin declares an unknown encoding: {name}"
            ) from None


#: The status of a script stopped by KeyboardInterrupt (128 + SIGINT, as a shell reports
#: python3's death by the signal).
EXIT_INTERRUPTED = 130

#: How long a cell whose output can no longer be written gets to stop once interrupted.
INTERRUPT_GRACE = 2.0


def _retrieved(task: asyncio.Future[Any]) -> None:
    """Done callback of a task nobody awaits: its failure is not worth a warning."""
    if not task.cancelled():
        task.exception()


def exception_name(ename: Any) -> str:
    """A Python kernel's ``ename`` as ipykernel writes it: xeus-python sends the class's
    repr (``<class 'SystemExit'>``), which would hide SystemExit and KeyboardInterrupt."""
    name = str(ename)
    m = re.fullmatch(r"<class '([\w.]+)'>", name)
    return m.group(1) if m else name


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
        try:
            err_tty = bool(self.stderr.isatty())
        except (AttributeError, ValueError, OSError):
            err_tty = False
        #: Tracebacks keep the kernel's colours only on a terminal.
        self.err_color = err_tty
        self.failed = False
        #: Writing the output failed (a closed pipe, a full disk): no more cells run.
        self.write_error: OSError | None = None
        self._output_lost = asyncio.Event()
        #: Stops watching for the reader of a stdout pipe to leave (see _watch_stdout).
        self._unwatch_stdout: Callable[[], None] = lambda: None
        self._flush_pending = False
        #: Whether lines are grouped by Python's rules (see the module docstring).
        self.python = False
        self._grouper = PythonCellGrouper()
        #: The kernel answered is_complete with "unknown": it is not asked again.
        self._kernel_cannot_tell = False
        #: Such a kernel runs bash: ``bash -n`` tells instead (see :meth:`_bash_status`).
        self._bash = False
        #: The cell raised SystemExit with this value (a Python kernel).
        self.system_exit: str | None = None
        #: Stdin could not be read as text: no more cells run.
        self.input_error: ScriptInputError | None = None
        #: The running cell's error was published on IOPub (not only in its reply).
        self._error_shown = False
        self._kernel_died = False
        #: The running cell (see _on_sigint), and whether Ctrl-C interrupted it already.
        self._running: asyncio.Future[Message] | None = None
        self._interrupting: asyncio.Task[str] | None = None
        #: Ctrl-C left the script (the task cancelled is run's).
        self._left_by_sigint = False
        #: Ctrl-C was pressed at all: the script ends with 130, and more of it is ignored.
        self._sigint_seen = False
        #: The errors of the cell running are kconsole's own code's (not shown).
        self._quiet_errors = False
        self._main: asyncio.Task[Any] | None = None
        conn.client.on_broadcast = self._broadcast

    def _print(self, msg: Message, own: bool = True) -> None:
        if self.write_error is not None:
            return  # stdout is gone: nothing more is said, on stderr either
        t = msg.msg_type
        if t == "stream" and msg.content.get("name") == "stderr":
            if self.system_exit is None:
                self._write_err(str(msg.content.get("text", "")))
            # else: IPython's "To exit: use 'exit'..." warning after a SystemExit
            return
        if t == "error":
            if not self._quiet_errors:
                self._error(msg.content)
            return
        if t == "execute_result" and own and self.python:
            # python3 never prints an expression statement's value (a write()'s count,
            # os.system's status); the kernel's Out[n] would be output python3 has not.
            return
        try:
            self.printer.handle(msg, own=own)
        except OSError as e:
            self._output_failed(e)
            return
        self._flush_soon()

    def _flush_soon(self) -> None:
        """Flush stdout once the messages already received are printed: a cell's output
        reaches a pipe while the cell runs, as python3's flush=True does, and a closed
        pipe is noticed then (``| head -1``). Not once per message: floods stay fast."""
        if self._flush_pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._flush()
            return
        self._flush_pending = True
        loop.call_soon(self._flush_scheduled)

    def _flush_scheduled(self) -> None:
        self._flush_pending = False
        self._flush()

    def _error(self, content: dict[str, Any]) -> None:
        ename = str(content.get("ename", "Error"))
        if exception_name(ename) == "SystemExit" and self.python:
            # python3 exits with the code and prints no traceback.
            self.system_exit = str(content.get("evalue", ""))
            return
        # As the REPL shows it (a traceback that is no list is not split into
        # characters); but a failed cell says something, for its non-zero status.
        text = error_text(content) or "the kernel reported an error and gave no details\n"
        self._write_err(text)

    def _write_err(self, text: str) -> None:
        """Write to stderr, after what is pending on stdout (both may be one terminal).

        Kernel text passes the one sanitizer: colours only when stderr is a terminal,
        never a title, clipboard or mode sequence (stderr is often the same screen)."""
        text = terminal_text(text, allow_sgr=self.err_color)
        if not text:
            return
        self._flush()
        with contextlib.suppress(OSError, ValueError):
            self.stderr.write(text)
            self.stderr.flush()

    def _note(self, text: str) -> None:
        self._write_err(text + "\n")

    def _finish_views(self) -> None:
        """The widgets the cell displayed, printed once as they ended (a progress bar
        at 100 %): no redraws in a script's output."""
        if self.write_error is not None:
            return
        try:
            self.printer.finish_cell()
        except OSError as e:
            self._output_failed(e)

    def _flush(self) -> None:
        if self.write_error is not None:
            return
        try:
            self.printer.flush()
        except OSError as e:
            self._output_failed(e)

    def _output_failed(self, error: OSError) -> None:
        self._unwatch_stdout()
        self.write_error = error
        self._output_lost.set()
        if isinstance(error, BrokenPipeError):
            # The reader is gone (`| head`): nothing more to say, and the interpreter's
            # own flush at exit must not fail again on the dead pipe.
            with contextlib.suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self.printer.stream.fileno())
                os.close(devnull)

    def _broadcast(self, msg: Message) -> None:
        # Output of background threads after idle still belongs on stdout, in order.
        if msg.msg_type == "status":
            state = msg.content.get("execution_state")
            self._note(f"[kernel {state}]")
        elif msg.msg_type != "execute_input":
            self._print(msg)

    def _write_out(self, text: str) -> bool:
        """Write kconsole's own text to stdout; False when stdout is gone."""
        if self.write_error is not None:
            return False
        try:
            self.printer.stream.write(text)
            self.printer.flush()
        except OSError as e:
            self._output_failed(e)
            return False
        return True

    async def _answer_input(self, prompt: str, password: bool) -> str:
        shown = terminal_text(prompt, allow_sgr=self.printer.color)
        if not self._write_out(shown):
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
            self._write_out("\n")
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
        nxt = asyncio.ensure_future(self.next_cell())
        lost = asyncio.ensure_future(self._output_lost.wait())
        try:
            await asyncio.wait({nxt, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not nxt.done():
                nxt.cancel()
        if nxt.cancelled():
            return None
        return nxt.result()

    async def next_cell(self) -> str | None:
        """Read lines until they form a cell; None at EOF with nothing pending."""
        if self.python:
            return await self._next_python_cell()
        lines: list[str] = []
        while True:
            line = await self.reader.readline()
            if line is None:
                return "".join(lines) if "".join(lines).strip() else None
            if not lines and not line.strip():
                continue  # blank lines between cells
            lines.append(line)
            code = "".join(lines)
            # A blank line closes a block, as in the REPL; but not a bash loop, function
            # or heredoc that goes on after it: the kernel would wait for its end for ever.
            if (
                lines[-1].strip() == ""
                and len(lines) > 1
                and not (self._bash and await self._bash_status(code) == "incomplete")
            ):
                return code
            if self._kernel_cannot_tell:
                continue
            status = await self._cell_status(code)
            if status in ("complete", "invalid"):
                return code
            if status == "unknown":
                # The kernel cannot tell (bash_kernel): sending each line alone would
                # leave a `for ...; do` hanging; blank lines delimit cells from now on,
                # those `bash -n` finds complete for a bash kernel.
                self._kernel_cannot_tell = True
                self._bash = self.conn.language_info.get("name") == "bash" and bool(
                    shutil.which("bash")
                )

    async def _bash_status(self, code: str) -> str:
        """is_complete's answer for bash code, from ``bash -n`` (it parses, never runs):
        "incomplete" while a block, a quote or a heredoc is open."""

        def check() -> str:
            try:
                p = subprocess.run(
                    ["bash", "-n"],
                    input=code.encode("utf-8", "surrogateescape"),
                    capture_output=True,
                    timeout=10,
                    env={**os.environ, "LC_ALL": "C"},  # its messages, in English
                )
            except (OSError, subprocess.SubprocessError):
                return "unknown"
            err = p.stderr.decode("utf-8", "replace")
            # bash 5.2 says only "unexpected EOF while looking for matching `"'" of an
            # open quote, $( or array; an open block is "unexpected end of file".
            if any(s in err for s in ("unexpected end of file", "unexpected EOF", "here-doc")):
                return "incomplete"
            return "complete" if p.returncode == 0 else "invalid"

        status = await asyncio.get_running_loop().run_in_executor(None, check)
        if status == "unknown":
            self._bash = False  # bash cannot be run after all: blank lines delimit
        return status

    async def _next_python_cell(self) -> str | None:
        grouper = self._grouper
        while True:
            line = await self.reader.readline()
            if line is None:
                return grouper.finish()
            if "\r" in line.rstrip("\r\n"):
                # Old Mac line ends: python3 reads a lone CR as a line end too.
                first, rest = re.split(r"\r(?!\n)", line, maxsplit=1)
                self.reader.unread(rest)
                line = first + "\n"
            cell, taken = grouper.feed(line)
            if not taken:
                # The line starts the next cell, and an input() of this one reads it.
                self.reader.unread(line)
            if cell is not None:
                return cell

    def _page(self, data: Any) -> None:
        # `obj?` in a script: the help goes to stdout (no pager), uncoloured in a pipe.
        text = data.get("text/plain") if isinstance(data, dict) else str(data)
        if not text:
            return
        text = terminal_text(str(text), allow_sgr=self.printer.color).rstrip("\n") + "\n"
        self._write_out(text)
        self.printer.barrier(text=text)  # not the printer's text: nothing erases it

    def _on_output(self, msg: Message) -> None:
        if self.recorder is not None:
            self.recorder.add_output(msg)
        if msg.msg_type == "error":
            self._error_shown = True
        self._print(msg)

    async def run(self) -> int:
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

    async def _execute(self, code: str, silent: bool = False) -> Message | None:
        """Run one cell; None when its output could not be written (it is interrupted)."""
        running = asyncio.ensure_future(
            self.conn.client.execute(
                code,
                silent=silent,
                on_output=self._on_output,
                on_input=self._answer_input,
                on_idle_lost=lambda: self._note(
                    "[kconsole: the kernel's idle status never came; output may be lost]"
                ),
            )
        )
        lost = asyncio.ensure_future(self._output_lost.wait())
        self._running, self._interrupting = running, None
        try:
            await asyncio.wait({running, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._running = None
            lost.cancel()
            if not running.done() and not self._output_lost.is_set():
                running.cancel()  # we are cancelled ourselves
        if not self._output_lost.is_set():
            return running.result()
        # Nobody reads what this cell prints (`| head -1`): stop it rather than let the
        # kernel flood on, and do not wait long for it.
        if not running.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.conn.interrupt(), INTERRUPT_GRACE)
            await asyncio.wait({running}, timeout=INTERRUPT_GRACE)
        if running.done():
            if not running.cancelled():
                running.exception()  # retrieved: a death after the output went is moot
        else:
            running.cancel()
            with contextlib.suppress(BaseException):
                await running
        return None

    async def _run(self) -> int:
        self.python = self.conn.language_info.get("name") == "python"
        self._watch_stdout()
        unwatch_sigint = self._watch_sigint()
        try:
            status = await self._run_cells()
            ended = not (self._kernel_died or self.write_error or self.input_error)
            joined = ended and self.python and self.conn.owns_kernel
            if joined and await self._join_threads():
                status = EXIT_INTERRUPTED  # python3's status for Ctrl-C at that point
        except asyncio.CancelledError:
            if not self._left_by_sigint:
                raise
            # Our own cancellation, handled: asyncio.run must not count it (a later
            # cancel would then be taken for a task cancelled twice, and re-raised).
            uncancel = getattr(self._main, "uncancel", None)  # Python >= 3.11
            if uncancel is not None:
                uncancel()
            self._flush()
            return EXIT_INTERRUPTED
        finally:
            unwatch_sigint()
            self._unwatch_stdout()
        return status

    def _watch_sigint(self) -> Callable[[], None]:
        """Ctrl-C (SIGINT) while a cell runs interrupts it, as in python3 (whose
        KeyboardInterrupt then ends the script with 130); a second one before that
        cell ends, or one while no cell runs, leaves at once with 130. Returns the
        undo."""
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
                signal.signal(signal.SIGINT, signal.SIG_IGN if self._sigint_seen else previous)

        return undo

    def _on_sigint(self) -> None:
        self._sigint_seen = True
        running = self._running
        if running is not None and not running.done() and self._interrupting is None:
            self._interrupting = asyncio.ensure_future(self.conn.interrupt())
            self._interrupting.add_done_callback(_retrieved)
            return
        self._left_by_sigint = True
        if self._main is not None:
            self._main.cancel()

    def _watch_stdout(self) -> None:
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
                self._output_failed(BrokenPipeError(errno.EPIPE, "the reader of stdout left"))

            loop.add_reader(fd, gone)
        except (AttributeError, ValueError, OSError, NotImplementedError):
            return  # no such watch here: a failed write still tells

        def unwatch() -> None:
            self._unwatch_stdout = lambda: None
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(fd)

        self._unwatch_stdout = unwatch

    async def _join_threads(self) -> bool:
        """Wait for the script's threads, as python3 does before it exits; their output
        still comes meanwhile. Only in a kernel kconsole started (and shuts down next):
        an attached kernel's threads are none of the script's business. True when
        Ctrl-C interrupted the wait (the traceback, of kconsole's code, is not shown)."""
        self._quiet_errors = True
        try:
            with contextlib.suppress(KernelDied, KernelTimeout, ReplyLost):
                await self._execute(_JOIN_THREADS, silent=True)
        finally:
            self._quiet_errors = False
        self._flush()
        return self._interrupting is not None

    async def _gone_from_server(self) -> bool:
        """Whether the server deleted the kernel (then said, in one line)."""
        if not await self.conn.gone_from_server():
            return False
        self._kernel_died = True
        self._flush()
        print(f"kconsole: {GONE_FROM_SERVER}", file=self.stderr)
        return True

    async def _run_cells(self) -> int:
        while True:
            try:
                code = await self._next_cell_unless_lost()
            except ScriptInputError as e:
                self.input_error = e
            if self.input_error is not None:
                self._note(f"kconsole: {self.input_error}")
                return 1
            if self.write_error is not None:
                return 1  # the reader left while the code was still to come
            if code is None:
                break
            if exit_command(code, self.conn.language_info) is not None:
                break  # the console leaves; the kernel is not told to end itself
            if self.recorder is not None:
                self.recorder.start_cell(code)
            reply = None
            self._error_shown = False
            try:
                reply = await self._execute(code)
            except KernelDied as e:
                self._kernel_died = True
                self._flush()
                if self.conn.kernel_gone:
                    # Deleted, culled or forgotten by a restart: not a death to debug.
                    print(f"kconsole: {GONE_FROM_SERVER}", file=self.stderr)
                else:
                    print(f"kconsole: kernel died: {e}", file=self.stderr)
                return EXIT_KERNEL_DIED
            except ReplyLost as e:
                lost: ReplyLost | None = e
            else:
                lost = None
            finally:
                self._finish_views()
                self._flush()
                if self.recorder is not None:
                    self.recorder.finish_cell(reply)
            if lost is not None:
                if self._interrupting is None and await self._gone_from_server():
                    return EXIT_KERNEL_DIED  # deleted: the server's shutdown lost the reply
                # The kernel is idle again but said nothing of the cell: a failed cell.
                self._note(f"kconsole: {lost}")
                self.failed = True
                if self._interrupting is not None:
                    # Ctrl-C met the kernel outside the cell's code (ipykernel then
                    # drops the reply): still a script stopped by Ctrl-C.
                    return EXIT_INTERRUPTED
                if self.python:
                    break
                continue
            if self.write_error is not None or reply is None:
                if not isinstance(self.write_error, BrokenPipeError):
                    why = f"kconsole: cannot write the output: {self.write_error}"
                    print(why, file=self.stderr)
                return 1
            if self.input_error is not None:
                self._note(f"kconsole: {self.input_error}")  # rather than the cell's EOFError
                return 1
            payload = payloads_of(reply.content)
            for p in payload:
                if p.get("source") == "page":
                    self._page(p.get("data") or {})
            error = reply.content.get("status") == "error"
            if error and not self._error_shown:
                self._error(reply.content)  # a kernel that says it in the reply only
            if (
                error
                and self._interrupting is None
                and exception_name(reply.content.get("ename")) == "KeyboardInterrupt"
                and await self._gone_from_server()
            ):
                # Nobody pressed Ctrl-C: the server interrupted the kernel to delete it.
                return EXIT_KERNEL_DIED
            if self._interrupting is not None and self.system_exit is None:
                # Ctrl-C stops the script once the cell it interrupted has ended, however
                # it ended: the signal may have reached the kernel just after its code.
                return EXIT_INTERRUPTED
            if self.system_exit is not None:
                status, message = _exit_status(self.system_exit)
                if message:
                    self._note(message)
                return status
            if error:
                self.failed = True
                ename = exception_name(reply.content.get("ename"))
                if self.python and ename == "KeyboardInterrupt":
                    return EXIT_INTERRUPTED  # python3 dies of SIGINT: a shell says 130
                if self.python:
                    break  # python3 stops at the first exception
            if any(p.get("source") == "ask_exit" for p in payload):
                if self.recorder is not None:
                    self.recorder.discard_last()
                break
        return 1 if self.failed else 0
