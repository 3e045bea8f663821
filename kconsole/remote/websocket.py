"""A :class:`~kconsole.transport.Transport` over a Jupyter Server kernel WebSocket.

Theory of this module
---------------------
One WebSocket (``/api/kernels/{id}/channels?session_id=S``) carries the shell,
control, stdin and iopub channels; the server owns the zmq sockets, signs what it
forwards and verifies what the kernel sends, so the client's
:class:`~kconsole.protocol.Session` has no key (see :meth:`WebSocketTransport.session`).

The rules it keeps:

* The framing is the one the server *negotiated*, never the one we offered: we
  offer ``v1.kernel.websocket.jupyter.org`` (unless ``force_json``) and read
  ``subprotocol`` back after the handshake.
* One reader task owns the socket's receiving side and feeds an unbounded queue:
  ``recv`` never touches the socket, and a slow consumer never stalls the
  websockets keepalive (pongs are only read while frames are being read).
* The session id is fixed for the transport's life. jupyter_server keys its
  per-client message buffer on ``kernel_id:session_id``: when the last WebSocket of
  a kernel drops it buffers the kernel's messages and replays them to the next
  connection with the same session id. So a dropped connection is reopened with the
  same id, and nothing is lost when the server noticed the drop first (a reset
  connection). When it did not (a silent network outage), the server replaces the
  stale socket on our reconnect and what the kernel sent in between is gone: a
  limit of the server's buffering that no client can work around.
* The server's ``status: restarting`` notice (no parent) is passed on, then the
  socket is reopened: the restarter may have moved the kernel to new ports that this
  connection's server-side streams do not follow. Sends wait until a nudge
  (kernel_info_request, dropped on return) shows that IOPub reaches us again.
* A drop is reported through ``on_event`` (one line each: lost, back, gave up);
  ``recv`` and ``send`` wait through a reconnect and raise
  :class:`~kconsole.transport.TransportError` only once it has failed for good.

``websockets`` is imported on first connect, so importing this module (and
``kconsole`` as a whole) costs nothing for local kernels.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..protocol import MalformedMessage, Message, Session, new_id
from ..transport import Channel, Transport, TransportError
from .framing import (
    V1_SUBPROTOCOL,
    WS_CHANNELS,
    decode_json,
    decode_v1,
    encode_json,
    encode_v1,
    rate_limit_notice,
    server_status,
)
from .rest import RemoteError, ServerClient, ServerNotRunning

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

#: ``notice``: something else the user should know (not the connection's state).
EventKind = Literal["disconnected", "reconnected", "reconnect_failed", "notice"]


@dataclass(frozen=True)
class TransportEvent:
    """Something about the connection a console should tell the user, in one line."""

    kind: EventKind
    message: str


#: websockets logs every request header at DEBUG, the Authorization token included:
#: its logger for our connections never goes below INFO, whatever the root level.
_ws_logger = logging.getLogger("kconsole.remote.websocket")
_ws_logger.setLevel(logging.INFO)

#: What a kernel the server no longer has is called (the reason of its "death").
GONE = "the kernel is gone: the server no longer has it"

#: How long to nudge a restarted kernel before letting requests through regardless.
NUDGE_TIMEOUT = 30.0

#: The largest WebSocket message read. Kernel messages carry images and arrays, so the
#: cap is generous; past it websockets refuses the frame without buffering it, closes
#: with code 1009, and the transport says so in one line and reconnects.
MAX_MESSAGE_BYTES = 256 * 2**20

#: Delays between reconnect attempts: quick at first (a blip), then every few seconds.
RECONNECT_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)


_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


def _ack_now(sock: Any) -> None:
    """ACK what we received at once instead of up to 40 ms later (Linux).

    Jupyter Server does not set TCP_NODELAY on kernel WebSockets, so Nagle holds each
    message after the first of a burst (busy, reply, idle...) until the previous one
    is ACKed, and Linux delays that ACK: every execute then took ~45 ms instead of
    ~4 ms (bench/remote_bench.py). Setting TCP_QUICKACK sends a pending ACK now; the
    kernel clears the flag again by itself, hence once per frame.
    """
    if _QUICKACK is not None and sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)


def _too_big(ws: Any) -> bool:
    """Whether ``ws`` was closed because a message exceeded ``MAX_MESSAGE_BYTES``
    (websockets then sends close code 1009 itself; the server may never answer it)."""
    from websockets.exceptions import PayloadTooBig

    exc = getattr(ws, "close_exc", None)
    cause = getattr(exc, "__cause__", None)
    sent = getattr(exc, "sent", None)
    return (
        isinstance(cause, PayloadTooBig)
        or getattr(sent, "code", None) == 1009
        or getattr(ws, "close_code", None) == 1009
    )


def _announces_restart(msg: Message) -> bool:
    # The server's own notice has no parent; a kernel's status always has one.
    return server_status(msg) == "restarting" and not msg.parent_header


class _Closed:
    """Queue sentinel: the transport is closed, ``error`` says why."""

    def __init__(self, error: TransportError) -> None:
        self.error = error


class WebSocketTransport(Transport):
    """The kernel ``kernel_id`` on the Jupyter Server behind ``server``.

    ``force_json`` offers no subprotocol, so the server falls back to the JSON
    framing (what old servers and Enterprise Gateway < 3 speak). ``on_event`` is
    called (on the event loop) with a :class:`TransportEvent` for each disconnect,
    reconnect and final failure. ``reconnect_timeout`` bounds how long a dropped
    connection is retried (0 disables reconnecting).
    """

    handles_interrupt = True

    def __init__(
        self,
        server: ServerClient,
        kernel_id: str,
        *,
        session_id: str | None = None,
        force_json: bool = False,
        on_event: Callable[[TransportEvent], None] | None = None,
        connect_timeout: float = 60.0,
        reconnect_timeout: float = 120.0,
        ping_interval: float | None = 20.0,
    ) -> None:
        self.server = server
        self.kernel_id = kernel_id
        self.session_id = session_id or new_id()
        self.force_json = force_json
        self.on_event = on_event
        self.connect_timeout = connect_timeout
        self.reconnect_timeout = reconnect_timeout
        self.ping_interval = ping_interval
        #: ``"v1"`` or ``"json"`` once connected: what the server agreed to.
        self.framing: Literal["v1", "json"] | None = None
        #: How many times a dropped connection was reopened.
        self.reconnects = 0
        self.rejected = 0
        self.last_rejection = None
        self._ws: ClientConnection | None = None
        self._queue: asyncio.Queue[tuple[Channel, Message] | _Closed] = asyncio.Queue()
        self._connected = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._closed: _Closed | None = None
        self._closing = False
        #: Seconds a REST liveness answer is reused for (see :meth:`is_alive`).
        self.alive_interval = 2.0
        self._alive_at: tuple[float, bool] | None = None
        self._nudge_task: asyncio.Task[None] | None = None
        self._nudge_ids: set[str] = set()
        self._nudged = asyncio.Event()
        #: A dropped connection is being reopened (the console shows "lost").
        self.reconnecting = False
        #: The server answered a reconnect with 404: it no longer has the kernel (it
        #: was restarted, or someone deleted the kernel); only a new kernel can help.
        self.kernel_gone = False

    def __repr__(self) -> str:
        return f"WebSocketTransport({self.server.base_url!r}, {self.kernel_id!r})"

    @property
    def finished(self) -> bool:
        """Closed for good (closed, or a reconnect gave up): every send now fails."""
        return self._closed is not None

    def session(self, **kw: Any) -> Session:
        """The Session a client should build messages with: no key (the server signs)
        and this transport's session id (so headers name the same session)."""
        return Session(b"", session_id=self.session_id, **kw)

    @property
    def url(self) -> str:
        path = "api/kernels/" + urllib.parse.quote(self.kernel_id, safe="") + "/channels"
        return (
            self.server.ws_url(path) + "?" + urllib.parse.urlencode({"session_id": self.session_id})
        )

    # -- Transport -----------------------------------------------------------------------

    async def connect(self) -> None:
        if self._ws is not None:
            return
        if self._closed is not None:
            raise self._closed.error
        self._ws = await self._open()
        self._connected.set()
        self._reader = asyncio.create_task(self._read_forever(), name="kconsole-ws-reader")
        self._reader.add_done_callback(self._reader_done)

    async def send(self, channel: Channel, msg: Message) -> None:
        if channel not in WS_CHANNELS:
            raise TransportError(f"no {channel} channel on a Jupyter Server WebSocket")
        from websockets.exceptions import ConnectionClosed

        while True:
            ws = await self._wait_connected()
            data = encode_v1(channel, msg) if self.framing == "v1" else encode_json(channel, msg)
            try:
                await ws.send(data)
                return
            except ConnectionClosed:
                # Not sent (websockets refuses before writing). The reader will see the
                # same close and reconnect; wait for that, then send on the new socket.
                if self._ws is ws:
                    self._connected.clear()

    async def recv(self) -> tuple[Channel, Message]:
        item = await self._queue.get()
        if isinstance(item, _Closed):
            # Leave it for every later (or concurrent) caller too.
            self._queue.put_nowait(item)
            raise item.error
        channel, msg = item
        if channel == "iopub":
            notice = rate_limit_notice(msg)
            if notice is not None:
                # The server's ten lines of --ServerApp advice become one line a user
                # can read; it sends one notice per flood, so this shows once per flood.
                msg.content["text"] = f"[kconsole] {notice}\n"
        return item

    async def is_alive(self, timeout: float) -> bool:
        """Whether the server still has the kernel and it is not ``dead``.

        Asked through REST, at most once per ``alive_interval`` (a client's monitor
        may probe twice a second; the answer is reused in between). While a dropped
        connection is being reopened the answer is True: the reconnect decides, and
        a failed one makes ``recv`` raise.
        """
        if self._closed is not None:
            return False
        if not self._connected.is_set():
            return True
        now = time.monotonic()
        if self._alive_at is not None and now - self._alive_at[0] < self.alive_interval:
            return self._alive_at[1]
        try:
            model = await asyncio.wait_for(self.server.get_kernel(self.kernel_id), timeout)
            alive = model.execution_state != "dead"
        except RemoteError as e:
            # Only the server's answer tells the kernel is gone (404) or shut to us; a
            # server that does not answer says nothing about the kernel: its WebSocket
            # decides (a drop is reconnected, and shown as lost).
            alive = e.status is None or e.status >= 500
            if e.status == 404:
                self._gone()
        except asyncio.TimeoutError:
            alive = True
        self._alive_at = (time.monotonic(), alive)
        return alive

    def _gone(self) -> None:
        """The server answered that it has no such kernel (deleted by another client,
        culled as idle, or lost in a server restart): it will never be back under this
        id, and Jupyter Server leaves the WebSocket open, so it is finished here."""
        self.kernel_gone = True
        self._closing = True  # the server closing the socket now is no drop to retry
        self._finish(RemoteError(GONE, 404))

    async def interrupt(self) -> None:
        """Interrupt through ``POST /api/kernels/{id}/interrupt`` (the server knows the
        kernel's interrupt mode and signals its process group or sends the message)."""
        await self.server.interrupt_kernel(self.kernel_id)

    async def restart(self) -> None:
        """Restart the kernel in place through ``POST /api/kernels/{id}/restart``.

        The server keeps the kernel id (and its ports), so this connection stays
        valid; returns once the restarted kernel's IOPub reaches us.
        """
        self._alive_at = None
        ws = await self._wait_connected()
        # Hold sends from here until the nudge shows IOPub flowing again: the zmq
        # streams behind this socket reconnect to the new process on their own, but
        # output sent before the subscription is back would be lost.
        self._connected.clear()
        try:
            await self.server.restart_kernel(self.kernel_id)
        except BaseException:
            if self._ws is ws:
                self._connected.set()
            raise
        if self._ws is ws:
            await self._nudge(ws)

    async def delete_kernel(self) -> None:
        """Shut the kernel down on the server (``DELETE /api/kernels/{id}``).

        The transport stops reconnecting first: the server closing the socket after
        this is the expected end, not a drop to report.
        """
        self._closing = True
        with contextlib.suppress(ServerNotRunning):  # the kernel went with its server
            await self.server.delete_kernel(self.kernel_id)

    async def close(self) -> None:
        self._closing = True
        self._finish(TransportError("the connection to the kernel is closed"))
        nudge, self._nudge_task = self._nudge_task, None
        if nudge is not None:
            nudge.cancel()
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()

    # -- connection ----------------------------------------------------------------------

    async def _open(self) -> ClientConnection:
        """One handshake; the negotiated framing is recorded; errors are one line."""
        try:
            from websockets.asyncio.client import connect
            from websockets.exceptions import InvalidHandshake, InvalidStatus
            from websockets.typing import Subprotocol
        except ImportError:
            raise TransportError(
                "connecting to a Jupyter Server needs the websockets package "
                "(pip install 'kconsole[remote]')"
            ) from None
        offer = None if self.force_json else [Subprotocol(V1_SUBPROTOCOL)]
        try:
            ws = await connect(
                self.url,
                additional_headers=self.server.auth_headers,
                subprotocols=offer,
                ssl=self.server.ssl_context,
                open_timeout=self.connect_timeout,
                ping_interval=self.ping_interval,
                ping_timeout=self.ping_interval,
                max_size=MAX_MESSAGE_BYTES,
                # Jupyter Server does not compress kernel sockets; don't negotiate it.
                compression=None,
                logger=_ws_logger,
            )
        except InvalidStatus as e:
            status = e.response.status_code
            # The handshake's refusal has no words of its own, and websockets follows
            # redirects on the same origin (a JupyterHub's lead to its login page, or
            # to its 424 for a user's server that stopped). The same question over
            # REST, which follows none and knows a hub's answers, says what it is.
            await self._explain_refusal()
            if status in (401, 403):
                raise RemoteError(f"server refused the token (HTTP {status})", status) from e
            if status == 404:
                raise RemoteError(f"no kernel with id {self.kernel_id} on the server", 404) from e
            raise RemoteError(
                f"the server refused the kernel WebSocket (HTTP {status})", status
            ) from e
        except InvalidHandshake as e:
            raise TransportError(
                f"WebSocket handshake with {self.server.base_url} failed: {e}"
            ) from e
        except asyncio.TimeoutError:
            raise TransportError(
                f"the server did not open the kernel WebSocket within {self.connect_timeout:g} s"
            ) from None
        except OSError as e:
            why = e.strerror or str(e) or type(e).__name__
            raise TransportError(
                f"cannot reach the Jupyter server at {self.server.base_url}: {why}"
            ) from e
        negotiated = ws.subprotocol
        if negotiated == V1_SUBPROTOCOL:
            self.framing = "v1"
        elif negotiated is None:
            self.framing = "json"
        else:  # pragma: no cover - a server may only pick what we offered
            await ws.close()
            raise TransportError(f"the server chose an unknown subprotocol {negotiated!r}")
        return ws

    async def _explain_refusal(self) -> None:
        """Raise the REST API's one line for this kernel when the server refuses it
        there too; return when REST lets us in (or the server does not answer)."""
        try:
            await self.server.get_kernel(self.kernel_id)
        except RemoteError as e:
            if e.status is not None:  # the server answered: its answer is the reason
                raise e from None

    async def _wait_connected(self) -> ClientConnection:
        if self._ws is None and self._closed is None:
            raise TransportError("the transport is not connected (call connect() first)")
        while True:
            if self._closed is not None:
                raise self._closed.error
            if self._connected.is_set() and self._ws is not None:
                return self._ws
            # Reconnecting: the reader sets _connected again, or _finish does.
            await self._connected.wait()

    def _reader_done(self, task: asyncio.Task[None]) -> None:
        # Whatever ended the reader, recv() must not wait forever afterwards.
        if task.cancelled():
            error = TransportError("the connection to the kernel is closed")
        elif task.exception() is not None:
            exc = task.exception()
            error = TransportError(f"the WebSocket reader failed: {exc!r}")
        else:
            error = TransportError("the connection to the kernel is closed")
        self._finish(error)

    async def _read_forever(self) -> None:
        from websockets.exceptions import ConnectionClosed

        while self._ws is not None:
            ws = self._ws
            decode = decode_v1 if self.framing == "v1" else decode_json
            restarted = False
            try:
                sock = ws.transport.get_extra_info("socket")
                async for frame in ws:
                    _ack_now(sock)
                    msg = self._deliver(decode, frame)
                    if msg is not None and _announces_restart(msg):
                        restarted = True
                        break
            except ConnectionClosed:
                pass
            if self._closing:
                return
            self._connected.clear()
            if restarted:
                # The server's restarter may have given the kernel new ports, and this
                # connection's zmq streams still point at the old ones; a new
                # connection (same session id) gets fresh streams. Expected, so quiet.
                with contextlib.suppress(Exception):
                    await ws.close()
                if not await self._reconnect(ws, quiet=True):
                    return
            elif not await self._reconnect(ws):
                return

    def _deliver(self, decode: Callable[[Any], tuple[str, Message]], frame: Any) -> Message | None:
        try:
            channel, msg = decode(frame)
        except Exception as e:  # MalformedMessage, or what no check foresaw: one frame lost
            reason = str(e) if isinstance(e, MalformedMessage) else f"{type(e).__name__}: {e}"
            self.rejected += 1
            self.last_rejection = reason
            self.drop_malformed(reason)
            return None
        if channel not in WS_CHANNELS:
            self.rejected += 1
            self.last_rejection = f"message on unknown channel {channel!r}"
            return None
        if self._nudge_ids and msg.parent_id in self._nudge_ids:
            if channel == "iopub":
                self._nudged.set()
            return None
        self._queue.put_nowait((channel, msg))  # type: ignore[arg-type]
        return msg

    async def _reconnect(self, old: ClientConnection, quiet: bool = False) -> bool:
        """Reopen the socket with the same session id; False once given up (and closed).

        ``quiet``: a reconnect we chose (after a restart), reported only if it fails.
        """
        code = old.close_code
        why = f" (close code {code})" if code not in (None, 1000) else ""
        if _too_big(old):
            why = (
                f": the server sent a message larger than {MAX_MESSAGE_BYTES // 2**20} MiB, "
                "which was dropped"
            )
        if self.reconnect_timeout <= 0 and not quiet:
            self._finish(TransportError(f"lost the connection to the Jupyter server{why}"))
            return False
        if not quiet:
            self.reconnecting = True  # before the event: its handler shows the state
            self._emit(
                "disconnected", f"lost the connection to the Jupyter server{why}; reconnecting"
            )
        start = time.monotonic()
        deadline = start + self.reconnect_timeout
        attempt = 0
        last = "no attempt"
        while not self._closing:
            delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
            attempt += 1
            if time.monotonic() + delay > deadline:
                break
            await asyncio.sleep(delay)
            try:
                ws = await self._open()
            except RemoteError as e:
                if e.status in (401, 403, 404) or 300 <= (e.status or 0) < 400:
                    # The kernel is gone or we are no longer let in (a JupyterHub whose
                    # user's server stopped redirects to the hub): retrying won't help.
                    self.kernel_gone = e.status == 404
                    return self._give_up(str(e))
                last = str(e)
                continue
            except TransportError as e:
                last = str(e)
                continue
            if self._closing:
                await ws.close()
                return False
            self._ws = ws
            self.reconnects += 1
            self.reconnecting = False
            if quiet:
                # After a restart: senders keep waiting until the nudge proves that
                # IOPub reaches us (see _nudge).
                self._nudge_task = asyncio.create_task(self._nudge(ws), name="kconsole-ws-nudge")
            else:
                self._connected.set()
                self._emit(
                    "reconnected",
                    f"reconnected to the kernel after {time.monotonic() - start:.1f} s",
                )
            return True
        return self._give_up(f"{last}; gave up after {max(self.reconnect_timeout, 0):g} s")

    async def _nudge(self, ws: ClientConnection) -> None:
        """Send kernel_info_request until IOPub answers, then let senders through.

        A restarted kernel's IOPub subscription from the server's fresh streams takes a
        moment to propagate; output published before that is lost. jupyter_server
        nudges new connections itself, but skips it when it still believes the kernel
        "busy", which is exactly the state a kernel that died mid-execution leaves
        behind. Our requests and everything they cause are dropped in ``_deliver``.
        """
        from websockets.exceptions import ConnectionClosed

        session = Session(b"", session_id=self.session_id)
        self._nudged.clear()
        deadline = time.monotonic() + NUDGE_TIMEOUT
        try:
            while not self._nudged.is_set() and time.monotonic() < deadline:
                msg = session.msg("kernel_info_request")
                self._nudge_ids.add(msg.msg_id)
                frame = (
                    encode_v1("shell", msg) if self.framing == "v1" else encode_json("shell", msg)
                )
                await ws.send(frame)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._nudged.wait(), 0.5)
        except ConnectionClosed:
            return  # the reader reconnects; _connected stays clear until then
        if self._ws is ws and not self._closing:
            self._connected.set()

    def _give_up(self, reason: str) -> bool:
        self.reconnecting = False
        self._emit("reconnect_failed", f"could not reconnect: {reason}")
        self._finish(TransportError(f"lost the connection to the kernel: {reason}"))
        return False

    def _finish(self, error: TransportError) -> None:
        if self._closed is None:
            self._closed = _Closed(error)
            self._queue.put_nowait(self._closed)
        # Wake senders waiting for a reconnect; they see _closed and raise.
        self._connected.set()

    def _emit(self, kind: EventKind, message: str) -> None:
        if self.on_event is not None:
            try:
                self.on_event(TransportEvent(kind, message))
            except Exception:  # a printing hook must not kill the reader
                pass
