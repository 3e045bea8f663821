"""SSHTunnel against a real OpenSSH server on a loopback port.

The test runs its own ``sshd`` (Debian's openssh-server) in the foreground with a
throwaway host key, a throwaway user key and an authorized_keys file in a temp dir,
then attaches to a local ipykernel through the tunnel, as ``kconsole attach
--existing FILE --ssh HOST`` does for a kernel on another machine. Skipped, saying
so, where sshd is not installed or we are not root (sshd must start as root).
"""

from __future__ import annotations

import asyncio
import os
import select
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kconsole.connection import ConnectionInfo
from kconsole.protocol import Message
from kconsole.remote import SSHTunnel, TunnelError

pytestmark = pytest.mark.timeout(60)

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SSH_OPTS = ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "LogLevel=ERROR"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )


class SSHServer:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = _free_port()
        _keygen(tmp / "host_key")
        _keygen(tmp / "id_user")
        _keygen(tmp / "id_stranger")
        (tmp / "authorized_keys").write_bytes((tmp / "id_user.pub").read_bytes())
        self.key = tmp / "id_user"
        self.user = os.environ.get("USER") or "root"
        config = tmp / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {tmp / 'host_key'}",
                    f"AuthorizedKeysFile {tmp / 'authorized_keys'}",
                    f"PidFile {tmp / 'sshd.pid'}",
                    "StrictModes no",
                    "UsePAM no",
                    "PermitRootLogin prohibit-password",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "AllowTcpForwarding yes",
                    "",
                ]
            )
        )
        # Debian's sshd refuses to start without its privilege separation directory,
        # which only the service unit creates.
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def wait_listening(self, timeout: float = 15.0) -> None:
        """Read sshd's log until it says it listens (or exits / times out)."""
        assert self.proc.stderr is not None
        deadline = time.monotonic() + timeout
        log = b""
        fd = self.proc.stderr.fileno()
        while b"Server listening" not in log:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"sshd did not start: {log.decode(errors='replace')}")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise RuntimeError(f"sshd exited: {log.decode(errors='replace')}")
                log += chunk

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    if not os.path.exists(SSHD):
        pytest.skip("sshd is not installed (apt-get install openssh-server)")
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("the OpenSSH client (ssh, ssh-keygen) is not installed")
    if os.geteuid() != 0:
        pytest.skip("starting sshd needs root")
    server = SSHServer(tmp_path_factory.mktemp("sshd"))
    try:
        server.wait_listening()
        yield server
    finally:
        server.stop()


