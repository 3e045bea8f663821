"""Each part of the REPL (kconsole.repl) without a terminal or a kernel: prompt_toolkit's
pipe input and DummyOutput in front, a scripted kernel behind (a fake connection and
client answering execute / is_complete / complete / inspect from a script: no zmq,
no process). The races the pty tests cover in seconds (typeahead, double Ctrl-C, the
early prompt, a restart while busy) run here in milliseconds, each step waiting for
the event it needs, never for a fixed time."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.formatted_text import fragment_list_to_text
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput

from kconsole.client import EOFInput, NoReply
from kconsole.kernel_connection import ConsoleError
from kconsole.output import OutputPrinter
from kconsole.protocol import Message, Session
from kconsole.repl import Repl
from kconsole.repl.questions import ask_yes_no
from kconsole.repl.status import Status

CTRL_C, CTRL_D, CTRL_X, SHIFT_TAB = "\x03", "\x04", "\x18", "\x1b[Z"
_SESSION = Session(key=b"")


class ScriptedClient:
    """A KernelClient's face, answering from a script. ``gates[code]``: the cell's
    reply waits for that event; ``input_requests[code]``: the cell asks for input
    (prompt, password) first, its answer kept in ``answers``."""

    def __init__(self) -> None:
        self.transport = SimpleNamespace()  # neither kernel_id nor restart: attached
        self.kernel_info: dict[str, Any] = {
            "implementation": "fake",
            "banner": "Fake kernel 1.0",
            "language_info": {"name": "python"},
        }
        self.dead = asyncio.Event()
        self.dead_reason = ""
        self.on_broadcast: Any = None
        self.on_dead: Any = None
        self.on_status: Any = None
        self.on_note: Any = None
        self.executed: list[tuple[int, str]] = []  # (kernel generation, code)
        self.gates: dict[str, asyncio.Event] = {}
        self.input_requests: dict[str, tuple[str, bool]] = {}
        self.answers: list[str] = []
        self.completes = 0
        self.generation = 0
        self.count = 0

    @property
    def codes(self) -> list[str]:
        return [code for _, code in self.executed]

    async def execute(
        self,
        code: str,
        *,
        silent: bool = False,
        store_history: bool = True,
        on_output: Callable[[Message], None] | None = None,
        on_input: Callable[[str, bool], Awaitable[str]] | None = None,
        on_idle_lost: Callable[[], None] | None = None,
        **_: Any,
    ) -> Message:
        if not silent:
            self.executed.append((self.generation, code))
            self.count += 1
        count = self.count
        gate = self.gates.get(code)
        if gate is not None:
            await gate.wait()
        if code in self.input_requests and on_input is not None:
            prompt, password = self.input_requests[code]
            try:
                self.answers.append(await on_input(prompt, password))
            except EOFInput:
                self.answers.append("<EOF>")
            except NoReply:
                self.answers.append("<no reply>")
        if on_output is not None and not silent:
            text = f"out[{count}]: {code}\n"
            on_output(_SESSION.msg("stream", {"name": "stdout", "text": text}))
        return _SESSION.msg(
            "execute_reply", {"status": "ok", "execution_count": count, "payload": []}
        )

    async def is_complete(self, code: str, timeout: float = 1.0) -> dict[str, Any]:
        lines = code.split("\n")
        if lines[-1].strip() and any(line.rstrip().endswith(":") for line in lines):
            return {"status": "incomplete", "indent": "    "}
        return {"status": "complete"}

    async def complete(self, code: str, cursor_pos: int, timeout: float = 2.0) -> dict[str, Any]:
        self.completes += 1
        return {"status": "ok", "matches": [], "cursor_start": cursor_pos, "metadata": {}}

    async def inspect(
        self, code: str, cursor_pos: int, detail_level: int = 0, timeout: float = 5.0
    ) -> dict[str, Any]:
        return {"status": "ok", "found": True, "data": {"text/plain": f"help on {code}"}}

    async def history(self, timeout: float = 5.0, **content: Any) -> list[Any]:
        return []


class ScriptedConnection:
    """A KernelConnection's face: ready (or starting until ``come_up``), restartable
    (or attached), counting interrupts and restarts; ``restart_gate`` holds a restart."""

    def __init__(self, client: ScriptedClient, *, ready: bool, can_restart: bool) -> None:
        self.client = client
        self.process = None
        self.spec = None
        self.kind = "attached"  # no process: as an attached kernel shows
        self.kernel_id: str | None = None
        self.label = "fake kernel"
        self.fresh = True
        self.owns_kernel = True
        self.connection_lost = False
        self.kernel_gone = False
        self.unreachable = False
        self.can_restart = can_restart
        self.can_replace = False
        self.replace_offer = ""
        self.ends_itself_on_exit = False
        self._up = asyncio.Event()
        if ready:
            self._up.set()
        self.start_error: ConsoleError | None = None
        self.interrupts = 0
        self.restarts = 0
        self.restart_gate: asyncio.Event | None = None

    @property
    def ready(self) -> bool:
        return self._up.is_set() and self.start_error is None

    @property
    def language_info(self) -> dict[str, Any]:
        return dict(self.client.kernel_info.get("language_info") or {})

    def come_up(self, error: ConsoleError | None = None) -> None:
        self.start_error = error
        self._up.set()

    async def wait_ready(self) -> None:
        await self._up.wait()
        if self.start_error is not None:
            raise self.start_error

    async def interrupt(self) -> str:
        self.interrupts += 1
        return "interrupt sent"

    async def restart(self, timeout: float | None = None) -> None:
        self.restarts += 1
        if self.restart_gate is not None:
            await self.restart_gate.wait()
        self.client.generation += 1
        self.client.count = 0

    async def wait_gone(self, timeout: float) -> bool:
        return True


class Console:
    """A Repl on the pipe input, with what it printed in ``out``."""

    def __init__(self, inp: PipeInput, *, ready: bool, can_restart: bool, **kw: Any) -> None:
        self.input = inp
        self.client = ScriptedClient()
        self.conn = ScriptedConnection(self.client, ready=ready, can_restart=can_restart)
        self.stream = io.StringIO()
        printer = OutputPrinter(self.stream, color=False, tty=False)
        kw = {"banner": False, "toolbar": False, "confirm_exit": False, **kw}
        self.repl = Repl(
            cast(Any, self.conn),
            printer,
            stdout=self.stream,
            history=InMemoryHistory(),
            merge_kernel_history=False,
            **kw,
        )
        #: Cell prompts started so far.
        self.prompts = 0
        ask = self.repl._ask

        async def counted(session: Any, message: Any, **kwargs: Any) -> Any:
            if session is self.repl.session:
                self.prompts += 1
            return await ask(session, message, **kwargs)

        self.repl._ask = counted  # type: ignore[method-assign]
        self.task: asyncio.Task[int] = asyncio.ensure_future(self.repl.run())

    @property
    def out(self) -> str:
        return self.stream.getvalue()

    @property
    def text(self) -> str:
        """What is typed at the cell prompt now."""
        return self.repl.session.default_buffer.text

    def type(self, keys: str) -> None:
        self.input.send_text(keys)

    async def until(self, cond: Callable[[], object], what: str, timeout: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not cond():
            if self.task.done():
                self.task.result()  # its exception, if any
                raise AssertionError(f"the REPL ended waiting for {what}")
            if loop.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}; printed:\n{self.out}")
            await asyncio.sleep(0.001)

    async def at_prompt(self, n: int) -> None:
        """Wait for the n-th cell prompt to be up."""
        app = self.repl.session.app
        await self.until(
            lambda: self.prompts == n and app.is_running and not app.is_done, f"prompt {n}"
        )

    async def asked(self, what: str) -> None:
        """Wait for the input() prompt (the stdin editor) to be up."""
        await self.until(
            lambda: (
                self.repl._asking not in (None, self.repl.session)
                and self.repl._asking.app.is_running
            ),
            what,
        )

    async def questioned(self, what: str) -> None:
        """Wait for a y/n question outside the cell prompt (exit, double Ctrl-C's restart):
        the terminal is a prompt's, and not the cell prompt's nor input()'s."""
        await self.until(lambda: self.repl._prompt_active and self.repl._asking is None, what)

    async def questioned_at_prompt(self, what: str) -> None:
        """Wait for Ctrl-X r's question (asked over the cell prompt, which stays)."""
        await self.until(lambda: self.repl._question is not None, what)

    async def leave(self) -> int:
        """Ctrl-D (after Ctrl-C clears the line: Ctrl-D leaves only an empty prompt)."""
        app = self.repl.session.app
        await self.until(
            lambda: (
                self.repl._prompt_active
                and self.repl._asking is self.repl.session
                and app.is_running
                and not app.is_done
                and not self.repl._cell_running
            ),
            "a prompt to leave from",
        )
        if self.text:
            n = self.prompts
            self.type(CTRL_C)
            await self.at_prompt(n + 1)
        self.type(CTRL_D)
        return await asyncio.wait_for(self.task, 5)


@contextlib.asynccontextmanager
async def console(
    *, ready: bool = True, can_restart: bool = True, **kw: Any
) -> AsyncIterator[Console]:
    with create_pipe_input() as inp, create_app_session(input=inp, output=DummyOutput()):
        c = Console(inp, ready=ready, can_restart=can_restart, **kw)
        try:
            yield c
        finally:
            if not c.task.done():
                c.task.cancel()
                with contextlib.suppress(BaseException):
                    await c.task


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 20))


