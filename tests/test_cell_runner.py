"""The cell runner shared by the REPL and script mode (kconsole.cell_runner), driven by
a real KernelClient over a scripted transport: each execute_request is answered by the
next play of the script (IOPub output, the reply, idle, input requests), no kernel
process. Two tests run it against the built-in kernel."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kconsole import client as client_module
from kconsole.cell_runner import (
    IDLE_LOST_NOTE,
    AskExit,
    CellOutcome,
    CellRunner,
    EditMagic,
    Page,
    Payload,
    SetNextInput,
    parse_payloads,
)
from kconsole.client import EOFInput, KernelClient
from kconsole.notebook import NotebookRecorder
from kconsole.output import OutputPrinter
from kconsole.protocol import Message, Session
from kconsole.transport import Channel, Receiver, Transport, TransportError

#: One step of a play: (channel, msg_type, content); ("wait", "input_reply", {}) waits
#: for the console's input_reply and then streams "got <value>".
Step = tuple[str, str, dict[str, Any]]


def busy() -> Step:
    return ("iopub", "status", {"execution_state": "busy"})


def idle() -> Step:
    return ("iopub", "status", {"execution_state": "idle"})


def stream(text: str, name: str = "stdout") -> Step:
    return ("iopub", "stream", {"name": name, "text": text})


def reply(status: str = "ok", count: int = 1, **extra: Any) -> Step:
    return ("shell", "execute_reply", {"status": status, "execution_count": count, **extra})


class ScriptedTransport(Transport):
    """Answers each execute_request with the next play; records what was sent."""

    def __init__(self, plays: list[list[Step]], fail_send: bool = False) -> None:
        self.plays = list(plays)
        self.fail_send = fail_send
        self.session = Session()
        self.sent: list[tuple[Channel, Message]] = []
        self.events: list[str] = []
        self._receiver: Receiver | None = None
        self._inputs: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()

    def deliver_to(self, receiver: Receiver, on_closed: Callable[[str], None]) -> bool:
        self._receiver = receiver
        return True

    async def connect(self) -> None:
        pass

    async def send(self, channel: Channel, msg: Message) -> None:
        if self.fail_send:
            raise TransportError("the wire is cut")
        self.sent.append((channel, msg))
        self.events.append(f"sent {msg.msg_type}")
        if msg.msg_type == "input_reply":
            self._inputs.put_nowait(str(msg.content.get("value")))
        elif msg.msg_type == "execute_request":
            task = asyncio.ensure_future(self._play(msg, self.plays.pop(0)))
            self._tasks.add(task)

    async def _play(self, request: Message, steps: list[Step]) -> None:
        assert self._receiver is not None
        for channel, msg_type, content in steps:
            await asyncio.sleep(0)  # a message at a time, as from a socket
            if channel == "wait":
                value = await self._inputs.get()
                channel, msg_type, content = stream(f"got {value}")
            msg = self.session.msg(msg_type, content, parent=request)
            self._receiver(channel, msg)  # type: ignore[arg-type]

    async def recv(self) -> tuple[Channel, Message]:
        raise AssertionError("deliver_to is used")

    async def is_alive(self, timeout: float) -> bool:
        return True

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()


class Harness:
    """A CellRunner on a client over a ScriptedTransport, with what it showed."""

    def __init__(
        self,
        plays: list[list[Step]],
        *,
        recorder: NotebookRecorder | None = None,
        answer: Callable[[str, bool], Any] | None = None,
        fail_send: bool = False,
        default_display: bool = False,
    ) -> None:
        self.transport = ScriptedTransport(plays, fail_send=fail_send)
        self.client = KernelClient(self.transport, Session())
        self.out = io.StringIO()
        self.printer = OutputPrinter(self.out, color=False, tty=False)
        self.shown: list[str] = []
        self.notes: list[str] = []
        self.ended = 0
        self.prompts: list[tuple[str, bool]] = []
        self.answer = answer
        conn: Any = SimpleNamespace(client=self.client)
        if default_display:
            self.runner = CellRunner(conn, self.printer, recorder=recorder)
        else:
            self.runner = CellRunner(
                conn,
                self.printer,
                recorder=recorder,
                show=self._show,
                ask_input=self._ask,
                note=self.notes.append,
                end_output=self._end,
            )

    def _show(self, msg: Message) -> None:
        text = msg.content.get("text") or msg.content.get("ename") or msg.msg_type
        self.shown.append(f"{msg.msg_type}:{text}")

    async def _ask(self, prompt: str, password: bool) -> str:
        self.prompts.append((prompt, password))
        if self.answer is None:
            raise EOFInput
        return str(self.answer(prompt, password))

    def _end(self) -> None:
        self.ended += 1


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_an_ok_cell_shows_its_output_in_order_and_returns_its_reply() -> None:
    async def main() -> Any:
        h = Harness(
            [
                [
                    busy(),
                    ("iopub", "execute_input", {"code": "x", "execution_count": 4}),
                    stream("one\n"),
                    stream("two\n", "stderr"),
                    ("iopub", "execute_result", {"data": {"text/plain": "3"}, "metadata": {}}),
                    reply(count=4),
                    idle(),
                ]
            ]
        )
        await h.client.start()
        result = await h.runner.run("x")
        return h, result

    h, result = run(main())
    assert result.outcome is CellOutcome.OK
    assert result.execution_count == 4 and result.input_count == 4
    assert result.reply is not None and result.reply.content["status"] == "ok"
    assert result.error is None and result.payloads == () and not result.idle_lost
    assert h.shown == [
        "execute_input:execute_input",
        "stream:one\n",
        "stream:two\n",
        "execute_result:execute_result",
    ]
    assert h.ended == 1  # the front end heard the cell was over, once


def test_each_payload_kind_comes_back_as_data_in_the_kernels_order() -> None:
    payload = [
        {"source": "page", "data": {"text/plain": "help text"}, "start": 0},
        {"source": "set_next_input", "text": "x = 1", "replace": False},
        {"source": "edit_magic", "filename": "f.py", "line_number": 7},
        {"source": "ask_exit", "keepkernel": True},
        {"source": "something_new"},
        "not a dict",
    ]

    async def main() -> Any:
        h = Harness([[busy(), reply(payload=payload), idle()]])
        await h.client.start()
        return await h.runner.run("x")

    result = run(main())
    assert result.payloads == (
        Page("help text"),
        SetNextInput("x = 1"),
        EditMagic("f.py", 7),
        AskExit(keep_kernel=True),
    )
    assert result.ask_exit == AskExit(True)


def test_malformed_payloads_are_dropped_or_made_safe() -> None:
    got = parse_payloads(
        {
            "payload": [
                {"source": "page", "data": 7},
                {"source": "page", "data": {"text/plain": 5}},
                {"source": "set_next_input", "text": None},
                {"source": "edit_magic", "filename": 3, "line_number": "x"},
                {"source": "edit_magic", "filename": "g.py", "line_number": "x"},
                {"source": "ask_exit", "keepkernel": "no"},
            ]
        }
    )
    assert got == (SetNextInput(""), EditMagic("g.py", 0), AskExit(keep_kernel=False))
    assert parse_payloads({"payload": "not a list"}) == ()


PAYLOAD_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
ITEM = st.fixed_dictionaries(
    {"source": st.sampled_from(["page", "set_next_input", "edit_magic", "ask_exit", "x"])},
    optional={k: PAYLOAD_JSON for k in ("data", "text", "filename", "line_number", "keepkernel")},
)


@settings(max_examples=150, deadline=None)
@given(st.lists(ITEM | PAYLOAD_JSON, max_size=5))
def test_any_payload_list_parses_to_typed_values_without_raising(payload: list[Any]) -> None:
    got = parse_payloads({"payload": payload})
    assert len(got) <= len(payload)
    assert all(isinstance(p, Payload) for p in got)
    assert all(isinstance(p.text, str) and p.text for p in got if isinstance(p, Page))


@pytest.mark.parametrize(
    ("status", "ename", "outcome"),
    [
        ("error", "ZeroDivisionError", CellOutcome.ERROR),
        ("error", "KeyboardInterrupt", CellOutcome.INTERRUPTED),
        ("error", "<class 'KeyboardInterrupt'>", CellOutcome.INTERRUPTED),  # xeus-python
        ("aborted", "", CellOutcome.ABORTED),
    ],
)
def test_how_the_cell_ended_follows_the_reply(status: str, ename: str, outcome: Any) -> None:
    error: dict[str, Any] = {"ename": ename, "evalue": "v", "traceback": ["tb"]}

    async def main() -> Any:
        steps = [busy()]
        if status == "error":
            steps.append(("iopub", "error", error))
        steps += [reply(status, **(error if status == "error" else {})), idle()]
        h = Harness([steps])
        await h.client.start()
        return await h.runner.run("x")

    result = run(main())
    assert result.outcome is outcome
    if status == "error":
        assert result.error is not None and result.error["evalue"] == "v"
        assert result.error_shown  # published on IOPub, not only in the reply
        assert result.ename == ename.removeprefix("<class '").removesuffix("'>")
    else:
        assert result.error is None and not result.error_shown


def test_an_error_told_only_in_the_reply_is_not_marked_shown() -> None:
    async def main() -> Any:
        h = Harness([[busy(), reply("error", ename="E", evalue="v", traceback=[]), idle()]])
        await h.client.start()
        return await h.runner.run("x")

    result = run(main())
    assert result.outcome is CellOutcome.ERROR and not result.error_shown


def test_idle_without_a_reply_is_reply_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "REPLY_GRACE", 0.05)

    async def main() -> Any:
        h = Harness(
            [[busy(), ("iopub", "execute_input", {"code": "x", "execution_count": 9}), idle()]]
        )
        await h.client.start()
        return h, await h.runner.run("x")

    h, result = run(main())
    assert result.outcome is CellOutcome.REPLY_LOST
    assert result.reply is None and result.execution_count is None
    assert result.input_count == 9  # the prompt's number when no reply tells it
    assert "reply" in result.detail
    assert h.ended == 1


def test_a_reply_without_idle_gets_the_one_note(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "IDLE_GRACE", 0.05)

    async def main() -> Any:
        h = Harness([[busy(), stream("a\n"), reply(count=2)]])
        await h.client.start()
        return h, await h.runner.run("x")

    h, result = run(main())
    assert result.outcome is CellOutcome.OK and result.execution_count == 2
    assert result.idle_lost
    assert h.notes == [IDLE_LOST_NOTE]
    assert "output may be lost" in IDLE_LOST_NOTE  # what the lifecycle tests look for


def test_an_input_request_is_answered_by_the_front_end() -> None:
    async def main() -> Any:
        h = Harness(
            [
                [
                    busy(),
                    ("stdin", "input_request", {"prompt": "name? ", "password": False}),
                    ("wait", "input_reply", {}),
                    reply(),
                    idle(),
                ],
                [
                    busy(),
                    ("stdin", "input_request", {"prompt": "pw: ", "password": True}),
                    ("wait", "input_reply", {}),
                    reply(),
                    idle(),
                ],
            ],
            answer=lambda prompt, password: "alice",
        )
        await h.client.start()
        first = await h.runner.run("input()")
        h.answer = None  # EOF from now on
        second = await h.runner.run("getpass()")
        return h, first, second

    h, first, second = run(main())
    assert h.prompts == [("name? ", False), ("pw: ", True)]
    assert "stream:got alice" in h.shown
    assert "stream:got \x04" in h.shown  # EOF, as ipykernel reads it
    assert first.outcome is second.outcome is CellOutcome.OK


def test_a_per_cell_input_answer_replaces_the_default() -> None:
    async def own(prompt: str, password: bool) -> str:
        return "from the cell's own"

    async def main() -> Any:
        h = Harness(
            [
                [
                    busy(),
                    ("stdin", "input_request", {"prompt": "", "password": False}),
                    ("wait", "input_reply", {}),
                    reply(),
                    idle(),
                ]
            ]
        )
        await h.client.start()
        cell = h.runner.start("input()", on_input=own)
        await h.runner.wait(cell)
        h.runner.finish(cell)
        return h

    h = run(main())
    assert h.prompts == []
    assert "stream:got from the cell's own" in h.shown


def test_the_request_goes_out_before_what_is_scheduled_after_start() -> None:
    """The REPL sends a cell as Enter accepts it, then lets the prompt end: the
    execute_request must be on the wire before the prompt's exit runs."""

    async def main() -> Any:
        h = Harness([[busy(), reply(), idle()]])
        await h.client.start()
        cell = h.runner.start("x")
        asyncio.get_running_loop().call_soon(h.transport.events.append, "prompt ended")
        await h.runner.wait(cell)
        h.runner.finish(cell)
        return h

    h = run(main())
    assert h.transport.events[:2] == ["sent execute_request", "prompt ended"]


