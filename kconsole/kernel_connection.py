"""One console's connection to one kernel: starting or attaching, interrupting,
restarting and shutting down, whatever the transport.

The REPL and script mode both drive a :class:`KernelConnection`; the CLI builds it.
What differs between kinds of kernel (started here, attached, on a server, through a
tunnel) is its :class:`~kconsole.kernel_control.KernelControl`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .client import KernelClient, KernelTimeout
from .connection import ConnectionInfo
from .kernel_control import (
    GONE_FROM_SERVER,
    AttachedControl,
    ConnectionKind,
    ConsoleError,
    KernelControl,
    LocalControl,
    kernel_label,
)
from .protocol import Session
from .transport import Transport, TransportError

if TYPE_CHECKING:
    from .kernelspec import KernelSpec
    from .launcher import KernelProcess

__all__ = [
    "GONE_FROM_SERVER",
    "SELF_EXIT_WAIT",
    "STALE_PROBE",
    "ConsoleError",
    "KernelConnection",
    "attach_zmq",
    "connect_client",
    "exit_command",
    "start_local",
]

#: How long an attach waits for one heartbeat before calling the kernel absent.
STALE_PROBE = 3.0


#: How many times a start is retried when a port was taken between picking and binding.
PORT_CLASH_ATTEMPTS = 3

#: How long the console waits to see whether a kernel that answered ``exit`` with an
#: ``ask_exit`` payload ends itself (ipykernel does, 0.1 s later; the heartbeat monitor
#: of an attached kernel needs up to some 3 s to notice).
SELF_EXIT_WAIT = 5.0

# `exit`, `quit`, `exit()`, `quit(keep_kernel=True)`, `exit(True)`: the whole cell.
# `exit(0)`/`quit(1)` too: Python's exit takes a status, and an IPython kernel stops
# itself for `exit(0)` as for `exit()`. A trailing `# comment` is still the command:
# sent, `exit() # done` would stop the kernel and `exit # bye` is IPython's `exit(# bye)`.
_EXIT_COMMAND = re.compile(
    r"\s*(?:exit|quit)\s*(?:\(\s*(?:keep_kernel\s*=\s*)?(True|False|[-+]?\d+)?\s*\))?\s*;?"
    r"\s*(?:#[^\n]*)?\s*"
)


def exit_command(code: str, language_info: dict[str, Any]) -> bool | None:
    """For a Python kernel: if ``code`` is only ``exit``/``quit`` (called or not, with
    ``keep_kernel`` or a status), whether it asks to keep the kernel; None for any other
    cell or language.

    The console handles these itself instead of sending them: ipykernel answers ``exit``
    by stopping its own process, whoever started it, so a kernel kconsole only attached
    to, or was told to keep, would end with the console. Leaving is the console's
    decision (see :meth:`KernelConnection.close`).
    """
    if str(language_info.get("name") or "").lower() != "python":
        return None
    m = _EXIT_COMMAND.fullmatch(code)
    if m is None:
        return None
    return m.group(1) == "True"


@dataclass
class KernelConnection:
    """A kernel client plus the control of its kernel (:mod:`kconsole.kernel_control`).

    ``client`` is the same object for the whole session: a port clash during a start or
    a replacement kernel moves it to another transport, callbacks and all.
    """

    client: KernelClient
    #: How this kernel is interrupted, restarted and left (its kind decides).
    control: KernelControl
    spec: KernelSpec | None = None
    connection_file: Path | None = None
    #: kconsole just started this kernel: it has no history and no execution count yet.
    fresh: bool = False
    #: A description for the banner: "ipykernel 7.4 (python3)" etc.
    label: str = ""
    #: While a kernel kconsole started is still coming up: the task waiting for it
    #: (see :func:`start_local` and :meth:`wait_ready`); None for one already ready.
    starting: asyncio.Task[None] | None = None
    #: How long a restart waits for the kernel (the console's ``--timeout``).
    timeout: float = 60.0
    #: Why :meth:`close` could not shut down a kernel it should have (the server did
    #: not answer): the kernel may still be running, and the user must be told.
    shutdown_error: str | None = None

    @property
    def process(self) -> KernelProcess | None:
        """The local process when kconsole started the kernel (None otherwise)."""
        return self.control.process

    @property
    def owns_kernel(self) -> bool:
        """Shut the kernel down on exit (kconsole started it and was not told to keep it)."""
        return self.control.owns_kernel

    @property
    def kind(self) -> ConnectionKind:
        """``local``, ``server`` or ``attached``: what the toolbar calls the connection."""
        return self.control.kind

    @property
    def kernel_id(self) -> str | None:
        """The kernel's id on its server (None for a kernel not on a server)."""
        return self.control.kernel_id

    @property
    def kernel_gone(self) -> bool:
        """The server answered that it no longer has this kernel: it cannot be
        restarted, only replaced (:meth:`replace_kernel`)."""
        return self.control.kernel_gone

    @property
    def unreachable(self) -> bool:
        """The connection gave up for good (the server refused us, or stayed away) while
        the server did not say the kernel is gone: it may well still be running."""
        return self.control.unreachable

    @property
    def connection_lost(self) -> bool:
        """The connection to the kernel dropped and is being reopened: requests wait."""
        return self.control.connection_lost

    async def gone_from_server(self, timeout: float = 3.0) -> bool:
        """Whether the server no longer has the kernel, asked for up to ``timeout`` s
        (False at once for a kernel not on a server, or one the server still has or
        cannot tell of). A server interrupts a kernel it shuts down, so a cell's
        KeyboardInterrupt or lost reply may come just before the kernel is gone."""
        return await self.control.gone_from_server(timeout)

    @property
    def can_replace(self) -> bool:
        """Whether a new kernel can be offered in place of a vanished one."""
        return self.control.can_replace

    @property
    def replace_offer(self) -> str:
        """What :meth:`replace_kernel` does, as the offer to the user words it."""
        return self.control.replace_offer

    async def replace_kernel(self) -> None:
        """Start a new kernel in place of one the server lost, on the same client.
        Raises ConsoleError (one line) if that fails."""
        await self.control.replace(self.timeout)
        self.fresh = True

    @property
    def ready(self) -> bool:
        """Whether the kernel has answered (always true for an attached kernel)."""
        s = self.starting
        return s is None or (s.done() and not s.cancelled() and s.exception() is None)

    async def wait_ready(self) -> None:
        """Wait until the kernel answers; raises ConsoleError if it never will (died
        during start, did not answer in time). Returns at once once it is ready."""
        if self.starting is not None:
            # Shielded: a waiter giving up (Ctrl-C at the prompt) must not stop the start.
            await asyncio.shield(self.starting)

    @property
    def language_info(self) -> dict[str, Any]:
        return dict(self.client.kernel_info.get("language_info") or {})

    async def interrupt(self) -> str:
        """Interrupt the running cell by the best means this kernel offers."""
        return await self.control.interrupt()

    @property
    def can_restart(self) -> bool:
        """Whether :meth:`restart` can work: kconsole started the kernel, or its server
        restarts it, while the connection to that server still stands."""
        return self.control.can_restart

    async def restart(self, timeout: float | None = None) -> None:
        """Restart the kernel (same ports) and wait until it answers again (at most
        ``timeout`` s, default :attr:`timeout`)."""
        timeout = self.timeout if timeout is None else timeout
        if self.connection_lost:
            # The restart would wait for the reconnect first, for minutes and unbounded
            # by the timeout: say so now instead.
            raise ConsoleError("the connection to the server is lost; restart once it is back")
        await self.control.restart(timeout)

    @property
    def ends_itself_on_exit(self) -> bool:
        """Whether the kernel stops its own process on ``exit`` (ipykernel does, unless
        ``exit(keep_kernel=True)``; kconsole's built-in kernel only asks the console)."""
        return self.client.kernel_info.get("implementation") == "ipython"

    async def wait_gone(self, timeout: float) -> bool:
        """Whether the kernel is gone within ``timeout`` s: its process exited (one
        kconsole started), else its heartbeat fell silent twice in a row.

        Only on the way out: the death watch is stopped first, so that an exit the
        kernel chose is not announced as a death ("Press Enter to restart it")."""
        self.client.stop_monitor()
        return await self.control.wait_gone(timeout)

    async def close(self, *, keep_kernel: bool | None = None) -> None:
        """Leave: shut the kernel down if we own it (unless keep_kernel), close sockets."""
        keep = (not self.owns_kernel) if keep_kernel is None else keep_kernel
        answered = self.ready
        # The process is about to exit on our request: no watch may call that a death
        # ("the kernel died" printed on the way out).
        self.client.stop_monitor()
        if self.starting is not None and not self.starting.done():
            self.starting.cancel()
            with contextlib.suppress(BaseException):
                await self.starting
        try:
            error = await self.control.close(keep=keep, answered=answered)
            if error is not None:
                self.shutdown_error = error
        finally:
            try:
                await self.client.close()
            finally:
                self.control.release()


