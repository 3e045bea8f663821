"""Starting, signalling and stopping one local kernel process.

Theory
------
A :class:`KernelProcess` owns exactly one kernel process, its connection file and its log
file, and keeps these invariants:

- The kernel runs in its own session, so its pid is also its process group id. Signals
  (interrupt, terminate, kill) go to the whole group: a kernel's own children (a
  ``subprocess.Popen`` in a cell) are interrupted and stopped with it.
- While the kernel is running, its pid/pgid cannot be reused. The process is only ever
  reaped in :meth:`KernelProcess._reap`, which first SIGKILLs what is left of the group:
  until the leader is reaped the group id is still provably ours, so no stranger is hit.
  Exit is detected without reaping through a pidfd (Linux 5.3+), falling back to
  ``Popen.wait`` in a worker thread elsewhere (no leftover-sweep there).
- A kernel is never orphaned: every started kernel is in a registry that an ``atexit``
  handler empties by SIGKILLing each group and removing its files. If kconsole is killed
  outright, ``JPY_PARENT_PID`` makes ipykernel (and kconsole's kernel) exit on their own.
  The one exception is ``outlive_console=True`` (``--keep-kernel``): no registry entry and
  no ``JPY_PARENT_PID``, since such a kernel is meant to survive kconsole. Do not call
  :meth:`KernelProcess.cleanup` for one: it kills a running kernel.
- Kernel stdout/stderr go to ``kernel-<id>.log`` next to the connection file, never to the
  user's terminal; :meth:`KernelProcess.stderr_tail` quotes it in error messages.

Readiness is not this module's business: the client knows when the kernel answers.

Port clashes
------------
Free ports are picked by binding to port 0 and closing, so another process can take one
before the kernel binds it; the kernel then dies with "Address already in use". The caller
that waits for readiness handles it::

    kp = KernelProcess(spec, ConnectionInfo.new())
    kp.start()
    for _ in range(3):
        if await client.wait_for_ready(...):       # the client's own readiness check
            break
        if kp.is_alive() or not kp.died_of_port_clash():
            raise KernelStartError(f"kernel died: {kp.stderr_tail()}")
        kp.restart_on_new_ports()                  # fresh ports, new file, new process
        client.reconnect(kp.connection)            # the client must use the new ports
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import re
import select
import signal
import subprocess
import threading
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .connection import (
    CHANNELS,
    NO_CURVE_TO_START,
    ConnectionInfo,
    curve_available,
    new_connection_file_path,
    new_curve_keypair,
    own_ipc_dir,
)
from .errors import KconsoleError
from .kernelspec import BUILTIN_KERNEL_NAME, KernelSpec, connection_kernel_name

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger(__name__)

#: How long to wait after SIGTERM before SIGKILL.
TERM_GRACE = 2.0
_PORT_CLASH = "Address already in use"
_TAIL_BYTES = 64 * 1024
#: The longest excerpt of the kernel's output quoted in a one-line note.
_NOTE_EXCERPT = 40
# A last line of output that says why a process ended: an exception line
# ("MemoryError: ...", "KeyboardInterrupt"), a C-level fatal error, or an error word.
_EXPLAINS = re.compile(
    r"^(?:[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)\b"
    r"|Fatal Python error|Segmentation fault|Aborted|Killed|panic|fatal|error)",
    re.IGNORECASE,
)
# A traitlets-style log line of an error: its message is worth quoting.
_LOGGED_ERROR = re.compile(r"^\[[^\]]+\]\s+(?:ERROR|CRITICAL)\s*\|\s*(\S.*)$")
# Log lines that explain nothing (ipykernel's start-up chatter), however they end.
_LOG_LINE = re.compile(r"^(?:\[[A-Z][^\]]*\]|NOTE:|To connect|\d+\.\d+s - )")
#: A kernelspec's Python kernel gets this unless its env or the user's sets it:
#: debugpy (imported by ipykernel) otherwise prints a four-line "Debugger warning:
#: frozen modules" into the console on every start and restart.
_QUIET_DEBUGGER = ("PYDEVD_DISABLE_FILE_VALIDATION", "1")


class KernelStartError(KconsoleError):
    """A kernel process could not be started (the message is one user-facing line)."""


RequestShutdown = Callable[[], Awaitable[None]]


class KernelProcess:
    """One local kernel process started from a kernelspec.

    ``connection`` is used as given (its ports are where the kernel will listen) and is
    written to ``connection_file`` (default: a fresh ``kernel-<id>.json`` in the runtime
    dir) by :meth:`start`. ``extra_env`` is added on top of the spec's environment.
    """

    def __init__(
        self,
        spec: KernelSpec,
        connection: ConnectionInfo,
        connection_file: Path | None = None,
        *,
        extra_env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        outlive_console: bool = False,
    ) -> None:
        self.spec = spec
        #: True for `kconsole start --keep-kernel`: the kernel is meant to survive us, so
        #: neither the parent-pid watch nor the atexit orphan guard applies to it.
        self.outlive_console = outlive_console
        self.connection = connection
        self.connection_file = Path(connection_file or new_connection_file_path())
        self.log_file = self.connection_file.with_name(self.connection_file.stem + ".log")
        self.extra_env = dict(extra_env or {})
        self.cwd = cwd
        self._proc: subprocess.Popen[bytes] | None = None
        self._pidfd: int | None = None

    def __repr__(self) -> str:
        state = "running" if self.is_alive() else f"exited {self.returncode}"
        return f"<KernelProcess {self.spec.name!r} pid={self.pid} {state}>"

    # -- starting ---------------------------------------------------------------------

    def start(self) -> None:
        """Write the connection file (0600) and start the kernel process.

        Raises :class:`KernelStartError` if the command cannot be run. Does not wait for
        the kernel to be ready: the client detects that.
        """
        if self.is_alive():
            raise RuntimeError(f"kernel {self.spec.name!r} is already running (pid {self.pid})")
        self._reap()
        if not self.connection.kernel_name and self.spec.name != BUILTIN_KERNEL_NAME:
            self.connection.kernel_name = self.spec.name
        try:
            self.connection.write(self.connection_file)
        except OSError as e:  # runtime dir unwritable, missing, not a dir, disk full
            raise KernelStartError(
                f"kernel {self.spec.name!r} could not start: cannot write the connection "
                f"file {self.connection_file}: {e.strerror or e}"
            ) from e
        cmd = self.spec.command(self.connection_file, extra=self.connection.to_dict())
        env = self.spec.environment()
        env.update(self.extra_env)
        if _is_python_kernel(self.spec, cmd):
            env.setdefault(*_QUIET_DEBUGGER)
        # ipykernel (and kconsole's kernel) poll for this pid and exit when it is gone.
        if not self.outlive_console:
            env["JPY_PARENT_PID"] = str(os.getpid())
        try:
            # Truncated on each start, so the tail and the port-clash check describe this run.
            log_fd = os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as e:
            self._remove_files()
            raise KernelStartError(
                f"kernel {self.spec.name!r} could not start: cannot write {self.log_file}: "
                f"{e.strerror}"
            ) from e
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.cwd,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as e:
            self._remove_files()
            raise KernelStartError(self._start_error(cmd, e)) from e
        except ValueError as e:  # a NUL byte in argv or env (kernelspecs are checked)
            self._remove_files()
            raise KernelStartError(f"kernel {self.spec.name!r} could not start: {e}") from e
        finally:
            os.close(log_fd)
        self._proc = proc
        self._pidfd = _open_pidfd(proc.pid)
        if not self.outlive_console:
            _register(self)
        log.debug("started kernel %r pid %d: %s", self.spec.name, proc.pid, cmd)

    def _start_error(self, cmd: list[str], e: OSError) -> str:
        what = f"kernel {self.spec.name!r} could not start"
        # Popen reports a failed chdir as FileNotFoundError too, naming the directory.
        if (
            self.cwd is not None
            and e.filename is not None
            and (os.fspath(e.filename) == os.fspath(self.cwd))
        ):
            return f"{what}: working directory {os.fspath(self.cwd)!r}: {e.strerror}"
        if isinstance(e, FileNotFoundError):
            return f"{what}: command {cmd[0]!r} not found"
        if isinstance(e, PermissionError):
            return f"{what}: command {cmd[0]!r} is not executable (permission denied)"
        return f"{what}: command {cmd[0]!r}: {e.strerror or e}"

    # -- state ------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The kernel's pid (also its process group id), None before :meth:`start`."""
        return self._proc.pid if self._proc is not None else None

    @property
    def pidfd(self) -> int | None:
        """A pidfd of the kernel's process while kconsole holds one (Linux), else None:
        unlike the pid it can never come to name another process."""
        return self._pidfd

    @property
    def returncode(self) -> int | None:
        """The exit status once the kernel has exited (negative: killed by that signal)."""
        if self._proc is not None and self._proc.returncode is None and self._has_exited():
            self._reap()
        return self._proc.returncode if self._proc is not None else None

    def is_alive(self) -> bool:
        """True while the kernel process is running."""
        return self._proc is not None and not self._has_exited()

    def _has_exited(self) -> bool:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return True
        if self._pidfd is not None:
            return _pidfd_ready(self._pidfd, 0)
        return proc.poll() is not None

    def _reap(self) -> None:
        """Collect an exited leader, first killing what is left of its process group
        (while the leader is an unreaped zombie the group id cannot have been reused)."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            self._close_pidfd()
            return
        if self._pidfd is not None and _pidfd_ready(self._pidfd, 0):
            self._signal_group(signal.SIGKILL)
        proc.wait()
        self._close_pidfd()

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    # -- signals ----------------------------------------------------------------------

    def _signal_group(self, signum: int) -> bool:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return False  # reaped: the group id may belong to someone else by now
        try:
            os.killpg(proc.pid, signum)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def interrupt(self) -> bool:
        """Interrupt the running cell.

        Returns True if handled here (signal mode: SIGINT to the kernel's process group).
        Returns False when the spec's ``interrupt_mode`` is ``"message"`` (the caller must
        then send ``interrupt_request`` on the control channel) or the kernel is not running.
        """
        if self.spec.interrupt_mode == "message" or not self.is_alive():
            return False
        return self._signal_group(signal.SIGINT)

    def kill(self) -> None:
        """SIGKILL the kernel's process group now and reap it (synchronous)."""
        if self._signal_group(signal.SIGKILL):
            self.wait(5.0)
        self._reap_if_exited()

    def _reap_if_exited(self) -> None:
        if self._proc is not None and self._has_exited():
            self._reap()

    # -- waiting ----------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the kernel exits; False if still running after ``timeout`` s."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return True
        if self._pidfd is not None:
            if not _pidfd_ready(self._pidfd, timeout):
                return False
        else:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
        self._reap()
        return True

    async def wait_exit(self, timeout: float | None = None) -> bool:
        """Wait without blocking the event loop until the kernel exits; False on timeout.

        Uses a pidfd watched by the event loop where available (no polling), else
        ``Popen.wait`` in the default executor.
        """
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return True
        if self._has_exited():
            self._reap()
            return True
        import asyncio  # here, not at the top: `start` spawns before asyncio is loaded

        loop = asyncio.get_running_loop()
        if self._pidfd is None:
            return await loop.run_in_executor(None, self.wait, timeout)
        # A private dup per waiter: concurrent waiters cannot replace each other's reader,
        # and closing it never leaves a stale fd in the loop's selector.
        fd = os.dup(self._pidfd)
        exited: asyncio.Future[None] = loop.create_future()

        def on_exit() -> None:
            if not exited.done():
                exited.set_result(None)

        loop.add_reader(fd, on_exit)
        try:
            await asyncio.wait_for(exited, timeout)
        except asyncio.TimeoutError:
            return False
        finally:
            loop.remove_reader(fd)
            os.close(fd)
        self._reap()
        return True

    # -- stopping ---------------------------------------------------------------------

    async def _stop(self, request_shutdown: RequestShutdown | None, timeout: float) -> None:
        if self._proc is None:
            return
        if request_shutdown is not None and self.is_alive():
            import asyncio

            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            try:
                await asyncio.wait_for(request_shutdown(), timeout)
            except Exception as e:  # a dead or deaf kernel: go straight to signals
                log.debug("shutdown request to kernel %r failed: %r", self.spec.name, e)
            else:
                await self.wait_exit(max(0.0, deadline - loop.time()))
        if self.is_alive():
            self._signal_group(signal.SIGTERM)
            await self.wait_exit(TERM_GRACE)
        if self.is_alive():
            self._signal_group(signal.SIGKILL)
            if not await self.wait_exit(5.0):
                log.warning("kernel %r pid %s survived SIGKILL", self.spec.name, self.pid)
        self._reap_if_exited()

    async def shutdown(
        self, request_shutdown: RequestShutdown | None = None, timeout: float = 5.0
    ) -> None:
        """Stop the kernel and remove its connection file and log.

        ``request_shutdown`` is the polite way (the client sends ``shutdown_request`` on
        control); after ``timeout`` s the group gets SIGTERM, then SIGKILL 2 s later.
        """
        try:
            await self._stop(request_shutdown, timeout)
        finally:
            self.cleanup()

    async def restart(
        self, request_shutdown: RequestShutdown | None = None, timeout: float = 5.0
    ) -> None:
        """Stop the kernel as :meth:`shutdown` does, keeping its connection file, and start
        a new process on the same ports and key (so connected clients just carry on)."""
        await self._stop(request_shutdown, timeout)
        self.start()

    def restart_on_new_ports(self) -> None:
        """After a port clash: pick fresh ports, rewrite the connection file and start a
        new process. A still-running kernel is killed first. ``self.connection`` is updated
        in place; the client must reconnect to the new ports."""
        self.kill()
        self.connection.assign_free_ports()
        self.start()

    def died_of_port_clash(self) -> bool:
        """True if the kernel has exited and its log says a port was already taken."""
        if self._proc is None or self.is_alive():
            return False
        return _PORT_CLASH in self._read_log_tail()

    def exit_description(self) -> str:
        """How the kernel ended, in a few words on one line (see :func:`describe_exit`)."""
        return describe_exit(self.returncode, self.stderr_tail(5))

    def stderr_tail(self, lines: int = 15) -> str:
        """The last ``lines`` lines of the kernel's output (stdout and stderr), for errors."""
        text = self._read_log_tail().rstrip()
        return "\n".join(text.splitlines()[-lines:]) if lines > 0 else ""

    def _read_log_tail(self) -> str:
        try:
            with open(self.log_file, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - _TAIL_BYTES))
                return f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def cleanup(self) -> None:
        """Remove the connection file, the log and any ipc socket files; idempotent.

        Kills the kernel first if it is still running: files of a running kernel are
        never removed from under it.
        """
        if self.is_alive():
            self.kill()
        self._reap_if_exited()
        self._close_pidfd()
        self._remove_files()
        _unregister(self)

    def _remove_files(self) -> None:
        files = [self.connection_file, self.log_file]
        if self.connection.transport == "ipc":
            files += [Path(f"{self.connection.ip}-{self.connection.port(ch)}") for ch in CHANNELS]
        for f in files:
            try:
                f.unlink()
            except FileNotFoundError:
                pass
            except OSError as e:  # a read-only or vanished runtime dir: not worth a crash
                log.debug("cannot remove %s: %s", f, e)
        ipc_dir = own_ipc_dir(self.connection)
        if ipc_dir is not None:
            with contextlib.suppress(OSError):  # not empty: a kernel's own files stay
                ipc_dir.rmdir()


