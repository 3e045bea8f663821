"""WebSocketTransport against a scripted WebSocket server (no Jupyter): negotiation
as the server decides it, and frames that are not messages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

pytest.importorskip("websockets")

from websockets.asyncio.server import ServerConnection, serve

from kconsole.client import KernelClient, KernelTimeout
from kconsole.protocol import Session
from kconsole.remote import ServerClient, WebSocketTransport
from kconsole.remote.framing import V1_SUBPROTOCOL, encode_json, encode_v1
from kconsole.transport import Transport

pytestmark = pytest.mark.timeout(20)

Handler = Callable[[ServerConnection], Awaitable[None]]


async def with_server(
    handler: Handler, pick: str | None, body: Callable[[WebSocketTransport], Awaitable[Any]]
) -> Any:
    """Serve ``handler`` on a free port, choosing subprotocol ``pick`` (None: none)."""

    def select(conn: ServerConnection, offered: Any) -> Any:
        return pick if pick in offered else None

    async with serve(handler, "127.0.0.1", 0, select_subprotocol=select) as server:
        port = server.sockets[0].getsockname()[1]
        t = WebSocketTransport(ServerClient(f"http://127.0.0.1:{port}", "tok"), "k1")
        try:
            await t.connect()
            return await body(t)
        finally:
            await t.close()


def _status() -> Any:
    return Session(b"").msg("status", {"execution_state": "idle"})


def test_server_that_ignores_the_offer_gets_json() -> None:
    """An old server that knows no subprotocol: JSON framing, whatever we offered."""
    got: list[Any] = []
    received = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        got.append(ws.request.headers.get("Sec-WebSocket-Protocol"))
        got.append(ws.request.headers.get("Authorization"))
        got.append(ws.request.path)
        await ws.send(encode_json("iopub", _status()))
        got.append(json.loads(await ws.recv()))
        received.set()

    async def body(t: WebSocketTransport) -> None:
        assert t.framing == "json"
        channel, msg = await asyncio.wait_for(t.recv(), 5)
        assert (channel, msg.msg_type) == ("iopub", "status")
        await t.send("shell", t.session().msg("kernel_info_request"))
        await asyncio.wait_for(received.wait(), 5)

    asyncio.run(with_server(handler, None, body))
    assert got[0] == V1_SUBPROTOCOL  # offered...
    assert got[1] == "token tok"
    assert got[2].startswith("/api/kernels/k1/channels?session_id=")
    assert got[3]["channel"] == "shell"  # ...but spoke JSON, as negotiated
    assert got[3]["header"]["msg_type"] == "kernel_info_request"


def test_bad_frames_are_counted_not_returned() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(b"\x00\x01")  # not a v1 frame
        await ws.send(encode_v1("nowhere", _status()))  # no such channel
        await ws.send(encode_v1("iopub", _status()))
        await ws.wait_closed()

    async def body(t: WebSocketTransport) -> None:
        assert t.framing == "v1"
        channel, msg = await asyncio.wait_for(t.recv(), 5)
        assert (channel, msg.msg_type) == ("iopub", "status")
        assert t.rejected == 2
        assert t.last_rejection == "message on unknown channel 'nowhere'"

    asyncio.run(with_server(handler, V1_SUBPROTOCOL, body))


_SERVER = Session(b"")
_RESTARTING = _SERVER.msg("status", {"execution_state": "restarting"})


class _ScriptedServer(Transport):
    """A server's WebSocket in memory: what the client sends goes to ``answer``, which
    returns the messages to deliver in reply, ``(channel, message)`` each."""

    def __init__(self, answer: Callable[[Any], list[tuple[str, Any]]]) -> None:
        self.answer = answer
        self.receiver: Callable[[str, Any], None] | None = None

    def deliver_to(self, receiver: Any, on_closed: Any) -> bool:
        self.receiver = receiver
        return True

    async def connect(self) -> None:
        pass

    async def is_alive(self, timeout: float) -> bool:
        return True

    async def close(self) -> None:
        pass

    async def send(self, channel: Any, msg: Any) -> None:
        loop = asyncio.get_running_loop()
        for ch, m in self.answer(msg):
            loop.call_soon(self.receiver, ch, m)  # type: ignore[arg-type]


def _answered(msg: Any, reply_type: str, content: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("shell", _SERVER.msg(reply_type, content, parent=msg)),
        ("iopub", _SERVER.msg("status", {"execution_state": "idle"}, parent=msg)),
    ]


def test_a_restarted_kernel_that_dies_again_before_answering_is_followed_to_the_next() -> None:
    # The server restarts a dead kernel ("restarting"), and that kernel dies too before
    # answering kernel_info: the wait for it loses its reply (ReplyLost) just as the
    # second "restarting" arrives. The kernel after it, which answers, must still be
    # told (on_restarted), or the console says [kernel restarting] at an idle prompt.
    # (In memory, as the WebSocket delivers the server's messages: a real server does
    # not let the second death fall inside the wait reliably.)
    asked = []

    def answer(msg: Any) -> list[tuple[str, Any]]:
        if msg.msg_type != "kernel_info_request":
            return []
        asked.append(msg)
        if len(asked) == 1:  # the kernel this was for died too: another one
            return [("iopub", _RESTARTING)]
        return _answered(msg, "kernel_info_reply", {"status": "ok"})

    async def main() -> None:
        t = _ScriptedServer(answer)
        client = KernelClient(t, Session(b""))
        restarted = asyncio.Event()
        client.on_restarted = restarted.set
        await client.start()
        try:
            assert t.receiver is not None
            t.receiver("iopub", _RESTARTING)  # the first kernel died
            await asyncio.wait_for(restarted.wait(), 10)
        finally:
            await client.close()

    asyncio.run(main())
    assert len(asked) >= 2


def test_a_cell_run_on_the_restarted_kernel_before_it_answered_is_not_reset_after() -> None:
    # The new kernel answers the console's kernel_info only after a cell the user sent
    # meanwhile (its first request timed out while it started). That cell counts on the
    # new kernel already: telling on_restarted after it would set the prompt back to
    # In [1] under the cell's own Out[1], and drop an input() of it waiting its turn.
    async def main() -> bool:
        held: list[Any] = []
        asked = asyncio.Event()

        def answer(msg: Any) -> list[tuple[str, Any]]:
            if msg.msg_type == "kernel_info_request":
                held.append(msg)
                asked.set()
                return []
            if msg.msg_type == "execute_request":
                done = _answered(msg, "execute_reply", {"status": "ok", "execution_count": 1})
                return done + [a for m in held for a in _answered(m, "kernel_info_reply", {})]
            return []

        t = _ScriptedServer(answer)
        client = KernelClient(t, Session(b""))
        restarted = asyncio.Event()
        client.on_restarted = restarted.set
        await client.start()
        try:
            assert t.receiver is not None
            t.receiver("iopub", _RESTARTING)
            await asyncio.wait_for(asked.wait(), 10)  # the console asks the new kernel
            reply = await asyncio.wait_for(client.execute("1"), 10)
            assert reply.content["execution_count"] == 1
            follower = client._restart_follower
            assert follower is not None
            await asyncio.wait_for(follower, 10)
        finally:
            await client.close()
        return restarted.is_set()

    assert asyncio.run(main()) is False


def test_a_late_status_of_our_own_request_that_timed_out_is_still_ours() -> None:
    # A request of ours (Tab, Enter's is_complete) given up on before the kernel got to
    # it: its busy and idle come later, and are still our own, not another client's
    # work: a REPL showed "[kernel busy]" for them, kept on the accepted line.
    async def main() -> list[tuple[str, bool]]:
        sent: list[Any] = []
        t = _ScriptedServer(lambda msg: sent.append(msg) or [])
        client = KernelClient(t, Session(b""))
        seen: list[tuple[str, bool]] = []
        client.on_status = lambda m, own: seen.append((m.content["execution_state"], own))
        await client.start()
        try:
            with pytest.raises(KernelTimeout):
                await client.is_complete("x = (", timeout=0.05)
            (late,) = sent
            assert t.receiver is not None
            for state in ("busy", "idle"):
                t.receiver("iopub", _SERVER.msg("status", {"execution_state": state}, parent=late))
            other = _SERVER.msg("status", {"execution_state": "busy"})  # no parent of ours
            t.receiver("iopub", other)
        finally:
            await client.close()
        return seen

    assert asyncio.run(main()) == [("busy", True), ("idle", True), ("busy", False)]


def test_a_replacement_kernel_is_not_taken_for_the_one_whose_restart_was_followed() -> None:
    # The server restarted a dead kernel and then forgot it; the console started a new
    # one in its place. Should that one be gone later, it is not "a kernel its server
    # could not restart": the follow of the old one's restart ends with the old one.
    async def main() -> tuple[bool, bool]:
        old = _ScriptedServer(lambda msg: [])
        client = KernelClient(old, Session(b""))
        await client.start()
        try:
            assert old.receiver is not None
            old.receiver("iopub", _RESTARTING)
            following = client.restart_followed
            new = _ScriptedServer(lambda msg: [])
            await client.replace_transport(new, Session(b""))
            return following, client.restart_followed
        finally:
            await client.close()

    assert asyncio.run(main()) == (True, False)
