"""Script mode's Ctrl-C, a restart's shutdown_request, and what a kept kernel leaves
behind, each as a user meets it with ipykernel (and the built-in kernel's connection
file as other tools read it)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from ptyconsole import KCONSOLE

#: A cell that survives the first interrupt (it catches it) and runs on.
_STUBBORN = """\
import time
try:
    print("running", flush=True)
    time.sleep(30)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    time.sleep(30)
print("not reached")
"""


@pytest.mark.timeout(60)
def test_script_ctrl_c_interrupts_the_cell_and_a_second_leaves_with_130() -> None:
    p = subprocess.Popen(
        [*KCONSOLE, "start", "-k", "python3"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert p.stdin is not None and p.stdout is not None
        p.stdin.write(_STUBBORN.encode())
        p.stdin.close()
        assert p.stdout.readline() == b"running\n"
        p.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
        assert p.stdout.readline() == b"interrupted\n"
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        assert p.wait(15) == 130
        assert time.monotonic() - t0 < 10
        assert p.stdout.read() == b""
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()


@pytest.mark.timeout(60)
def test_restart_asks_the_kernel_to_shut_down_for_a_restart(console, jupyter_dirs: Path) -> None:
    """The spec's shutdown_request for a restart says restart: true (ipykernel echoes it
    in the shutdown_reply it broadcasts, which another client of the kernel sees)."""
    from jupyter_client import BlockingKernelClient

    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    (cf,) = (jupyter_dirs / "runtime").glob("kernel-*.json")
    other = BlockingKernelClient(connection_file=str(cf))
    other.load_connection_file()
    other.start_channels()
    try:
        other.wait_for_ready(timeout=20)
        c.ctrl("x")
        c.send("r")
        c.expect(r"Restart the kernel\? \[y/N\]")
        c.send("y\r")
        c.expect(r"kernel restarted")
        deadline = time.monotonic() + 10
        while True:
            msg = other.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            if msg["msg_type"] == "shutdown_reply":
                break
        assert msg["content"]["restart"] is True
    finally:
        other.stop_channels()
    c.ctrl("d")
    assert c.wait_exit(20) == 0


@pytest.mark.timeout(60)
def test_a_kept_kernel_shut_down_by_another_client_leaves_no_files(jupyter_dirs: Path) -> None:
    """`--keep-kernel` leaves the built-in kernel running; when another client shuts it
    down, its connection file, log and ipc sockets go with it. Its connection file names
    no kernelspec `builtin` (no other tool could resolve it): none is installed here."""
    from jupyter_client import BlockingKernelClient

    p = subprocess.run(
        [*KCONSOLE, "start", "-k", "builtin", "--keep-kernel", "--transport", "ipc"],
        input=b"print('kept')\n",
        capture_output=True,
        timeout=30,
    )
    assert (p.returncode, p.stdout) == (0, b"kept\n"), p.stderr
    runtime = jupyter_dirs / "runtime"
    (cf,) = runtime.glob("kernel-*.json")
    info = json.loads(cf.read_text())
    sockets = Path(info["ip"]).parent
    other = BlockingKernelClient(connection_file=str(cf))
    other.load_connection_file()
    other.start_channels()
    try:
        other.wait_for_ready(timeout=20)
        assert info["kernel_name"] == ""
        assert list(runtime.glob("kernel-*.log")) and list(sockets.iterdir())
    finally:
        other.shutdown()  # whatever failed: the kept kernel must not outlive the test
        other.stop_channels()
    deadline = time.monotonic() + 15
    while (list(runtime.iterdir()) or sockets.exists()) and time.monotonic() < deadline:
        time.sleep(0.1)  # polling the files: no event tells their removal
    assert list(runtime.iterdir()) == [] and not sockets.exists()