def describe_exit(returncode: int | None, output_tail: str = "") -> str:
    """``"killed by SIGKILL"``, ``"exited with status 1"``: what happened to a kernel
    process, short enough for a one-line note.

    The last line of ``output_tail`` (the kernel's own output) is added only when it
    says why (an exception or fatal error), shortened; log chatter such as ipykernel's
    "Kernel is running over TCP without encryption" explains nothing and is left out.
    """
    if returncode is None:
        what = "exited"
    elif returncode < 0:
        try:
            what = f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            what = f"killed by signal {-returncode}"
    else:
        what = f"exited with status {returncode}"
    lines = [ln.strip() for ln in output_tail.splitlines() if ln.strip()]
    last = lines[-1] if lines else ""
    logged = _LOGGED_ERROR.match(last)
    if logged:  # "[IPKernelApp] ERROR | <why>": the why explains, the log prefix not
        last = logged.group(1)
    if last and (logged or (not _LOG_LINE.match(last) and _EXPLAINS.match(last))):
        # Printable text only: this goes onto the user's terminal.
        last = "".join(ch if ch.isprintable() else "?" for ch in last)
        if len(last) > _NOTE_EXCERPT:
            last = last[: _NOTE_EXCERPT - 1].rstrip() + "\u2026"
        what += f": {last}"
    return what


