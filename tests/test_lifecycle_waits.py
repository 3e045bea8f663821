"""Every wait on a kernel can be left with Ctrl-C.

A kernel kconsole only attached to cannot be restarted, so a double Ctrl-C that
would offer a restart instead stops waiting for a cell the kernel will not let go.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from ptyconsole import PtyConsole


@pytest.mark.timeout(60)
def test_double_ctrl_c_leaves_a_cell_an_attached_kernel_will_not_stop(ipykernel: Any) -> None:
    c = PtyConsole(["attach", "--existing", ipykernel.connection_file])
    try:
        c.expect_prompt()
        c.sendline(
            "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
            "print('deaf' + ' now', flush=True); time.sleep(40)"
        )
        c.expect(r"(?m)^deaf now")
        c.ctrl("c")
        c.expect(r"\^C: ")
        t0 = time.monotonic()
        c.ctrl("c")
        c.expect("stopped waiting for the cell: the kernel did not stop", timeout=10)
        c.expect_prompt()
        assert time.monotonic() - t0 < 5
        c.ctrl("d")
        assert c.wait_exit(20) == 0
        assert ipykernel.is_alive()  # stopping the wait is not stopping the kernel
    finally:
        c.close()
