"""Console connections to remote kernels: what ``kconsole start/attach`` call for
``--server`` and ``--ssh``, returning the same :class:`~kconsole.kernel_connection.KernelConnection`
the REPL and script mode drive for local kernels.

Every failure is a :class:`~kconsole.kernel_connection.ConsoleError` with a one-line message.
Ownership follows the local rules: a kernel kconsole started on a server is shut
down on exit unless ``keep_kernel`` (through the transport's ``delete_kernel``, which
:meth:`KernelConnection.close` calls); a kernel attached to is never shut down.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..client import KernelClient, KernelError
from ..connection import ConnectionInfo
from ..kernel_connection import ConsoleError, KernelConnection, connect_client
from ..transport import TransportError
from .kernel import ServerKernel, notebook_kernel, open_server_kernel, start_another
from .ssh import SSHTunnel, TunnelError
from .websocket import TransportEvent


def _label(client: KernelClient, where: str) -> str:
    info = client.kernel_info
    impl = info.get("implementation") or "kernel"
    ver = info.get("implementation_version") or ""
    lang = (info.get("language_info") or {}).get("name", "")
    return f"{impl} {ver}".strip() + (f" ({lang})" if lang else "") + f" on {where}"


async def _connect(
    sk: ServerKernel,
    timeout: float,
    keep_kernel: bool,
    renew: Callable[[ServerKernel], Awaitable[ServerKernel]] | None = None,
) -> KernelConnection:
    """A connection to ``sk``; ``renew`` finds or starts the kernel to offer once the
    server no longer has it (default: a new one of the same kernelspec, for a kernel
    this console started; none for one it attached to)."""
    try:
        client = await connect_client(sk.transport, sk.session(), timeout)
    except (KernelError, TransportError) as e:
        with contextlib.suppress(Exception):
            await sk.close(keep_kernel=keep_kernel)
        raise ConsoleError(f"cannot use kernel {sk.kernel_id} on the server: {e}") from None
    except BaseException:
        # Ctrl-C or SIGTERM while the kernel comes up: one this console started is not
        # left behind (another Ctrl-C stops the deletion's wait).
        with contextlib.suppress(Exception):
            await asyncio.shield(sk.close(keep_kernel=keep_kernel))
        raise
    client.start_monitor()
    conn = KernelConnection(
        client=client,
        owns_kernel=sk.started and not keep_kernel,
        fresh=sk.started,
        label=_label(client, sk.server.base_url),
        timeout=timeout,
    )
    if renew is None and sk.started:
        renew = start_another
    if renew is not None:
        current = [sk]
        make_new = renew

        async def another() -> KernelClient:
            # Shielded: Ctrl-C may stop the wait (the REPL cancels it), but the server
            # goes on starting the kernel; one of ours is then deleted once it is there.
            starting = asyncio.ensure_future(make_new(current[0]))
            try:
                new = await asyncio.shield(starting)
            except asyncio.CancelledError:
                starting.add_done_callback(_discard_unused)
                raise
            except TransportError as e:
                raise ConsoleError(f"cannot start a new kernel on the server: {e}") from None
            try:
                client = await connect_client(new.transport, new.session(), timeout)
            except BaseException as e:
                # Not one to leave behind, --keep-kernel or not (a notebook's is kept).
                _close_later(new)
                if isinstance(e, (KernelError, TransportError)):
                    raise ConsoleError(f"cannot use the new kernel {new.kernel_id}: {e}") from None
                raise
            client.start_monitor()
            current[0] = new
            return client

        conn.start_another = another
    return conn


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
        raise ConsoleError(str(e)) from None
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
        raise ConsoleError(str(e)) from None
    conn = await _connect(
        sk, timeout, keep_kernel=True, renew=lambda old: notebook_kernel(old, notebook)
    )
    conn.label += f", notebook {notebook}"
    conn.replace_offer = "start a new kernel for the notebook"
    return conn


@dataclass
class TunnelledConnection(KernelConnection):
    """A connection through an SSH tunnel, which is closed with it."""

    tunnel: SSHTunnel | None = None

    async def close(self, *, keep_kernel: bool | None = None) -> None:
        try:
            await super().close(keep_kernel=keep_kernel)
        finally:
            if self.tunnel is not None:
                self.tunnel.close()


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
        raise ConsoleError(str(e)) from None
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
        raise ConsoleError(f"cannot attach to the kernel through {host}: {e}") from None
    except BaseException:
        tunnel.close()
        raise
    client.start_monitor(misses=3, revive=True)  # as attach_zmq
    return TunnelledConnection(
        client=client,
        connection_file=connection_file,
        label=_label(client, tunnel.host),
        tunnel=tunnel,
    )
