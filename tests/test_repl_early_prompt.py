"""The first prompt of `kconsole start` comes up while the kernel is still booting.

The kernel here is gated: its kernelspec runs a wrapper that blocks on a named pipe
until the test writes ``go`` (then it becomes kconsole's built-in kernel) or ``fail``
(then it exits with an error). So "the kernel is still starting" is a state the test
holds, not a race it hopes to win.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from ptyconsole import PtyConsole, pid_alive

WRAPPER = """\
import os, sys
gate, pidfile, cf = sys.argv[1:4]
with open(pidfile + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(pidfile + ".tmp", pidfile)
with open(gate) as g:  # blocks until the test opens the pipe to write
    action = g.read().strip()
if action == "fail":
    sys.stderr.write("boom: the gated kernel was told to fail\\n")
    sys.exit(3)
os.execv(sys.executable, [sys.executable, "-m", "kconsole.kernel", "-f", cf])
"""


class GatedKernel:
    def __init__(self, root: Path) -> None:
        self.gate = root / "gate"
        self.pidfile = root / "kernel.pid"
        os.mkfifo(self.gate)
        script = root / "wrapper.py"
        script.write_text(WRAPPER)
        kdir = root / "kernels" / "gated"
        kdir.mkdir(parents=True)
        argv = [sys.executable, str(script), str(self.gate), str(self.pidfile)]
        spec = {"argv": [*argv, "{connection_file}"], "display_name": "Gated", "language": "python"}
        (kdir / "kernel.json").write_text(json.dumps(spec))

    def open(self, action: str) -> None:
        with open(self.gate, "w") as g:  # waits for the wrapper to be reading
            g.write(action)

    def pid(self, timeout: float = 15.0) -> int:
        deadline = time.monotonic() + timeout
        while not self.pidfile.exists():  # the wrapper writes it before it blocks
            assert time.monotonic() < deadline, "the gated kernel never started"
            time.sleep(0.02)
        return int(self.pidfile.read_text())


@pytest.fixture
def gated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GatedKernel:
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    return GatedKernel(tmp_path)


@pytest.fixture
def console(console: Callable[..., PtyConsole], gated: GatedKernel) -> Callable[..., PtyConsole]:
    """``console(*options)``: `kconsole start --kernel gated` in a pty (the shared
    fixture closes it)."""

    def make(*options: str) -> PtyConsole:
        return console("start", "--kernel", "gated", *options)

    return make


@pytest.mark.timeout(60)
def test_the_first_cell_typed_while_the_kernel_starts_runs_once_it_is_up(
    console, gated: GatedKernel
) -> None:
    c = console()
    c.expect_prompt(1)
    c.expect(r"\[kernel starting\]")  # said where the toolbar would be
    c.sendline("print(6*7)")
    gated.open("go")
    c.expect(r"\n42\n")
    c.expect_prompt(2)
    c.settle()
    lines = c.display()
    banner = next(i for i, ln in enumerate(lines) if ln.startswith("Ctrl-D exits"))
    cell = lines.index("In [1]: print(6*7)")
    # The banner came when the kernel did, and went above the prompt typed into.
    assert banner < cell < lines.index("42")
    assert not any("[kernel starting]" in ln for ln in lines[cell:])
    c.ctrl("d")
    assert c.wait_exit() == 0


@pytest.mark.timeout(60)
def test_keys_typed_after_enter_while_the_kernel_starts_go_to_the_next_prompt(
    console, gated: GatedKernel
) -> None:
    c = console()
    c.expect_prompt(1)
    c.sendline("x = 6*7")
    c.send("print(x)")  # typed ahead, while the first cell waits for the kernel
    gated.open("go")
    c.expect_cursor_line(r"In \[2\]: print\(x\)")
    c.sendline("")
    c.expect(r"\n42\n")
    c.expect_prompt(3)


@pytest.mark.timeout(60)
def test_two_cells_typed_ahead_while_the_kernel_starts_both_run(
    console, gated: GatedKernel
) -> None:
    c = console()
    c.expect_prompt(1)
    c.sendline("x = 6*7")
    c.sendline("print(x)")  # Enter again while the first Enter waits for the kernel
    gated.open("go")
    c.expect(r"\n42\n")
    c.expect_prompt(3)


@pytest.mark.timeout(60)
def test_empty_enter_and_ctrl_c_while_the_kernel_starts_keep_the_prompt(
    console, gated: GatedKernel
) -> None:
    c = console()
    c.expect_prompt(1)
    empty = r"In \[1\]: +\[kernel starting\]"
    c.sendline("")
    c.expect_cursor_line(empty)  # a new prompt at once, not a wait without one
    c.send("abc")
    c.expect_cursor_line(r"In \[1\]: abc +\[kernel starting\]")
    c.ctrl("c")  # clears the line, as at any prompt; the console stays
    c.expect_cursor_line(empty)
    gated.open("go")
    c.sendline("print(6*7)")
    c.expect(r"\n42\n")
    c.expect_prompt(2)


@pytest.mark.timeout(60)
def test_tab_while_the_kernel_starts_completes_once_it_is_up(console, gated: GatedKernel) -> None:
    c = console()
    c.expect_prompt(1)
    c.send("impor\t")
    gated.open("go")
    c.expect_cursor_line(r"In \[1\]: import")


@pytest.mark.timeout(60)
def test_a_kernel_that_never_answers_ends_the_prompt_after_timeout(
    console, gated: GatedKernel
) -> None:
    c = console("--timeout", "2")
    c.expect_prompt(1)
    c.expect(r"kconsole: kernel 'gated' did not become ready: .*2 s")
    assert c.wait_exit() == 1
    assert "Traceback" not in c.transcript


@pytest.mark.timeout(60)
def test_a_kernel_dying_during_start_ends_the_prompt_with_its_error(
    console, gated: GatedKernel
) -> None:
    c = console()
    c.expect_prompt(1)
    c.send("x = 1")  # a half-typed cell when the kernel dies
    gated.open("fail")
    c.expect(r"kconsole: kernel 'gated' died during start \(exit status 3\)")
    c.expect("boom: the gated kernel was told to fail")
    assert c.wait_exit() == 1
    assert "Traceback" not in c.transcript


@pytest.mark.timeout(60)
def test_ctrl_d_while_the_kernel_starts_leaves_and_stops_the_kernel(
    console, gated: GatedKernel
) -> None:
    c = console()
    c.expect_prompt(1)
    pid = gated.pid()
    c.ctrl("d")
    assert c.wait_exit() == 0
    assert not pid_alive(pid), "the kernel kconsole started outlived it"
    assert "died" not in c.transcript