def test_a_death_while_the_cell_runs_is_kernel_died() -> None:
    async def main() -> Any:
        h = Harness([[busy(), stream("partial\n")]])
        await h.client.start()
        cell = h.runner.start("x")
        while not h.shown:
            await asyncio.sleep(0.001)
        h.client.mark_dead("killed by signal 9")
        await h.runner.wait(cell)
        return h, h.runner.finish(cell)

    h, result = run(main())
    assert result.outcome is CellOutcome.KERNEL_DIED
    assert result.detail == "killed by signal 9" and result.reply is None
    assert h.shown == ["stream:partial\n"]


def test_an_abandoned_cell_is_recorded_without_a_reply(tmp_path: Path) -> None:
    recorder = NotebookRecorder(tmp_path / "n.ipynb")

    async def main() -> Any:
        h = Harness([[busy(), stream("before\n")]])
        h.runner.recorder = recorder
        await h.client.start()
        cell = h.runner.start("slow()")
        while not h.shown:
            await asyncio.sleep(0.001)
        cell.abandon()  # a restart, or Ctrl-C twice
        await h.runner.wait(cell)
        return h.runner.finish(cell)

    result = run(main())
    assert result.outcome is CellOutcome.ABANDONED and result.reply is None
    (cell,) = recorder.cells
    assert cell.source == "slow()" and cell.execution_count is None
    assert [o["text"].getvalue() for o in cell.outputs] == ["before\n"]


