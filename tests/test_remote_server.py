"""Remote kernels against a real ``jupyter server`` on a loopback port.

The server runs as a subprocess with a random token, its own runtime/config/data
dirs and a temporary root dir; every test starts its own kernel through REST and
deletes it. Both WebSocket framings run against the real server: v1 when the
subprotocol is offered, JSON when it is not (``force_json``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

pytest.importorskip("jupyter_server")
pytest.importorskip("websockets")

from kconsole.protocol import Message
from kconsole.remote import (
    RemoteError,
    ServerClient,
    TransportEvent,
    WebSocketTransport,
    open_server_kernel,
)
from kconsole.transport import TransportError

pytestmark = pytest.mark.timeout(90)

T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class JupyterServer:
    """A ``jupyter server`` subprocess: its URL, token and log."""

    def __init__(
        self, tmp: Path, tls: tuple[Path, Path] | None = None, extra: tuple[str, ...] = ()
    ) -> None:
        self.token = secrets.token_hex(16)
        self.port = _free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}/"
        self.tmp = tmp
        self.log = tmp / "server.log"
        env = dict(os.environ)
        for var, sub in [
            ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("JUPYTER_CONFIG_DIR", "config"),
            ("JUPYTER_DATA_DIR", "data"),
        ]:
            env[var] = str(tmp / sub)
        env.pop("JUPYTER_TOKEN", None)
        self.runtime_dir = tmp / "runtime"
        (tmp / "root").mkdir()
        cmd = [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={tmp / 'root'}",
            # Low enough that a test floods it quickly, high enough for all the others.
            "--ZMQChannelsWebsocketConnection.iopub_msg_rate_limit=200",
        ]
        if tls is not None:
            cmd += [f"--ServerApp.certfile={tls[0]}", f"--ServerApp.keyfile={tls[1]}"]
        cmd += extra
        self._log = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Poll GET /api/status until the server answers (or died / timed out)."""
        deadline = time.monotonic() + timeout
        req = urllib.request.Request(
            self.url + "api/status", headers={"Authorization": f"token {self.token}"}
        )
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter server exited:\n{self.log.read_text()[-3000:]}")
            try:
                # The poll only waits for the server; the TLS test checks verification.
                ctx = ssl._create_unverified_context() if self.url.startswith("https") else None
                with urllib.request.urlopen(req, timeout=2, context=ctx) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter server not up in {timeout} s")
            # The process's exit is the event that matters; wait on it between polls.
            try:
                self.proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    srv = JupyterServer(tmp_path_factory.mktemp("jupyter-server"))
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def run(coro: Awaitable[T], timeout: float = 60.0) -> T:
    async def main() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(main())


@asynccontextmanager
async def kernel_transport(
    server: JupyterServer, force_json: bool, **kw: Any
) -> AsyncIterator[tuple[ServerClient, str, WebSocketTransport]]:
    """A fresh kernel on the server and a connected transport; both gone afterwards."""
    client = ServerClient(server.url, server.token)
    model = await client.start_kernel("python3")
    transport = WebSocketTransport(client, model.id, force_json=force_json, **kw)
    try:
        await transport.connect()
        assert transport.framing == ("json" if force_json else "v1")
        yield client, model.id, transport
    finally:
        await transport.close()
        try:
            await client.delete_kernel(model.id)
        except RemoteError:
            pass


async def until(
    transport: WebSocketTransport, pred: Callable[[str, Message], bool], timeout: float = 30.0
) -> list[tuple[str, Message]]:
    """Collect messages until one satisfies ``pred``; all of them, in order."""
    seen: list[tuple[str, Message]] = []

    async def loop() -> None:
        while True:
            channel, msg = await transport.recv()
            seen.append((channel, msg))
            if pred(channel, msg):
                return

    await asyncio.wait_for(loop(), timeout)
    return seen


def idle_of(req: Message) -> Callable[[str, Message], bool]:
    """True once both the reply to ``req`` and its ``idle`` have been seen.

    The reply (shell) and the idle (iopub) come from different zmq sockets, so either
    may reach the server, and us, first.
    """
    got: set[str] = set()

    def pred(ch: str, m: Message) -> bool:
        if m.parent_id == req.msg_id:
            if ch in ("shell", "control"):
                got.add("reply")
            elif m.msg_type == "status" and m.content.get("execution_state") == "idle":
                got.add("idle")
        return got == {"reply", "idle"}

    return pred


