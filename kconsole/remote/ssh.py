"""Reach a kernel on another machine through the system ``ssh``: five local forwards.

Theory of this module
---------------------
``ssh -N -L 127.0.0.1:L:R_IP:R_PORT ...`` for each of the five ports gives a
:class:`~kconsole.connection.ConnectionInfo` equal to the remote one but pointing at
local ports, so the zmq transport needs to know nothing about SSH.

The rules it keeps:

* ``BatchMode=yes``: ssh never prompts (for a password, a passphrase or an unknown
  host key) from under the console. Keys, agents and ``~/.ssh/config`` all work,
  ControlMaster included: nothing of the user's configuration is switched off.
* ``ExitOnForwardFailure=yes``: a local port that cannot be bound makes ssh exit
  instead of running with a forward missing.
* "Up" means proven, not assumed: a forward counts once a TCP connection through it
  reaches the kernel's socket, which a zmq peer shows by sending its greeting (ZMTP
  starts with byte 0xFF). ssh closes a forwarded connection at once when the far
  side refused it, which is how a wrong port or address is told apart.
* Every failure is one :class:`TunnelError` line, taken from what ssh said.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import IO

from ..connection import CHANNELS, LOCALHOST, ConnectionInfo
from ..errors import KconsoleError

#: Addresses in a connection file that mean "this machine" to the kernel's host.
_WILDCARD = ("", "0.0.0.0", "*", "::", "localhost")

#: How much of ssh's stderr is kept for the failure message (the rest is read and
#: dropped): the last lines, each at most this long.
_STDERR_LINES = 20
_STDERR_LINE_CHARS = 300

#: ssh chatter that is never the reason for a failure.
_NOISE = re.compile(r"^(Warning: Permanently added|debug\d?:|Authenticated to|Pseudo-terminal)")


class TunnelError(KconsoleError):
    """The SSH tunnel could not be opened or broke; ``str(e)`` is one line."""


def parse_host_spec(spec: str) -> tuple[str | None, str, int | None]:
    """``[user@]host[:port]`` (host may be ``[v6addr]``) -> (user, host, port)."""
    spec = spec.strip()
    user: str | None = None
    if "@" in spec:
        user, _, spec = spec.rpartition("@")
        if not user:
            raise TunnelError("empty user name in the SSH host")
    port: int | None = None
    m = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", spec)
    if m:
        host, port_text = m.group(1), m.group(2)
    elif spec.count(":") == 1:
        host, port_text = spec.split(":")
    else:  # a bare name, or an unbracketed IPv6 address
        host, port_text = spec, None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise TunnelError(f"SSH port {port_text!r} is not a port number")
        port = int(port_text)
    if not host or host.startswith("-"):
        raise TunnelError(f"{spec!r} is not an SSH host")
    return user, host, port


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOCALHOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class SSHTunnel:
    """Forward a kernel's five ports from ``host_spec`` to local ports.

    ``key`` is an identity file (``ssh -i``); ``ssh_options`` are extra ``-o``
    settings (``"StrictHostKeyChecking=accept-new"``...). Use as a context manager,
    or call :meth:`open` and :meth:`close`.
    """

    def __init__(
        self,
        host_spec: str,
        key: str | Path | None = None,
        *,
        ssh_options: Sequence[str] = (),
        ssh_command: str = "ssh",
        timeout: float = 20.0,
    ) -> None:
        self.user, self.host, self.port = parse_host_spec(host_spec)
        self.host_spec = host_spec
        self.key = Path(key).expanduser() if key is not None else None
        self.ssh_options = list(ssh_options)
        self.ssh_command = ssh_command
        self.timeout = timeout
        self.process: subprocess.Popen[bytes] | None = None
        #: The forwarded connection info, once open.
        self.local: ConnectionInfo | None = None

    def __repr__(self) -> str:
        return f"SSHTunnel({self.host_spec!r})"

    def command(self, remote: ConnectionInfo, local_ports: Sequence[int]) -> list[str]:
        """The ssh command line forwarding ``remote``'s ports to ``local_ports``."""
        rip = remote.ip if remote.ip not in _WILDCARD else LOCALHOST
        if ":" in rip:
            rip = f"[{rip}]"
        exe = shutil.which(self.ssh_command) or self.ssh_command
        cmd = [
            exe,
            "-N",
            "-o", "BatchMode=yes",
            "-o", "ExitOnForwardFailure=yes",
            # A dead network is noticed within a minute instead of never.
            "-o", "ServerAliveInterval=15",
            "-o", "ServerAliveCountMax=4",
        ]  # fmt: skip
        if self.port is not None:
            cmd += ["-p", str(self.port)]
        if self.key is not None:
            cmd += ["-i", str(self.key)]
        for opt in self.ssh_options:
            cmd += ["-o", opt]
        for ch, lport in zip(CHANNELS, local_ports, strict=True):
            cmd += ["-L", f"{LOCALHOST}:{lport}:{rip}:{remote.port(ch)}"]
        cmd.append(f"{self.user}@{self.host}" if self.user else self.host)
        return cmd

    def open(self, remote: ConnectionInfo) -> ConnectionInfo:
        """Start ssh, wait until every forward reaches the kernel; the local info."""
        if self.process is not None:
            raise TunnelError("the SSH tunnel is already open")
        if remote.transport != "tcp":
            raise TunnelError(
                f"a kernel on {remote.transport} transport cannot be reached over SSH"
            )
        if self.key is not None and not self.key.is_file():
            raise TunnelError(f"SSH key not found: {self.key}")
        if shutil.which(self.ssh_command) is None:
            raise TunnelError(f"{self.ssh_command!r} was not found: install an OpenSSH client")
        ports = _free_ports(len(CHANNELS))
        local = replace(remote, ip=LOCALHOST, transport="tcp", extra=dict(remote.extra))
        for ch, p in zip(CHANNELS, ports, strict=True):
            setattr(local, f"{ch}_port", p)
        cmd = self.command(remote, ports)
        try:
            self.process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                # Its own process group: Ctrl-C in the console (meant for the kernel)
                # must not kill the tunnel.
                start_new_session=True,
            )
        except (OSError, ValueError) as e:
            raise TunnelError(f"cannot run {cmd[0]}: {getattr(e, 'strerror', None) or e}") from e
        # Drained all along: ssh blocks once a pipe nobody reads is full (64 KiB of
        # "debug1:" lines from a LogLevel in ~/.ssh/config), stalling every forward.
        self._stderr_tail: deque[str] = deque(maxlen=_STDERR_LINES)
        self._drainer = threading.Thread(
            target=_drain, args=(self.process.stderr, self._stderr_tail), daemon=True
        )
        self._drainer.start()
        try:
            self._wait_up(remote, local)
        except BaseException:
            self.close()
            raise
        self.local = local
        return local

    def _wait_up(self, remote: ConnectionInfo, local: ConnectionInfo) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.timeout
        pending = list(CHANNELS)
        while pending:
            if self.process.poll() is not None:
                raise TunnelError(self._why_exited())
            ch = pending[0]
            state = _probe(local.port(ch), max(0.05, min(1.0, deadline - time.monotonic())))
            if state == "up":
                pending.pop(0)
                continue
            if state == "refused":
                raise TunnelError(
                    f"{self.host} refused the forward to {remote.ip}:{remote.port(ch)} "
                    f"({ch}): is the kernel running there?"
                )
            if time.monotonic() > deadline:
                raise TunnelError(
                    f"the SSH tunnel to {self.host} was not up within {self.timeout:g} s"
                )
            # ssh is still authenticating: nothing listens yet. Waiting on the
            # process doubles as the pause between probes and notices an exit at once.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=0.05)

    def _why_exited(self) -> str:
        assert self.process is not None
        drainer = getattr(self, "_drainer", None)
        if drainer is not None:
            drainer.join(2.0)  # ssh has exited: the rest of its stderr is on its way
        lines = [
            ln.strip()
            for ln in list(getattr(self, "_stderr_tail", ()))
            if ln.strip() and not _NOISE.match(ln.strip())
        ]
        reason = lines[-1] if lines else f"ssh exited with status {self.process.returncode}"
        return f"SSH to {self.host} failed: {reason}"

    def check(self) -> None:
        """Raise TunnelError if ssh has exited since the tunnel opened."""
        if self.process is not None and self.process.poll() is not None:
            raise TunnelError(self._why_exited())

    def close(self) -> None:
        """Stop ssh (terminate, then kill); idempotent."""
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()

    def __enter__(self) -> SSHTunnel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _drain(stream: IO[bytes] | None, tail: deque[str]) -> None:
    """Read ``stream`` to its end, keeping only its last lines (each shortened), so
    memory stays bounded however much ssh writes."""
    if stream is None:
        return
    partial = b""
    with contextlib.suppress(OSError, ValueError):  # closed under us by close()
        while chunk := os.read(stream.fileno(), 65536):
            *lines, partial = (partial + chunk).split(b"\n")
            tail.extend(_line(ln) for ln in lines[-_STDERR_LINES:])
            partial = partial[-_STDERR_LINE_CHARS:]
    if partial.strip():
        tail.append(_line(partial))


def _line(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").rstrip("\r")
    # Printable only: the reason lands on the user's terminal.
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= _STDERR_LINE_CHARS else text[: _STDERR_LINE_CHARS - 1] + "\u2026"


def _probe(port: int, timeout: float) -> str:
    """``"up"`` (the far end answered), ``"refused"`` (ssh closed the connection: the
    far end refused it) or ``"down"`` (nothing listens locally yet)."""
    try:
        s = socket.create_connection((LOCALHOST, port), timeout=timeout)
    except OSError:
        return "down"
    with s:
        try:
            data = s.recv(1)
        except TimeoutError:
            # Connected and silent: not a zmq peer, but something is there.
            return "up"
        except OSError:
            return "refused"
        return "up" if data else "refused"