# -- Enter and typeahead ------------------------------------------------------------------


def test_two_lines_typed_before_the_first_reply_run_as_two_cells_in_order() -> None:
    async def scenario() -> None:
        async with console() as c:
            c.client.gates["a = 1"] = gate = asyncio.Event()
            await c.at_prompt(1)
            c.type("a = 1\rb = 2\r")  # one read: the second line behind the first Enter
            await c.until(lambda: c.client.codes == ["a = 1"], "the first cell sent")
            assert "out[" not in c.out  # its reply has not come: nothing shown yet
            gate.set()
            await c.until(lambda: len(c.client.codes) == 2, "the second cell")
            await c.at_prompt(3)
            assert c.client.codes == ["a = 1", "b = 2"]
            assert c.out.index("out[1]: a = 1") < c.out.index("out[2]: b = 2")
            assert c.repl.execution_count == 2  # the next prompt is In [3]
            assert await c.leave() == 0

    run(scenario)


def test_enter_on_an_incomplete_cell_adds_an_indented_line_then_runs_it_whole() -> None:
    async def scenario() -> None:
        async with console() as c:
            await c.at_prompt(1)
            c.type("if x:\r")
            await c.until(lambda: c.text == "if x:\n    ", "the kernel's indent")
            c.type("pass\r")
            await c.until(lambda: c.text.count("\n") == 2, "a third line")
            c.type("\r")
            await c.until(lambda: c.client.codes, "the cell")
            assert c.client.codes[0].split("\n")[:2] == ["if x:", "    pass"]
            assert await c.leave() == 0

    run(scenario)


