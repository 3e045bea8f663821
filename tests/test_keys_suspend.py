"""Ctrl-Z at the prompt suspends kconsole like any terminal program; ``fg`` brings
back a working console: raw mode again (editing keys work), the prompt redrawn with
what was typed."""

from __future__ import annotations

import shutil
import sys

import ptyconsole
import pytest
from ptyconsole import PtyConsole

SHELL_PROMPT = "SHELL-READY$ "

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash (job control)")


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch):
    """An interactive bash (job control on) in the pty, kconsole to be run in it."""
    monkeypatch.setattr(ptyconsole, "KCONSOLE", ["bash", "--norc", "--noprofile", "-i"])
    c = PtyConsole([], env={"PS1": SHELL_PROMPT, "HISTFILE": "/dev/null"})
    c.expect(r"SHELL-READY\$ ")
    yield c
    c.close()


@pytest.mark.timeout(90)
def test_ctrl_z_suspends_and_fg_brings_back_a_working_console(shell: PtyConsole) -> None:
    c = shell
    c.sendline(f"{sys.executable} -m kconsole start --kernel builtin --no-confirm-exit")
    c.expect_prompt(1)
    c.sendline("v = 21")
    c.expect_prompt(2)
    c.send("abc")
    c.expect_cursor_line(r"In \[2\]: abc")
    c.ctrl("z")
    c.expect(r"Stopped")  # the shell's job control saw it stop
    c.expect(r"SHELL-READY\$ ")
    c.sendline("fg")
    c.expect_cursor_line(r"In \[2\]: abc")  # redrawn, with the typed text (no ^Z)
    c.ctrl("a")  # raw mode again: Ctrl-A moves to the start of the line (cooked: ^A)
    c.send("X")
    c.expect_cursor_line(r"In \[2\]: Xabc")
    c.ctrl("c")
    c.expect_empty_prompt(2)
    c.sendline("print('v is', v * 2)")
    c.expect(r"(?m)^v is 42")
    c.expect_prompt(3)
    c.ctrl("d")
    c.expect(r"SHELL-READY\$ ")
    c.sendline("exit")
    assert c.wait_exit(30) == 0


@pytest.mark.timeout(90)
def test_ctrl_z_at_an_input_prompt_suspends_and_fg_resumes_it(shell: PtyConsole) -> None:
    c = shell
    c.sendline(f"{sys.executable} -m kconsole start --kernel builtin --no-confirm-exit")
    c.expect_prompt(1)
    c.sendline("name = input('name? '); print('hello', name)")
    c.expect(r"name\? ")
    c.send("bo")
    c.expect_cursor_line(r"name\? bo")
    c.ctrl("z")
    c.expect(r"Stopped")
    c.expect(r"SHELL-READY\$ ")
    c.sendline("fg")
    c.expect_cursor_line(r"name\? bo")
    c.sendline("b")
    c.expect(r"(?m)^hello bob")
    c.expect_prompt(2)
    c.ctrl("d")
    c.expect(r"SHELL-READY\$ ")
    c.sendline("exit")
    assert c.wait_exit(30) == 0


@pytest.mark.timeout(90)
def test_ctrl_z_while_a_cell_runs_suspends_and_fg_resumes_it(shell: PtyConsole, gate) -> None:
    c = shell
    c.sendline(f"{sys.executable} -m kconsole start --kernel builtin --no-confirm-exit")
    c.expect_prompt(1)
    c.sendline(gate.cell(after="print('wo' + 'ke')"))
    c.expect(gate.held)  # the cell runs, and will until released
    c.ctrl("z")  # no prompt up: the terminal is cooked and sends SIGTSTP itself
    c.expect(r"Stopped")
    c.expect(r"SHELL-READY\$ ")
    gate.release()  # it may end now, while kconsole is stopped
    c.sendline("fg")
    c.expect(r"(?m)^woke")
    c.expect_prompt(2)
    c.send("abc")
    c.ctrl("a")
    c.send("X")
    c.expect_cursor_line(r"In \[2\]: Xabc")  # raw mode: Ctrl-A moved the cursor
    c.ctrl("c")
    c.expect_empty_prompt(2)
    c.ctrl("d")
    c.expect(r"SHELL-READY\$ ")
    c.sendline("exit")
    assert c.wait_exit(30) == 0
