"""An asyncio kernel client on top of any :class:`~kconsole.transport.Transport`.

Theory of routing
-----------------
Every message the transport yields is routed by its parent's msg_id, straight from
the transport's read callback where it supports that (zmq), else by a dispatcher task
reading :meth:`Transport.recv` (the WebSocket):

* shell/control replies resolve the request that is waiting for them;
* stdin ``input_request`` is answered by the ``on_input`` callback of the execute
  that caused it (or EOF when there is none);
* IOPub messages whose parent is one of our pending requests go to that request's
  ``on_output`` callback, in arrival order; its ``status: idle`` marks the end of its
  output. Everything else on IOPub (other clients' work, output of background threads
  after idle) goes to ``on_broadcast``.

A request is finished when both its reply and its idle have arrived. The client never
prints: the REPL decides what a user sees.

One client serves a whole session: when the kernel moves (restarted on new ports after
a port clash, replaced on its server) :meth:`KernelClient.replace_transport` puts it
on a new transport, and whoever holds the client and set its callbacks keeps both.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .protocol import Message, Session, validate_reply
from .transport import Channel, Transport, TransportError

OutputCallback = Callable[[Message], None]
InputCallback = Callable[[str, bool], Awaitable[str]]
#: How long to keep waiting for a request's ``idle`` once its reply came and IOPub has
#: gone quiet: past it the kernel has most likely dropped the message (ipykernel's
#: high-water mark), and waiting longer would hang the console.
IDLE_GRACE = 3.0
#: How long to wait for an execute_reply once the request's ``idle`` has come: replies
#: and IOPub travel on different sockets, so the idle may overtake its reply a little;
#: past this the kernel has gone idle without answering (bash_kernel on a `for` alone).
REPLY_GRACE = 2.0
#: How many of our latest request ids are remembered as ours (see _sent_ids).
_SENT_IDS_KEPT = 256


class KernelError(Exception):
    """Base of the client's user-facing errors."""


class KernelDied(KernelError):
    """The kernel stopped answering (process exited, heartbeat lost)."""


class KernelTimeout(KernelError):
    """A request got no reply in time."""


class ReplyLost(KernelError):
    """The kernel went idle after a request and never sent its reply."""


class EOFInput(Exception):
    """Raised by an input callback to answer the kernel with EOF."""


class NoReply(Exception):
    """Raised by an input callback to send no input_reply (the kernel was interrupted)."""


@dataclass
class PendingRequest:
    """A request sent to the kernel and what it is still waiting for."""

    msg: Message
    reply: asyncio.Future[Message]
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    on_output: OutputCallback | None = None
    on_input: InputCallback | None = None
    #: Monotonic time of the last IOPub message for this request (idle grace period).
    last_activity: float = 0.0
    wants_idle: bool = True