# -- early prompt: the kernel still starting -----------------------------------------------


def test_prompt_is_up_before_the_kernel_and_enter_waits_for_it() -> None:
    async def scenario() -> None:
        async with console(ready=False, banner=True) as c:
            await c.at_prompt(1)
            assert c.repl.status.state == "starting"
            assert "[kernel starting]" in fragment_list_to_text(c.repl.status.rprompt())
            c.type("x = 1\r")
            await c.until(lambda: c.repl._keys.holding, "Enter waiting for the kernel")
            assert c.client.codes == []  # nothing sent to a kernel not up
            c.conn.come_up()
            await c.until(lambda: c.client.codes == ["x = 1"], "the cell")
            await c.at_prompt(2)
            assert c.out.index("Fake kernel 1.0") < c.out.index("out[1]: x = 1")  # banner
            assert c.repl.status.state == "idle"
            assert await c.leave() == 0

    run(scenario)


def test_a_kernel_that_never_comes_up_ends_the_prompt_with_its_error() -> None:
    async def scenario() -> None:
        async with console(ready=False) as c:
            await c.at_prompt(1)
            c.type("x = 1")
            c.conn.come_up(ConsoleError("the kernel died during its start"))
            with pytest.raises(ConsoleError, match="died during its start"):
                await asyncio.wait_for(c.task, 5)
            assert c.client.codes == []

    run(scenario)


