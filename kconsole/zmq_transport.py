"""The zmq side of the client: the one module of the console that owns zmq sockets.

Theory: one DEALER each for shell and control, a DEALER for stdin carrying the *same
identity* as shell (the kernel routes input_request with the execute_request's
identities), a SUB for iopub subscribed to everything *before* it connects, and a REQ
for the heartbeat, rebuilt after every timeout because a REQ that lost its reply is
stuck. Incoming frame lists are verified with the Session and handed on as whole
messages; frames that fail verification are counted and dropped, never surfaced.

The four message sockets are plain (blocking-API) zmq sockets read without blocking
from the event loop's reader callback on each socket's ``FD``: a zmq.asyncio future
per message costs more than parsing the message. The heartbeat REQ is read the same
way, so the console never loads zmq.asyncio. That FD is edge-triggered and only
says "events may have changed", so the callback drains while ``EVENTS`` has POLLIN
(a bounded batch, then it reschedules itself), and every send schedules one more
look, because a send can consume the edge that announced a reply.

Messages go straight from that callback to the client's router, the one receiver
(:meth:`ZMQTransport.deliver_to`, required before :meth:`~ZMQTransport.connect`): a
queue and a dispatcher task between them would cost a few event-loop iterations per
request, which is most of what a client adds to a round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import struct
import time
from collections.abc import Callable
from typing import Any, cast

import zmq

from .connection import ConnectionInfo, curve_available
from .protocol import MalformedMessage, Message, ProtocolError, Session
from .transport import Channel, Receiver, Transport, TransportError

_RECV_CHANNELS: tuple[Channel, ...] = ("shell", "control", "stdin", "iopub")
# Plain ints: pyzmq's constants are enums, and every `|`/`&` on one builds a new enum
# member (~1 µs); the hot path below does several per message.
_NOBLOCK = int(zmq.NOBLOCK)
_SNDMORE_NOBLOCK = int(zmq.SNDMORE) | _NOBLOCK
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)
_POLLOUT = int(zmq.POLLOUT)
#: Frames up to this size are copied to bytes (cheaper than a buffer view for small ones).
_COPY_BELOW = 64 * 1024
#: Messages read per socket per reader callback before yielding to the loop.
_BATCH = 64


class ZMQTransport(Transport):
    """A :class:`Transport` to a kernel's five zmq sockets."""

    def __init__(
        self,
        info: ConnectionInfo,
        session: Session,
        context: zmq.Context[Any] | None = None,
        reconnect_ms: int | None = None,
    ) -> None:
        """``reconnect_ms``: how soon a connection attempt that found no listener is
        retried (zmq's default is 100 ms); kconsole shortens it for a kernel it just
        started, which binds its ports only after the console has connected."""
        self.info = info
        self.reconnect_ms = reconnect_ms
        self.session = session
        self._own_context = context is None
        if context is None:
            context = zmq.Context()
        elif type(context) is not zmq.Context:  # zmq.asyncio's: its sockets are futures
            context = zmq.Context.shadow(context.underlying)
        self.context: zmq.Context[Any] = context
        self._sockets: dict[str, zmq.Socket[Any]] = {}
        self._hb: zmq.Socket[Any] | None = None
        self._stdin_monitor: zmq.Socket[Any] | None = None
        self._receiver: Receiver | None = None
        self._on_closed: Callable[[str], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fds: list[int] = []
        self._scheduled: set[Channel] = set()
        self._send_waiters: dict[Channel, list[asyncio.Future[None]]] = {}
        self._closed = False
        self._suspended = False
        self.rejected = 0
        self.last_rejection: str | None = None
        #: Messages whose handler (the client's router and its callbacks) raised.
        self.handler_failures = 0

    def _socket(self, kind: int, channel: str) -> Any:
        sock = self.context.socket(kind)
        sock.linger = 0
        try:
            set_curve_client(sock, self.info)
        except TransportError:
            sock.close(linger=0)
            raise
        if self.reconnect_ms is not None:
            sock.setsockopt(zmq.RECONNECT_IVL, self.reconnect_ms)
        if ":" in self.info.ip:
            sock.setsockopt(zmq.IPV6, 1)  # off by default: an IPv6 peer is never reached
        if kind == zmq.SUB:
            # Subscribe before connecting, or the first messages may be filtered out.
            sock.setsockopt(zmq.SUBSCRIBE, b"")
        elif kind == zmq.DEALER:
            sock.setsockopt(zmq.IDENTITY, self.session.session_id.encode("ascii"))
        if channel == "stdin":
            # A kernel's ROUTER silently drops an input_request addressed to a peer whose
            # connection is not up yet, and a fast kernel asks before it is: readiness
            # waits for this handshake too (see wait_channels).
            self._stdin_monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        if not self._suspended:
            try:
                sock.connect(self.info.url(channel))
            except zmq.ZMQError:
                # Not in self._sockets yet: close() would miss it, and the context's
                # term() would then wait for it forever.
                sock.close(linger=0)
                raise
        return sock

    def _all_sockets(self) -> list[tuple[str, Any]]:
        socks: list[tuple[str, Any]] = list(self._sockets.items())
        if self._hb is not None:
            socks.append(("hb", self._hb))
        return socks

    def suspend(self) -> None:
        # A kernel kconsole started is reconnected to every 10 ms (see kernel_connection.py):
        # with its process gone that would be ~500 refused connections a second.
        if self._suspended or self._closed:
            return
        self._suspended = True
        for channel, sock in self._all_sockets():
            with contextlib.suppress(zmq.ZMQError):
                sock.disconnect(self.info.url(channel))

    def resume(self) -> None:
        if not self._suspended or self._closed:
            return
        self._suspended = False
        for channel, sock in self._all_sockets():
            with contextlib.suppress(zmq.ZMQError):
                sock.connect(self.info.url(channel))

    def deliver_to(self, receiver: Receiver, on_closed: Callable[[str], None]) -> bool:
        self._receiver = receiver
        self._on_closed = on_closed
        return True

    async def wait_channels(self, timeout: float) -> None:
        mon = self._stdin_monitor
        if mon is None:
            return
        try:
            await _readable(mon, timeout)  # the handshake event, or the time is up
        finally:
            with contextlib.suppress(zmq.ZMQError):
                self._sockets["stdin"].disable_monitor()
            mon.close(linger=0)
            self._stdin_monitor = None

    async def connect(self) -> None:
        if self._receiver is None:
            raise TransportError("ZMQTransport.deliver_to() must be called before connect()")
        try:
            self._sockets["iopub"] = self._socket(zmq.SUB, "iopub")
            for ch in ("shell", "control", "stdin"):
                self._sockets[ch] = self._socket(zmq.DEALER, ch)
            self._hb = self._socket(zmq.REQ, "hb")
        except zmq.ZMQError as e:
            await self.close()
            raise TransportError(f"cannot connect to the kernel: {e}") from None
        except TransportError:
            await self.close()
            raise
        loop = self._loop = asyncio.get_running_loop()
        for ch in _RECV_CHANNELS:
            fd = cast(int, self._sockets[ch].getsockopt(zmq.FD))
            loop.add_reader(fd, self._on_events, ch)
            self._fds.append(fd)
            self._schedule(ch)  # messages may be waiting without an edge to announce them

    def _schedule(self, channel: Channel) -> None:
        if channel not in self._scheduled and self._loop is not None:
            self._scheduled.add(channel)
            self._loop.call_soon(self._on_events, channel)

    def _on_events(self, channel: Channel) -> None:
        self._scheduled.discard(channel)
        if self._closed:
            return
        sock = self._sockets[channel]
        get, recv = sock.get, sock.recv
        deserialize = self.session.deserialize
        put = self._receiver
        assert put is not None  # connect() refuses without one
        try:
            for _ in range(_BATCH):
                events = cast(int, get(_EVENTS))
                if events & _POLLOUT and self._send_waiters.get(channel):
                    for fut in self._send_waiters.pop(channel):
                        if not fut.done():
                            fut.set_result(None)
                if not events & _POLLIN:
                    return
                try:
                    msg = _read_message(recv, deserialize)
                except MalformedMessage as e:
                    self.drop_malformed(str(e))
                    continue
                except ProtocolError as e:
                    self.rejected += 1
                    self.last_rejection = str(e)
                    continue
                try:
                    put(channel, msg)
                except Exception as e:  # a failing handler must not stall the socket
                    self._report(e)
        except zmq.Again:
            return
        except zmq.ZMQError as e:
            if not self._closed:
                self._lost(f"the connection to the kernel failed: {e}")
            return
        except Exception as e:
            # Anything else (MemoryError on a huge message...) costs that message,
            # never the socket: an edge-triggered reader not rescheduled reads no more.
            self.drop_malformed(f"{type(e).__name__}: {e}")
        self._schedule(channel)  # more than a batch waiting: let others run first

    def _report(self, error: Exception) -> None:
        # Once: a handler failing for every message of a flood would bury the terminal.
        self.handler_failures += 1
        if self.handler_failures > 1:
            return
        note = (
            f"a message handler failed: {type(error).__name__}: {error} (later failures not shown)"
        )
        if self.on_note is not None:
            with contextlib.suppress(Exception):
                self.on_note(note)
            return
        assert self._loop is not None
        self._loop.call_exception_handler({"message": "kconsole: " + note, "exception": error})

    def _lost(self, reason: str) -> None:
        if self._on_closed is not None:
            self._on_closed(reason)

    async def send(self, channel: Channel, msg: Message) -> None:
        if self._closed:
            raise TransportError("transport is closed")
        sock = self._sockets[channel]
        frames = self.session.serialize(msg, identities=[])
        while True:
            try:
                # Frame by frame: only the first can meet the high-water mark (zmq
                # takes the rest of a message it accepted), which raises Again.
                for frame in frames[:-1]:
                    sock.send(frame, _SNDMORE_NOBLOCK)
                sock.send(frames[-1], _NOBLOCK)
                break
            except zmq.Again:  # high-water mark reached: wait until it drains
                assert self._loop is not None
                fut = self._loop.create_future()
                self._send_waiters.setdefault(channel, []).append(fut)
                self._schedule(channel)
                await fut
                if self._closed:
                    raise TransportError("transport is closed") from None
            except zmq.ZMQError as e:
                raise TransportError(f"cannot send to the kernel: {e}") from None
        self._schedule(channel)

    async def is_alive(self, timeout: float) -> bool:
        hb = self._hb
        if hb is None or self._closed:
            return False
        try:
            hb.send(b"ping", _NOBLOCK)
            ok = await _readable(hb, timeout) and hb.recv(_NOBLOCK) == b"ping"
        except zmq.ZMQError:  # Again included: no pipe to a peer yet
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
        if self._loop is not None:
            for fd in self._fds:
                self._loop.remove_reader(fd)
        for waiters in self._send_waiters.values():
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)
        if self._stdin_monitor is not None:
            self._stdin_monitor.close(linger=0)
            self._stdin_monitor = None
        for s in self._sockets.values():
            s.close(linger=0)
        if self._hb is not None:
            self._hb.close(linger=0)
        if self._own_context:
            self.context.term()