def execute_msg(t: WebSocketTransport, code: str, allow_stdin: bool = False) -> Message:
    return t.session().msg(
        "execute_request",
        {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": allow_stdin,
            "stop_on_error": True,
        },
    )


def stdout_of(seen: list[tuple[str, Message]], req: Message) -> str:
    return "".join(
        m.content["text"]
        for ch, m in seen
        if m.msg_type == "stream" and m.parent_id == req.msg_id and m.content["name"] == "stdout"
    )


def reply_of(seen: list[tuple[str, Message]], req: Message) -> Message:
    replies = [m for ch, m in seen if ch in ("shell", "control") and m.parent_id == req.msg_id]
    assert len(replies) == 1, replies
    return replies[0]


FRAMINGS = pytest.mark.parametrize("force_json", [False, True], ids=["v1", "json"])


# -- REST -------------------------------------------------------------------------------


def test_rest_lifecycle(server: JupyterServer) -> None:
    async def main() -> None:
        client = ServerClient(server.url, server.token)
        assert "started" in await client.status()
        specs = await client.list_kernelspecs()
        assert "python3" in specs.names and specs.default
        model = await client.start_kernel("python3")
        assert model.name == "python3"
        listed = await client.list_kernels()
        assert [k.id for k in listed] == [model.id]
        assert (await client.get_kernel(model.id)).id == model.id
        restarted = await client.restart_kernel(model.id)
        assert restarted.id == model.id
        await client.interrupt_kernel(model.id)
        await client.delete_kernel(model.id)
        assert await client.list_kernels() == []

    run(main())


def test_rest_errors_are_one_line(server: JupyterServer) -> None:
    async def main() -> None:
        bad = ServerClient(server.url, "wrong-token")
        with pytest.raises(RemoteError) as e:
            await bad.list_kernels()
        assert str(e.value) == "server refused the token (HTTP 403)"
        assert server.token not in str(e.value) and "wrong-token" not in str(e.value)

        client = ServerClient(server.url, server.token)
        missing = "00000000-0000-0000-0000-000000000000"
        for call in (client.get_kernel, client.delete_kernel, client.interrupt_kernel):
            with pytest.raises(RemoteError) as e:
                await call(missing)
            assert str(e.value) == f"no kernel with id {missing} on the server"
            assert e.value.status == 404

        with pytest.raises(RemoteError) as e:
            await client.start_kernel("no-such-kernel")
        # The list is the server's own kernelspecs (xeus-python's among them here).
        assert re.fullmatch(
            r"the server has no kernelspec named 'no-such-kernel' \(available: [^()]*\)",
            str(e.value),
        )
        assert "python3" in str(e.value)

        closed = ServerClient(f"http://127.0.0.1:{_free_port()}", "t")
        with pytest.raises(RemoteError) as e:
            await closed.list_kernels()
        assert str(e.value).startswith("cannot reach the Jupyter server at http://127.0.0.1:")
        assert await client.list_kernels() == []

    run(main())


def test_websocket_wrong_token(server: JupyterServer) -> None:
    async def main() -> None:
        client = ServerClient(server.url, server.token)
        model = await client.start_kernel("python3")
        try:
            bad = WebSocketTransport(ServerClient(server.url, "nope"), model.id)
            with pytest.raises(RemoteError, match=r"^server refused the token \(HTTP 403\)$"):
                await bad.connect()
            gone = WebSocketTransport(client, "00000000-0000-0000-0000-000000000000")
            with pytest.raises(RemoteError, match="^no kernel with id 0000"):
                await gone.connect()
        finally:
            await client.delete_kernel(model.id)

    run(main())


# -- the WebSocket transport, both framings ---------------------------------------------


@FRAMINGS
def test_kernel_info_and_execute(server: JupyterServer, force_json: bool) -> None:
    async def main() -> None:
        async with kernel_transport(server, force_json) as (_, _, t):
            info = t.session().msg("kernel_info_request")
            await t.send("shell", info)
            seen = await until(t, idle_of(info))
            reply = reply_of(seen, info)
            assert reply.msg_type == "kernel_info_reply"
            assert reply.content["language_info"]["name"] == "python"

            req = execute_msg(t, "print('hello from', 6 * 7); 'result'")
            await t.send("shell", req)
            seen = await until(t, idle_of(req))
            assert stdout_of(seen, req) == "hello from 42\n"
            results = [m for _, m in seen if m.msg_type == "execute_result"]
            assert results[0].content["data"]["text/plain"] == "'result'"
            assert reply_of(seen, req).content["status"] == "ok"
            assert await t.is_alive(5.0)
            assert t.rejected == 0

    run(main())