async def connect_client(transport: Transport, session: Session, timeout: float) -> KernelClient:
    """Start a client on ``transport`` and wait until the kernel is ready."""
    client = KernelClient(transport, session)
    await client.start()
    try:
        await client.wait_for_ready(timeout)
    except BaseException:
        await client.close()
        raise
    return client


async def attach_zmq(
    info: ConnectionInfo, timeout: float, connection_file: Path | None = None
) -> KernelConnection:
    """Attach to a running kernel over zmq (never shuts it down)."""
    from .zmq_transport import ZMQTransport, probe_kernel

    session = info.session()
    # A stale connection file (its kernel long gone) is the usual reason for silence:
    # one heartbeat probe tells within seconds instead of after the whole timeout. It
    # also tells an encryption mismatch (Curve on one side only) from silence.
    alive, why = await asyncio.to_thread(probe_kernel, info, min(timeout, STALE_PROBE))
    if why is not None:
        raise ConsoleError(f"cannot attach to the kernel: {why}")
    if not alive:
        where = connection_file or info.url("hb")
        raise ConsoleError(
            f"no kernel answers at {where} (heartbeat silent for {min(timeout, STALE_PROBE):g} s):"
            " is it running, or is the connection file stale?"
        )
    try:
        client = await connect_client(ZMQTransport(info, session), session, timeout)
    except (KernelTimeout, TransportError) as e:
        raise ConsoleError(f"cannot attach to the kernel: {e}") from e
    # Its owner may restart it (revive). Its heartbeat is the only sign of its death, so
    # one slow echo must not be called one: three misses in a row (about 3.5 s).
    client.start_monitor(misses=3, revive=True)
    return KernelConnection(
        client=client,
        control=AttachedControl(client),
        connection_file=connection_file,
        label=kernel_label(client.kernel_info),
        timeout=timeout,
    )


