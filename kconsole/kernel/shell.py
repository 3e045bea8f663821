"""Code execution for the built-in kernel: the Python REPL's semantics over messages.

Theory of this module
---------------------
A cell is parsed once; every statement but a trailing expression runs with ``exec``
and the trailing expression is compiled in ``"single"`` mode, so its value goes
through ``sys.displayhook`` exactly as in the interactive interpreter (``_`` is set in
builtins, ``None`` shows nothing). The displayhook publishes ``execute_result``.
Exceptions never leave :meth:`Shell.run_cell`: they become one ``error`` output and
an error result, with the kernel's own frames cut from the traceback. ``from
__future__`` imports stick across cells (compiler flags are kept). The shell knows
nothing of sockets: it publishes through callables the kernel gives it.
"""

from __future__ import annotations
import __future__

import ast
import builtins
import contextlib
import linecache
import os
import re
import signal
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import displays as _display
from .history_store import History
from .magics import (
    UsageError,
    cell_magic_is_complete,
    continues_magic_line,
    transform_cell,
)

if TYPE_CHECKING:
    from .completer import Completer  # imported on first completion (jedi behind it)

Publish = Callable[[str, dict[str, Any], dict[str, Any] | None], None]

_FUTURE_FLAGS = 0
for _name in __future__.all_feature_names:
    _FUTURE_FLAGS |= getattr(__future__, _name).compiler_flag

#: ``obj?`` / ``obj??`` / ``?obj`` / ``??obj`` on a line of its own.
_HELP_SUFFIX = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(\?\??)\s*$")
_HELP_PREFIX = re.compile(r"^\s*(\?\??)\s*([A-Za-z_][\w.]*)\s*$")

#: The first code line's indentation (IPython's ``leading_indent``).
_LEADING_INDENT = re.compile(r"^[ \t]+")

#: Frames in these files are the kernel's, never shown in a user's traceback.
_KERNEL_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE, without importing inspect


class StdinNotImplementedError(NotImplementedError):
    """``input()`` was called but the frontend does not accept input requests."""


@dataclass
class CellResult:
    """What happened when a cell ran."""

    status: str = "ok"  # ok | error
    ename: str = ""
    evalue: str = ""
    traceback: list[str] = field(default_factory=list)
    payload: list[dict[str, Any]] = field(default_factory=list)
    user_expressions: dict[str, Any] = field(default_factory=dict)


def dedent_cell(code: str) -> str:
    """``code`` without its first code line's indentation, taken from every line that
    has it, as IPython does: pasted indented code runs instead of being an
    IndentationError. Blank lines stay, so line numbers do not change."""
    lines = code.splitlines(True)
    first = next((line for line in lines if line.strip()), "")
    m = _LEADING_INDENT.match(first)
    if m is None:
        return code
    space = m.group()
    return "".join(line[len(space) :] if line.startswith(space) else line for line in lines)


def help_request(code: str) -> tuple[str, int] | None:
    """``(name, detail_level)`` when ``code`` is IPython help syntax, else None."""
    m = _HELP_SUFFIX.match(code)
    if m:
        return m.group(1), len(m.group(2)) - 1
    m = _HELP_PREFIX.match(code)
    if m:
        return m.group(2), len(m.group(1)) - 1
    return None


class _ExitAutocall:
    """``exit`` / ``quit``: calling (or just evaluating) asks the frontend to exit."""

    def __init__(self, shell: Shell, name: str) -> None:
        self._shell = shell
        self._name = name

    def __repr__(self) -> str:
        return f"Use {self._name}() or Ctrl-D (i.e. EOF) to exit"

    def __call__(self, keep_kernel: bool = False) -> None:
        self._shell.payloads.append({"source": "ask_exit", "keepkernel": bool(keep_kernel)})


class _Helper:
    """``help``: with an argument, answers with a ``page`` payload as IPython does."""

    def __init__(self, shell: Shell) -> None:
        self._shell = shell

    def __repr__(self) -> str:
        return "Type help() for interactive help, or help(object) for help about object."

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        if not args and not kwargs:
            import pydoc

            pydoc.help()
            return
        from .inspector import help_text

        self._shell.page(help_text(args[0]))