def _is_python_kernel(spec: KernelSpec, cmd: list[str]) -> bool:
    """A kernel run by a Python interpreter (ipykernel and friends), by its spec's
    language or its command."""
    if spec.language.lower() == "python":
        return True
    return any("ipykernel" in a for a in cmd) or bool(
        re.fullmatch(r"python[\d.]*(?:\.exe)?", Path(cmd[0]).name, re.IGNORECASE)
    )


# -- pidfd helpers -----------------------------------------------------------------------


def _open_pidfd(pid: int) -> int | None:
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        return int(pidfd_open(pid))
    except OSError:  # kernel too old (ENOSYS) or sandboxed: fall back to Popen.wait
        return None


def _pidfd_ready(fd: int, timeout: float | None) -> bool:
    """A pidfd is readable once the process has exited (before it is reaped)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    ms = None if timeout is None else max(0, math.ceil(timeout * 1000))
    return bool(poller.poll(ms))


# -- the orphan guard ---------------------------------------------------------------------

_live: set[KernelProcess] = set()
_live_lock = threading.Lock()
_atexit_registered = False


def _register(kp: KernelProcess) -> None:
    global _atexit_registered
    with _live_lock:
        _live.add(kp)
        if not _atexit_registered:
            atexit.register(_kill_live_kernels)
            _atexit_registered = True


def _unregister(kp: KernelProcess) -> None:
    with _live_lock:
        _live.discard(kp)


def _kill_live_kernels() -> None:
    """atexit: no kernel outlives kconsole unless it was shut down properly."""
    with _live_lock:
        kernels = list(_live)
    for kp in kernels:
        try:
            kp.kill()
            kp.cleanup()
        except Exception:  # never let one kernel stop the others being killed
            log.exception("could not clean up kernel %r", kp.spec.name)


#: ``kconsole start --encrypt`` values.
ENCRYPT_POLICIES = ("auto", "required", "off")


def curve_keys_for(spec: KernelSpec, policy: str) -> tuple[str, str] | None:
    """The CurveZMQ keypair (public, secret) to start ``spec``'s kernel with under
    ``policy``, or None for a plain kernel: jupyter_client 8.10's transport_encryption.

    ``auto`` encrypts when the kernelspec declares support (``supported_encryption``)
    and this pyzmq can (a pyzmq without Curve then starts the kernel plain: the
    default must not make kconsole unusable there); ``required`` raises
    :class:`KernelStartError` when either is missing; ``off`` never encrypts.
    """
    if policy == "off" or (policy == "auto" and not spec.supports_curve):
        return None
    if not curve_available():
        if policy == "required":
            raise KernelStartError(f"--encrypt required: {NO_CURVE_TO_START}")
        return None
    if policy == "required" and not spec.supports_curve:
        raise KernelStartError(
            f"--encrypt required: kernelspec {spec.name!r} does not declare 'curve' in "
            "metadata.supported_encryption (its kernel would ignore the keys)"
        )
    return new_curve_keypair()


def spawn(
    spec: KernelSpec,
    *,
    ip: str,
    transport: str,
    outlive_console: bool,
    encrypt: str = "off",
    extra_env: Mapping[str, str] | None = None,
) -> KernelProcess:
    """Pick ports and start ``spec``'s kernel right away (before the console has loaded
    its event loop: the kernel's start-up then overlaps the console's own), with a
    CurveZMQ keypair in its connection file as ``encrypt`` (:func:`curve_keys_for`)
    says.

    Raises :class:`KernelStartError` (one line) for an unusable address or command.
    """
    keys = curve_keys_for(spec, encrypt)
    try:
        info = ConnectionInfo.new(
            ip=ip, transport=transport, kernel_name=connection_kernel_name(spec)
        )
    except OSError as e:  # an address that is not ours, or no address at all
        raise KernelStartError(f"cannot listen on --ip {ip}: {e.strerror or e}") from e
    except (ValueError, TypeError, UnicodeError) as e:  # a name the resolver rejects
        raise KernelStartError(f"cannot listen on --ip {ip[:60]!r}: {e}") from e
    if keys is not None:
        info.curve_publickey, info.curve_secretkey = keys
    proc = KernelProcess(spec, info, outlive_console=outlive_console, extra_env=extra_env)
    proc.start()
    return proc