async def _readable(sock: zmq.Socket[Any], timeout: float) -> bool:
    """Wait up to ``timeout`` for ``sock`` to have a message to read, on the event loop
    (the heartbeat's echo, the stdin monitor's handshake event): a worker thread, and
    its malloc arena, would cost the console more than these waits. The socket's FD is
    edge-triggered like the message sockets': EVENTS is what tells."""
    loop = asyncio.get_running_loop()
    readable: asyncio.Future[None] = loop.create_future()
    fd = cast(int, sock.getsockopt(zmq.FD))

    def check() -> None:
        if readable.done():
            return
        try:
            ready = cast(int, sock.get(_EVENTS)) & _POLLIN
        except zmq.ZMQError:  # closed meanwhile: done waiting, the caller's read fails
            ready = True
        if ready:
            readable.set_result(None)

    loop.add_reader(fd, check)
    try:
        check()  # it may be readable already, its edge spent
        await asyncio.wait_for(readable, timeout)
        return True
    except asyncio.TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)


def _read_message(recv: Any, deserialize: Any) -> Message:
    """Read one whole message (zmq delivers all its frames or none) and verify it.

    Frames are read as zmq Frames, whose ``more`` spares a getsockopt(RCVMORE) each;
    iopub's topic frames sit before the delimiter and deserialize skips them. A
    function of its own so the raw frames are freed before the message is handled: in
    an output flood each is a copy of a message of some 100 KB.
    """
    frames: list[bytes | memoryview] = []
    while True:
        frame = recv(_NOBLOCK, copy=False)
        # A large frame (a flood's stream text) is read in place, not copied first.
        frames.append(frame.buffer if len(frame) > _COPY_BELOW else frame.bytes)
        if not frame.more:
            break
    return cast(Message, deserialize(frames))