async def start_local(
    spec: KernelSpec,
    *,
    ip: str,
    transport: str,
    timeout: float,
    keep_kernel: bool,
    process: KernelProcess | None = None,
    wait: bool = True,
    encrypt: str = "off",
) -> KernelConnection:
    """Start a kernel from ``spec`` (or take ``process``, already spawned by
    :func:`~kconsole.launcher.spawn`) and attach to it, retrying on a port clash.

    With ``wait`` (the default) it returns once the kernel is ready, and raises
    ConsoleError (the kernel cleaned up) if it never is. Without, it returns as soon as
    the client is connected, :attr:`KernelConnection.starting` waiting for the kernel,
    so that the REPL can show its prompt while the kernel boots (most of a `start`).
    """
    from .launcher import KernelStartError, spawn

    if process is None:
        try:
            process = spawn(
                spec, ip=ip, transport=transport, outlive_console=keep_kernel, encrypt=encrypt
            )
        except KernelStartError as e:
            raise ConsoleError(str(e)) from e
    client = KernelClient(*_zmq_transport(process.connection))
    try:
        await client.start()
    except TransportError as e:  # an address zmq rejects (an ipc path too long)
        process.cleanup()
        raise ConsoleError(f"kernel {spec.name!r} could not be started: {e}") from e
    control = LocalControl(client, process, owns_kernel=not keep_kernel)
    conn = KernelConnection(
        client=client,
        control=control,
        spec=spec,
        connection_file=process.connection_file,
        fresh=True,
        timeout=timeout,
    )
    conn.starting = asyncio.ensure_future(_come_up_or_fail(conn, control, timeout))
    if wait:
        try:
            await conn.wait_ready()
        except BaseException:
            await asyncio.shield(conn.close())
            raise
    return conn