# -- the screen: output while a prompt is up -----------------------------------------------


def _stream(text: str) -> Message:
    return _SESSION.msg("stream", {"name": "stdout", "text": text})


def test_other_clients_output_is_written_above_the_prompt_and_the_typed_text_stays() -> None:
    async def scenario() -> None:
        async with console() as c:
            await c.at_prompt(1)
            c.type("abc")
            await c.until(lambda: c.text == "abc", "the text")
            c.client.on_broadcast(_stream("from elsewhere\n"))
            c.repl.note("a note")
            await c.until(lambda: "from elsewhere" in c.out, "the other client's output")
            await c.until(lambda: "[kconsole] a note" in c.out, "the note")
            assert c.text == "abc" and c.prompts == 1  # the same prompt, text kept
            c.type("\r")
            await c.until(lambda: c.client.codes == ["abc"], "the cell")
            assert await c.leave() == 0

    run(scenario)


def test_other_clients_output_is_not_shown_when_not_asked_for() -> None:
    async def scenario() -> None:
        async with console(show_other_output=False) as c:
            await c.at_prompt(1)
            c.client.on_broadcast(_stream("from elsewhere\n"))
            c.repl.note("a note")
            await c.until(lambda: "a note" in c.out, "the note")
            assert "from elsewhere" not in c.out
            assert await c.leave() == 0

    run(scenario)


# -- SIGINT and double Ctrl-C ---------------------------------------------------------------


def test_ctrl_c_while_a_cell_runs_interrupts_and_twice_offers_a_restart() -> None:
    async def scenario() -> None:
        async with console() as c:
            c.client.gates["spin()"] = asyncio.Event()  # never answers
            await c.at_prompt(1)
            c.type("spin()\r")
            await c.until(lambda: c.repl._cell_running and not c.repl._prompt_active, "the cell")
            os.kill(os.getpid(), signal.SIGINT)
            await c.until(lambda: "^C: interrupt sent" in c.out, "the interrupt")
            assert c.conn.interrupts == 1
            os.kill(os.getpid(), signal.SIGINT)  # within DOUBLE_CTRL_C of the first
            await c.questioned("the restart question")
            assert c.conn.interrupts == 1  # the second Ctrl-C asks instead
            c.type("y\r")
            await c.at_prompt(2)
            assert c.conn.restarts == 1
            assert "kernel restarted" in c.out
            assert c.repl.execution_count == 0  # In [1] again, on the new kernel
            c.type("1\r")
            await c.until(lambda: c.client.executed[-1:] == [(1, "1")], "a cell on the new kernel")
            assert await c.leave() == 0

    run(scenario)


