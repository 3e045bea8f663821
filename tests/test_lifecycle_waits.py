"""Every wait on a kernel can be left with Ctrl-C.

A kernel kconsole only attached to cannot be restarted, so a double Ctrl-C that
would offer a restart instead stops waiting for a cell the kernel will not let go.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ptyconsole import Gate, PtyConsole


@pytest.mark.timeout(60)
def test_double_ctrl_c_leaves_a_cell_an_attached_kernel_will_not_stop(
    ipykernel: Any, tmp_path: Path
) -> None:
    # Deaf to SIGINT and held until the end of the test (its gate is never released
    # here): the kernel really will not let the cell go while the console waits.
    gate = Gate(tmp_path / "never", marker="deaf now")
    c = PtyConsole(["attach", "--existing", ipykernel.connection_file])
    try:
        c.expect_prompt()
        c.sendline(gate.cell(before="import signal; signal.signal(signal.SIGINT, signal.SIG_IGN)"))
        c.expect(gate.held)
        c.ctrl("c")
        c.expect(r"\^C: ")
        c.ctrl("c")
        c.expect("stopped waiting for the cell: the kernel did not stop", timeout=10)
        c.expect_prompt()
        c.ctrl("d")
        assert c.wait_exit(20) == 0
        assert ipykernel.is_alive()  # stopping the wait is not stopping the kernel
    finally:
        c.close()
        gate.release()


@pytest.mark.timeout(30)
def test_a_gated_cell_holds_until_released_and_then_ends(tmp_path: Path) -> None:
    # The tests' stand-in for "the kernel is busy" (ptyconsole.Gate): it says it runs,
    # it is still running after that, and it ends once released.
    import subprocess
    import sys

    gate = Gate(tmp_path / "go", marker="holding")
    proc = subprocess.Popen(
        [sys.executable, "-c", gate.cell(after="print('done')")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "holding\n"
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(0.5)  # how long "held" is looked at, not a synchronisation
        gate.release()
        assert proc.wait(10) == 0
        assert proc.stdout.read() == "done\n"
    finally:
        proc.kill()
        proc.wait()