class Shell:
    """Runs cells in a user namespace and publishes their results."""

    def __init__(
        self,
        publish: Publish,
        history: History | None = None,
        before_output: Callable[[], None] | None = None,
    ) -> None:
        self.publish = publish
        self.history = history if history is not None else History(enabled=False)
        self.before_output = before_output
        self.main_module = types.ModuleType("__main__", doc="The kconsole user namespace")
        self.user_ns: dict[str, Any] = self.main_module.__dict__
        self.user_ns["__builtins__"] = builtins
        self.execution_count = 1
        self.payloads: list[dict[str, Any]] = []
        self._flags = 0
        self._silent_cells = 0
        self._cell_count = 0  # the execution count shown for the running cell
        self._store_history = False
        self._displaying = False
        self._completer: Completer | None = None  # made on first completion
        self._loop: Any = None  # the asyncio loop top-level await runs on (made on use)
        self._figures_shown: set[int] = set()

    # -- installation ----------------------------------------------------------

    def install(self) -> None:
        """Make this shell the process's interactive interpreter (displayhook etc.)."""
        sys.modules["__main__"] = self.main_module
        sys.displayhook = self.displayhook
        builtins.display = _display.display  # type: ignore[attr-defined]
        builtins.clear_output = _display.clear_output  # type: ignore[attr-defined]
        builtins.exit = _ExitAutocall(self, "exit")  # type: ignore[assignment]
        builtins.quit = _ExitAutocall(self, "quit")  # type: ignore[assignment]
        builtins.help = _Helper(self)  # type: ignore[assignment]
        _display.set_publisher(self.publish)
        from . import ipython_display

        ipython_display.install()

    # -- outputs ---------------------------------------------------------------

    def page(self, text: str) -> None:
        """Answer with a ``page`` payload (shown by the frontend's pager)."""
        self.payloads.append({"source": "page", "data": {"text/plain": text}, "start": 0})

    def displayhook(self, value: Any) -> None:
        """``sys.displayhook``: publish ``execute_result`` and set ``_``."""
        if value is None:
            return
        if isinstance(value, _ExitAutocall):
            value()
            return
        builtins._ = None  # type: ignore[attr-defined]
        hook = _display.method(value, "_ipython_display_")
        if hook is not None:  # it displays itself (widgets do), as IPython's displayhook
            hook()
            builtins._ = value  # type: ignore[attr-defined]
            return
        data, metadata = _display.format_object(value)
        if _display.is_figure(value):  # shown as the result: not again as an open figure
            self._figures_shown.add(id(value))
        if self.before_output is not None:
            self.before_output()
        self.publish(
            "execute_result",
            {"execution_count": self._cell_count, "data": data, "metadata": metadata},
            None,
        )
        if self._store_history:
            self.history.store_output(self._cell_count, str(data.get("text/plain", "")))
        builtins._ = value  # type: ignore[attr-defined]

    # -- running ---------------------------------------------------------------

    def _filename(self, store_history: bool) -> str:
        if store_history:
            return f"<cell-{self.execution_count}>"
        self._silent_cells += 1
        return f"<cell-{self.execution_count}.{self._silent_cells}>"

    def run_cell(self, code: str, silent: bool = False, store_history: bool = True) -> CellResult:
        """Run one cell; never raises (KeyboardInterrupt included)."""
        if silent:
            store_history = False
        self.payloads = []
        self._cell_count = self.execution_count
        self._store_history = store_history
        result = CellResult()
        if store_history:
            self.history.store_input(self.execution_count, code)
        filename = self._filename(store_history)
        try:
            hr = help_request(code)
            if hr is not None:
                self._help(*hr)
            else:
                self._run(code, filename, silent)
        except BaseException as e:  # noqa: B036 - a cell may raise anything
            result = self._error_result(e)
        finally:
            if store_history:
                self.execution_count += 1
        try:
            if not silent:
                _display.show_figures(frozenset(self._figures_shown))
        except BaseException as e:  # noqa: B036 - figures run user code (^C too)
            if result.status == "ok":
                result = self._error_result(e)
        self._figures_shown.clear()
        result.payload = self.payloads
        self.payloads = []
        return result

    def _help(self, name: str, detail: int) -> None:
        from .completer import lookup
        from .inspector import info

        found, obj = lookup(name, self.user_ns)
        if not found:
            print(f"Object `{name}` not found.")
            return
        self.page(info(name, obj, detail))

    def _run(self, code: str, filename: str, silent: bool) -> None:
        code = dedent_cell(code)
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        code = transform_cell(code)  # !cmd and %magic lines become calls (magics.py)
        try:
            code_objs = self._compile(code, filename, silent)
        except SyntaxError as e:
            # Errors found after parsing ('return' outside function) carry no text.
            if e.text is None and e.lineno and 0 < e.lineno <= len(code.splitlines()):
                e.text = code.splitlines()[e.lineno - 1] + "\n"
            raise
        for co in code_objs:
            self._flags |= co.co_flags & _FUTURE_FLAGS
            if co.co_flags & _CO_COROUTINE:  # top-level await: run on the shell's loop
                self._run_async(eval(co, self.user_ns))
            else:
                exec(co, self.user_ns)

    def _compile(self, code: str, filename: str, silent: bool) -> list[types.CodeType]:
        flags = self._flags | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        tree = compile(code, filename, "exec", flags | ast.PyCF_ONLY_AST, dont_inherit=True)
        assert isinstance(tree, ast.Module)
        body = tree.body
        last: ast.Interactive | None = None
        if body and isinstance(body[-1], ast.Expr) and not silent:
            last = ast.Interactive(body=[body[-1]])
            body = body[:-1]
        mod = ast.Module(body=body, type_ignores=[])
        code_objs = []
        if body:
            code_objs.append(compile(mod, filename, "exec", flags, dont_inherit=True))
        if last is not None:
            code_objs.append(compile(last, filename, "single", flags, dont_inherit=True))
        return code_objs

    def _run_async(self, coro: Any) -> None:
        loop = self.event_loop()
        task = loop.create_task(coro)
        try:
            with _woken_by_signals(loop):
                loop.run_until_complete(task)
        except BaseException as e:
            # Interrupted while the loop waited: cancel the cell, or the rest of it
            # would run during whichever cell next runs the loop.
            where = None
            if not task.done():
                task.cancel()
                try:
                    loop.run_until_complete(task)
                except BaseException as stop:  # noqa: B036 - its CancelledError, or ^C
                    where = _cell_traceback(stop, coro.cr_code)
            if where is not None and isinstance(e, KeyboardInterrupt):
                # Raised in the loop's select(): say where the cell was instead.
                raise e.with_traceback(where) from None
            raise

    def event_loop(self) -> Any:
        """The asyncio loop cells with top-level ``await`` run on; it persists across
        cells (a task made in one runs on in the next), as IPython's does."""
        import asyncio

        if self._loop is None or self._loop.is_closed():
            self._loop = _current_loop() or asyncio.new_event_loop()
        # Again each time: an asyncio.run() in an earlier cell unset it.
        asyncio.set_event_loop(self._loop)
        return self._loop

    def _error_result(self, e: BaseException) -> CellResult:
        if isinstance(e, UsageError):  # one line on stderr, no traceback: as IPython
            print(f"UsageError: {e}", file=sys.stderr)
            return CellResult(status="error", ename="UsageError", evalue=str(e))
        tb = self.format_traceback(e)
        if self.before_output is not None:
            self.before_output()
        ename, evalue = type(e).__name__, _safe_str(e)
        self.publish("error", {"ename": ename, "evalue": evalue, "traceback": tb}, None)
        return CellResult(status="error", ename=ename, evalue=evalue, traceback=tb)

    def format_traceback(self, e: BaseException) -> list[str]:
        """The traceback of ``e`` as lines coloured like IPython's, without the
        kernel's own frames (the exec wrapper, the SIGINT handler, ...)."""
        return format_traceback(e)

    # -- user expressions --------------------------------------------------------

    def user_expressions(self, expressions: dict[str, str]) -> dict[str, Any]:
        """Evaluate ``{name: expr}``: each becomes a display bundle or an error."""
        out: dict[str, Any] = {}
        for name, expr in (expressions or {}).items():
            try:
                value = eval(expr, self.user_ns)
                data, md = _display.format_object(value)
                out[name] = {"status": "ok", "data": data, "metadata": md}
            except BaseException as e:  # noqa: B036 - an expression may raise anything
                out[name] = {
                    "status": "error",
                    "ename": type(e).__name__,
                    "evalue": _safe_str(e),
                    "traceback": self.format_traceback(e),
                }
        return out

    # -- completion and inspection ---------------------------------------------

    def complete(self, code: str, cursor_pos: int | None) -> dict[str, Any]:
        """A ``complete_reply`` content."""
        if self._completer is None:
            from .completer import Completer

            self._completer = Completer(self.user_ns)
        return self._completer.complete(code, cursor_pos)

    def inspect(self, code: str, cursor_pos: int, detail_level: int) -> dict[str, Any]:
        """An ``inspect_reply`` content."""
        from .inspector import inspect_reply

        return inspect_reply(code, cursor_pos, self.user_ns, detail_level)