@FRAMINGS
def test_input_answered_over_stdin(server: JupyterServer, force_json: bool) -> None:
    async def main() -> None:
        async with kernel_transport(server, force_json) as (_, _, t):
            req = execute_msg(t, "name = input('who? '); print('hi', name)", allow_stdin=True)
            await t.send("shell", req)
            seen = await until(t, lambda ch, m: m.msg_type == "input_request")
            ch, ask = seen[-1]
            assert ch == "stdin" and ask.content["prompt"] == "who? "
            await t.send("stdin", t.session().msg("input_reply", {"value": "ünï"}, parent=ask))
            seen = await until(t, idle_of(req))
            assert stdout_of(seen, req) == "hi ünï\n"

    run(main())


@FRAMINGS
def test_interrupt_through_rest(server: JupyterServer, force_json: bool) -> None:
    async def main() -> None:
        async with kernel_transport(server, force_json) as (_, _, t):
            assert t.handles_interrupt
            req = execute_msg(t, "import time; print('sleeping', flush=True); time.sleep(60)")
            await t.send("shell", req)
            # Interrupt only once the kernel is inside the sleep.
            await until(t, lambda ch, m: m.msg_type == "stream" and m.parent_id == req.msg_id)
            await t.interrupt()
            seen = await until(t, idle_of(req))
            reply = reply_of(seen, req)
            assert reply.content["status"] == "error"
            assert reply.content["ename"] == "KeyboardInterrupt"

    run(main())


@FRAMINGS
def test_comm_buffers_round_trip(server: JupyterServer, force_json: bool) -> None:
    """Binary buffers travel to the kernel and back, through the server, in both framings."""
    setup = (
        "from comm import get_comm_manager\n"
        "def _echo(comm, open_msg):\n"
        "    def on_msg(m):\n"
        "        comm.send({'sizes': [len(b) for b in m['buffers']]},\n"
        "                  buffers=[bytes(b)[::-1] for b in m['buffers']])\n"
        "    comm.on_msg(on_msg)\n"
        "get_comm_manager().register_target('kconsole-echo', _echo)\n"
    )

    async def main() -> None:
        async with kernel_transport(server, force_json) as (_, _, t):
            s = t.session()
            req = execute_msg(t, setup)
            await t.send("shell", req)
            seen = await until(t, idle_of(req))
            assert reply_of(seen, req).content["status"] == "ok", seen
            opened = s.msg(
                "comm_open", {"comm_id": "c-1", "target_name": "kconsole-echo", "data": {}}
            )
            await t.send("shell", opened)
            # comm_open has no reply: its idle is the end of it.
            await until(
                t,
                lambda ch, m: (
                    m.parent_id == opened.msg_id and m.content.get("execution_state") == "idle"
                ),
            )
            payload = [bytes(range(256)), b"\x00\xffabc"]
            sent = s.msg("comm_msg", {"comm_id": "c-1", "data": {}}, buffers=payload)
            await t.send("shell", sent)
            seen = await until(
                t, lambda ch, m: m.msg_type == "comm_msg" and m.parent_id == sent.msg_id
            )
            echo = seen[-1][1]
            assert echo.content["data"] == {"sizes": [256, 5]}
            assert echo.buffers == [b[::-1] for b in payload]

    run(main())


@FRAMINGS
def test_restart_passes_server_status_through(server: JupyterServer, force_json: bool) -> None:
    """A kernel that dies is restarted by the server, which says so on the socket."""

    async def main() -> None:
        async with kernel_transport(server, force_json) as (_, kid, t):
            req = execute_msg(t, "import os; os._exit(1)")
            await t.send("shell", req)
            seen = await until(
                t,
                lambda ch, m: (
                    m.msg_type == "status" and m.content.get("execution_state") == "restarting"
                ),
            )
            assert seen[-1][0] == "iopub"
            # The transport is still usable on the restarted kernel.
            again = execute_msg(t, "print('back')")
            await t.send("shell", again)
            seen = await until(t, idle_of(again))
            assert stdout_of(seen, again) == "back\n"
            # The transport's own nudge after the restart does not leak out.
            assert not [m for _, m in seen if m.msg_type == "kernel_info_reply"]

    run(main())


