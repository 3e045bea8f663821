"""One cell run on a kernel, the same for the REPL and script mode.

:class:`CellRunner` sends a cell (:meth:`CellRunner.start`, at once: the REPL sends a
cell as Enter accepts it, before its prompt has gone), hands each of its output
messages to the front end's display in arrival order (by default the
:class:`~kconsole.output.OutputPrinter`), records it in the
:class:`~kconsole.notebook.NotebookRecorder` when there is one, answers the kernel's
input requests through the front end, and says what happened as data
(:class:`CellResult`): the reply, how the cell ended (:class:`CellOutcome`) and the
reply's payloads parsed into typed values (:class:`Page`, :class:`SetNextInput`,
:class:`EditMagic`, :class:`AskExit`). What to do with them (a pager or stdout, the
next prompt's text, leaving) is each front end's own decision.

Kept light: script mode imports this, and must not load a line editor.
"""

from __future__ import annotations

import asyncio
import enum
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .client import KernelDied, ReplyLost
from .protocol import Message

if TYPE_CHECKING:
    from .client import KernelClient
    from .notebook import NotebookRecorder
    from .output import OutputPrinter

#: The note when a cell's reply came but its idle status never did (the output that
#: was still to come may be missing). One wording; each front end adds its prefix.
IDLE_LOST_NOTE = "the kernel's idle status never came; some output may be lost"

InputAnswer = Callable[[str, bool], Awaitable[str]]


class _HasClient(Protocol):
    """What the runner needs of a :class:`~kconsole.kernel_connection.KernelConnection`:
    its client, read at each cell (a port clash during a start replaces it)."""

    @property
    def client(self) -> KernelClient: ...


class CellOutcome(enum.Enum):
    """How a cell ended."""

    #: The reply says "ok".
    OK = "ok"
    #: The reply says "error" (any exception but KeyboardInterrupt).
    ERROR = "error"
    #: The reply says "error" with KeyboardInterrupt: the kernel was interrupted.
    INTERRUPTED = "interrupted"
    #: The reply says "aborted" (an earlier cell failed with stop_on_error).
    ABORTED = "aborted"
    #: The kernel went idle and never answered (:class:`~kconsole.client.ReplyLost`).
    REPLY_LOST = "reply lost"
    #: The kernel died before answering.
    KERNEL_DIED = "kernel died"
    #: The front end gave up on the cell (a restart, Ctrl-C twice, stdout gone): no
    #: reply is awaited any more; the kernel may still run it.
    ABANDONED = "abandoned"


@dataclass(frozen=True)
class Page:
    """``page`` payload (``obj?``): text for a pager, or for stdout in a script."""

    text: str


@dataclass(frozen=True)
class SetNextInput:
    """``set_next_input`` payload: the text the next prompt starts with."""

    text: str


@dataclass(frozen=True)
class EditMagic:
    """``edit_magic`` payload (``%edit``): the file to open in an editor, and where."""

    filename: str
    line_number: int


@dataclass(frozen=True)
class AskExit:
    """``ask_exit`` payload (``exit()`` run inside code): the console is to leave;
    ``keep_kernel`` when the code asked to keep the kernel running."""

    keep_kernel: bool


Payload = Page | SetNextInput | EditMagic | AskExit


def parse_payload(p: Any) -> Payload | None:
    """One execute_reply payload as a typed value; None for a kind a console does not
    act on, or one too malformed to act on (a kernel may send anything)."""
    if not isinstance(p, dict):
        return None
    source = p.get("source")
    if source == "page":
        data = p.get("data") or {}
        text = data.get("text/plain") if isinstance(data, dict) else data
        return Page(text) if isinstance(text, str) and text else None
    if source == "set_next_input":
        text = p.get("text")
        return SetNextInput(text if isinstance(text, str) else "")
    if source == "edit_magic":
        filename, line = p.get("filename"), p.get("line_number")
        if not (isinstance(filename, str) and filename):
            return None
        return EditMagic(filename, line if isinstance(line, int) else 0)
    if source == "ask_exit":
        # Only a real True keeps (ipykernel sends None for a plain ask_exit()).
        return AskExit(p.get("keepkernel") is True)
    return None


def parse_payloads(reply_content: dict[str, Any]) -> tuple[Payload, ...]:
    """The payloads of an execute_reply a console can act on, in the kernel's order."""
    payload = reply_content.get("payload")
    if not isinstance(payload, list):
        return ()
    parsed = (parse_payload(p) for p in payload)
    return tuple(p for p in parsed if p is not None)