def test_cells_are_recorded_with_their_outputs_and_count(tmp_path: Path) -> None:
    recorder = NotebookRecorder(tmp_path / "n.ipynb")

    async def main() -> Any:
        h = Harness(
            [
                [busy(), stream("hi\n"), reply(count=1), idle()],
                [busy(), stream("own code\n"), reply(count=2), idle()],
                [busy(), reply(count=3, payload=[{"source": "ask_exit"}]), idle()],
            ],
            recorder=recorder,
        )
        await h.client.start()
        await h.runner.run("print('hi')")
        await h.runner.run("kconsole_internal()", silent=True, record=False)
        exiting = await h.runner.run("exit()")
        if exiting.ask_exit is not None:
            h.runner.discard_recorded()  # the front end's decision
        return h

    h = run(main())
    assert [c.source for c in recorder.cells] == ["print('hi')"]
    (cell,) = recorder.cells
    assert cell.execution_count == 1
    assert [o["text"].getvalue() for o in cell.outputs] == ["hi\n"]
    assert h.ended == 3  # kconsole's own cell ends its output too
    silent = [m for ch, m in h.transport.sent if m.msg_type == "execute_request"][1]
    assert silent.content["silent"] is True


def test_by_default_the_output_goes_to_the_printer() -> None:
    async def main() -> Any:
        h = Harness([[busy(), stream("no newline"), reply(), idle()]], default_display=True)
        await h.client.start()
        await h.runner.run("x")
        return h

    h = run(main())
    assert h.out.getvalue() == "no newline\n"  # printed, then the line ended