def _wait_heartbeat(info: ConnectionInfo, proc: subprocess.Popen[bytes]) -> None:
    """Until the kernel answers a heartbeat (ipykernel binds every other socket first)."""
    from kconsole.zmq_transport import probe_heartbeat

    deadline = time.monotonic() + 30
    # Each probe waits up to 1 s for the answer: an event wait, not a sleep.
    while not probe_heartbeat(info, timeout=1.0):
        if proc.poll() is not None:
            raise RuntimeError(f"ipykernel exited with status {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError("ipykernel did not answer its heartbeat in 30 s")


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[ConnectionInfo]:
    """An ipykernel on this machine: the "remote" kernel behind the SSH server."""
    pytest.importorskip("ipykernel")
    info = ConnectionInfo.new(kernel_name="python3")
    path = info.write(tmp_path / "kernel.json")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ipykernel_launcher", "-f", str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_heartbeat(info, proc)
        yield info
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_attach_through_tunnel(sshd: SSHServer, kernel: ConnectionInfo) -> None:
    from kconsole.client import KernelClient
    from kconsole.zmq_transport import ZMQTransport

    host = f"{sshd.user}@127.0.0.1:{sshd.port}"
    with SSHTunnel(host, key=sshd.key, ssh_options=SSH_OPTS) as tunnel:
        local = tunnel.open(kernel)
        assert local.ip == "127.0.0.1" and local.key == kernel.key
        remote_ports = {kernel.port(c) for c in ("shell", "iopub", "stdin", "control", "hb")}
        local_ports = {local.port(c) for c in ("shell", "iopub", "stdin", "control", "hb")}
        assert len(local_ports) == 5 and not local_ports & remote_ports

        async def main() -> None:
            session = local.session()
            client = KernelClient(ZMQTransport(local, session), session)
            await client.start()
            try:
                await client.wait_for_ready(30)
                out: list[Message] = []
                reply = await client.execute("print('over ssh')", on_output=out.append)
                assert reply.content["status"] == "ok"
                texts = [m.content["text"] for m in out if m.msg_type == "stream"]
                assert texts == ["over ssh\n"]
                assert await client.transport.is_alive(5.0)
            finally:
                await client.close()

        asyncio.run(asyncio.wait_for(main(), 45))
        proc = tunnel.process
        assert proc is not None
    # Closed on exit.
    assert tunnel.process is None and proc.poll() is not None


def test_unreachable_host_is_one_line() -> None:
    if shutil.which("ssh") is None:
        pytest.skip("the OpenSSH client is not installed")
    port = _free_port()  # nothing listens there
    with pytest.raises(TunnelError) as e:
        SSHTunnel(f"127.0.0.1:{port}", ssh_options=SSH_OPTS, timeout=15).open(ConnectionInfo.new())
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("SSH to 127.0.0.1 failed: ")
    assert "Connection refused" in msg


def test_wrong_key_is_refused_without_prompting(sshd: SSHServer) -> None:
    stranger = sshd.tmp / "id_stranger"
    host = f"{sshd.user}@127.0.0.1:{sshd.port}"
    # IdentitiesOnly: use only the stranger key, not whatever an agent may offer.
    opts = [*SSH_OPTS, "IdentitiesOnly=yes"]
    with pytest.raises(TunnelError) as e:
        SSHTunnel(host, key=stranger, ssh_options=opts, timeout=15).open(ConnectionInfo.new())
    assert "\n" not in str(e.value)
    assert "Permission denied" in str(e.value)


def test_refused_forward_is_one_line(sshd: SSHServer, tmp_path: Path) -> None:
    # A connection file whose kernel is not running: sshd's connects are refused.
    dead = ConnectionInfo.new()
    host = f"{sshd.user}@127.0.0.1:{sshd.port}"
    tunnel = SSHTunnel(host, key=sshd.key, ssh_options=SSH_OPTS, timeout=15)
    with pytest.raises(TunnelError) as e:
        tunnel.open(dead)
    assert str(e.value) == (
        f"127.0.0.1 refused the forward to 127.0.0.1:{dead.shell_port} (shell): "
        "is the kernel running there?"
    )
    # The failed open cleaned up after itself.
    assert tunnel.process is None


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(TunnelError, match="SSH key not found"):
        SSHTunnel("somewhere", key=tmp_path / "nope").open(ConnectionInfo.new())


def test_attach_ssh_console_connection(sshd: SSHServer, kernel: ConnectionInfo) -> None:
    """What ``kconsole attach --existing FILE --ssh HOST --ssh-key K`` calls."""
    from kconsole.kernel_connection import ConsoleError
    from kconsole.remote.connect import attach_ssh

    host = f"{sshd.user}@127.0.0.1:{sshd.port}"

    async def main() -> None:
        conn = await attach_ssh(kernel, host, key=sshd.key, ssh_options=SSH_OPTS, timeout=30)
        tunnel = conn.control.tunnel  # type: ignore[attr-defined]
        proc = tunnel.process
        try:
            assert not conn.owns_kernel and conn.label.endswith("on 127.0.0.1")
            out: list[Message] = []
            await conn.client.execute("print(6 * 7)", on_output=out.append)
            assert [m.content["text"] for m in out if m.msg_type == "stream"] == ["42\n"]
        finally:
            await conn.close()
        # The tunnel went with the connection; the kernel did not.
        assert tunnel.process is None and proc.poll() is not None
        from kconsole.zmq_transport import probe_heartbeat

        assert probe_heartbeat(kernel, timeout=5.0)

        with pytest.raises(ConsoleError, match="^SSH to 127.0.0.1 failed: .*Connection refused"):
            await attach_ssh(kernel, f"127.0.0.1:{_free_port()}", ssh_options=SSH_OPTS)

    asyncio.run(asyncio.wait_for(main(), 50))


def test_attach_ssh_encrypted_kernel_and_mismatch(sshd: SSHServer, tmp_path: Path) -> None:
    """An encrypted kernel (the built-in one with Curve keys) through the tunnel: Curve
    on every forwarded socket; the same kernel without the keys is one line."""
    import dataclasses

    from kconsole.connection import new_curve_keypair
    from kconsole.kernel_connection import ConsoleError
    from kconsole.remote.connect import attach_ssh

    info = ConnectionInfo.new()
    info.curve_publickey, info.curve_secretkey = new_curve_keypair()
    path = info.write(tmp_path / "kernel.json")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kconsole.kernel", "-f", str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    host = f"{sshd.user}@127.0.0.1:{sshd.port}"

    async def main() -> None:
        conn = await attach_ssh(info, host, key=sshd.key, ssh_options=SSH_OPTS, timeout=30)
        try:
            out: list[Message] = []
            await conn.client.execute("print(6 * 7)", on_output=out.append)
            assert [m.content["text"] for m in out if m.msg_type == "stream"] == ["42\n"]
        finally:
            await conn.close()
        plain = dataclasses.replace(info, curve_publickey="", curve_secretkey="")
        with pytest.raises(ConsoleError, match="through .*: the kernel requires CurveZMQ"):
            await attach_ssh(plain, host, key=sshd.key, ssh_options=SSH_OPTS, timeout=30)

    try:
        _wait_heartbeat(info, proc)
        asyncio.run(asyncio.wait_for(main(), 50))
    finally:
        proc.kill()
        proc.wait()