def exception_name(ename: Any) -> str:
    """A Python kernel's ``ename`` as ipykernel writes it: xeus-python sends the class's
    repr (``<class 'SystemExit'>``), which would hide SystemExit and KeyboardInterrupt."""
    name = str(ename)
    m = re.fullmatch(r"<class '([\w.]+)'>", name)
    return m.group(1) if m else name


@dataclass(frozen=True)
class CellResult:
    """What became of one cell."""

    code: str
    outcome: CellOutcome
    #: The execute_reply (None unless the kernel answered and the cell was waited for).
    reply: Message | None = None
    #: The reply's execution_count, when it has one.
    execution_count: int | None = None
    #: The execution_count of the cell's execute_input, when one came (the prompt's
    #: number when the reply never comes: bash_kernel on ``for i in 1 2; do``).
    input_count: int | None = None
    #: The reply's content when it says "error" (ename, evalue, traceback).
    error: dict[str, Any] | None = None
    #: The error was published on IOPub too (not only in the reply).
    error_shown: bool = False
    payloads: tuple[Payload, ...] = ()
    #: The reply came but the idle status never did (the front end was told).
    idle_lost: bool = False
    #: Why the reply is missing (REPLY_LOST, KERNEL_DIED): the client's message.
    detail: str = ""

    @property
    def ename(self) -> str:
        """The error's exception name, normalised (see :func:`exception_name`)."""
        return exception_name(self.error.get("ename")) if self.error is not None else ""

    @property
    def ask_exit(self) -> AskExit | None:
        """The cell's ``ask_exit`` payload, if it sent one."""
        return next((p for p in self.payloads if isinstance(p, AskExit)), None)


@dataclass(eq=False)
class RunningCell:
    """A cell sent to the kernel: :meth:`CellRunner.wait` for it, then
    :meth:`CellRunner.finish` it."""

    code: str
    #: The client's execute(): its reply, once its output was all routed.
    task: asyncio.Future[Message]
    recorded: bool
    input_count: int | None = None
    error_shown: bool = False
    idle_lost: bool = False
    abandoned: bool = field(default=False)

    def abandon(self) -> None:
        """Stop waiting for the cell (it ends ABANDONED, whatever comes later)."""
        self.abandoned = True
        if not self.task.done():
            self.task.cancel()
            self.task.add_done_callback(retrieve)  # its end, whatever it is, is moot


def retrieve(task: asyncio.Future[Any]) -> BaseException | None:
    """A done task's failure, retrieved (asyncio then logs no "exception was never
    retrieved"); None if it has none. Also a done callback for a task nobody awaits."""
    if task.cancelled():
        return None
    return task.exception()