def test_a_client_failure_other_than_death_is_raised() -> None:
    async def main() -> Any:
        h = Harness([], fail_send=True)
        await h.client.start()
        cell = h.runner.start("x")
        with pytest.raises(TransportError):
            await h.runner.wait(cell)
        return h.runner.finish(cell)

    result = run(main())
    assert result.outcome is CellOutcome.ABANDONED and "cut" in result.detail


# -- against the built-in kernel -------------------------------------------------------


@pytest.mark.timeout(60)
def test_cells_on_the_builtin_kernel(tmp_path: Path) -> None:
    from kconsole.kernel_connection import start_local
    from kconsole.kernelspec import resolve_kernel

    recorder = NotebookRecorder(tmp_path / "b.ipynb")
    out = io.StringIO()

    async def main() -> Any:
        conn = await start_local(
            resolve_kernel("builtin"),
            ip="127.0.0.1",
            transport="tcp",
            timeout=30,
            keep_kernel=False,
        )
        try:
            runner = CellRunner(conn, OutputPrinter(out, color=False), recorder=recorder)
            ok = await runner.run("print('hel' + 'lo')")
            err = await runner.run("1 / 0")
            return ok, err
        finally:
            await conn.close()

    ok, err = run(main())
    assert ok.outcome is CellOutcome.OK and isinstance(ok.execution_count, int)
    assert err.outcome is CellOutcome.ERROR and err.ename == "ZeroDivisionError"
    assert err.error_shown
    assert "hello\n" in out.getvalue()
    assert [c.source for c in recorder.cells] == ["print('hel' + 'lo')", "1 / 0"]
    assert recorder.cells[1].outputs[-1]["ename"] == "ZeroDivisionError"