NO_CURVE = (
    "this pyzmq is built without CurveZMQ (zmq.has('curve') is false): it cannot reach "
    "a kernel whose connection uses curve keys; install a pyzmq wheel (they bundle libsodium)"
)


def set_curve_client(sock: Any, info: ConnectionInfo) -> None:
    """Make ``sock`` a CurveZMQ client of ``info``'s kernel, before it connects, as
    jupyter_client 8.10 does: the connection's keypair is the client's own and its
    public key the server key. Nothing for a connection without keys; a
    :class:`TransportError` (one line) when this pyzmq cannot do Curve."""
    if _set_keypair(sock, info):
        sock.curve_serverkey = info.curve_publickey.encode("ascii")


def set_curve_server(sock: Any, info: ConnectionInfo) -> None:
    """Make ``sock`` a CurveZMQ server with ``info``'s keypair, before it binds (what
    ipykernel 7.4's ``_apply_curve_server_options`` does on each of its sockets)."""
    if _set_keypair(sock, info):
        sock.curve_server = True


def _set_keypair(sock: Any, info: ConnectionInfo) -> bool:
    """Give ``sock`` the connection's keypair; False for a connection without keys."""
    if not info.encrypted:
        return False
    if not curve_available():
        raise TransportError(NO_CURVE)
    sock.curve_secretkey = info.curve_secretkey.encode("ascii")
    sock.curve_publickey = info.curve_publickey.encode("ascii")
    return True