def test_restart_through_transport(server: JupyterServer) -> None:
    """What the console's restart does for a server kernel: REST restart, same socket."""

    async def main() -> None:
        async with kernel_transport(server, False) as (client, kid, t):
            req = execute_msg(t, "x = 1")
            await t.send("shell", req)
            await until(t, idle_of(req))
            await t.restart()
            assert (await client.get_kernel(kid)).id == kid
            check = execute_msg(t, "print('x' in dir())")
            await t.send("shell", check)
            seen = await until(t, idle_of(check))
            assert stdout_of(seen, check) == "False\n"

    run(main())


def test_delete_kernel_through_transport_is_quiet(server: JupyterServer) -> None:
    async def main() -> None:
        events: list[TransportEvent] = []
        client = ServerClient(server.url, server.token)
        model = await client.start_kernel("python3")
        t = WebSocketTransport(client, model.id, on_event=events.append)
        await t.connect()
        await t.delete_kernel()
        await t.close()
        assert events == []
        assert await client.list_kernels() == []

    run(main())


@FRAMINGS
def test_reconnect_keeps_the_session(
    server: JupyterServer, force_json: bool, tmp_path: Path
) -> None:
    """A dropped connection is reopened with the same session id; output produced
    while it was down is replayed by the server, nothing is lost."""
    gate, printed = tmp_path / "gate", tmp_path / "printed"
    # The cell prints only once the client has seen the connection drop, and the client
    # does not reconnect until it has printed: the output is produced while it is down.
    # Files are the only channel besides the dropped one, so both sides poll them within
    # a deadline.
    code = (
        "import os, time\n"
        "deadline = time.monotonic() + 30\n"
        f"while not os.path.exists({str(gate)!r}) and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        "print('during the gap', flush=True)\n"
        f"open({str(printed)!r}, 'w').close()\n"
    )
    printed_while_down: list[bool] = []

    def on_event(event: TransportEvent) -> None:
        events.append(event)
        if event.kind == "disconnected":
            gate.touch()
            # Blocks the event loop on purpose: the reconnect cannot start meanwhile.
            deadline = time.monotonic() + 30
            while not printed.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            printed_while_down.append(printed.exists())

    events: list[TransportEvent] = []

    async def main() -> None:
        async with kernel_transport(server, force_json, on_event=on_event) as (_, _, t):
            session_id = t.session_id
            req = execute_msg(t, code)
            await t.send("shell", req)
            await until(
                t, lambda ch, m: m.msg_type == "execute_input" and m.parent_id == req.msg_id
            )
            # Cut the TCP connection under the WebSocket, as a network drop would.
            assert t._ws is not None
            t._ws.transport.abort()
            seen = await until(t, idle_of(req))
            assert printed_while_down == [True]
            assert stdout_of(seen, req) == "during the gap\n"
            assert reply_of(seen, req).content["status"] == "ok"
            assert t.reconnects == 1 and t.session_id == session_id
            assert [e.kind for e in events] == ["disconnected", "reconnected"]
            assert all("\n" not in e.message for e in events)

            after = execute_msg(t, "print('after')")
            await t.send("shell", after)
            seen = await until(t, idle_of(after))
            assert stdout_of(seen, after) == "after\n"

    run(main())


def test_deleted_kernel_ends_the_transport(server: JupyterServer) -> None:
    async def main() -> None:
        events: list[TransportEvent] = []
        client = ServerClient(server.url, server.token)
        model = await client.start_kernel("python3")
        t = WebSocketTransport(client, model.id, on_event=events.append)
        try:
            await t.connect()
            await client.delete_kernel(model.id)
            assert t._ws is not None
            t._ws.transport.abort()  # the server may keep the socket; force the question
            with pytest.raises(TransportError, match="no kernel with id"):
                while True:
                    await t.recv()
            assert events[-1].kind == "reconnect_failed"
            assert not await t.is_alive(5.0)
            with pytest.raises(TransportError):
                await t.send("shell", execute_msg(t, "1"))
        finally:
            await t.close()

    run(main())


