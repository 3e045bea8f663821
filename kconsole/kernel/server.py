"""The built-in kernel's sockets: one IO thread owns them all (except heartbeat).

Theory of this module
---------------------
zmq sockets are not thread-safe, so exactly one thread (the IO thread) touches the
shell, control, stdin and iopub sockets. Other threads hand it fully serialized,
signed frame lists through :meth:`Server.send`: a deque plus a wake-up pipe the IO
thread polls alongside the sockets. The deque is FIFO, so messages leave in the
order they were sent, whichever thread sent them: a reply queued before ``idle``
is sent before it. IOPub is an XPUB socket with no send high-water mark (nothing is
ever dropped; memory absorbs bursts) and XPUB_VERBOSE, so every new subscriber gets
an ``iopub_welcome``; pending subscriptions are handled before any queued message,
so the welcome precedes the subscriber's first message where zmq allows it. A
subscription frame alone does not earn a welcome (any local process can send
thousands a second): each connection whose handshake succeeded (a socket monitor
event) is owed one, paid on its first subscription.
The heartbeat is a REP socket echoed by ``zmq.proxy`` in its own thread, in C,
without the GIL: a kernel busy in Python code still beats.

Whatever a peer sends, one message costs only itself: a frame that does not verify
or parse is dropped (and logged, a bounded number of times), and no exception in the
IO loop ends the IO thread.
"""

from __future__ import annotations

import collections
import errno
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from ..connection import ConnectionInfo
from ..protocol import Message, ProtocolError, Session, topic
from ..zmq_transport import set_curve_server
from .iostream import block_sigint

Handler = Callable[[Message], None]
#: The largest frame a client may send the kernel (a pasted cell of data included).
MAX_REQUEST_BYTES = 256 * 2**20
_STOP = object()
#: How long a subscription read before any handshake event waits for one (the two
#: travel on different pipes: milliseconds apart).
UNPAID_FOR = 0.5