#: libzmq's ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH: one side speaks CURVE, the other NULL.
_MECHANISM_MISMATCH = 0x11000002
_HANDSHAKE_FAILED = (
    int(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL)
    | int(zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
    | int(zmq.EVENT_HANDSHAKE_FAILED_AUTH)
)


KERNEL_IS_PLAIN = (
    "curve keys were given but the kernel does not use CurveZMQ encryption "
    "(a plain kernel): attach without the keys"
)
KERNEL_REQUIRES_CURVE = (
    "the kernel requires CurveZMQ encryption but the connection has no curve keys "
    "(curve_publickey/curve_secretkey in the connection file, or --curve-public-key)"
)
WRONG_KEYS = (
    "the kernel rejected the CurveZMQ handshake: the curve keys given are not this kernel's"
)


def mismatch_reason(info: ConnectionInfo, event: int, value: int) -> str | None:
    """The one line that explains a failed zmq handshake with ``info``'s kernel, or None
    for an event that is no handshake failure.

    Curve on one side only is a mechanism mismatch, but the side that notices first
    closes the connection, so the other may see only that (NO_DETAIL): without keys
    any failed handshake means the kernel wants Curve; with keys an unexplained one is
    :data:`WRONG_KEYS` until a plain probe says the kernel is plain (see probe_kernel).
    """
    if not event & _HANDSHAKE_FAILED:
        return None
    if not info.encrypted:
        return KERNEL_REQUIRES_CURVE
    if event & int(zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL) and value == _MECHANISM_MISMATCH:
        return KERNEL_IS_PLAIN
    return WRONG_KEYS


def _monitor_event(frames: list[bytes]) -> tuple[int, int]:
    """A zmq monitor message's event id and value, as ``zmq.utils.monitor`` parses it
    (which imports zmq.asyncio, and asyncio's futures with it, for its async variant)."""
    if len(frames) != 2 or len(frames[0]) != 6:
        raise zmq.ZMQError(msg=f"invalid monitor message: {frames!r}")
    event, value = struct.unpack("=hi", frames[0])
    return int(event), int(value)


def probe_heartbeat(info: ConnectionInfo, timeout: float = 1.0) -> bool:
    """Synchronously ping a kernel's heartbeat once (for ``kconsole kernels``)."""
    return probe_kernel(info, timeout)[0]


def probe_kernel(info: ConnectionInfo, timeout: float = 1.0) -> tuple[bool, str | None]:
    """Synchronously ping a kernel's heartbeat once, with Curve when ``info`` has keys.

    Returns (answered, why not): why not is one line naming a cause that is not mere
    silence (Curve on one side only, keys that are not the kernel's, a pyzmq without
    Curve), read from the socket's handshake events; None when the kernel is silent.
    """
    if info.encrypted and not curve_available():
        return False, NO_CURVE
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.linger = 0
    set_curve_client(sock, info)
    if ":" in info.ip:
        sock.setsockopt(zmq.IPV6, 1)
    mon = sock.get_monitor_socket(
        _HANDSHAKE_FAILED, addr=f"inproc://kconsole-probe-{next(_probe_ids)}"
    )
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    poller.register(mon, zmq.POLLIN)
    try:
        sock.connect(info.url("hb"))
        sock.send(b"ping")
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            ready = dict(poller.poll(max(1, int(remaining * 1000))))
            if sock in ready:
                return bool(sock.recv() == b"ping"), None
            if mon in ready:
                event, value = _monitor_event(mon.recv_multipart())
                why = mismatch_reason(info, event, value)
                if why == WRONG_KEYS:
                    # Or a plain kernel that closed before its NULL greeting was read.
                    plain = dataclasses.replace(info, curve_publickey="", curve_secretkey="")
                    if probe_kernel(plain, max(0.2, deadline - time.monotonic()))[0]:
                        why = KERNEL_IS_PLAIN
                if why is not None:
                    return False, why
        return False, None
    except zmq.ZMQError:
        return False, None
    finally:
        with contextlib.suppress(zmq.ZMQError):
            sock.disable_monitor()
        mon.close(linger=0)
        sock.close(linger=0)


#: Numbers the probes' monitor endpoints (inproc names must be unique while in use).
_probe_ids = itertools.count()


def zmq_version_info() -> dict[str, Any]:
    """Versions for bug reports."""
    return {"pyzmq": zmq.__version__, "libzmq": zmq.zmq_version()}