#: How soon the console retries connecting to a kernel it started (zmq: 100 ms). The
#: console connects first and the kernel binds some 0.1 s later: at zmq's default the
#: last retry before the bind can leave up to 0.1 s unused. Locally a refused connect
#: costs microseconds.
LOCAL_RECONNECT_MS = 10


def _zmq_transport(info: ConnectionInfo) -> tuple[Transport, Session]:
    """A transport to the kernel kconsole started at ``info``, and its session."""
    # Imported once the kernel is spawned: pyzmq's ~10 ms then overlap its start-up.
    from .zmq_transport import ZMQTransport

    session = info.session()
    return ZMQTransport(info, session, reconnect_ms=LOCAL_RECONNECT_MS), session


async def _come_up_or_fail(conn: KernelConnection, control: LocalControl, timeout: float) -> None:
    """:func:`_come_up`, whose every failure is a ConsoleError (what the REPL reports
    as one line) with the client closed and the kernel process stopped."""
    try:
        await _come_up(conn, control, timeout)
    except ConsoleError:
        with contextlib.suppress(Exception):
            await conn.client.close()
        raise
    except Exception as e:  # a socket that cannot connect, a file that cannot be written
        assert conn.spec is not None
        with contextlib.suppress(Exception):
            await conn.client.close()
        with contextlib.suppress(Exception):
            control.process.cleanup()
        raise ConsoleError(f"kernel {conn.spec.name!r} could not be started: {e}") from e


async def _come_up(conn: KernelConnection, control: LocalControl, timeout: float) -> None:
    """Wait for a kernel kconsole started to answer, restarting it on fresh ports when
    it lost a port race (the same client, on a new transport); on failure the process
    is cleaned up (the caller closes the client)."""
    from .launcher import KernelStartError

    proc, spec, client = control.process, conn.spec, conn.client
    assert spec is not None
    for attempt in range(PORT_CLASH_ATTEMPTS):
        if attempt > 0:
            try:
                proc.restart_on_new_ports()
            except KernelStartError as e:
                raise ConsoleError(str(e)) from e
            await client.replace_transport(*_zmq_transport(proc.connection))
        ready = asyncio.ensure_future(client.wait_for_ready(timeout))
        exited = asyncio.ensure_future(proc.wait_exit(None))
        waits = {ready, exited}
        ignored: asyncio.Future[str] | None = None
        if proc.connection.encrypted:
            ignored = asyncio.ensure_future(_keys_ignored(proc.connection))
            waits.add(ignored)
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            exited.cancel()
            if ignored is not None:
                ignored.cancel()
            if not ready.done():
                ready.cancel()
                with contextlib.suppress(BaseException):
                    await ready
        if not ready.cancelled() and ready.exception() is None:
            conn.label = kernel_label(client.kernel_info, name=spec.display_name)
            control.watch()
            return
        # These ports are lost (another process may own them now): stop reaching them.
        await client.transport.close()
        if ignored is not None and ignored.done() and not ignored.cancelled():
            await proc.shutdown()
            raise ConsoleError(f"kernel {spec.name!r} did not become ready: {ignored.result()}")
        if not ready.cancelled() and isinstance(ready.exception(), KernelTimeout):
            why = await _encryption_mismatch(proc.connection)
            await proc.shutdown()
            if why is not None:
                raise ConsoleError(f"kernel {spec.name!r} did not become ready: {why}")
            raise ConsoleError(f"kernel {spec.name!r} did not become ready: {ready.exception()}")
        if not proc.died_of_port_clash():
            raise _died_during_start(proc, spec)
    proc.cleanup()
    raise ConsoleError(
        f"kernel {spec.name!r} could not bind its ports after {PORT_CLASH_ATTEMPTS} tries"
    )


