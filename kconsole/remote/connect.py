"""Console connections to remote kernels: what ``kconsole start/attach`` call for
``--server`` and ``--ssh``, returning the same
:class:`~kconsole.kernel_connection.KernelConnection` the REPL and script mode drive for
local kernels, with the control of their kind: :class:`ServerControl` (a kernel on a
Jupyter Server) or :class:`TunnelledControl` (zmq through an SSH tunnel).

Every failure is a :class:`~kconsole.kernel_control.ConsoleError` with a one-line message.
Ownership follows the local rules: a kernel kconsole started on a server is shut
down on exit unless ``keep_kernel`` (``DELETE /api/kernels/{id}``, from
:meth:`ServerControl.close`); a kernel attached to is never shut down.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..client import KernelClient, KernelError
from ..connection import ConnectionInfo
from ..kernel_connection import KernelConnection, connect_client
from ..kernel_control import (
    GAVE_UP_BY_SERVER,
    GONE_FROM_SERVER,
    AttachedControl,
    ConnectionKind,
    ConsoleError,
    KernelControl,
    kernel_label,
)
from ..transport import TransportError
from .kernel import ServerKernel, notebook_kernel, open_server_kernel, start_another
from .rest import RemoteError
from .ssh import SSHTunnel, TunnelError
from .websocket import TransportEvent

#: Finds or starts the kernel to offer once the server no longer has ``old``'s.
Renew = Callable[[ServerKernel], Awaitable[ServerKernel]]


class ServerControl(KernelControl):
    """A kernel on a Jupyter Server: interrupted, restarted and (when this console
    started it and was not told to keep it) deleted through the server's REST API.
    Once the server has lost it, ``renew`` (when given) offers a new one in its place."""

    kind: ConnectionKind = "server"

    def __init__(
        self, client: KernelClient, kernel: ServerKernel, *, owns_kernel: bool, renew: Renew | None
    ) -> None:
        super().__init__(client, owns_kernel=owns_kernel)
        #: The kernel on the server (a replacement takes its place).
        self.kernel = kernel
        self._renew = renew

    @property
    def kernel_id(self) -> str:
        return self.kernel.kernel_id

    @property
    def can_restart(self) -> bool:
        # The server has no kernel of that id to restart once it is gone.
        return not self.kernel_gone and not self.kernel.transport.finished

    def left_running_hint(self, *, kept: bool) -> str | None:
        if not (kept or not self.owns_kernel) or self.kernel_gone:
            return None  # shut down, or the server forgot it: nothing to attach to
        return (
            "kernel left running; attach with `kconsole attach --server "
            f"{self.kernel.server.base_url} --kernel-id {self.kernel.kernel_id}`"
        )

    @property
    def kernel_gone(self) -> bool:
        return self.kernel.transport.kernel_gone

    @property
    def gone_reason(self) -> str:
        # Forgotten while its restart was followed: the server's restarter gave up (its
        # "dead" notice goes to a WebSocket the restart closed, so it is rarely seen).
        return GAVE_UP_BY_SERVER if self.client.restart_followed else GONE_FROM_SERVER

    @property
    def unreachable(self) -> bool:
        return self.kernel.transport.finished and not self.kernel_gone

    @property
    def connection_lost(self) -> bool:
        return self.kernel.transport.reconnecting

    async def gone_from_server(self, timeout: float) -> bool:
        transport = self.kernel.transport
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.kernel_gone and loop.time() < deadline:
            if not await transport.is_alive(1.0) and not self.kernel_gone:
                return False  # dead or refused: not gone
            await asyncio.sleep(0.2)
        return self.kernel_gone

    @property
    def can_replace(self) -> bool:
        return self._renew is not None and self.kernel_gone

    async def replace(self, timeout: float) -> None:
        assert self._renew is not None
        # Shielded: Ctrl-C may stop the wait (the REPL cancels it), but the server goes
        # on starting the kernel; one of ours is then deleted once it is there.
        starting = asyncio.ensure_future(self._renew(self.kernel))
        try:
            new = await asyncio.shield(starting)
        except asyncio.CancelledError:
            starting.add_done_callback(_discard_unused)
            raise
        except TransportError as e:
            raise ConsoleError(f"cannot start a new kernel on the server: {e}") from e
        client = self.client
        reason = client.dead_reason or "the kernel is gone"
        try:
            await client.replace_transport(new.transport, new.session())
            await client.wait_for_ready(timeout)
        except BaseException as e:
            # Dead as before, without a second announcement; the new kernel is not one
            # to leave behind, --keep-kernel or not (a notebook's is kept).
            client.mark_dead(reason, notify=False)
            _close_later(new)
            if isinstance(e, (KernelError, TransportError)):
                raise ConsoleError(f"cannot use the new kernel {new.kernel_id}: {e}") from e
            raise
        client.start_monitor()
        self.kernel = new

    async def interrupt(self) -> str:
        # The server knows the kernel's interrupt mode (signal or message).
        await self.kernel.transport.interrupt()
        return "interrupt sent"

    async def restart(self, timeout: float) -> None:
        await self.kernel.transport.restart()
        self.client.revive()
        await self.client.wait_for_ready(timeout)

    async def close(self, *, keep: bool, answered: bool) -> str | None:
        if keep:
            return None
        try:
            await self.kernel.transport.delete_kernel()
        except RemoteError as e:
            if e.status != 404:  # already gone is what we wanted
                return str(e) or type(e).__name__
        except Exception as e:
            return str(e) or type(e).__name__
        return None


class TunnelledControl(AttachedControl):
    """A kernel attached to over zmq through an SSH tunnel: what an attached kernel
    allows (interrupt by message, no restart, never shut down); the tunnel is closed
    with the connection."""

    def __init__(self, client: KernelClient, tunnel: SSHTunnel) -> None:
        super().__init__(client)
        self.tunnel = tunnel

    def release(self) -> None:
        self.tunnel.close()


async def _connect(
    sk: ServerKernel,
    timeout: float,
    keep_kernel: bool,
    renew: Renew | None = None,
) -> KernelConnection:
    """A connection to ``sk``; ``renew`` finds or starts the kernel to offer once the
    server no longer has it (default: a new one of the same kernelspec, for a kernel
    this console started; none for one it attached to)."""
    try:
        client = await connect_client(sk.transport, sk.session(), timeout)
    except (KernelError, TransportError) as e:
        with contextlib.suppress(Exception):
            await sk.close(keep_kernel=keep_kernel)
        raise ConsoleError(f"cannot use kernel {sk.kernel_id} on the server: {e}") from e
    except BaseException:
        # Ctrl-C or SIGTERM while the kernel comes up: one this console started is not
        # left behind (another Ctrl-C stops the deletion's wait).
        with contextlib.suppress(Exception):
            await asyncio.shield(sk.close(keep_kernel=keep_kernel))
        raise
    client.start_monitor()
    if renew is None and sk.started:
        renew = start_another
    control = ServerControl(client, sk, owns_kernel=sk.started and not keep_kernel, renew=renew)
    return KernelConnection(
        client=client,
        control=control,
        fresh=sk.started,
        label=kernel_label(client.kernel_info, where=sk.server.base_url),
        timeout=timeout,
    )


#: Closings of kernels a cancelled replacement left (kept referenced until done).
_closing: set[asyncio.Task[None]] = set()


def _close_later(sk: ServerKernel) -> None:
    """Close ``sk`` (deleting it if this console started it) without waiting for it."""

    async def close() -> None:
        with contextlib.suppress(Exception):
            await sk.close()

    task = asyncio.ensure_future(close())
    _closing.add(task)
    task.add_done_callback(_closing.discard)


def _discard_unused(starting: asyncio.Future[ServerKernel]) -> None:
    """A replacement kernel the user stopped waiting for, once the server has it."""
    if starting.cancelled() or starting.exception() is not None:
        return
    with contextlib.suppress(RuntimeError):  # the loop is closing: nothing can be done
        _close_later(starting.result())


async def _open_and_connect(
    url: str,
    token: str | None,
    *,
    timeout: float,
    keep_kernel: bool,
    **open_kw: Any,
) -> KernelConnection:
    try:
        sk = await open_server_kernel(url, token, timeout=timeout, **open_kw)
    except TransportError as e:  # RemoteError included
        raise ConsoleError(str(e)) from e
    return await _connect(sk, timeout, keep_kernel)


async def start_server_kernel(
    url: str,
    token: str | None,
    *,
    kernel_name: str | None = None,
    insecure: bool = False,
    keep_kernel: bool = False,
    timeout: float = 60.0,
    force_json: bool = False,
    on_event: Callable[[TransportEvent], None] | None = None,
    env: Mapping[str, str] | None = None,
) -> KernelConnection:
    """``kconsole start --server URL``: start a kernel there and attach to it
    (``env``: the ``--env`` variables, sent in the start request)."""
    return await _open_and_connect(
        url,
        token,
        timeout=timeout,
        keep_kernel=keep_kernel,
        env=env,
        kernel_name=kernel_name,
        insecure=insecure,
        force_json=force_json,
        on_event=on_event,
    )


async def attach_server_kernel(
    url: str,
    token: str | None,
    *,
    kernel_id: str,
    insecure: bool = False,
    timeout: float = 60.0,
    force_json: bool = False,
    on_event: Callable[[TransportEvent], None] | None = None,
) -> KernelConnection:
    """``kconsole attach --server URL --kernel-id ID``: never shuts the kernel down."""
    return await _open_and_connect(
        url,
        token,
        timeout=timeout,
        keep_kernel=True,
        kernel_id=kernel_id,
        insecure=insecure,
        force_json=force_json,
        on_event=on_event,
    )


async def attach_notebook_kernel(
    url: str,
    token: str | None,
    *,
    notebook: str,
    kernel_id: str,
    insecure: bool = False,
    timeout: float = 60.0,
    force_json: bool = False,
    on_event: Callable[[TransportEvent], None] | None = None,
) -> KernelConnection:
    """``kconsole attach --server URL --notebook PATH``, once the CLI has found (or
    started) ``kernel_id``, the kernel of the notebook's session: attached like any
    other kernel on the server (never shut down), and when the server loses it the
    console offers the notebook's new kernel, starting one for it if it has none."""
    try:
        sk = await open_server_kernel(
            url,
            token,
            kernel_id=kernel_id,
            insecure=insecure,
            force_json=force_json,
            on_event=on_event,
            timeout=timeout,
        )
    except TransportError as e:
        raise ConsoleError(str(e)) from e
    conn = await _connect(
        sk, timeout, keep_kernel=True, renew=lambda old: notebook_kernel(old, notebook)
    )
    conn.label += f", notebook {notebook}"
    conn.control.replace_offer = "start a new kernel for the notebook"
    return conn


