"""One kernel on a Jupyter Server, as ``kconsole start/attach --server`` use it.

Who owns the kernel decides what closing does: a kernel this console started is
shut down on exit (unless the user asked to keep it); one it attached to is left
running for whoever else uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..protocol import Session
from .rest import (
    DEFAULT_TIMEOUT,
    KernelListRefused,
    RemoteError,
    RemoteKernelModel,
    ServerClient,
    ServerNotRunning,
    kernel_env,
)
from .websocket import TransportEvent, WebSocketTransport


@dataclass
class ServerKernel:
    """A kernel on a server plus the transport to it (not yet connected)."""

    server: ServerClient
    kernel_id: str
    kernel_name: str
    #: True when this console started the kernel (and so may shut it down).
    started: bool
    transport: WebSocketTransport
    #: The ``env`` its start request sent (a replacement kernel gets the same).
    env: dict[str, str] = field(default_factory=dict)

    def session(self) -> Session:
        """The Session to build a KernelClient with (no key: the server signs)."""
        return self.transport.session()

    async def close(self, keep_kernel: bool = False) -> None:
        """Close the transport; shut the kernel down if we started it and may."""
        await self.transport.close()
        if self.started and not keep_kernel:
            try:
                await self.server.delete_kernel(self.kernel_id)
            except ServerNotRunning:
                pass  # the kernel went with its JupyterHub server
            except RemoteError as e:
                if e.status != 404:  # already gone is what we wanted
                    raise


async def open_server_kernel(
    url: str,
    token: str | None = None,
    *,
    kernel_name: str | None = None,
    kernel_id: str | None = None,
    insecure: bool = False,
    force_json: bool = False,
    on_event: Callable[[TransportEvent], None] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
) -> ServerKernel:
    """Start a kernel (``kernel_name``, or the server's default) or find ``kernel_id``.

    A start request carries :func:`~kconsole.remote.rest.kernel_env` of ``env``
    (``KERNEL_*`` variables, ``KERNEL_USERNAME``), as gateways expect.

    The id may be a unique prefix of a running kernel's id, as ``kconsole kernels``
    shows them. ``timeout`` bounds every REST call and the WebSocket handshake (the
    console's ``--timeout``). Raises :class:`RemoteError` with a one-line message.
    """
    server = ServerClient(url, token, insecure=insecure, timeout=timeout)
    start_env: dict[str, str] = {}
    if kernel_id is not None:
        model = await _find_kernel(server, kernel_id)
        started = False
    else:
        start_env = kernel_env(env)
        model = await _start_kernel(server, kernel_name, start_env, on_event)
        started = True
    return ServerKernel(
        server,
        model.id,
        model.name,
        started,
        _transport(server, model.id, on_event, force_json),
        start_env,
    )


#: How long a console that is leaving (Ctrl-C, SIGTERM) still waits for the answer to
#: its start request, to delete the kernel the server is starting for it: Ctrl-C leaves
#: within this, whatever the server does.
START_GRACE = 3.0


async def _start_kernel(
    server: ServerClient,
    kernel_name: str | None,
    env: Mapping[str, str],
    on_event: Callable[[TransportEvent], None] | None,
) -> RemoteKernelModel:
    """``server.start_kernel``, leaving no kernel behind when the console leaves (Ctrl-C,
    SIGTERM) meanwhile: the server goes on starting it all the same, so its answer is
    waited for (up to :data:`START_GRACE`; another Ctrl-C stops that) and the kernel
    deleted. Past that, the user is told that a kernel may be left."""
    starting = asyncio.ensure_future(server.start_kernel(kernel_name, env))
    try:
        return await asyncio.shield(starting)
    except asyncio.CancelledError:
        try:
            model = await asyncio.wait_for(asyncio.shield(starting), START_GRACE)
        except asyncio.TimeoutError:
            if on_event is not None:
                with contextlib.suppress(Exception):
                    on_event(
                        TransportEvent(
                            "notice",
                            "left before the server answered the start request: a kernel "
                            "it starts now stays running there",
                        )
                    )
        except Exception:
            pass  # it did not start: nothing to delete
        else:
            with contextlib.suppress(Exception):
                await server.delete_kernel(model.id)
        raise


def _transport(
    server: ServerClient,
    kernel_id: str,
    on_event: Callable[[TransportEvent], None] | None,
    force_json: bool,
) -> WebSocketTransport:
    return WebSocketTransport(
        server,
        kernel_id,
        force_json=force_json,
        on_event=on_event,
        connect_timeout=server.timeout,
    )


async def start_another(old: ServerKernel) -> ServerKernel:
    """A new kernel of the same kernelspec on the same server, with a transport like
    ``old``'s (what the console offers when the server lost ``old``'s kernel)."""
    model = await old.server.start_kernel(old.kernel_name or None, old.env)
    transport = _transport(old.server, model.id, old.transport.on_event, old.transport.force_json)
    return ServerKernel(old.server, model.id, model.name, True, transport, old.env)


async def notebook_kernel(old: ServerKernel, path: str) -> ServerKernel:
    """The kernel the server runs for notebook ``path`` now, started (as JupyterLab
    does, with ``old``'s kernelspec) when it has none: what a console for a notebook
    offers once the server lost ``old``. Like any attached kernel it is not ours to
    shut down: it is the notebook's."""
    from .sessions import start_notebook_session

    session = await start_notebook_session(old.server, path, old.kernel_name or None)
    assert session.kernel is not None  # start_notebook_session checked
    kid = session.kernel.id
    transport = _transport(old.server, kid, old.transport.on_event, old.transport.force_json)
    return ServerKernel(old.server, kid, session.kernel.name, False, transport)


async def _find_kernel(server: ServerClient, kernel_id: str) -> RemoteKernelModel:
    # The whole id first: it needs no listing, which gateways refuse by default.
    try:
        return await server.get_kernel(kernel_id)
    except RemoteError as e:
        if e.status != 404:
            raise
    try:
        kernels = await server.list_kernels()
    except KernelListRefused:
        raise RemoteError(
            f"no kernel with id {kernel_id} on the server (it lists no kernels, so "
            "a prefix of an id cannot be matched: give the whole id)",
            404,
        ) from None
    exact = [k for k in kernels if k.id == kernel_id]
    if exact:
        return exact[0]
    matches = [k for k in kernels if k.id.startswith(kernel_id)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise RemoteError(f"{kernel_id!r} matches {len(matches)} kernels on the server", 404)
    raise RemoteError(f"no kernel with id {kernel_id} on the server", 404)