class Server:
    """Binds a kernel's five sockets and moves frames between them and handlers."""

    def __init__(self, info: ConnectionInfo, session: Session, log: Callable[[str], None]) -> None:
        self.info = info
        self.session = session
        self.log = log
        self.ctx = zmq.Context()
        self.shell = self._socket(zmq.ROUTER, "shell")
        self.control = self._socket(zmq.ROUTER, "control")
        self.stdin = self._socket(zmq.ROUTER, "stdin")
        self.iopub = self._socket(zmq.XPUB, "iopub")
        self.hb = self._socket(zmq.REP, "hb")
        self._out: collections.deque[Any] = collections.deque()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._signalled = False
        self._thread: threading.Thread | None = None
        self._handlers: dict[str, Handler] = {}
        self.welcomes_sent = 0
        # Handshakes on iopub: each new subscriber is owed one welcome.
        self._iopub_monitor: zmq.Socket[Any] | None = None
        try:
            self._iopub_monitor = self.iopub.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        except zmq.ZMQError:  # a libzmq without monitors: welcome every subscription
            pass
        self._welcomes_owed = 0
        # The last subscription that came before its connection's handshake event.
        self._unpaid: bytes | None = None
        self._unpaid_at = 0.0
        #: Set once any client has subscribed to IOPub (see Kernel._kernel_info).
        self.iopub_joined = threading.Event()
        self.dropped = 0

    def _socket(self, kind: int, channel: str) -> zmq.Socket[Any]:
        sock: zmq.Socket[Any] = self.ctx.socket(kind)
        sock.linger = 1000
        if kind == zmq.ROUTER:
            # A client reconnecting with the same identity takes its routes over.
            sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
            # Requests are code and small dicts: a frame past this, signed or not, is
            # refused by zmq as it arrives (dropping that peer's connection) instead of
            # being read whole into memory before its signature is even checked.
            sock.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST_BYTES)
        if kind == zmq.XPUB:
            sock.setsockopt(zmq.SNDHWM, 0)
            sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        info = self.info
        # Curve keys in the connection file: every socket, heartbeat included, is a
        # CurveZMQ server (as ipykernel 7.4); the HMAC signature stays on top of it.
        set_curve_server(sock, info)
        port = info.port(channel)
        if info.transport == "ipc":
            if port == 0:
                port = 1
                while os.path.exists(f"{info.ip}-{port}"):
                    port += 1
            sock.bind(f"ipc://{info.ip}-{port}")
        elif port == 0:
            ip = f"[{info.ip}]" if ":" in info.ip else info.ip
            if ":" in info.ip:
                sock.setsockopt(zmq.IPV6, 1)
            port = sock.bind_to_random_port(f"tcp://{ip}")
        else:
            if ":" in info.ip:
                sock.setsockopt(zmq.IPV6, 1)
            sock.bind(info.url(channel))
        setattr(info, f"{channel}_port", port)
        return sock

    # -- threads ---------------------------------------------------------------

    def start(self, shell: Handler, control: Handler, stdin: Handler) -> None:
        """Start the heartbeat and IO threads; handlers run on the IO thread."""
        self._handlers = {"shell": shell, "control": control, "stdin": stdin}
        threading.Thread(target=self._heartbeat, name="kconsole-heartbeat", daemon=True).start()
        self._thread = threading.Thread(target=self._io, name="kconsole-io", daemon=True)
        self._thread.start()

    def _heartbeat(self) -> None:
        block_sigint()
        try:
            zmq.proxy(self.hb, self.hb)
        except zmq.ZMQError:
            pass  # the context is being terminated: let ctx.term() finish
        self.hb.close(linger=0)

    def send(self, channel: str, frames: list[bytes]) -> None:
        """Queue frames for ``channel``; safe from any thread, sent in FIFO order."""
        self._out.append((channel, frames))
        if not self._signalled:
            self._signalled = True
            try:
                os.write(self._wake_w, b"\0")
            except OSError:
                pass

    def send_msg(self, channel: str, msg: Message, identities: list[bytes] | None = None) -> None:
        """Sign and queue ``msg`` (iopub: with its topic as the identity frame)."""
        if channel == "iopub" and identities is None:
            identities = [topic(self.session.session_id, msg.msg_type)]
        self.send(channel, self.session.serialize(msg, identities or []))

    def stop(self, timeout: float = 2.0) -> None:
        """Send everything queued, close the sockets and end the IO thread."""
        if self._thread is None or not self._thread.is_alive():
            return
        self.send("", [_STOP])  # type: ignore[list-item]
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _io(self) -> None:
        block_sigint()
        poller = zmq.Poller()
        socks = {self.shell: "shell", self.control: "control", self.stdin: "stdin"}
        for s in socks:
            poller.register(s, zmq.POLLIN)
        poller.register(self.iopub, zmq.POLLIN)
        if self._iopub_monitor is not None:
            poller.register(self._iopub_monitor, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        while True:
            try:
                events = dict(poller.poll())
            except zmq.ZMQError as e:
                if e.errno == errno.EINTR:
                    continue
                raise
            try:
                if self.iopub in events or self._iopub_monitor in events:
                    self._subscriptions()
                for sock, channel in socks.items():
                    if sock in events:
                        self._recv(sock, channel)
                if self._wake_r in events:
                    try:
                        os.read(self._wake_r, 4096)
                    except BlockingIOError:
                        pass
                    self._signalled = False
                    if self._drain():
                        return
            except Exception as e:  # the IO thread is the kernel's only ear: keep it
                self._drop("IO", f"{type(e).__name__}: {e}")

    def _drain(self) -> bool:
        """Send the queued frames; True when the stop marker was reached."""
        out = self._out
        self._subscriptions()
        while out:
            channel, frames = out.popleft()
            if channel == "":
                self._close()
                return True
            sock = {
                "iopub": self.iopub,
                "shell": self.shell,
                "control": self.control,
                "stdin": self.stdin,
            }[channel]
            try:
                sock.send_multipart(frames, copy=len(frames[-1]) < 65536)
            except zmq.ZMQError as e:
                self.log(f"kconsole kernel: cannot send on {channel}: {e}")
        return False

    def _subscriptions(self) -> None:
        mon = self._iopub_monitor
        self._drain_handshakes()
        while True:
            try:
                frame = self.iopub.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            if frame[:1] != b"\x01":
                continue
            self.iopub_joined.set()
            topic = frame[1:]
            if mon is not None:
                # libzmq posts a connection's handshake event before it reads that
                # peer's subscription, but the two travel on different pipes: look
                # again before calling it a repeat (or a flood) that earns nothing.
                if self._welcomes_owed <= 0:
                    self._drain_handshakes()
                if self._welcomes_owed <= 0:
                    # Its handshake event may still be on its way (milliseconds).
                    self._unpaid, self._unpaid_at = topic, time.monotonic()
                    continue
                self._welcomes_owed -= 1
            self._welcome(topic)
        if self._unpaid is not None and time.monotonic() - self._unpaid_at > UNPAID_FOR:
            # Not a subscription racing its handshake event but a repeat (or the end of
            # a flood): it must not take the welcome of the next real subscriber.
            self._unpaid = None
        if mon is not None and self._unpaid is not None and self._welcomes_owed > 0:
            # A handshake whose event came after its subscription: pay it now.
            self._welcomes_owed -= 1
            self._welcome(self._unpaid)
            self._unpaid = None

    def _drain_handshakes(self) -> None:
        mon = self._iopub_monitor
        while mon is not None:
            try:
                event = recv_monitor_message(mon, zmq.NOBLOCK)
            except zmq.Again:
                break
            if event.get("event") == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._welcomes_owed += 1

    def _welcome(self, topic: bytes) -> None:
        welcome = self.session.msg(
            "iopub_welcome", {"subscription": topic.decode("utf-8", "replace")}
        )
        self.iopub.send_multipart(self.session.serialize(welcome, [topic]))
        self.welcomes_sent += 1

    def _drop(self, channel: str, reason: str) -> None:
        # Bounded: a peer sending garbage in a loop must not fill the kernel's log.
        self.dropped += 1
        if self.dropped <= 10 or self.dropped % 1000 == 0:
            self.log(f"kconsole kernel: dropped a {channel} message ({self.dropped}): {reason}")

    def _recv(self, sock: zmq.Socket[Any], channel: str) -> None:
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                msg = self.session.deserialize(frames)
            except ProtocolError as e:
                self._drop(channel, str(e))
                continue
            try:
                self._handlers[channel](msg)
            except Exception as e:  # a handler bug must not kill the IO thread
                import traceback

                self.log(
                    f"kconsole kernel: error handling {msg.msg_type[:80]!r}: {e}\n"
                    + traceback.format_exc()
                )

    def _close(self) -> None:
        # Messages still queued in zmq (the shutdown reply, the last output) are only
        # flushed by ctx.term(), which waits up to the linger time for them.
        if self._iopub_monitor is not None:
            self._iopub_monitor.close(linger=0)
        for s in (self.shell, self.control, self.stdin, self.iopub):
            s.close(linger=1000)
        self.ctx.term()


def log_to(fd: int) -> Callable[[str], None]:
    """A logger writing lines to ``fd`` (the kernel's original stderr)."""

    def log(text: str) -> None:
        try:
            os.write(fd, (text.rstrip("\n") + "\n").encode("utf-8", "replace"))
        except OSError:
            pass

    return log
