"""The "idle status never came" note: only when output really could be missing.

A cell that is silent for longer than the idle grace (``IDLE_GRACE`` and half a
second of ``time.sleep``) gets its reply and idle together at the end: nothing is
missing, so nothing is said. A kernel that never sends the idle
(tests/hostile_lifecycle.py) still gets the note, and the console does not hang.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from ptyconsole import PtyConsole

from kconsole.client import IDLE_GRACE

KCONSOLE = [sys.executable, "-m", "kconsole"]
HOSTILE = Path(__file__).parent / "hostile_lifecycle.py"
#: Silent for longer than the grace (no output at all, so nothing refreshes it): the
#: sleep is the case tested, not a synchronisation. Then a check.
SILENT_CELL = f"import time; time.sleep({IDLE_GRACE + 0.5})\n"
CHECK_CELL = "print('wo' + 'ke')\n"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kernel", ["python3", "builtin"])
def test_silent_cell_longer_than_the_grace_gets_no_lost_output_note(kernel: str) -> None:
    p = subprocess.run(
        [*KCONSOLE, "start", "--kernel", kernel],
        input=SILENT_CELL + CHECK_CELL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    assert "woke" in p.stdout
    assert "lost" not in p.stdout + p.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kernel", ["python3", "builtin"])
def test_silent_cell_in_the_repl_gets_no_lost_output_note(kernel: str) -> None:
    c = PtyConsole(["start", "--kernel", kernel])
    try:
        c.expect_prompt(1)
        c.sendline(SILENT_CELL.strip())
        c.expect_prompt(2)
        c.sendline(CHECK_CELL.strip())
        c.expect(r"(?m)^woke")
        c.expect_prompt(3)
        assert "lost" not in c.transcript
        c.ctrl("d")
        c.wait_exit(20)
    finally:
        c.close()


@pytest.fixture
def hostile(kernel_script) -> Path:
    return kernel_script(HOSTILE, "no-idle", name="hostile.json")


@pytest.mark.timeout(60)
def test_a_really_missing_idle_is_still_said(hostile: Path) -> None:
    t0 = time.monotonic()
    p = subprocess.run(
        [*KCONSOLE, "attach", "--existing", str(hostile)],
        input="1\n2\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("ran") == 2
    assert p.stderr.count("output may be lost") == 2  # notes go to stderr in script mode
    assert time.monotonic() - t0 < 20  # the grace is bounded: no hang
