"""Script mode's Ctrl-C, a restart's shutdown_request, and what a kept kernel leaves
behind, each as a user meets it with ipykernel (and the built-in kernel's connection
file as other tools read it)."""

from __future__ import annotations

import signal
import subprocess
import time

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