def test_ctrl_c_twice_on_a_kernel_it_cannot_restart_stops_waiting_for_the_cell() -> None:
    async def scenario() -> None:
        async with console(can_restart=False) as c:
            c.client.gates["spin()"] = asyncio.Event()
            await c.at_prompt(1)
            c.type("spin()\r")
            await c.until(lambda: c.repl._cell_running and not c.repl._prompt_active, "the cell")
            os.kill(os.getpid(), signal.SIGINT)
            await c.until(lambda: c.conn.interrupts == 1, "the interrupt")
            os.kill(os.getpid(), signal.SIGINT)
            await c.at_prompt(2)  # back to a prompt, no question asked
            assert "stopped waiting for the cell" in c.out
            assert c.conn.restarts == 0
            assert await c.leave() == 0

    run(scenario)


def test_sigint_at_the_prompt_clears_the_line_and_interrupts_nothing() -> None:
    async def scenario() -> None:
        async with console() as c:
            await c.at_prompt(1)
            c.type("abc")
            await c.until(lambda: c.text == "abc", "the text")
            os.kill(os.getpid(), signal.SIGINT)
            await c.at_prompt(2)
            assert c.text == ""
            assert c.conn.interrupts == 0 and c.client.codes == []
            assert await c.leave() == 0

    run(scenario)


# -- restart while busy ----------------------------------------------------------------------


def test_enter_during_a_restart_from_the_prompt_runs_the_cell_on_the_new_kernel() -> None:
    async def scenario() -> None:
        async with console() as c:
            c.conn.restart_gate = gate = asyncio.Event()
            await c.at_prompt(1)
            c.type(CTRL_X + "r")
            await c.questioned_at_prompt("Restart the kernel?")
            c.type("y\r")
            await c.until(lambda: c.conn.restarts == 1, "the restart started")
            await c.until(lambda: c.repl.status.restarting, "the restart under way")
            c.type("1 + 1\r")
            await c.until(lambda: not c.repl._prompt_active, "the cell accepted")
            assert c.client.codes == []  # not sent to the kernel being replaced
            gate.set()
            await c.until(lambda: c.client.executed == [(1, "1 + 1")], "the cell, new kernel")
            await c.at_prompt(2)
            assert "kernel restarted" in c.out
            assert await c.leave() == 0

    run(scenario)


def test_restart_question_answered_no_keeps_the_typed_text() -> None:
    async def scenario() -> None:
        async with console() as c:
            await c.at_prompt(1)
            c.type("x = 4")
            await c.until(lambda: c.text == "x = 4", "the text")
            c.type(CTRL_X + "r")
            await c.questioned_at_prompt("Restart the kernel?")
            c.type("\r")  # Enter alone: the default, no
            await c.until(lambda: c.repl._asking is c.repl.session, "back at the prompt")
            assert c.conn.restarts == 0
            assert c.text == "x = 4"
            assert c.prompts == 1  # the same prompt, not a new one
            c.type("\r")
            await c.until(lambda: c.client.codes == ["x = 4"], "the cell")
            assert await c.leave() == 0

    run(scenario)


# -- the stdin editor -----------------------------------------------------------------------


def test_input_request_is_answered_from_a_one_line_prompt() -> None:
    async def scenario() -> None:
        async with console() as c:
            c.client.input_requests["name = input()"] = ("Name: ", False)
            await c.at_prompt(1)
            c.type("name = input()\r")
            await c.asked("Name:")
            c.type("bob\r")
            await c.until(lambda: c.client.answers == ["bob"], "the answer")
            await c.at_prompt(2)
            assert c.repl._input_session is not None
            assert list(c.repl._input_session.history.get_strings()) == ["bob"]
            assert await c.leave() == 0

    run(scenario)


def test_a_password_is_not_remembered_and_ctrl_d_sends_eof() -> None:
    async def scenario() -> None:
        async with console() as c:
            c.client.input_requests["getpass()"] = ("Password: ", True)
            c.client.input_requests["input()"] = ("? ", False)
            await c.at_prompt(1)
            c.type("getpass()\r")
            await c.asked("Password:")
            c.type("secret\r")
            await c.until(lambda: c.client.answers == ["secret"], "the password")
            await c.at_prompt(2)
            c.type("input()\r")
            await c.asked("?")
            c.type(CTRL_D)
            await c.until(lambda: c.client.answers[-1:] == ["<EOF>"], "EOF")
            await c.at_prompt(3)
            assert c.repl._input_session is not None
            assert "secret" not in list(c.repl._input_session.history.get_strings())
            assert await c.leave() == 0

    run(scenario)