def test_iopub_rate_limit_notice_is_one_line_once(server: JupyterServer) -> None:
    async def main() -> None:
        async with kernel_transport(server, False) as (_, _, t):
            # display() sends one message per call (print output may be batched):
            # 2000 of them within the 3 s window exceed the 200 msgs/s set above.
            req = execute_msg(
                t, "from IPython.display import display\nfor i in range(2000):\n    display(i)\n"
            )
            await t.send("shell", req)
            seen = await until(t, idle_of(req), timeout=60)
            # What a console prints: the server's advice shortened to one line, once.
            texts = [m.content.get("text", "") for _, m in seen if m.msg_type == "stream"]
            notices = [t for t in texts if "rate exceeded" in t]
            assert notices == [
                "[kconsole] IOPub message rate exceeded: the server is dropping output\n"
            ]

    run(main())


# -- through KernelClient ---------------------------------------------------------------


@FRAMINGS
def test_kernel_client_over_websocket(server: JupyterServer, force_json: bool) -> None:
    import kconsole.client as client_mod

    async def main() -> None:
        sk = await open_server_kernel(
            server.url, server.token, kernel_name="python3", force_json=force_json
        )
        kc = client_mod.KernelClient(sk.transport, sk.session())
        try:
            await kc.start()
            info = await kc.wait_for_ready(30)
            assert info["language_info"]["name"] == "python"

            out: list[Message] = []
            reply = await kc.execute("print('via client')", on_output=out.append)
            assert reply.content["status"] == "ok"
            assert [m.content["text"] for m in out if m.msg_type == "stream"] == ["via client\n"]

            async def answer(prompt: str, password: bool) -> str:
                assert prompt == "pw: " and password
                return "s3cret"

            out.clear()
            reply = await kc.execute(
                "import getpass; print(len(getpass.getpass('pw: ')))",
                on_output=out.append,
                on_input=answer,
            )
            assert [m.content["text"] for m in out if m.msg_type == "stream"] == ["6\n"]

            done = await kc.complete("import o", 8)
            assert "os" in done["matches"]
            assert (await kc.is_complete("for i in x:"))["status"] == "incomplete"
            found = await kc.inspect("len", 3)
            assert found["found"]

            # Interrupt as the console does for a transport that handles it, once the
            # kernel is inside the sleep.
            printed = asyncio.Event()

            def on_out(m: Message) -> None:
                if m.msg_type == "stream":
                    printed.set()

            run_task = asyncio.ensure_future(
                kc.execute("import time; print('z', flush=True); time.sleep(60)", on_output=on_out)
            )
            await asyncio.wait_for(printed.wait(), 30)
            await sk.transport.interrupt()
            reply = await run_task
            assert reply.content["ename"] == "KeyboardInterrupt"
        finally:
            await kc.close()
            await sk.close()
        # We started it, so closing shut it down.
        assert await sk.server.list_kernels() == []

    run(main())


def test_open_server_kernel_attach_and_keep(server: JupyterServer) -> None:
    async def main() -> None:
        started = await open_server_kernel(server.url, server.token)
        await started.close(keep_kernel=True)
        client = ServerClient(server.url, server.token)
        assert [k.id for k in await client.list_kernels()] == [started.kernel_id]
        attached = await open_server_kernel(
            server.url, server.token, kernel_id=started.kernel_id[:8]
        )
        assert attached.kernel_id == started.kernel_id and not attached.started
        await attached.close()
        # Attached kernels are left running.
        assert [k.id for k in await client.list_kernels()] == [started.kernel_id]
        with pytest.raises(RemoteError, match="no kernel with id zzz"):
            await open_server_kernel(server.url, server.token, kernel_id="zzz")
        await client.delete_kernel(started.kernel_id)

    run(main())


# -- what the CLI calls -----------------------------------------------------------------