def _current_loop() -> Any:
    """The thread's current asyncio loop when a cell got or set one before the first
    ``await`` cell (``asyncio.get_event_loop()``, ``asyncio.Future()``): await cells must
    run on it, or what was made on it is "attached to a different loop"."""
    import asyncio
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: none set yet
            loop = asyncio.get_event_loop()
    except RuntimeError:  # none, and none may be made (3.14, or after asyncio.run)
        return None
    return None if loop.is_closed() or loop.is_running() else loop


def _cell_traceback(e: BaseException, code: types.CodeType) -> types.TracebackType | None:
    """The traceback, from the cell's frame on, of the exception (``e`` or one it arose
    in, the coroutine's own CancelledError) that went through the cell's ``code``."""
    seen: set[int] = set()
    exc: BaseException | None = e
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code is code:
                return tb
            tb = tb.tb_next
        exc = exc.__context__
    return None


def _safe_str(e: BaseException) -> str:
    """``str(e)``, or python3's note when the exception's ``__str__`` fails."""
    try:
        return str(e)
    except Exception:
        return "<exception str() failed>"


def is_complete(code: str) -> dict[str, Any]:
    """An ``is_complete_reply`` content: complete, incomplete (with indent) or invalid.

    As in IPython, a block whose last line is still indented is incomplete until a
    blank line ends it, so a console can keep adding lines to it.
    """
    import codeop
    import warnings

    if help_request(code) is not None:
        return {"status": "complete"}
    if not code.strip():
        return {"status": "complete"}
    code = dedent_cell(code)
    magic = cell_magic_is_complete(code)
    if magic is not None:
        return magic
    if code.endswith("\\") and continues_magic_line(code):  # `!pip install a \`
        last = code.rsplit("\n", 1)[-1]
        return {"status": "incomplete", "indent": last[: len(last) - len(last.lstrip())]}
    code = transform_cell(code)
    # Cells may use top-level await, so is_complete must accept it as run_cell does:
    # else `async for ...:` with one body line is "invalid" and a console runs it.
    compiler = codeop.CommandCompiler()
    compiler.compiler.flags |= ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compiled = compiler(code, "<input>", "exec")
    except (SyntaxError, OverflowError, ValueError, TypeError, MemoryError):
        return {"status": "invalid"}
    lines = code.split("\n")
    last = lines[-1]
    indent = last[: len(last) - len(last.lstrip())]
    if compiled is None:
        stripped = code.rstrip()
        if stripped.endswith(":"):
            indent += "    "
        return {"status": "incomplete", "indent": indent}
    if len(lines) > 1 and last.strip() and indent and _ends_in_block(code):
        return {"status": "incomplete", "indent": indent}
    return {"status": "complete"}