async def attach_ssh(
    info: ConnectionInfo,
    host: str,
    *,
    key: str | Path | None = None,
    timeout: float = 60.0,
    connection_file: Path | None = None,
    ssh_options: Sequence[str] = (),
) -> KernelConnection:
    """``kconsole attach --existing FILE --ssh HOST [--ssh-key K]``.

    ``info`` is the kernel's connection file as seen on ``host``; its five ports are
    forwarded to local ones and the kernel is attached over zmq as usual.
    """
    from ..zmq_transport import ZMQTransport, probe_kernel

    tunnel = SSHTunnel(host, key, ssh_options=ssh_options)
    try:
        # Blocking (ssh start-up, connect probes): off the event loop.
        local = await asyncio.to_thread(tunnel.open, info)
    except TunnelError as e:
        raise ConsoleError(str(e)) from e
    session = local.session()
    try:
        # Curve on one side only (through the tunnel, as directly) is one line, not a
        # wait for the whole timeout; a kernel merely slow is left to the client's wait.
        _, why = await asyncio.to_thread(probe_kernel, local, min(timeout, 3.0))
    except BaseException:
        tunnel.close()
        raise
    if why is not None:
        tunnel.close()
        raise ConsoleError(f"cannot attach to the kernel through {host}: {why}")
    try:
        client = await connect_client(ZMQTransport(local, session), session, timeout)
    except (KernelError, TransportError) as e:
        tunnel.close()
        raise ConsoleError(f"cannot attach to the kernel through {host}: {e}") from e
    except BaseException:
        tunnel.close()
        raise
    client.start_monitor(misses=3, revive=True)  # as attach_zmq
    return KernelConnection(
        client=client,
        control=TunnelledControl(client, tunnel),
        connection_file=connection_file,
        label=kernel_label(client.kernel_info, where=tunnel.host),
    )