class CellRunner:
    """Runs cells on ``conn.client``; see the module docstring.

    ``show``: the front end's display of an output message of the cell (default: the
    printer's, as the cell's own output). ``ask_input``: answers an ``input_request``
    (``prompt, password -> line``; raise :class:`~kconsole.client.EOFInput` for EOF).
    ``note``: kconsole's own line (the idle-lost note), without prefix (default:
    ``printer.note("[kconsole] ...")``). ``end_output``: the cell is over (default: the
    printer finishes its widgets, ends the line and flushes).
    """

    def __init__(
        self,
        conn: _HasClient,
        printer: OutputPrinter,
        *,
        recorder: NotebookRecorder | None = None,
        show: Callable[[Message], None] | None = None,
        ask_input: InputAnswer | None = None,
        note: Callable[[str], None] | None = None,
        end_output: Callable[[], None] | None = None,
    ) -> None:
        self.conn = conn
        self.printer = printer
        self.recorder = recorder
        self._show = show or (lambda msg: printer.handle(msg, own=True))
        self._ask_input = ask_input
        self._note = note or (lambda text: printer.note(f"[kconsole] {text}"))
        self._end_output = end_output or self._printer_end

    def _printer_end(self) -> None:
        self.printer.finish_cell()  # widgets not drawn live (output to a file)
        self.printer.end_line()
        self.printer.flush()

    def start(
        self,
        code: str,
        *,
        silent: bool = False,
        record: bool = True,
        on_input: InputAnswer | None = None,
    ) -> RunningCell:
        """Send ``code`` now (the request is queued before this returns, ahead of
        anything scheduled after it). ``record``: a notebook cell (not for kconsole's
        own code); ``on_input``: this cell's input answer instead of ``ask_input``."""
        recorded = record and self.recorder is not None
        if recorded:
            assert self.recorder is not None
            self.recorder.start_cell(code)
        answer = on_input or self._ask_input
        cell: RunningCell

        def on_output(msg: Message) -> None:
            if msg.msg_type == "execute_input":
                count = msg.content.get("execution_count")
                if isinstance(count, int):
                    cell.input_count = count
            elif msg.msg_type == "error":
                cell.error_shown = True
            if self.recorder is not None:
                self.recorder.add_output(msg)
            self._show(msg)

        def on_idle_lost() -> None:
            cell.idle_lost = True
            self._note(IDLE_LOST_NOTE)

        task = asyncio.ensure_future(
            self.conn.client.execute(
                code,
                silent=silent,
                on_output=on_output,
                on_input=answer,
                on_idle_lost=on_idle_lost,
            )
        )
        cell = RunningCell(code, task, recorded)
        return cell

    async def wait(self, cell: RunningCell) -> None:
        """Wait until the cell has ended (or was abandoned). A death or a lost reply
        is the result's to tell; any other failure of the client is raised. Cancelled,
        the cell is abandoned too."""
        try:
            await asyncio.wait({cell.task})
        except BaseException:
            cell.abandon()
            raise
        error = retrieve(cell.task)
        if error is not None and not isinstance(error, (KernelDied, ReplyLost)):
            raise error

    def finish(self, cell: RunningCell, *, end_output: bool = True) -> CellResult:
        """The cell is over: the front end's output ends (unless ``end_output`` is
        False), the recording gets its reply; what became of it. A cell still running
        is abandoned."""
        if not cell.task.done():
            cell.abandon()
        try:
            if end_output:
                self._end_output()
        finally:
            result = self._result(cell)
            if cell.recorded and self.recorder is not None:
                self.recorder.finish_cell(result.reply)
        return result

    async def run(self, code: str, *, silent: bool = False, record: bool = True) -> CellResult:
        """:meth:`start`, :meth:`wait` and :meth:`finish` in one."""
        cell = self.start(code, silent=silent, record=record)
        try:
            await self.wait(cell)
        finally:
            result = self.finish(cell)
        return result

    def discard_recorded(self) -> None:
        """Forget the last recorded cell (``exit``: not part of the work being saved)."""
        if self.recorder is not None:
            self.recorder.discard_last()

    @staticmethod
    def _result(cell: RunningCell) -> CellResult:
        common: dict[str, Any] = {
            "code": cell.code,
            "input_count": cell.input_count,
            "error_shown": cell.error_shown,
            "idle_lost": cell.idle_lost,
        }
        task = cell.task
        if cell.abandoned or task.cancelled():
            if task.done():
                retrieve(task)  # a death after we stopped waiting is moot
            return CellResult(outcome=CellOutcome.ABANDONED, **common)
        error = task.exception()
        if isinstance(error, KernelDied):
            return CellResult(outcome=CellOutcome.KERNEL_DIED, detail=str(error), **common)
        if isinstance(error, ReplyLost):
            return CellResult(outcome=CellOutcome.REPLY_LOST, detail=str(error), **common)
        if error is not None:
            return CellResult(outcome=CellOutcome.ABANDONED, detail=str(error), **common)
        reply = task.result()
        content = reply.content
        count = content.get("execution_count")
        status = content.get("status")
        err = content if status == "error" else None
        if status == "error":
            name = exception_name(content.get("ename"))
            outcome = CellOutcome.INTERRUPTED if name == "KeyboardInterrupt" else CellOutcome.ERROR
        elif status == "aborted":
            outcome = CellOutcome.ABORTED
        else:
            outcome = CellOutcome.OK
        return CellResult(
            outcome=outcome,
            reply=reply,
            execution_count=count if isinstance(count, int) else None,
            error=err,
            payloads=parse_payloads(content),
            **common,
        )


__all__ = [
    "IDLE_LOST_NOTE",
    "InputAnswer",
    "AskExit",
    "CellOutcome",
    "CellResult",
    "CellRunner",
    "EditMagic",
    "Page",
    "Payload",
    "RunningCell",
    "SetNextInput",
    "exception_name",
    "parse_payload",
    "parse_payloads",
    "retrieve",
]