def test_ctrl_c_in_the_input_prompt_interrupts_the_kernel() -> None:
    async def scenario() -> None:
        async with console() as c:
            c.client.input_requests["input()"] = ("? ", False)
            await c.at_prompt(1)
            c.type("input()\r")
            await c.asked("?")
            c.type(CTRL_C)
            await c.until(lambda: c.client.answers == ["<no reply>"], "no answer")
            await c.until(lambda: c.conn.interrupts == 1, "the interrupt")
            assert await c.leave() == 0

    run(scenario)


# -- questions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "default", "answer"),
    [
        ("y\r", False, True),
        ("YES\r", False, True),
        ("n\r", True, False),
        ("\r", True, True),
        ("\r", False, False),
        ("maybe\rn\r", True, False),  # asked again until it is an answer
        (CTRL_C, True, False),
        (CTRL_D, True, True),
    ],
)
def test_ask_yes_no(keys: str, default: bool, answer: bool) -> None:
    async def scenario() -> None:
        with create_pipe_input() as inp, create_app_session(input=inp, output=DummyOutput()):
            inp.send_text(keys)
            assert await ask_yes_no("Sure? ", default=default) is answer

    run(scenario)


def test_ctrl_d_asks_before_leaving_when_confirm_exit() -> None:
    async def scenario() -> None:
        async with console(confirm_exit=True) as c:
            await c.at_prompt(1)
            c.type(CTRL_D)
            await c.questioned("Do you really want to exit")
            c.type("n\r")
            await c.at_prompt(2)  # stayed
            c.type(CTRL_D)
            await c.questioned("Do you really want to exit")
            c.type("y\r")
            assert await asyncio.wait_for(c.task, 5) == 0

    run(scenario)


# -- key bindings -------------------------------------------------------------------------------


def test_tab_in_leading_whitespace_indents_without_asking_the_kernel() -> None:
    async def scenario() -> None:
        async with console() as c:
            await c.at_prompt(1)
            c.type("\t")
            await c.until(lambda: c.text == "    ", "the indent")
            assert c.client.completes == 0
            c.type("x\t")  # after a name, Tab completes
            await c.until(lambda: c.client.completes == 1, "a complete_request")
            assert await c.leave() == 0

    run(scenario)


def test_shift_tab_prints_the_kernels_help_above_the_prompt() -> None:
    async def scenario() -> None:
        async with console() as c:
            await c.at_prompt(1)
            c.type("len" + SHIFT_TAB)
            await c.until(lambda: "help on len" in c.out, "the help")
            assert c.text == "len" and c.prompts == 1  # the prompt and its text stay
            assert await c.leave() == 0

    run(scenario)


def test_ctrl_x_s_saves_the_cells_run_as_a_notebook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    async def scenario() -> None:
        async with console() as c:
            await c.at_prompt(1)
            c.type("1 + 1\r")
            await c.at_prompt(2)
            c.type(CTRL_X + "s")
            await c.until(lambda: "saved 1 cell to" in c.out, "the note")
            (saved,) = tmp_path.glob("kconsole-*.ipynb")
            cells = json.loads(saved.read_text())["cells"]
            assert ["".join(cell["source"]) for cell in cells] == ["1 + 1"]
            assert await c.leave() == 0

    run(scenario)


