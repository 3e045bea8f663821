"""What ssh prints to stderr cannot stall the tunnel or fill memory: a stand-in `ssh`
(a real process, given as ssh_command) that writes a lot before it fails."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from kconsole.connection import ConnectionInfo
from kconsole.remote import SSHTunnel, TunnelError


def fake_ssh(tmp_path: Path, body: str) -> Path:
    exe = tmp_path / "fake-ssh"
    exe.write_text(f"#!{sys.executable}\nimport sys, time\n{body}\n")
    exe.chmod(0o755)
    return exe


@pytest.mark.timeout(30)
def test_a_chatty_ssh_that_fails_is_reported_with_its_last_line(tmp_path: Path) -> None:
    # 1 MB of debug output (more than a pipe holds), then the reason, then exit 255.
    exe = fake_ssh(
        tmp_path,
        "for i in range(20000): sys.stderr.write(f'debug1: chatter {i:050d}\\n')\n"
        "sys.stderr.write('x' * 300000)\n"  # a line without end, longer than any kept
        "sys.stderr.write('\\nssh: connect to host far port 22: No route to host\\n')\n"
        "sys.exit(255)",
    )
    t0 = time.monotonic()
    with pytest.raises(TunnelError) as e:
        SSHTunnel("far", ssh_command=str(exe), timeout=15).open(ConnectionInfo.new())
    assert time.monotonic() - t0 < 10
    assert str(e.value) == "SSH to far failed: ssh: connect to host far port 22: No route to host"


@pytest.mark.timeout(30)
def test_an_ssh_that_cannot_be_run_is_one_line(tmp_path: Path) -> None:
    exe = tmp_path / "not-executable-ssh"
    exe.write_text("#!/nonexistent/interpreter\n")
    exe.chmod(0o755)
    with pytest.raises(TunnelError) as e:
        SSHTunnel("far", ssh_command=str(exe), timeout=5).open(ConnectionInfo.new())
    assert "\n" not in str(e.value) and str(exe) in str(e.value)
    assert os.path.exists(exe)
