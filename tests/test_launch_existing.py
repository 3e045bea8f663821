"""`attach --existing` with no value: the newest connection file whose kernel answers,
not the newest file. A console killed with -9 leaves its kernel's file behind (its
kernel exits on its own), newer than the file of the kernel the user means."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kconsole import paths

KCONSOLE = [sys.executable, "-m", "kconsole"]


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def write_stale(name: str, newer_than: Path, ports: list[int] | None = None) -> Path:
    """A connection file of a kernel that is gone: ports nobody listens on, newer mtime."""
    shell, iopub, stdin, control, hb = ports or free_ports(5)
    f = paths.runtime_dir() / f"kernel-{name}.json"
    f.write_text(
        json.dumps(
            {
                "shell_port": shell,
                "iopub_port": iopub,
                "stdin_port": stdin,
                "control_port": control,
                "hb_port": hb,
                "ip": "127.0.0.1",
                "key": "0123456789abcdef",
                "transport": "tcp",
                "signature_scheme": "hmac-sha256",
                "kernel_name": "python3",
            }
        )
    )
    t = newer_than.stat().st_mtime + 10
    os.utime(f, (t, t))
    return f


def attach_existing(code: str, *extra: str) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    p = subprocess.run(
        [*KCONSOLE, "attach", "--existing", "--timeout", "20", *extra],
        input=code,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return p, time.monotonic() - t0


@pytest.mark.timeout(90)
def test_attach_existing_skips_a_newer_stale_file(shared_kernel: tuple[Any, Any]) -> None:
    km, _ = shared_kernel
    live = Path(km.connection_file)
    stale = write_stale("stale-after-kill-9", newer_than=live)
    p, elapsed = attach_existing("import os; print('joined', os.getpid())\n")
    assert p.returncode == 0, p.stderr
    assert f"joined {km.provisioner.pid}" in p.stdout, p.stdout
    assert elapsed < 10, elapsed  # not the 20 s --timeout spent on the stale one
    # One line says which file was chosen and that a stale one was skipped.
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert live.name in lines[0] and "skipped 1" in lines[0], lines[0]
    assert stale.exists()  # someone else's file: never removed


@pytest.mark.timeout(90)
def test_attach_existing_skips_a_port_that_accepts_but_never_answers(
    shared_kernel: tuple[Any, Any],
) -> None:
    # Its ports were taken by something that is not a kernel: the probe times out,
    # and the whole choice still takes a bounded, short time.
    km, _ = shared_kernel
    live = Path(km.connection_file)
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    try:
        ports = free_ports(4) + [squatter.getsockname()[1]]
        write_stale("squatted", newer_than=live, ports=ports)
        p, elapsed = attach_existing("print('joined')\n")
    finally:
        squatter.close()
    assert p.returncode == 0, p.stderr
    assert "joined" in p.stdout
    assert elapsed < 10, elapsed
    assert live.name in p.stderr and "skipped 1" in p.stderr, p.stderr


@pytest.mark.timeout(60)
def test_attach_existing_with_only_stale_files_says_so_in_one_line(jupyter_dirs: Path) -> None:
    anchor = paths.runtime_dir() / "anchor"
    anchor.write_text("")
    write_stale("gone-1", newer_than=anchor)
    newest = write_stale("gone-2", newer_than=anchor)
    os.utime(newest, (time.time() + 60, time.time() + 60))
    p, elapsed = attach_existing("print(1)\n", "--timeout", "2")
    assert p.returncode != 0
    assert "Traceback" not in p.stderr
    assert elapsed < 15, elapsed
    first = p.stderr.splitlines()[0]
    assert "answer" in first and newest.name in first, p.stderr


@pytest.mark.timeout(90)
def test_kernels_probes_all_files_at_once(shared_kernel: tuple[Any, Any]) -> None:
    # Eight files whose ports accept but never answer: probed one after the other they
    # cost eight probe timeouts; at once, one.
    km, _ = shared_kernel
    live = Path(km.connection_file)
    squatters = []
    try:
        for i in range(8):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen()
            squatters.append(s)
            write_stale(f"squat-{i}", newer_than=live, ports=[*free_ports(4), s.getsockname()[1]])
        t0 = time.monotonic()
        p = subprocess.run([*KCONSOLE, "kernels"], capture_output=True, text=True, timeout=60)
        elapsed = time.monotonic() - t0
    finally:
        for s in squatters:
            s.close()
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("[not answering]") == 8, p.stdout
    assert f"{live.name}  python3  127.0.0.1  [alive]" in p.stdout, p.stdout
    assert elapsed < 3.5, elapsed


@pytest.mark.timeout(90)
def test_kernels_with_thousands_of_files_is_bounded(jupyter_dirs: Path) -> None:
    # More files than a process may open descriptors: listed, probed only in part.
    import resource

    anchor = paths.runtime_dir() / "anchor"
    anchor.write_text("")
    ports = free_ports(5)
    for i in range(1500):
        write_stale(f"many-{i:04d}", newer_than=anchor, ports=ports)
    t0 = time.monotonic()
    p = subprocess.run(
        [*KCONSOLE, "kernels"],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024)),
    )
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert p.stdout.count("kernel-many-") == 1500
    assert "[not probed]" in p.stdout
    assert time.monotonic() - t0 < 20
