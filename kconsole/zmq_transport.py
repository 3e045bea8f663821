"""The zmq side of the client: the one module of the console that owns zmq sockets.

Theory: one DEALER each for shell and control, a DEALER for stdin carrying the *same
identity* as shell (the kernel routes input_request with the execute_request's
identities), a SUB for iopub subscribed to everything *before* it connects, and a REQ
for the heartbeat, rebuilt after every timeout because a REQ that lost its reply is
stuck. Reader tasks verify every frame list with the Session and queue whole
messages; frames that fail verification are counted and dropped, never surfaced.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import zmq
import zmq.asyncio

from .connection import ConnectionInfo
from .protocol import Message, ProtocolError, Session
from .transport import Channel, Transport, TransportError

_RECV_CHANNELS: tuple[Channel, ...] = ("shell", "control", "stdin", "iopub")


class ZMQTransport(Transport):
    """A :class:`Transport` to a kernel's five zmq sockets."""

    def __init__(
        self,
        info: ConnectionInfo,
        session: Session,
        context: zmq.asyncio.Context | None = None,
    ) -> None:
        self.info = info
        self.session = session
        self.context = context or zmq.asyncio.Context()
        self._own_context = context is None
        self._sockets: dict[str, zmq.asyncio.Socket] = {}
        self._hb: zmq.asyncio.Socket | None = None
        self._queue: asyncio.Queue[tuple[Channel, Message] | None] = asyncio.Queue()
        self._readers: list[asyncio.Task[None]] = []
        self._closed = False
        self.rejected = 0
        self.last_rejection: str | None = None

    def _socket(self, kind: int, channel: str) -> zmq.asyncio.Socket:
        sock = self.context.socket(kind)
        sock.linger = 0
        if kind == zmq.SUB:
            # Subscribe before connecting, or the first messages may be filtered out.
            sock.setsockopt(zmq.SUBSCRIBE, b"")
        elif kind == zmq.DEALER:
            sock.setsockopt(zmq.IDENTITY, self.session.session_id.encode("ascii"))
        sock.connect(self.info.url(channel))
        return sock

    async def connect(self) -> None:
        try:
            self._sockets["iopub"] = self._socket(zmq.SUB, "iopub")
            for ch in ("shell", "control", "stdin"):
                self._sockets[ch] = self._socket(zmq.DEALER, ch)
            self._hb = self._socket(zmq.REQ, "hb")
        except zmq.ZMQError as e:
            await self.close()
            raise TransportError(f"cannot connect to the kernel: {e}") from None
        for ch in _RECV_CHANNELS:
            self._readers.append(asyncio.create_task(self._read(ch)))

    async def _read(self, channel: Channel) -> None:
        sock = self._sockets[channel]
        deserialize = self.session.deserialize
        put = self._queue.put_nowait
        try:
            while True:
                # iopub's topic frames sit before the delimiter: deserialize skips them.
                frames = await sock.recv_multipart()
                try:
                    msg = deserialize(frames)
                except ProtocolError as e:
                    self.rejected += 1
                    self.last_rejection = str(e)
                    continue
                put((channel, msg))
        except (asyncio.CancelledError, zmq.ZMQError):
            pass
        finally:
            if not self._closed:
                put(None)

    async def send(self, channel: Channel, msg: Message) -> None:
        if self._closed:
            raise TransportError("transport is closed")
        sock = self._sockets[channel]
        await sock.send_multipart(self.session.serialize(msg, identities=[]))

    async def recv(self) -> tuple[Channel, Message]:
        item = await self._queue.get()
        if item is None:
            raise TransportError("the connection to the kernel is closed")
        return item

    async def is_alive(self, timeout: float) -> bool:
        hb = self._hb
        if hb is None or self._closed:
            return False
        try:
            await hb.send(b"ping")
            ok = await asyncio.wait_for(hb.recv(), timeout) == b"ping"
        except (asyncio.TimeoutError, zmq.ZMQError):
            ok = False
        if not ok:
            # A REQ socket waiting for a lost reply refuses to send again: replace it.
            hb.close(linger=0)
            self._hb = None if self._closed else self._socket(zmq.REQ, "hb")
        return ok

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for t in self._readers:
            t.cancel()
        for t in self._readers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for s in self._sockets.values():
            s.close(linger=0)
        if self._hb is not None:
            self._hb.close(linger=0)
        if self._own_context:
            self.context.term()
        self._queue.put_nowait(None)


def probe_heartbeat(info: ConnectionInfo, timeout: float = 1.0) -> bool:
    """Synchronously ping a kernel's heartbeat once (for ``kconsole kernels``)."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.linger = 0
    try:
        sock.connect(info.url("hb"))
        sock.send(b"ping")
        if sock.poll(int(timeout * 1000)):
            return bool(sock.recv() == b"ping")
        return False
    except zmq.ZMQError:
        return False
    finally:
        sock.close(linger=0)


def zmq_version_info() -> dict[str, Any]:
    """Versions for bug reports."""
    return {"pyzmq": zmq.__version__, "libzmq": zmq.zmq_version()}