class KernelClient:
    """Talks to one kernel through ``transport``; signs with ``session``."""

    def __init__(self, transport: Transport, session: Session) -> None:
        self.transport = transport
        self.session = session
        self._pending: dict[str, PendingRequest] = {}
        #: The ids of our latest requests, finished or given up on too: a status can
        #: come after the reply (another socket), or after we stopped waiting, and is
        #: still ours, not another client's work. Insertion-ordered, the oldest dropped.
        self._sent_ids: dict[str, None] = {}
        self._dispatcher: asyncio.Task[None] | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._input_tasks: set[asyncio.Task[None]] = set()
        #: Output whose parent is not one of our requests (other clients, late output).
        self.on_broadcast: OutputCallback | None = None
        #: Called with a reason when the kernel is found dead.
        self.on_dead: Callable[[str], None] | None = None
        #: Called with every IOPub ``status`` message and whether its parent is one of
        #: our pending requests (a REPL shows "busy" caused by other clients).
        self.on_status: Callable[[Message, bool], None] | None = None
        #: Called once a kernel its server restarted in its place (it died) answers: a
        #: new kernel, which says nothing of its state until asked.
        self.on_restarted: Callable[[], None] | None = None
        self._restart_follower: asyncio.Task[None] | None = None
        #: execute_requests sent so far (a cell sent while a restart is followed).
        self._executes_sent = 0
        #: The server said it restarts the kernel, which has not answered since.
        self.restart_followed = False
        self.kernel_info: dict[str, Any] = {}
        self.dead = asyncio.Event()
        self._alive = asyncio.Event()
        self._alive.set()
        self.dead_reason = ""
        self._iopub_seen = asyncio.Event()
        self._closed = False
        self._loop_time: Callable[[], float] = time.monotonic
        #: Where one-line notes about the kernel's misbehaviour go (a REPL shows them
        #: above its prompt); None: standard error.
        self.on_note: Callable[[str], None] | None = None
        #: Reply fields found ill-typed, each noted once: ``(msg_type, problem)``.
        self._noted_problems: set[tuple[str, str]] = set()
        #: Messages whose handling raised (the first is noted).
        self.route_failures = 0

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the transport and start routing messages."""
        self._loop_time = asyncio.get_running_loop().time
        self.transport.on_note = self.note
        # Straight from the transport's read callback where it can: no queue and no
        # dispatcher task between a reply and the request awaiting it.
        direct = self.transport.deliver_to(self._route, self.mark_dead)
        await self.transport.connect()
        if not direct:
            self._dispatcher = asyncio.create_task(self._dispatch(), name="kconsole-dispatch")

    async def close(self) -> None:
        """Stop routing and close the transport; idempotent."""
        if self._closed:
            return
        self._closed = True
        for task in (self._monitor, self._dispatcher, self._restart_follower, *self._input_tasks):
            if task is not None:
                task.cancel()
        for task in (self._monitor, self._dispatcher):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await self.transport.close()

    async def replace_transport(self, transport: Transport, session: Session) -> None:
        """Go on talking to a kernel on ``transport`` (signing with ``session``) instead:
        the kernel was restarted on new ports, or its server lost it and a new one was
        started. The old transport is closed, requests still waiting on it fail with
        KernelDied (quietly: no ``on_dead``), the callbacks stay; the death watch is
        stopped and the kernel must prove itself again (:meth:`wait_for_ready`)."""
        self.stop_monitor()
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._dispatcher
            self._dispatcher = None
        for task in list(self._input_tasks):
            task.cancel()
        if self._restart_follower is not None:
            self._restart_follower.cancel()  # it followed the old kernel
        self.restart_followed = False
        with contextlib.suppress(Exception):  # a transport already broken is done with
            await self.transport.close()
        self._fail_pending("the kernel was replaced")
        self.transport = transport
        self.session = session
        self.kernel_info = {}
        self.revive()
        await self.start()

    def mark_dead(self, reason: str, *, notify: bool = True) -> None:
        """Record that the kernel died; every waiting request fails with KernelDied.
        ``on_dead`` hears of it unless ``notify`` is false (a replacement that failed
        leaves the client dead as it was, without a second announcement)."""
        if self.dead.is_set():
            return
        self.dead_reason = reason
        self.dead.set()
        self._alive.clear()
        self._fail_pending(reason)
        if notify and self.on_dead is not None:
            self.on_dead(reason)

    def _fail_pending(self, reason: str) -> None:
        for p in list(self._pending.values()):
            if not p.reply.done():
                p.reply.set_exception(KernelDied(reason))
            p.idle.set()

    def revive(self) -> None:
        """Forget an earlier death (after the kernel was restarted)."""
        self.dead.clear()
        self._alive.set()
        # The new process's IOPub subscription must prove itself again (wait_for_ready),
        # or the first output after a restart could be published before it is live.
        self._iopub_seen.clear()
        self.dead_reason = ""

    def start_monitor(
        self,
        process_exit: Callable[[], Awaitable[str]] | None = None,
        interval: float = 0.5,
        timeout: float = 1.0,
        misses: int = 2,
        *,
        revive: bool = False,
    ) -> None:
        """Watch the kernel: the heartbeat, and ``process_exit`` when the kernel is
        local (a coroutine that returns a reason when the process ends). Replaces any
        earlier watch. With ``revive`` (an attached kernel, which only its owner can
        restart), a dead kernel whose heartbeat answers again is taken back once it
        is ready: its manager restarted it on the same ports and keys."""
        self.stop_monitor()
        self._monitor = asyncio.create_task(
            self._watch(process_exit, interval, timeout, misses, revive), name="kconsole-monitor"
        )

    def stop_monitor(self) -> None:
        """Stop watching (before a deliberate restart, whose exit is not a death)."""
        if self._monitor is not None:
            self._monitor.cancel()
            self._monitor = None

    async def _watch(
        self,
        process_exit: Callable[[], Awaitable[str]] | None,
        interval: float,
        timeout: float,
        misses: int,
        revive: bool = False,
    ) -> None:
        async def heartbeat() -> None:
            missed = 0
            while True:
                if self.dead.is_set() and revive:
                    if await self.transport.is_alive(timeout):
                        await self._take_back(timeout)
                    else:
                        await asyncio.sleep(interval)  # a probe period
                    missed = 0
                    continue
                if self.dead.is_set():
                    await self._wait_revived()
                    missed = 0
                if await self.transport.is_alive(timeout):
                    missed = 0
                    await asyncio.sleep(interval)  # a probe period, not a synchronisation
                else:
                    missed += 1
                    if missed >= misses:
                        self.mark_dead("the kernel stopped answering its heartbeat")
                        missed = 0

        async def process() -> None:
            assert process_exit is not None
            while True:
                if self.dead.is_set():
                    await self._wait_revived()
                reason = await process_exit()
                self.mark_dead(reason)

        tasks: list[asyncio.Task[None]] = [asyncio.create_task(heartbeat())]
        if process_exit is not None:
            tasks.append(asyncio.create_task(process()))
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()

    async def _wait_revived(self) -> None:
        await self._alive.wait()

    async def _take_back(self, timeout: float) -> None:
        """A dead attached kernel answers its heartbeat again: revive it once it
        answers kernel_info too (a new process's IOPub must prove itself), saying so;
        if it does not, it stays dead and the watch goes on."""
        reason = self.dead_reason
        self.revive()
        try:
            await self.wait_for_ready(max(timeout, 5.0))
        except KernelError:
            self.mark_dead(reason)
            return
        self.note("the kernel answers again (restarted by whoever started it)")

    # -- notes ----------------------------------------------------------------------

    def note(self, text: str) -> None:
        """Tell the user one line about the kernel's misbehaviour (``on_note``, else
        standard error); never raises."""
        try:
            if self.on_note is not None:
                self.on_note(text)
            else:
                print(f"[kconsole] {text}", file=sys.stderr, flush=True)
        except Exception:  # a note must never cost the message or the reader
            pass

    def _route_failed(self, msg: Message, error: Exception) -> None:
        # The first failure is noted; a handler failing on every message of a flood
        # would otherwise bury the terminal.
        self.route_failures += 1
        if self.route_failures == 1:
            self.note(
                f"could not handle a {msg.msg_type or 'message'} from the kernel "
                f"({type(error).__name__}: {error}); later failures are not shown"
            )

    def _validated(self, msg: Message, request: Message) -> Message:
        # Checked as the reply the request asked for, whatever type the message claims:
        # the caller reads an execute_request's answer as an execute_reply.
        kind = request.msg_type
        expected = kind[: -len("_request")] + "_reply" if kind.endswith("_request") else kind
        content, problems = validate_reply(expected, msg.content)
        msg.content = content
        for problem in problems:
            key = (expected, problem)
            if key not in self._noted_problems:
                self._noted_problems.add(key)
                self.note(f"the kernel sent a malformed {expected} ({problem}); ignored it")
                break  # one note per reply at most
        return msg

    # -- dispatch -------------------------------------------------------------------

    async def _dispatch(self) -> None:
        # Only for transports that cannot deliver_to(): read and route one at a time.
        route = self._route
        while True:
            try:
                channel, msg = await self.transport.recv()
            except TransportError as e:
                self.mark_dead(str(e))
                return
            route(channel, msg)

    def _route(self, channel: Channel, msg: Message) -> None:
        """Route one message; whatever it holds, one bad message costs itself only."""
        try:
            self._route_one(channel, msg)
        except Exception as e:
            self._route_failed(msg, e)

    def _route_one(self, channel: Channel, msg: Message) -> None:
        parent = msg.parent_id
        req = self._pending.get(parent) if parent else None
        if channel == "iopub":
            self._iopub_seen.set()
            if msg.msg_type == "status":
                state = msg.content.get("execution_state", "")
                if not isinstance(state, str):
                    state = ""
                if self.on_status is not None:
                    self.on_status(msg, req is not None or parent in self._sent_ids)
                if req is not None and state == "idle":
                    req.idle.set()
                    if req.wants_idle and not req.reply.done():
                        # Checked once, after the grace: nothing costs a reply that comes.
                        asyncio.get_running_loop().call_later(REPLY_GRACE, self._reply_lost, req)
                elif state in ("dead", "restarting"):
                    # Injected by Jupyter Server: no parent of ours, but users must see it.
                    if self.on_broadcast is not None:
                        self.on_broadcast(msg)
                    if state == "restarting" and not parent:
                        self._lose_replies("the kernel died and its server restarted it")
                        self._follow_restart()
                return
            if req is not None:
                req.last_activity = self._loop_time()
                if req.on_output is not None:
                    req.on_output(msg)
            elif self.on_broadcast is not None:
                self.on_broadcast(msg)
        elif channel == "stdin":
            if msg.msg_type == "input_request":
                task = asyncio.create_task(self._answer_input(msg, req))
                self._input_tasks.add(task)
                task.add_done_callback(self._input_tasks.discard)
        elif req is not None and not req.reply.done():
            req.reply.set_result(self._validated(msg, req.msg))

    async def _answer_input(self, msg: Message, req: PendingRequest | None) -> None:
        prompt = msg.content.get("prompt", "")
        prompt = prompt if isinstance(prompt, str) else ""
        password = bool(msg.content.get("password", False))
        value = "\x04"  # what ipykernel reads as EOF
        if req is not None and req.on_input is not None:
            try:
                value = await req.on_input(prompt, password)
            except EOFInput:
                value = "\x04"
            except NoReply:
                return
        reply = self.session.msg("input_reply", {"value": value}, parent=msg)
        with contextlib.suppress(TransportError):
            await self.transport.send("stdin", reply)

    # -- requests -------------------------------------------------------------------

    def _register(
        self,
        msg: Message,
        on_output: OutputCallback | None = None,
        on_input: InputCallback | None = None,
        wants_idle: bool = True,
    ) -> PendingRequest:
        loop = asyncio.get_running_loop()
        req = PendingRequest(
            msg=msg,
            reply=loop.create_future(),
            on_output=on_output,
            on_input=on_input,
            last_activity=loop.time(),
            wants_idle=wants_idle,
        )
        self._pending[msg.msg_id] = req
        self._sent_ids[msg.msg_id] = None
        if len(self._sent_ids) > _SENT_IDS_KEPT:
            del self._sent_ids[next(iter(self._sent_ids))]
        return req

    async def _send(self, channel: Channel, msg: Message) -> None:
        if self.dead.is_set():
            raise KernelDied(self.dead_reason or "the kernel is dead")
        await self.transport.send(channel, msg)

    async def request(
        self,
        msg_type: str,
        content: dict[str, Any] | None = None,
        *,
        channel: Channel = "shell",
        timeout: float | None = None,
    ) -> Message:
        """Send a request and return its reply (idle is not awaited)."""
        msg = self.session.msg(msg_type, content or {})
        req = self._register(msg, wants_idle=False)
        try:
            if timeout is not None and self.transport.reconnecting:
                # A send waits while a dropped connection is reopened (for minutes):
                # a request with a timeout must not outwait it (Enter's is_complete).
                try:
                    await asyncio.wait_for(self._send(channel, msg), timeout)
                except asyncio.TimeoutError:
                    raise KernelTimeout(
                        f"not sent in {timeout} s: the connection is lost"
                    ) from None
            else:
                await self._send(channel, msg)
            return await self._await_reply(req, timeout)
        finally:
            self._pending.pop(msg.msg_id, None)

    async def _await_reply(self, req: PendingRequest, timeout: float | None) -> Message:
        # mark_dead() fails every pending reply with KernelDied and _send() refuses once
        # dead, so the reply future alone tells: no task waiting on `dead` per request.
        if timeout is None:
            return await req.reply
        # A timer that fails the future, rather than asyncio.wait_for: that wraps every
        # request in an extra future and a cancellation, a tenth of a fast round trip.
        timer = asyncio.get_running_loop().call_later(timeout, self._time_out, req, timeout)
        try:
            return await req.reply
        finally:
            timer.cancel()

    def _follow_restart(self) -> None:
        """Wait (in a task) for the kernel its server started in place of the dead one
        to answer, then tell ``on_restarted``; one wait at a time, for the latest."""
        if self._restart_follower is not None:
            # It waited for a kernel that died in turn: its kernel_info request just
            # failed with ReplyLost, which would end it with no wait for this kernel.
            self._restart_follower.cancel()

        sent = self._executes_sent
        self.restart_followed = True

        async def follow() -> None:
            try:
                await self.wait_for_ready(timeout=60.0)
            except KernelError:
                return  # dead or silent: the death watch tells that as any other
            self.restart_followed = False
            # A cell sent meanwhile ran on the new kernel: its reply set the count, and
            # a reset after it would undo that (and drop an input() of it still to come).
            if self.on_restarted is not None and self._executes_sent == sent:
                self.on_restarted()

        self._restart_follower = asyncio.create_task(follow(), name="kconsole-restarted")

    def _lose_replies(self, why: str) -> None:
        """The kernel that was to answer is gone (its server started another in its
        place): no reply will come to the requests waiting, which fail with ReplyLost
        (a cell waited for forever, else)."""
        for req in list(self._pending.values()):
            if not req.reply.done():
                what = req.msg.msg_type.replace("_request", "_reply")
                req.reply.set_exception(ReplyLost(f"{why}: no {what} will come"))
            req.idle.set()

    @staticmethod
    def _reply_lost(req: PendingRequest) -> None:
        if not req.reply.done():
            what = req.msg.msg_type.replace("_request", "_reply")
            req.reply.set_exception(
                ReplyLost(f"the kernel went idle but sent no {what} in {REPLY_GRACE:g} s")
            )

    @staticmethod
    def _time_out(req: PendingRequest, timeout: float) -> None:
        if not req.reply.done():
            what = req.msg.msg_type.replace("_request", "_reply")
            req.reply.set_exception(KernelTimeout(f"no {what} in {timeout} s"))

    async def execute(
        self,
        code: str,
        *,
        silent: bool = False,
        store_history: bool = True,
        allow_stdin: bool = True,
        stop_on_error: bool = True,
        user_expressions: dict[str, str] | None = None,
        on_output: OutputCallback | None = None,
        on_input: InputCallback | None = None,
        on_idle_lost: Callable[[], None] | None = None,
    ) -> Message:
        """Run ``code``; return the execute_reply once all of its output was routed.

        ``on_output`` gets every IOPub output message of this execution in order;
        ``on_input`` answers the kernel's input requests. Raises KernelDied, and
        ReplyLost when the kernel went idle and no reply came within REPLY_GRACE.
        """
        msg = self.session.msg(
            "execute_request",
            {
                "code": code,
                "silent": silent,
                "store_history": store_history,
                "user_expressions": user_expressions or {},
                "allow_stdin": allow_stdin,
                "stop_on_error": stop_on_error,
            },
        )
        req = self._register(msg, on_output=on_output, on_input=on_input)
        self._executes_sent += 1
        try:
            await self._send("shell", msg)
            reply = await self._await_reply(req, None)
            await self._await_idle(req, on_idle_lost)
            return reply
        finally:
            self._pending.pop(msg.msg_id, None)

    async def _await_idle(
        self, req: PendingRequest, on_idle_lost: Callable[[], None] | None
    ) -> None:
        loop = asyncio.get_running_loop()
        # Counted from the reply at the earliest: a cell silent for longer than the
        # grace sends its reply and idle together at the end, and nothing is missing.
        req.last_activity = max(req.last_activity, loop.time())
        while not req.idle.is_set():
            # The grace period restarts with each IOPub message of this request, so a
            # long flood still arriving is waited for, and a lost idle is not.
            remaining = req.last_activity + IDLE_GRACE - loop.time()
            if remaining <= 0:
                if on_idle_lost is not None:
                    on_idle_lost()
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(req.idle.wait(), remaining)
        if self.dead.is_set():
            raise KernelDied(self.dead_reason)

    async def kernel_info_request(self, timeout: float | None = None) -> dict[str, Any]:
        reply = await self.request("kernel_info_request", timeout=timeout)
        self.kernel_info = reply.content
        return reply.content

    async def wait_for_ready(self, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until the kernel answers kernel_info and IOPub delivers to us.

        Subscriptions propagate late, so a kernel_info reply alone does not mean IOPub
        output will reach us: require an IOPub message soon after a reply, else ask
        again (jupyter_client's rule). Raises KernelTimeout / KernelDied.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise KernelTimeout(await self._why_no_answer(timeout))
            wait = min(remaining, 2.0)
            try:
                # The send bounded too: a socket whose every handshake fails (Curve on
                # one side only) has no pipe to queue on, and its send waits forever.
                info = await asyncio.wait_for(self.kernel_info_request(timeout=wait), wait)
            except (KernelTimeout, asyncio.TimeoutError):
                continue
            if not self._iopub_seen.is_set():
                try:
                    await asyncio.wait_for(self._iopub_seen.wait(), 0.2)
                except asyncio.TimeoutError:
                    continue
            await self.transport.wait_channels(max(0.1, min(deadline - loop.time(), 5.0)))
            return info

    async def _why_no_answer(self, timeout: float) -> str:
        t = self.transport
        if t.rejected:
            return (
                f"the kernel's messages fail signature verification ({t.last_rejection}): "
                "the key or signature scheme is probably wrong"
            )
        if await t.is_alive(1.0):
            return (
                f"the kernel's heartbeat answers but it ignored our requests for {timeout:g} s: "
                "the key or signature scheme is probably wrong, or it is stuck"
            )
        return f"no answer from the kernel in {timeout:g} s: is it running, are the ports right?"

    async def complete(self, code: str, cursor_pos: int, timeout: float = 2.0) -> dict[str, Any]:
        reply = await self.request(
            "complete_request", {"code": code, "cursor_pos": cursor_pos}, timeout=timeout
        )
        return reply.content

    async def inspect(
        self, code: str, cursor_pos: int, detail_level: int = 0, timeout: float = 5.0
    ) -> dict[str, Any]:
        reply = await self.request(
            "inspect_request",
            {"code": code, "cursor_pos": cursor_pos, "detail_level": detail_level},
            timeout=timeout,
        )
        return reply.content

    async def is_complete(self, code: str, timeout: float = 1.0) -> dict[str, Any]:
        reply = await self.request("is_complete_request", {"code": code}, timeout=timeout)
        return reply.content

    async def history(self, timeout: float = 5.0, **content: Any) -> list[Any]:
        base = {"output": False, "raw": True, "hist_access_type": "tail", "n": 1000}
        base.update(content)
        reply = await self.request("history_request", base, timeout=timeout)
        return list(reply.content.get("history", []))

    async def interrupt_request(self, timeout: float = 5.0) -> Message:
        """Ask the kernel to interrupt itself (message mode, on control)."""
        return await self.request("interrupt_request", channel="control", timeout=timeout)

    async def shutdown_request(self, restart: bool = False, timeout: float = 5.0) -> None:
        """Ask the kernel to shut down (on control); a missing reply is not an error."""
        with contextlib.suppress(KernelError, TransportError):
            await self.request(
                "shutdown_request", {"restart": restart}, channel="control", timeout=timeout
            )