def test_enter_inside_a_multi_line_cell_splits_the_line() -> None:
    async def scenario() -> None:
        async with console() as c:
            await c.at_prompt(1)
            c.type("if x:\r")
            await c.until(lambda: c.text == "if x:\n    ", "a second line")
            c.type("pass\x1b[A\x1b[F\r")  # Up, Home: Enter on the first line
            await c.until(lambda: c.text.count("\n") == 2, "the split")
            assert c.client.codes == []  # not run
            assert await c.leave() == 0

    run(scenario)


# -- status: prompt, rprompt, toolbar from one state object ---------------------------------------


def _status(**conn_kw: Any) -> tuple[Status, ScriptedConnection]:
    conn = ScriptedConnection(ScriptedClient(), **{"ready": True, "can_restart": True, **conn_kw})
    return Status(cast(Any, conn), toolbar=True), conn


def _status_msg(state: str) -> Message:
    return _SESSION.msg("status", {"execution_state": state})


def test_status_prompt_and_toolbar_follow_the_state() -> None:
    async def scenario() -> None:
        status, conn = _status()
        status.count = 4
        assert fragment_list_to_text(status.prompt()) == "In [5]: "
        assert fragment_list_to_text(status.continuation(8, 1, 0)) == "   ...: "
        line = fragment_list_to_text(status.toolbar())
        assert line == " fake kernel │ idle │ count 4 │ attached "
        status.restarting = True
        assert "│ restarting │" in fragment_list_to_text(status.toolbar())
        status.restarting = False
        conn.client.dead.set()
        assert fragment_list_to_text(status.toolbar()).endswith("│ dead │ count 4 │ lost ")
        status.reset()
        assert fragment_list_to_text(status.prompt()) == "In [1]: "

    run(scenario)


def test_status_busy_of_others_shows_own_requests_at_the_prompt_do_not() -> None:
    async def scenario() -> None:
        status, _ = _status()
        # Our own Tab / is_complete at the prompt: a flicker not worth a redraw.
        assert not status.on_status(_status_msg("busy"), own=True, prompt_active=True)
        assert status.state == "idle"
        # Another client's cell: both states change, and the prompt says so.
        assert status.on_status(_status_msg("busy"), own=False, prompt_active=True)
        assert status.state == status.other_state == "busy"
        # No toolbar drawn (no application is running): the prompt's right says it.
        assert fragment_list_to_text(status.rprompt()) == "[kernel busy]"
        assert not status.on_status(_status_msg("busy"), own=False, prompt_active=True)
        # A boot announcement read late, from a kernel long up: ignored.
        assert not status.on_status(_status_msg("starting"), own=False, prompt_active=False)
        assert status.other_state == "busy"

    run(scenario)


def test_status_after_a_server_restart_a_cell_of_ours_ends_the_restarting_state() -> None:
    async def scenario() -> None:
        status, _ = _status()
        # The server's notice (no parent of ours): restarting, at the prompt's right.
        assert status.on_status(_status_msg("restarting"), own=False, prompt_active=True)
        assert fragment_list_to_text(status.rprompt()) == "[kernel restarting]"
        # Our cell runs on the new kernel: it is up, whatever the notice said.
        status.on_status(_status_msg("busy"), own=True, prompt_active=False)
        status.on_status(_status_msg("idle"), own=True, prompt_active=False)
        assert status.state == status.other_state == "idle"
        assert fragment_list_to_text(status.rprompt()) == ""

    run(scenario)


def test_status_of_a_starting_kernel_until_it_comes_up() -> None:
    async def scenario() -> None:
        status, conn = _status(ready=False)
        assert status.state == "starting"
        status.toolbar_on = False  # the rprompt says it
        assert fragment_list_to_text(status.rprompt()) == "[kernel starting]"
        conn.come_up()
        status.came_up()
        assert status.state == "idle"
        assert fragment_list_to_text(status.rprompt()) == ""
        status.other_state = "busy"
        assert fragment_list_to_text(status.rprompt()) == "[kernel busy]"
        conn.connection_lost = True
        assert fragment_list_to_text(status.rprompt()) == "[connection lost]"

    run(scenario)
