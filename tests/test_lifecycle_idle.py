"""The "idle status never came" note: only when output really could be missing.

A cell that is silent for longer than the idle grace (``time.sleep(3.5)``) gets its
reply and idle together at the end: nothing is missing, so nothing is said. A kernel
that never sends the idle (tests/hostile_lifecycle.py) still gets the note, and the
console does not hang.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ptyconsole import PtyConsole

KCONSOLE = [sys.executable, "-m", "kconsole"]
HOSTILE = Path(__file__).parent / "hostile_lifecycle.py"
#: Silent for 3.5 s (no output at all, so nothing refreshes the grace), then a check.
SILENT_CELL = "import time; time.sleep(3.5)\n"
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
def hostile(tmp_path: Path) -> Iterator[Path]:
    cf = tmp_path / "hostile.json"
    proc = subprocess.Popen([sys.executable, str(HOSTILE), str(cf), "no-idle"])
    try:
        deadline = time.monotonic() + 20
        while not cf.exists():  # the file is the kernel's only sign that it is up
            assert proc.poll() is None, "the hostile kernel died"
            assert time.monotonic() < deadline, "the hostile kernel wrote no connection file"
            time.sleep(0.05)
        yield cf
    finally:
        proc.kill()
        proc.wait()


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
