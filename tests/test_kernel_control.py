"""Each kind of kernel control keeps its contract, against real kernels.

The built-in kernel (``python -m kconsole.kernel``) is the cheap real kernel: a local
one kconsole starts (:class:`LocalControl`), the same attached to over zmq
(:class:`AttachedControl`), and a Jupyter Server's kernel (``ServerControl``) when
jupyter_server is installed. What a caller relies on: which kind the toolbar shows,
whether restart and keep are offered, how an interrupt travels, what is said when the
kernel is left running, and that ``conn.client`` is one object for the whole session,
a port clash during the start included.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kconsole.client import KernelClient
from kconsole.connection import ConnectionInfo
from kconsole.kernel.install import builtin_kernel_spec_dict
from kconsole.kernel_connection import KernelConnection, attach_zmq, start_local
from kconsole.kernel_control import (
    AttachedControl,
    ConsoleError,
    LocalControl,
    kernel_label,
)
from kconsole.kernelspec import KernelSpec
from kconsole.launcher import KernelProcess
from kconsole.protocol import Message
from kconsole.transport import Transport

pytestmark = pytest.mark.timeout(120)

TIMEOUT = 30.0
T = TypeVar("T")


def run(coro: Awaitable[T], timeout: float = 90.0) -> T:
    async def main() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(main())


@pytest.fixture
def builtin_spec(tmp_path: Path) -> KernelSpec:
    data = builtin_kernel_spec_dict()
    data["argv"] = [sys.executable, "-m", "kconsole.kernel", "-f", "{connection_file}"]
    data["display_name"] = "kconsole test kernel"
    return KernelSpec.from_dict("kconsole-test", tmp_path, data)


@asynccontextmanager
async def local(spec: KernelSpec, *, keep: bool = False) -> AsyncIterator[KernelConnection]:
    """A kernel kconsole starts; killed afterwards whatever the test did with it."""
    conn = await start_local(
        spec, ip="127.0.0.1", transport="tcp", timeout=TIMEOUT, keep_kernel=keep
    )
    process = conn.process
    assert process is not None
    try:
        yield conn
    finally:
        with contextlib.suppress(Exception):
            await conn.close(keep_kernel=False)
        process.kill()
        process.cleanup()


async def busy_cell(client: KernelClient) -> tuple[asyncio.Task[Message], list[Message]]:
    """Start a cell that sleeps, once it is seen running (its first output came)."""
    out: list[Message] = []
    started = asyncio.Event()

    def on_output(msg: Message) -> None:
        out.append(msg)
        if msg.msg_type == "stream":
            started.set()

    code = "print('running', flush=True)\nimport time\ntime.sleep(60)"
    task = asyncio.ensure_future(client.execute(code, on_output=on_output))
    await asyncio.wait_for(started.wait(), TIMEOUT)
    return task, out


def interrupted(reply: Message, out: list[Message]) -> bool:
    return reply.content.get("ename") == "KeyboardInterrupt" or any(
        m.msg_type == "error" and m.content.get("ename") == "KeyboardInterrupt" for m in out
    )


def test_kernel_label_is_one_builder_for_every_kind() -> None:
    info = {
        "implementation": "ipykernel",
        "implementation_version": "7.4",
        "language_info": {"name": "python"},
    }
    assert kernel_label(info) == "ipykernel 7.4 (python)"
    assert kernel_label(info, name="Python 3") == "ipykernel 7.4 (Python 3)"
    assert kernel_label(info, where="http://h:8888/") == "ipykernel 7.4 (python) on http://h:8888/"
    assert kernel_label(info, version=False) == "ipykernel (python)"
    assert kernel_label({}) == "kernel"


def test_local_kernel_restarts_by_signal_and_is_shut_down(builtin_spec: KernelSpec) -> None:
    async def main() -> None:
        async with local(builtin_spec) as conn:
            assert isinstance(conn.control, LocalControl)
            assert conn.kind == "local" and conn.owns_kernel
            assert conn.can_restart and not conn.kernel_gone and not conn.can_replace
            assert conn.label.endswith(f"({builtin_spec.display_name})")
            # Started without --keep-kernel: it watches our pid, so it cannot be kept.
            assert not conn.control.can_keep
            assert "--keep-kernel" in (conn.control.keep_refusal or "")
            assert conn.control.left_running_hint(kept=False) is None
            client = conn.client
            task, out = await busy_cell(client)
            assert await conn.interrupt() == "SIGINT sent to the kernel"
            assert interrupted(await asyncio.wait_for(task, TIMEOUT), out)
            process = conn.process
            assert process is not None
            pid = process.pid
            await conn.restart()
            assert process.pid != pid and conn.client is client
            assert (await client.execute("1")).content["status"] == "ok"
            await conn.close()
            assert not process.is_alive()
            assert not process.connection_file.exists()

    run(main())


def test_kept_local_kernel_says_how_to_attach_and_stays(builtin_spec: KernelSpec) -> None:
    async def main() -> None:
        async with local(builtin_spec, keep=True) as conn:
            process = conn.process
            assert process is not None
            assert not conn.owns_kernel and conn.control.can_keep
            hint = conn.control.left_running_hint(kept=True)
            assert hint == (
                f"kernel left running; attach with `kconsole attach --existing "
                f"{process.connection_file}`"
            )
            await conn.close()  # not ours to stop: --keep-kernel
            assert process.is_alive()
            assert conn.control.left_running_hint(kept=True) == hint
            process.kill()  # a kernel no longer running is not announced
            assert conn.control.left_running_hint(kept=True) is None

    run(main())


def test_attached_kernel_is_interrupted_by_message_and_never_stopped(
    builtin_spec: KernelSpec,
) -> None:
    # interrupt_mode "message": a SIGINT would prove nothing about the route.
    builtin_spec.interrupt_mode = "message"
    process = KernelProcess(builtin_spec, ConnectionInfo.new())

    async def main() -> None:
        process.start()
        conn = await attach_zmq(process.connection, TIMEOUT, process.connection_file)
        try:
            assert isinstance(conn.control, AttachedControl)
            assert conn.kind == "attached" and conn.process is None and not conn.owns_kernel
            assert not conn.can_restart and conn.control.can_keep
            assert conn.kernel_id is None and not conn.unreachable and not conn.connection_lost
            assert await conn.gone_from_server() is False
            with pytest.raises(ConsoleError, match="only attached to"):
                await conn.restart()
            task, out = await busy_cell(conn.client)
            assert await conn.interrupt() == "interrupt requested"
            assert interrupted(await asyncio.wait_for(task, TIMEOUT), out)
        finally:
            await conn.close(keep_kernel=False)  # even asked to: it is someone else's
        assert process.is_alive()
        assert conn.control.left_running_hint(kept=True) is None

    try:
        run(main())
    finally:
        process.kill()
        process.cleanup()


def test_a_port_clash_during_the_start_keeps_the_client() -> None:
    # ipykernel: it says "Address already in use" as it dies, which is what tells a
    # port clash (the built-in kernel exits with status 1 and says nothing).
    from kconsole.kernelspec import resolve_kernel

    builtin_spec = resolve_kernel("python3")
    info = ConnectionInfo.new(ip="127.0.0.1")
    with socket.socket() as squatter:
        squatter.bind((info.ip, 0))
        squatter.listen()
        taken = info.shell_port = squatter.getsockname()[1]
        process = KernelProcess(builtin_spec, info)

        async def main() -> None:
            process.start()
            conn = await start_local(
                builtin_spec,
                ip=info.ip,
                transport="tcp",
                timeout=TIMEOUT,
                keep_kernel=False,
                process=process,
                wait=False,
            )
            try:
                # Whoever holds the client binds its callbacks before the kernel is up.
                client, first = conn.client, conn.client.transport
                statuses: list[str] = []
                client.on_status = lambda msg, ours: statuses.append(
                    str(msg.content.get("execution_state"))
                )
                await conn.wait_ready()
                assert conn.client is client  # not replaced: moved to a new transport
                assert client.transport is not first
                assert process.connection.shell_port != taken
                assert (await client.execute("1")).content["status"] == "ok"
                assert "busy" in statuses  # the callback set before the clash still runs
            finally:
                await conn.close()

        try:
            run(main())
        finally:
            process.kill()
            process.cleanup()


class _Silent(Transport):
    """A transport no kernel answers on (a client's start needs one)."""

    def __init__(self) -> None:
        self.closed = False
        self.sent = asyncio.Event()

    async def connect(self) -> None:
        pass

    async def send(self, channel: Any, msg: Message) -> None:
        self.sent.set()

    async def recv(self) -> tuple[Any, Message]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def is_alive(self, timeout: float) -> bool:
        return False

    async def close(self) -> None:
        self.closed = True


def test_replace_transport_keeps_callbacks_and_fails_old_requests(
    builtin_spec: KernelSpec,
) -> None:
    process = KernelProcess(builtin_spec, ConnectionInfo.new())

    async def main() -> None:
        process.start()
        session = process.connection.session()
        old = _Silent()
        client = KernelClient(old, session)
        await client.start()
        dead: list[str] = []
        client.on_dead = dead.append
        pending = asyncio.ensure_future(client.request("kernel_info_request"))
        await asyncio.wait_for(old.sent.wait(), TIMEOUT)  # waiting for a reply never sent
        from kconsole.zmq_transport import ZMQTransport

        await client.replace_transport(ZMQTransport(process.connection, session), session)
        assert old.closed
        with pytest.raises(Exception, match="replaced"):
            await pending
        assert not dead  # quietly: the kernel did not die
        info = await client.wait_for_ready(TIMEOUT)
        assert info["status"] == "ok" and client.kernel_info == info
        await client.close()

    try:
        run(main())
    finally:
        process.kill()
        process.cleanup()


def test_local_hint_and_keep_are_what_the_cli_prints(
    builtin_spec: KernelSpec, capsys: pytest.CaptureFixture[str]
) -> None:
    from kconsole import session as cli

    async def main() -> None:
        async with local(builtin_spec) as conn:
            assert cli._can_keep(conn) is False
            cli._say_where_kernel_stays(conn, kept=False)

    run(main())
    err = capsys.readouterr().err
    assert err == (
        "kconsole: this kernel was started without --keep-kernel and stops with the "
        "console; use `kconsole start --keep-kernel` to keep it\n"
    )


# -- a Jupyter Server's kernel ----------------------------------------------------------


@pytest.fixture(scope="module")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("jupyter_server")
    pytest.importorskip("websockets")
    from test_remote_server import JupyterServer

    srv = JupyterServer(tmp_path_factory.mktemp("jupyter-server"))
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def test_server_kernel_contract_and_replacement_on_the_same_client(jupyter_server: Any) -> None:
    from kconsole.remote import ServerClient
    from kconsole.remote.connect import ServerControl, start_server_kernel

    async def main() -> None:
        rest = ServerClient(jupyter_server.url, jupyter_server.token)
        conn = await start_server_kernel(
            jupyter_server.url, jupyter_server.token, kernel_name="python3", timeout=TIMEOUT
        )
        ids: list[str] = []
        try:
            control = conn.control
            assert isinstance(control, ServerControl)
            assert conn.kind == "server" and conn.process is None and conn.owns_kernel
            assert conn.can_restart and control.can_keep and not conn.kernel_gone
            first = conn.kernel_id
            assert first is not None
            ids.append(first)
            assert control.left_running_hint(kept=False) is None  # ours: shut down
            assert control.left_running_hint(kept=True) == (
                "kernel left running; attach with `kconsole attach --server "
                f"{jupyter_server.url} --kernel-id {first}`"
            )
            client = conn.client
            task, out = await busy_cell(client)
            assert await conn.interrupt() == "interrupt sent"  # REST, not a message
            assert interrupted(await asyncio.wait_for(task, TIMEOUT), out)
            # Someone deletes it on the server: gone, not restartable, replaceable.
            await rest.delete_kernel(first)
            assert await conn.gone_from_server(timeout=10.0)
            assert conn.kernel_gone and not conn.can_restart and conn.can_replace
            assert control.left_running_hint(kept=True) is None
            await conn.replace_kernel()
            assert conn.client is client and conn.fresh
            second = conn.kernel_id
            assert second is not None and second != first
            ids.append(second)
            assert not conn.kernel_gone and conn.can_restart
            assert (await client.execute("1")).content["status"] == "ok"
        finally:
            await conn.close()
        assert conn.shutdown_error is None
        left = {k.id for k in await rest.list_kernels()}
        assert not left & set(ids)

    run(main())