def _died_during_start(proc: KernelProcess, spec: KernelSpec) -> ConsoleError:
    """The one line for a kernel that exited before it answered (its files removed)."""
    from .launcher import describe_exit

    why = _last_line(proc.stderr_tail(15))
    status = proc.returncode
    proc.cleanup()
    how = f"exit status {status}" if status is None or status >= 0 else ""
    msg = f"kernel {spec.name!r} died during start ({how or describe_exit(status)})"
    if why:
        msg += f": {why}"
    endpoint = proc.connection.url("shell")
    if proc.connection.transport == "ipc" and len(endpoint) > _SHORT_IPC:
        # xeus-python says only "Invalid argument" for a socket path it finds long.
        msg += (
            f" (its ipc socket path is {len(endpoint) - 6} characters long: some "
            "kernels take at most 25; set a shorter TMPDIR or use --transport tcp)"
        )
    return ConsoleError(msg)


_KEYS_IGNORED = (
    "its kernelspec declares CurveZMQ support (supported_encryption) but the "
    "kernel ignored the keys and runs plain: start it with --encrypt off"
)


async def _encryption_mismatch(info: ConnectionInfo) -> str | None:
    """For a kernel started with Curve keys that never answered: why, when it is that
    the kernel ignored them (a kernelspec that declares Curve support it lacks)."""
    if not info.encrypted:
        return None
    from .zmq_transport import KERNEL_IS_PLAIN, probe_kernel

    _, why = await asyncio.to_thread(probe_kernel, info, 1.0)
    if why == KERNEL_IS_PLAIN:
        return _KEYS_IGNORED
    return why


#: How often a starting encrypted kernel's heartbeat is probed for ignored keys.
_KEYS_PROBE = 0.5


async def _keys_ignored(info: ConnectionInfo) -> str:
    """Returns (the one line) once a kernel started with Curve keys is seen to run
    plain; waits forever while it is silent or answers with Curve, so that the start
    learns it within a second of the kernel binding instead of after its timeout. Only
    a plain answer counts: the keys are our own, nothing else is a mismatch."""
    from .zmq_transport import KERNEL_IS_PLAIN, probe_kernel

    while True:
        await asyncio.sleep(_KEYS_PROBE)  # most kernels take longer to bind
        answered, why = await asyncio.to_thread(probe_kernel, info, _KEYS_PROBE)
        if why == KERNEL_IS_PLAIN:
            return _KEYS_IGNORED
        if answered:  # Curve works: nothing more to watch for
            await asyncio.Event().wait()


#: The longest ipc endpoint (``ipc://`` and the socket path) every kernel binds:
#: xeus-python fails beyond it.
_SHORT_IPC = 6 + 25

#: The longest excerpt of a dead kernel's output quoted in the start error.
_WHY_EXCERPT = 200


def _last_line(output: str) -> str:
    """The last line a kernel printed before dying during start (a traceback's last line
    is its exception), printable and short: the error stays one line however much the
    kernel wrote, and whatever control characters it wrote."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    last = "".join(ch if ch.isprintable() else "?" for ch in lines[-1]) if lines else ""
    return last if len(last) <= _WHY_EXCERPT else last[: _WHY_EXCERPT - 1] + "\u2026"