def _ends_in_block(code: str) -> bool:
    """Whether the last statement is compound (``if``, ``def``, ...): an indented last
    line then may go on; inside brackets (``x = [1,\\n  2]``) it is just layout."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return True
    if not tree.body:
        return False
    simple = (
        ast.Expr,
        ast.Assign,
        ast.AugAssign,
        ast.AnnAssign,
        ast.Return,
        ast.Delete,
        ast.Pass,
        ast.Break,
        ast.Continue,
        ast.Raise,
        ast.Global,
        ast.Nonlocal,
        ast.Import,
        ast.ImportFrom,
        ast.Assert,
    )
    return not isinstance(tree.body[-1], simple)


_FILE_LINE = re.compile(r'^  File "(?P<file>[^"]*)", line (?P<line>\d+)(?:, in (?P<name>.*))?$')
_CELL_FILE = re.compile(r"^<cell-(\d+)(?:\.\d+)?>$")
_EXC_LINE = re.compile(r"^(?P<ename>[A-Za-z_][\w.]*)(?P<rest>:.*)?$")
_GROUP_MARGIN = re.compile(r"^ *\| ")
_GREEN, _CYAN, _RED, _RESET = "\x1b[32m", "\x1b[36m", "\x1b[31m", "\x1b[39m"


def _loop_dirs() -> tuple[str, ...]:
    """Where the machinery the kernel runs user code with lives (asyncio's loop,
    timeit for %timeit), skipped in tracebacks right under a kernel frame."""
    dirs: list[str] = []
    asyncio_file = getattr(sys.modules.get("asyncio"), "__file__", None)
    if asyncio_file:
        dirs.append(os.path.dirname(os.path.abspath(asyncio_file)) + os.sep)
    # timeit.py is how %timeit runs the timed code: the magic's machinery too.
    for name in ("selectors", "timeit"):
        file = getattr(sys.modules.get(name), "__file__", None)
        if file:
            dirs.append(os.path.abspath(file))
    return tuple(dirs)


def _strip_kernel_frames(te: Any, seen: set[int], loop_dirs: tuple[str, ...]) -> None:
    import traceback

    if te is None or id(te) in seen:
        return
    seen.add(id(te))
    kept: list[Any] = []
    called_by_kernel = False
    for f in te.stack:
        path = os.path.abspath(f.filename)
        if path.startswith(_KERNEL_DIR):
            called_by_kernel = True
            continue
        # The loop the kernel runs an await cell on is the kernel's too, up to the
        # next frame of the user's; asyncio's frames under a user's call (an
        # asyncio.run() in a cell, a wait_for that timed out) stay.
        if called_by_kernel and loop_dirs and path.startswith(loop_dirs):
            continue
        called_by_kernel = False
        kept.append(f)
    te.stack = traceback.StackSummary.from_list(kept)
    _strip_kernel_frames(te.__cause__, seen, loop_dirs)
    _strip_kernel_frames(te.__context__, seen, loop_dirs)
    for sub in getattr(te, "exceptions", None) or ():  # an exception group's
        _strip_kernel_frames(sub, seen, loop_dirs)


def _colour_line(line: str, first: bool) -> str:
    margin = _GROUP_MARGIN.match(line)
    if margin:  # inside an exception group's "|" margin: the same, after it
        return margin.group() + _colour_line(line[margin.end() :], first)
    m = _FILE_LINE.match(line)
    if m:
        cell = _CELL_FILE.match(m["file"])
        where = f"Cell In[{cell[1]}]" if cell else m["file"]
        out = f"  {_GREEN}{where}{_RESET}, {_GREEN}line {m['line']}{_RESET}"
        if m["name"] and not (cell and m["name"] == "<module>"):
            out += f", in {_CYAN}{m['name']}{_RESET}"
        return out
    m = _EXC_LINE.match(line) if first else None  # the rest of a multi-line message
    if m and not line.startswith("Traceback "):
        return f"{_RED}{m['ename']}{_RESET}{m['rest'] or ''}"
    return line


def format_traceback(e: BaseException) -> list[str]:
    """``e``'s traceback as IPython's plain mode shows it: ANSI colours, ``Cell In[n]``
    for cells, and no frame of the kernel's own files."""
    import traceback

    te = traceback.TracebackException(type(e), e, e.__traceback__, compact=True)
    _strip_kernel_frames(te, set(), _loop_dirs())
    out = []
    for chunk in te.format():
        # One newline goes (frontends join the entries with one); a chain's separator
        # ends in two, and keeps the blank line after it.
        lines = chunk.removesuffix("\n").split("\n")
        out.append("\n".join(_colour_line(line, i == 0) for i, line in enumerate(lines)))
    return out


@contextlib.contextmanager
def _woken_by_signals(loop: Any) -> Iterator[None]:
    """While ``loop`` runs a cell: a signal that another thread took (the OS gives a
    process's SIGINT to any thread not blocking it) still wakes the loop's select(),
    through the wakeup fd, so that Ctrl-C is raised at once on this, the main thread,
    not when the cell's await ends (an hour, for ``await asyncio.sleep(3600)``)."""
    import socket

    try:
        r, w = socket.socketpair()
    except OSError:
        yield  # out of descriptors: the interrupt is only as good as before
        return
    r.setblocking(False)
    w.setblocking(False)

    def drain() -> None:
        with contextlib.suppress(OSError):
            r.recv(4096)

    loop.add_reader(r.fileno(), drain)
    try:
        previous = signal.set_wakeup_fd(w.fileno(), warn_on_full_buffer=False)
    except ValueError:  # not the main thread
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.set_wakeup_fd(previous)
        loop.remove_reader(r.fileno())
        r.close()
        w.close()