def test_console_start_and_attach(server: JupyterServer) -> None:
    from kconsole.kernel_connection import ConsoleError
    from kconsole.remote.connect import attach_server_kernel, start_server_kernel

    async def main() -> None:
        rest = ServerClient(server.url, server.token)
        conn = await start_server_kernel(server.url, server.token, kernel_name="python3")
        try:
            assert conn.owns_kernel and conn.label.endswith(f"on {server.url}")
            assert conn.language_info["name"] == "python"
            (kid,) = [k.id for k in await rest.list_kernels()]
            # A second console attaches to the same kernel and leaves it running.
            other = await attach_server_kernel(server.url, server.token, kernel_id=kid)
            assert not other.owns_kernel
            out: list[Message] = []
            await other.client.execute("print('second')", on_output=out.append)
            assert [m.content["text"] for m in out if m.msg_type == "stream"] == ["second\n"]
            assert await other.interrupt() == "interrupt sent"
            await other.close()
            assert [k.id for k in await rest.list_kernels()] == [kid]
            await conn.restart(timeout=30)
            reply = await conn.client.execute("1")
            assert reply.content["status"] == "ok"
        finally:
            await conn.close()
        assert await rest.list_kernels() == []

        kept = await start_server_kernel(server.url, server.token, keep_kernel=True)
        await kept.close()
        (kid,) = [k.id for k in await rest.list_kernels()]
        await rest.delete_kernel(kid)

        with pytest.raises(ConsoleError, match=r"^server refused the token \(HTTP 403\)$"):
            await start_server_kernel(server.url, "bad")
        with pytest.raises(ConsoleError, match="^no kernel with id nope on the server$"):
            await attach_server_kernel(server.url, server.token, kernel_id="nope")

    run(main(), timeout=90)


def test_server_gone_gives_up_after_reconnect_timeout(tmp_path: Path) -> None:
    """A server that went away for good: retried for reconnect_timeout, then one
    reconnect_failed event and recv() raises (no hang)."""
    own = JupyterServer(tmp_path)
    try:
        own.wait_ready()

        async def main() -> None:
            events: list[TransportEvent] = []
            client = ServerClient(own.url, own.token)
            model = await client.start_kernel("python3")
            t = WebSocketTransport(client, model.id, on_event=events.append, reconnect_timeout=2)
            await t.connect()
            await asyncio.to_thread(own.stop)
            with pytest.raises(TransportError, match="^lost the connection to the kernel: "):
                while True:
                    await t.recv()
            assert [e.kind for e in events] == ["disconnected", "reconnect_failed"]
            assert "cannot reach the Jupyter server" in events[-1].message
            assert not await t.is_alive(2.0)
            await t.close()

        run(main(), timeout=60)
    finally:
        if own.proc.poll() is None:
            own.stop()


def test_token_not_logged_even_at_debug(
    server: JupyterServer, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    async def main() -> None:
        async with kernel_transport(server, False) as (_, _, t):
            req = execute_msg(t, "1")
            await t.send("shell", req)
            await until(t, idle_of(req))

    with caplog.at_level(logging.DEBUG):
        run(main())
    assert server.token not in caplog.text


@contextlib.contextmanager
def https_server(tmp_path: Path) -> Iterator[JupyterServer]:
    """A ``jupyter server`` on https with a fresh self-signed certificate (skips the
    test where openssl is not installed)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    srv_dir = tmp_path / "srv"
    srv_dir.mkdir()
    own = JupyterServer(srv_dir, tls=(cert, key))
    try:
        own.wait_ready()
        yield own
    finally:
        own.stop()


def test_https_self_signed_needs_insecure(tmp_path: Path) -> None:
    """A self-signed https server: refused with a one-line hint, then used with
    insecure=True over REST and wss:// in both framings."""
    with https_server(tmp_path) as own:

        async def main() -> None:
            strict = ServerClient(own.url, own.token)
            with pytest.raises(RemoteError) as e:
                await strict.list_kernels()
            assert str(e.value).startswith(f"the TLS certificate of {own.url} is not trusted")
            assert str(e.value).endswith("--insecure skips the check")

            client = ServerClient(own.url, own.token, insecure=True)
            model = await client.start_kernel("python3")
            try:
                for force_json in (False, True):
                    t = WebSocketTransport(client, model.id, force_json=force_json)
                    assert t.url.startswith("wss://")
                    await t.connect()
                    try:
                        req = execute_msg(t, "print('tls')")
                        await t.send("shell", req)
                        seen = await until(t, idle_of(req))
                        assert stdout_of(seen, req) == "tls\n"
                    finally:
                        await t.close()
            finally:
                await client.delete_kernel(model.id)

        run(main())
