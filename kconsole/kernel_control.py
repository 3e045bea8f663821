"""How a console controls its kernel: one interface, one implementation per kind.

Who started a kernel, and how it is reached, decides what the console may do with it:

========================  ============  ===========  ===========  ==================
kind                      interrupt     restart      on exit      left-running hint
========================  ============  ===========  ===========  ==================
:class:`LocalControl`     SIGINT        by kconsole  shut down,   ``attach
(kconsole started it)     (or message)               or kept      --existing FILE``
:class:`AttachedControl`  message       no           left alone   none
(someone else's, zmq)
``ServerControl``         REST          REST         deleted if   ``attach --server
(Jupyter Server)                                     ours         URL --kernel-id``
``TunnelledControl``      message       no           tunnel       none
(zmq through ssh)                                    closed
========================  ============  ===========  ===========  ==================

(The last two live in :mod:`kconsole.remote.connect`, which only remote sessions
import.) A :class:`~kconsole.kernel_connection.KernelConnection` holds one control and
delegates to it: nothing above asks a transport what it is.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .client import KernelClient, KernelDied, KernelTimeout
from .errors import KconsoleError

if TYPE_CHECKING:
    from .launcher import KernelProcess

#: What the toolbar and banner call a connection.
ConnectionKind = Literal["local", "server", "attached"]

#: What is said of a kernel its Jupyter Server no longer has (its id is unknown there).
GONE_FROM_SERVER = (
    "the kernel is gone: the server no longer has it (shut down, culled as idle, "
    "or the server restarted)"
)
#: Gone while its server was restarting it after a death: the server gave up on it.
GAVE_UP_BY_SERVER = "the kernel is gone: it died, and its server could not restart it"


class ConsoleError(KconsoleError):
    """A user-facing failure of the connection to the kernel: printed as one line,
    exit status 1 (:attr:`~kconsole.errors.ExitStatus.ERROR`)."""


def kernel_label(
    kernel_info: Mapping[str, Any],
    *,
    name: str | None = None,
    where: str | None = None,
    version: bool = True,
) -> str:
    """How the banner and toolbar name a kernel: ``"ipykernel 7.4 (python3)"``, from its
    kernel_info; ``name`` (a kernelspec's display name) instead of the language,
    ``where`` it runs (``"... on http://host:8888"``), ``version`` off for the short
    form (``"ipykernel (python)"``)."""
    impl = str(kernel_info.get("implementation") or "kernel")
    ver = str(kernel_info.get("implementation_version") or "") if version else ""
    if name is None:
        name = str((kernel_info.get("language_info") or {}).get("name") or "")
    label = f"{impl} {ver}".strip() + (f" ({name})" if name else "")
    return label + (f" on {where}" if where else "")


class KernelControl(abc.ABC):
    """What a console can do with one kernel, by the means its kind offers.

    The control holds the console's :class:`KernelClient`, which stays the same object
    for the whole session (a port clash or a replacement kernel moves it to another
    transport, see :meth:`KernelClient.replace_transport`).
    """

    #: What the toolbar calls the connection (each implementation says).
    kind: ConnectionKind

    def __init__(self, client: KernelClient, *, owns_kernel: bool = False) -> None:
        self.client = client
        #: Shut the kernel down on exit (kconsole started it and was not told to keep it).
        self.owns_kernel = owns_kernel

    # -- what it can do ------------------------------------------------------------------

    @property
    def process(self) -> KernelProcess | None:
        """The local kernel process, when kconsole started it here."""
        return None

    @property
    def kernel_id(self) -> str | None:
        """The kernel's id on its server (None for a kernel not on a server)."""
        return None

    @property
    def can_restart(self) -> bool:
        """Whether :meth:`restart` can work now."""
        return False

    @property
    def can_keep(self) -> bool:
        """Whether ``exit(keep_kernel=True)`` can be honoured (see :attr:`keep_refusal`)."""
        return self.keep_refusal is None

    @property
    def keep_refusal(self) -> str | None:
        """Why the kernel cannot be kept past the console, as one line; None if it can."""
        return None

    def left_running_hint(self, *, kept: bool) -> str | None:
        """Once the console left a kernel running (``kept``: the user asked to), how to
        get back to it, as one line; None when there is nothing to attach to."""
        return None

    # -- the server's view (a kernel not on a server has none) ---------------------------

    @property
    def kernel_gone(self) -> bool:
        """The server answered that it no longer has this kernel."""
        return False

    @property
    def gone_reason(self) -> str:
        """What to say once :attr:`kernel_gone`, as one line."""
        return GONE_FROM_SERVER

    @property
    def unreachable(self) -> bool:
        """The connection gave up for good while the kernel may still be running."""
        return False

    @property
    def connection_lost(self) -> bool:
        """The connection dropped and is being reopened: requests wait."""
        return self.client.transport.reconnecting

    async def gone_from_server(self, timeout: float) -> bool:
        """Whether the server no longer has the kernel, asked for up to ``timeout`` s."""
        return False

    @property
    def can_replace(self) -> bool:
        """Whether a new kernel can be offered in place of a vanished one."""
        return False

    #: What :meth:`replace` does, as the offer to the user words it.
    replace_offer: str = "start a new kernel there"

    async def replace(self, timeout: float) -> None:
        """Start a new kernel in place of one the server lost, on the same client."""
        raise ConsoleError("no new kernel can be started in place of this one")

    # -- acting --------------------------------------------------------------------------

    @abc.abstractmethod
    async def interrupt(self) -> str:
        """Interrupt the running cell; what was done, in a few words."""

    async def _interrupt_request(self) -> str:
        """Interrupt by message: ``interrupt_request`` on the control channel."""
        try:
            await self.client.interrupt_request(timeout=3.0)
        except KernelTimeout:
            return "the kernel did not answer the interrupt request"
        except KernelDied:
            return "the kernel is dead"
        return "interrupt requested"

    @abc.abstractmethod
    async def restart(self, timeout: float) -> None:
        """Restart the kernel and wait (at most ``timeout`` s) until it answers again;
        ConsoleError (one line) when this kind cannot or it fails."""

    @abc.abstractmethod
    async def close(self, *, keep: bool, answered: bool) -> str | None:
        """Leave the kernel: shut it down unless ``keep`` (``answered``: it ever became
        ready). Returns why a shutdown that was due failed (the kernel may still be
        running), else None. The caller closes the client afterwards."""

    def release(self) -> None:  # noqa: B027 (optional hook)
        """What the control still holds once the client is closed (an SSH tunnel)."""

    async def wait_gone(self, timeout: float) -> bool:
        """Whether the kernel is gone within ``timeout`` s: its heartbeat fell silent
        twice in a row (the death watch is already stopped by the caller)."""
        client = self.client
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        missed = 0
        while missed < 2:
            remaining = deadline - loop.time()
            if remaining <= 0 or client.dead.is_set():
                return client.dead.is_set()
            if await client.transport.is_alive(min(1.0, remaining)):
                missed = 0
                await asyncio.sleep(min(0.2, max(0.0, deadline - loop.time())))  # probe period
            else:
                missed += 1
        return True


class AttachedControl(KernelControl):
    """A kernel someone else started, reached over zmq: interrupted by message, never
    restarted or shut down by this console (its owner may restart it: the client's
    watch takes it back)."""

    kind: ConnectionKind = "attached"

    async def interrupt(self) -> str:
        return await self._interrupt_request()

    async def restart(self, timeout: float) -> None:
        raise ConsoleError("cannot restart a kernel kconsole only attached to")

    async def close(self, *, keep: bool, answered: bool) -> str | None:
        return None  # someone else's: left running, whatever ``keep`` says


class LocalControl(KernelControl):
    """A kernel kconsole started as a local process: SIGINT (or the message its
    kernelspec asks for), restarted by the launcher on the same ports, shut down on exit
    unless kept, and then a reaper removes its files once it exits."""

    kind: ConnectionKind = "local"

    def __init__(self, client: KernelClient, process: KernelProcess, *, owns_kernel: bool) -> None:
        super().__init__(client, owns_kernel=owns_kernel)
        self._process = process

    @property
    def process(self) -> KernelProcess:
        return self._process

    @property
    def can_restart(self) -> bool:
        return True

    @property
    def keep_refusal(self) -> str | None:
        if self._process.outlive_console:
            return None
        # It watches our pid (JPY_PARENT_PID) and would die with us anyway: say so and
        # shut it down cleanly rather than leave it to be killed.
        return (
            "this kernel was started without --keep-kernel and stops with the "
            "console; use `kconsole start --keep-kernel` to keep it"
        )

    def left_running_hint(self, *, kept: bool) -> str | None:
        # Died, or failed to come up (then it was stopped): nothing is left running.
        # One left while still starting is left running all the same.
        if self.owns_kernel or not self._process.is_alive():
            return None
        return (
            "kernel left running; attach with "
            f"`kconsole attach --existing {self._process.connection_file}`"
        )

    async def interrupt(self) -> str:
        if self._process.interrupt():
            return "SIGINT sent to the kernel"
        return await self._interrupt_request()  # interrupt_mode "message", or not running

    async def restart(self, timeout: float) -> None:
        # The old process's exit is ours, not a death: no watch may see it, or the
        # new kernel could be marked dead after revive().
        from .launcher import KernelStartError

        client = self.client
        client.stop_monitor()
        started = False
        try:
            await self._process.restart(request_shutdown=self._shutdown_for_restart)
            started = True
        except KernelStartError as e:
            # The old kernel is stopped and no new one runs (its command is gone, the
            # runtime dir is full): the kernel is dead now, and the restart says why.
            client.transport.resume()
            client.mark_dead(f"it could not be started again: {e}")
            raise ConsoleError(f"cannot start the kernel again: {e}") from e
        finally:
            if started or not client.dead.is_set():
                client.transport.resume()
                client.revive()
                self.watch()
        await client.wait_for_ready(timeout)

    def watch(self) -> None:
        """Start the client's death watch: the heartbeat and the process's exit."""
        self.client.start_monitor(process_exit=self._process_exit)

    async def _shutdown_request(self, restart: bool = False) -> None:
        if not self.client.dead.is_set():
            await self.client.shutdown_request(restart=restart, timeout=3.0)

    async def _shutdown_for_restart(self) -> None:
        # The spec (and jupyter_client) say restart: true; a kernel may keep state for it.
        await self._shutdown_request(restart=True)

    async def _process_exit(self) -> str:
        await self._process.wait_exit(None)
        self.client.transport.suspend()  # nothing listens until a restart
        return self._process.exit_description()  # one line: "killed by SIGKILL"

    async def close(self, *, keep: bool, answered: bool) -> str | None:
        if not keep:
            # A kernel that never answered will not answer a shutdown_request either:
            # straight to SIGTERM rather than waiting out the request's timeout.
            polite = self._shutdown_request if answered else None
            await self._process.shutdown(request_shutdown=polite)
        elif self._process.is_alive():
            self._leave_reaper()
        else:
            # Died while the console ran: no watcher to come, and files that name a
            # dead kernel are of no use to anyone.
            self._process.cleanup()
        return None

    def _leave_reaper(self) -> None:
        """A kept kernel's files go when it exits, whoever stops it (see reaper)."""
        from .connection import CHANNELS, own_ipc_dir
        from .reaper import watch

        process = self._process
        info = process.connection
        files = [process.connection_file, process.log_file]
        if info.transport == "ipc":
            files += [Path(f"{info.ip}-{info.port(ch)}") for ch in CHANNELS]
        ipc_dir = own_ipc_dir(info)
        if process.pid is not None:
            dirs = [ipc_dir] if ipc_dir is not None else []
            watch(process.pid, files, dirs, pidfd=process.pidfd)

    async def wait_gone(self, timeout: float) -> bool:
        return await self._process.wait_exit(timeout)
