"""One console's connection to one kernel: starting or attaching, interrupting,
restarting and shutting down, whatever the transport.

The REPL and script mode both drive a :class:`KernelConnection`; the CLI builds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .client import KernelClient, KernelDied, KernelTimeout
from .connection import ConnectionInfo
from .protocol import Session
from .transport import Transport, TransportError

if TYPE_CHECKING:
    from .kernelspec import KernelSpec
    from .launcher import KernelProcess


class ConsoleError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


#: How long an attach waits for one heartbeat before calling the kernel absent.
STALE_PROBE = 3.0

#: The exit status when the kernel died under the console (documented in the man page).
EXIT_KERNEL_DIED = 3

#: What is said of a kernel its Jupyter Server no longer has (its id is unknown there).
GONE_FROM_SERVER = (
    "the kernel is gone: the server no longer has it (shut down, culled as idle, "
    "or the server restarted)"
)

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


def payloads_of(reply_content: dict[str, Any]) -> list[dict[str, Any]]:
    """The payloads of an execute_reply a console can act on: a kernel may send
    anything (a non-list, items that are not dicts); those are dropped, not obeyed."""
    payload = reply_content.get("payload")
    if not isinstance(payload, list):
        return []
    return [p for p in payload if isinstance(p, dict)]


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
    """A kernel client plus what kconsole knows about how to control the kernel."""

    client: KernelClient
    #: The local process when kconsole started the kernel (None when attached).
    process: KernelProcess | None = None
    spec: KernelSpec | None = None
    connection_file: Path | None = None
    #: Shut the kernel down on exit (kconsole started it and was not told to keep it).
    owns_kernel: bool = False
    #: kconsole just started this kernel: it has no history and no execution count yet.
    fresh: bool = False
    #: A description for the banner: "ipykernel 7.4 (python3)" etc.
    label: str = ""
    #: While a kernel kconsole started is still coming up: the task waiting for it
    #: (see :func:`start_local` and :meth:`wait_ready`); None for one already ready.
    starting: asyncio.Task[None] | None = None
    #: How long a restart waits for the kernel (the console's ``--timeout``).
    timeout: float = 60.0
    #: Starts a new kernel where this one was, once the server no longer has it (a
    #: server restart forgets its kernels); returns its client, ready. None: no offer
    #: (an attached kernel is someone else's to replace).
    start_another: Callable[[], Awaitable[KernelClient]] | None = None
    #: What :attr:`start_another` does, as the offer to the user words it.
    replace_offer: str = "start a new kernel there"
    #: Why :meth:`close` could not shut down a kernel it should have (the server did
    #: not answer): the kernel may still be running, and the user must be told.
    shutdown_error: str | None = None

    @property
    def kernel_gone(self) -> bool:
        """The server answered that it no longer has this kernel: it cannot be
        restarted, only replaced (:meth:`replace_kernel`)."""
        return bool(getattr(self.client.transport, "kernel_gone", False))

    @property
    def unreachable(self) -> bool:
        """The connection gave up for good (the server refused us, or stayed away) while
        the server did not say the kernel is gone: it may well still be running."""
        return bool(getattr(self.client.transport, "finished", False)) and not self.kernel_gone

    @property
    def connection_lost(self) -> bool:
        """The connection to the kernel dropped and is being reopened: requests wait."""
        return bool(getattr(self.client.transport, "reconnecting", False))

    async def gone_from_server(self, timeout: float = 3.0) -> bool:
        """Whether the server no longer has the kernel, asked for up to ``timeout`` s
        (False at once for a kernel not on a server, or one the server still has or
        cannot tell of). A server interrupts a kernel it shuts down, so a cell's
        KeyboardInterrupt or lost reply may come just before the kernel is gone."""
        transport = self.client.transport
        if not hasattr(transport, "kernel_gone"):
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.kernel_gone and loop.time() < deadline:
            if not await transport.is_alive(1.0) and not self.kernel_gone:
                return False  # dead or refused: not gone
            await asyncio.sleep(0.2)
        return self.kernel_gone

    @property
    def can_replace(self) -> bool:
        """Whether a new kernel can be offered in place of a vanished one."""
        return self.start_another is not None and self.kernel_gone

    async def replace_kernel(self) -> None:
        """Start a new kernel in place of one the server lost; the old client is
        closed. Raises ConsoleError (one line) if that fails."""
        assert self.start_another is not None
        old = self.client
        self.client = await self.start_another()
        self.fresh = True
        with contextlib.suppress(Exception):
            await old.close()

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
        transport = self.client.transport
        if transport.handles_interrupt:
            await transport.interrupt()
            return "interrupt sent"
        if self.process is not None and self.process.interrupt():
            return "SIGINT sent to the kernel"
        try:
            await self.client.interrupt_request(timeout=3.0)
        except KernelTimeout:
            return "the kernel did not answer the interrupt request"
        except KernelDied:
            return "the kernel is dead"
        return "interrupt requested"

    @property
    def can_restart(self) -> bool:
        """Whether :meth:`restart` can work: kconsole started the kernel, or its server
        restarts it, while the connection to that server still stands."""
        if self.process is not None:
            return True
        if self.kernel_gone:
            return False  # the server has no kernel of that id to restart
        transport = self.client.transport
        return hasattr(transport, "restart") and not getattr(transport, "finished", False)

    async def restart(self, timeout: float | None = None) -> None:
        """Restart the kernel (same ports) and wait until it answers again (at most
        ``timeout`` s, default :attr:`timeout`)."""
        timeout = self.timeout if timeout is None else timeout
        if self.connection_lost:
            # The restart would wait for the reconnect first, for minutes and unbounded
            # by the timeout: say so now instead.
            raise ConsoleError("the connection to the server is lost; restart once it is back")
        if self.process is not None:
            # The old process's exit is ours, not a death: no watch may see it, or the
            # new kernel could be marked dead after revive().
            from .launcher import KernelStartError

            self.client.stop_monitor()
            started = False
            try:
                await self.process.restart(request_shutdown=self._shutdown_for_restart)
                started = True
            except KernelStartError as e:
                # The old kernel is stopped and no new one runs (its command is gone, the
                # runtime dir is full): the kernel is dead now, and the restart says why.
                self.client.transport.resume()
                self.client.mark_dead(f"it could not be started again: {e}")
                raise ConsoleError(f"cannot start the kernel again: {e}") from None
            finally:
                if started or not self.client.dead.is_set():
                    self.client.transport.resume()
                    self.client.revive()
                    self.client.start_monitor(process_exit=self._process_exit)
        elif hasattr(self.client.transport, "restart"):
            await self.client.transport.restart()
            self.client.revive()
        else:
            raise ConsoleError("cannot restart a kernel kconsole only attached to")
        await self.client.wait_for_ready(timeout)

    async def _shutdown_request(self, restart: bool = False) -> None:
        if not self.client.dead.is_set():
            await self.client.shutdown_request(restart=restart, timeout=3.0)

    async def _shutdown_for_restart(self) -> None:
        # The spec (and jupyter_client) say restart: true; a kernel may keep state for it.
        await self._shutdown_request(restart=True)

    async def _process_exit(self) -> str:
        assert self.process is not None
        await self.process.wait_exit(None)
        self.client.transport.suspend()  # nothing listens until a restart
        return self.process.exit_description()  # one line: "killed by SIGKILL"

    @property
    def ends_itself_on_exit(self) -> bool:
        """Whether the kernel stops its own process on ``exit`` (ipykernel does, unless
        ``exit(keep_kernel=True)``; kconsole's built-in kernel only asks the console)."""
        return self.client.kernel_info.get("implementation") == "ipython"

    @staticmethod
    def _leave_reaper(process: KernelProcess) -> None:
        """A kept kernel's files go when it exits, whoever stops it (see reaper)."""
        from .connection import CHANNELS, own_ipc_dir
        from .reaper import watch

        info = process.connection
        files = [process.connection_file, process.log_file]
        if info.transport == "ipc":
            files += [Path(f"{info.ip}-{info.port(ch)}") for ch in CHANNELS]
        ipc_dir = own_ipc_dir(info)
        if process.pid is not None:
            dirs = [ipc_dir] if ipc_dir is not None else []
            watch(process.pid, files, dirs, pidfd=process.pidfd)

    async def wait_gone(self, timeout: float) -> bool:
        """Whether the kernel is gone within ``timeout`` s: its process exited (one
        kconsole started), else its heartbeat fell silent twice in a row.

        Only on the way out: the death watch is stopped first, so that an exit the
        kernel chose is not announced as a death ("Press Enter to restart it")."""
        self.client.stop_monitor()
        if self.process is not None:
            return await self.process.wait_exit(timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        missed = 0
        while missed < 2:
            remaining = deadline - loop.time()
            if remaining <= 0 or self.client.dead.is_set():
                return self.client.dead.is_set()
            if await self.client.transport.is_alive(min(1.0, remaining)):
                missed = 0
                await asyncio.sleep(min(0.2, max(0.0, deadline - loop.time())))  # probe period
            else:
                missed += 1
        return True

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
            if self.process is not None and not keep:
                # A kernel that never answered will not answer a shutdown_request either:
                # straight to SIGTERM rather than waiting out the request's timeout.
                polite = self._shutdown_request if answered else None
                await self.process.shutdown(request_shutdown=polite)
            elif self.process is not None and self.process.is_alive():
                self._leave_reaper(self.process)
            elif not keep and hasattr(self.client.transport, "delete_kernel"):
                try:
                    await self.client.transport.delete_kernel()
                except Exception as e:
                    if getattr(e, "status", None) != 404:  # already gone is what we wanted
                        self.shutdown_error = str(e) or type(e).__name__
        finally:
            await self.client.close()


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
        raise ConsoleError(f"cannot attach to the kernel: {e}") from None
    # Its owner may restart it (revive). Its heartbeat is the only sign of its death, so
    # one slow echo must not be called one: three misses in a row (about 3.5 s).
    client.start_monitor(misses=3, revive=True)
    return KernelConnection(
        client=client, connection_file=connection_file, label=_label(client), timeout=timeout
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
            raise ConsoleError(str(e)) from None
    try:
        client = await _zmq_client(process.connection)
    except TransportError as e:  # an address zmq rejects (an ipc path too long)
        process.cleanup()
        raise ConsoleError(f"kernel {spec.name!r} could not be started: {e}") from None
    conn = KernelConnection(
        client=client,
        process=process,
        spec=spec,
        connection_file=process.connection_file,
        owns_kernel=not keep_kernel,
        fresh=True,
        timeout=timeout,
    )
    conn.starting = asyncio.ensure_future(_come_up_or_fail(conn, timeout))
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


async def _zmq_client(info: ConnectionInfo) -> KernelClient:
    # Imported once the kernel is spawned: pyzmq's ~10 ms then overlap its start-up.
    from .zmq_transport import ZMQTransport

    session = info.session()
    client = KernelClient(ZMQTransport(info, session, reconnect_ms=LOCAL_RECONNECT_MS), session)
    await client.start()
    return client


async def _come_up_or_fail(conn: KernelConnection, timeout: float) -> None:
    """:func:`_come_up`, whose every failure is a ConsoleError (what the REPL reports
    as one line) with the kernel process stopped."""
    try:
        await _come_up(conn, timeout)
    except ConsoleError:
        raise
    except Exception as e:  # a socket that cannot connect, a file that cannot be written
        assert conn.process is not None and conn.spec is not None
        with contextlib.suppress(Exception):
            await conn.client.close()
        with contextlib.suppress(Exception):
            conn.process.cleanup()
        raise ConsoleError(f"kernel {conn.spec.name!r} could not be started: {e}") from None


async def _come_up(conn: KernelConnection, timeout: float) -> None:
    """Wait for a kernel kconsole started to answer, restarting it on fresh ports when
    it lost a port race; on failure the client is closed and the process cleaned up."""
    from .launcher import KernelStartError, describe_exit

    proc, spec = conn.process, conn.spec
    assert proc is not None and spec is not None
    for attempt in range(PORT_CLASH_ATTEMPTS):
        if attempt > 0:
            try:
                proc.restart_on_new_ports()
            except KernelStartError as e:
                raise ConsoleError(str(e)) from None
            conn.client = await _zmq_client(proc.connection)
        client = conn.client
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
            conn.label = _label(client, spec)
            client.start_monitor(process_exit=conn._process_exit)
            return
        await client.close()
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
            raise ConsoleError(msg)
    proc.cleanup()
    raise ConsoleError(
        f"kernel {spec.name!r} could not bind its ports after {PORT_CLASH_ATTEMPTS} tries"
    )


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


def _label(client: KernelClient, spec: KernelSpec | None = None) -> str:
    info = client.kernel_info
    impl = info.get("implementation") or "kernel"
    ver = info.get("implementation_version") or ""
    lang = (info.get("language_info") or {}).get("name", "")
    name = spec.display_name if spec is not None else lang
    return f"{impl} {ver}".strip() + (f" ({name})" if name else "")
