"""Script mode's input: stdin read line by line, grouped into cells.

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
cell is answered by it (and the lines after it) (see :meth:`LineReader.unread`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import shutil
import subprocess
import threading
from collections.abc import Awaitable, Callable
from typing import TextIO

from .errors import KconsoleError

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


class CellReader:
    """Reads stdin cell by cell (see the module docstring).

    ``python``: group lines by Python's rules; else ask ``is_complete(code)`` (the
    kernel's status for the code so far) for each new line. ``bash``: the kernel runs
    bash, so when it cannot tell, ``bash -n`` tells instead.
    """

    def __init__(
        self,
        reader: LineReader,
        is_complete: Callable[[str], Awaitable[str]],
        *,
        python: bool = False,
        bash: bool = False,
    ) -> None:
        self.reader = reader
        self.python = python
        self._is_complete = is_complete
        #: The kernel runs bash (see _bash_status).
        self.bash = bash
        self._grouper = PythonCellGrouper()
        #: The kernel answered is_complete with "unknown": it is not asked again.
        self._kernel_cannot_tell = False
        #: Such a kernel runs bash: ``bash -n`` tells instead (see :meth:`_bash_status`).
        self._bash = False

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
            status = await self._is_complete(code)
            if status in ("complete", "invalid"):
                return code
            if status == "unknown":
                # The kernel cannot tell (bash_kernel): sending each line alone would
                # leave a `for ...; do` hanging; blank lines delimit cells from now on,
                # those `bash -n` finds complete for a bash kernel.
                self._kernel_cannot_tell = True
                self._bash = self.bash and bool(shutil.which("bash"))

    async def _bash_status(self, code: str) -> str:
        """is_complete's answer for bash code, from ``bash -n`` (it parses, never runs):
        "incomplete" while a block, a quote or a heredoc is open."""
        status = await asyncio.get_running_loop().run_in_executor(None, _bash_check, code)
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


def _bash_check(code: str) -> str:
    """``bash -n``'s verdict on ``code``: "incomplete", "complete", "invalid", or
    "unknown" when bash cannot be run."""
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


__all__ = [
    "CellReader",
    "LineReader",
    "PythonCellGrouper",
    "PythonLexer",
    "ScriptInputError",
    "split_python_cells",
]
