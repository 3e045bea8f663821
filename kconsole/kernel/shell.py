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
import linecache
import re
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import displays as _display
from .history import History
from .magics import (
    UsageError,
    cell_magic_is_complete,
    continues_magic_line,
    hide_frames,
    transform_cell,
)

Publish = Callable[[str, dict[str, Any], dict[str, Any] | None], None]

_FUTURE_FLAGS = 0
for _name in __future__.all_feature_names:
    _FUTURE_FLAGS |= getattr(__future__, _name).compiler_flag

#: ``obj?`` / ``obj??`` / ``?obj`` / ``??obj`` on a line of its own.
_HELP_SUFFIX = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(\?\??)\s*$")
_HELP_PREFIX = re.compile(r"^\s*(\?\??)\s*([A-Za-z_][\w.]*)\s*$")


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
        self._completer: Any = None

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
        data, metadata = _display.format_object(value)
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
                _display.show_figures()
        except BaseException as e:  # noqa: B036
            if result.status == "ok":
                result = self._error_result(e)
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
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        code = transform_cell(code)  # !cmd and %magic lines become calls (magics.py)
        flags = self._flags | ast.PyCF_ONLY_AST
        tree = compile(code, filename, "exec", flags, dont_inherit=True)
        assert isinstance(tree, ast.Module)
        body = tree.body
        last: ast.Interactive | None = None
        if body and isinstance(body[-1], ast.Expr) and not silent:
            last = ast.Interactive(body=[body[-1]])
            body = body[:-1]
        mod = ast.Module(body=body, type_ignores=[])
        code_objs = []
        if body:
            code_objs.append(compile(mod, filename, "exec", self._flags, dont_inherit=True))
        if last is not None:
            code_objs.append(compile(last, filename, "single", self._flags, dont_inherit=True))
        for co in code_objs:
            self._flags |= co.co_flags & _FUTURE_FLAGS
            exec(co, self.user_ns)

    def _error_result(self, e: BaseException) -> CellResult:
        if isinstance(e, UsageError):  # one line on stderr, no traceback: as IPython
            print(f"UsageError: {e}", file=sys.stderr)
            return CellResult(status="error", ename="UsageError", evalue=str(e))
        tb = self.format_traceback(e)
        if self.before_output is not None:
            self.before_output()
        ename, evalue = type(e).__name__, str(e)
        self.publish("error", {"ename": ename, "evalue": evalue, "traceback": tb}, None)
        return CellResult(status="error", ename=ename, evalue=evalue, traceback=tb)

    def format_traceback(self, e: BaseException) -> list[str]:
        """The traceback of ``e`` as lines, without the kernel's own frames."""
        import traceback

        tb = e.__traceback__
        here = __file__
        while tb is not None and tb.tb_frame.f_code.co_filename == here:
            tb = tb.tb_next
        tb = hide_frames(tb)  # and those of a magic (magics.py)
        lines = traceback.format_exception(type(e), e, tb)
        return [line.rstrip("\n") for line in lines]

    # -- user expressions --------------------------------------------------------

    def user_expressions(self, expressions: dict[str, str]) -> dict[str, Any]:
        """Evaluate ``{name: expr}``: each becomes a display bundle or an error."""
        out: dict[str, Any] = {}
        for name, expr in (expressions or {}).items():
            try:
                value = eval(expr, self.user_ns)
                data, md = _display.format_object(value)
                out[name] = {"status": "ok", "data": data, "metadata": md}
            except BaseException as e:  # noqa: B036
                out[name] = {
                    "status": "error",
                    "ename": type(e).__name__,
                    "evalue": str(e),
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
    magic = cell_magic_is_complete(code)
    if magic is not None:
        return magic
    if code.endswith("\\") and continues_magic_line(code):  # `!pip install a \`
        last = code.rsplit("\n", 1)[-1]
        return {"status": "incomplete", "indent": last[: len(last) - len(last.lstrip())]}
    code = transform_cell(code)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compiled = codeop.compile_command(code, "<input>", "exec")
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
    if len(lines) > 1 and last.strip() and indent:
        return {"status": "incomplete", "indent": indent}
    return {"status": "complete"}
