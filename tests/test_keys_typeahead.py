"""Keys typed ahead: every Enter acts as if pressed on its own, whatever the reads.

Each test writes all its keys in ONE ``write()`` to the pty, so prompt_toolkit reads
them in one batch: the case where an Enter that waits for the kernel (is_complete)
used to let the keys after it run on into the same buffer.
"""

from __future__ import annotations

import os
import re
import signal

import pytest
from ptyconsole import KERNELS, PtyConsole, leave


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kernel", KERNELS)
def test_two_cells_typed_while_a_cell_sleeps_run_as_two(console, kernel, gate) -> None:
    c = console("start", "--kernel", kernel)
    c.expect_prompt(1)
    c.sendline(gate.cell())
    c.expect(gate.held)  # the cell's output, not its echo: it runs now
    c.send("n = 5\r0\r")  # typed while it still runs: it waits until released
    gate.release()
    c.expect(r"Out\[3\]: 0")
    c.expect_prompt(4)
    c.sendline("print('n is', n)")
    c.expect(r"(?m)^n is 5")
    c.expect_prompt(5)
    assert "n = 50" not in c.transcript
    leave(c)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kernel", KERNELS)
def test_a_paste_without_bracketed_paste_runs_line_by_line(console, kernel) -> None:
    c = console("start", "--kernel", kernel)
    c.expect_prompt(1)
    c.send("a = 1\rb = 2\rprint('sum', a+b)\r")
    c.expect(r"(?m)^sum 3")
    c.expect_prompt(4)
    leave(c)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kernel", KERNELS)
def test_enter_enter_after_a_block_runs_it_and_the_last_enter_is_not_lost(console, kernel) -> None:
    c = console("start", "--kernel", kernel)
    c.expect_prompt(1)
    c.send("for i in range(2):\r    print('i =', i)\r\r\r")
    c.expect(r"(?m)^i = 0\s+i = 1")
    c.expect_prompt(2)
    # The third Enter came at In [2]: an empty cell, so In [2] again, the cursor there.
    c.expect_prompt(2)
    c.expect_empty_prompt(2)
    c.sendline("print('after')")
    c.expect(r"(?m)^after")
    c.expect_prompt(3)
    assert c.transcript.count("i = 0") == 1  # the block ran once (echo aside)
    leave(c)


@pytest.mark.timeout(90)
def test_cells_typed_ahead_at_an_idle_prompt_each_run(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.send("x = 2\rx * 3\rx * 5\r\rprint('done', x)\r")
    c.expect(r"Out\[2\]: 6")
    c.expect(r"Out\[3\]: 10")
    c.expect(r"(?m)^done 2")
    c.expect_prompt(5)
    assert not re.search(r"x \* 3x", c.transcript)
    leave(c)


@pytest.mark.timeout(90)
def test_ctrl_d_typed_ahead_after_a_cell_leaves_after_it_ran(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.send("print('ran', 6*7)\r\x04")
    c.expect(r"(?m)^ran 42")
    assert c.wait_exit(30) == 0


@pytest.mark.timeout(90)
def test_ctrl_c_typed_behind_enter_cancels_that_cell_and_keeps_what_follows(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    # Enter waits for is_complete; the Ctrl-C right behind it is Ctrl-C at that prompt
    # (the line is dropped, nothing runs); what is typed after it is a new cell.
    c.send("print('never ' * 2)\r\x03zzz = 1\r")
    c.expect_prompt(2)
    c.sendline("print('zzz' in dir(), zzz)")
    c.expect(r"(?m)^True 1")
    c.expect_prompt(3)
    assert "never never" not in c.transcript
    leave(c)


@pytest.mark.timeout(60)
def test_cells_pasted_while_the_kernel_starts_each_run_once_it_is_up(tmp_path, monkeypatch) -> None:
    from test_repl_early_prompt import GatedKernel

    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    gated = GatedKernel(tmp_path)
    c = PtyConsole(["start", "--kernel", "gated"])
    try:
        c.expect_prompt(1)
        c.send("x = 6\ry = x * 7\r\rprint('got', y)\r")  # all while it boots
        gated.open("go")
        c.expect(r"(?m)^got 42")
        c.expect_prompt(4)
        c.ctrl("d")
        assert c.wait_exit(30) == 0
    finally:
        c.close()
    assert "x = 6y" not in c.transcript and "Traceback" not in c.transcript


@pytest.mark.timeout(60)
def test_ctrl_c_or_sigint_while_enter_waits_for_the_kernel_drops_that_cell(
    tmp_path, monkeypatch
) -> None:
    from test_repl_early_prompt import GatedKernel

    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    gated = GatedKernel(tmp_path)
    c = PtyConsole(["start", "--kernel", "gated"])
    try:
        c.expect_prompt(1)
        c.sendline("")  # a fresh line for the prompt, below the terminal queries
        c.expect_cursor_line(r"In \[1\]: +\[kernel starting\]")
        c.sendline("x = 1")  # waits for the kernel, which is still starting
        c.expect_cursor_line(r"In \[1\]: x = 1 +\[kernel starting\]")
        c.ctrl("c")  # a later read: Ctrl-C at the prompt, as if Enter had not come
        c.expect_cursor_line(r"In \[1\]: +\[kernel starting\]")
        c.sendline("y = 2")
        c.expect_cursor_line(r"In \[1\]: y = 2 +\[kernel starting\]")
        os.kill(c.child.pid, signal.SIGINT)  # `kill -INT`: the same
        c.expect_cursor_line(r"In \[1\]: +\[kernel starting\]")
        gated.open("go")
        c.sendline("print('x' in dir(), 'y' in dir())")
        c.expect(r"(?m)^False False")
        c.expect_prompt(2)
        c.ctrl("d")
        assert c.wait_exit(30) == 0
    finally:
        c.close()


@pytest.mark.timeout(90)
def test_typeahead_in_a_terminal_that_answers_cursor_position_requests(console, gate) -> None:
    # With CPR on, the terminal's answers arrive mixed with the keys held behind an
    # Enter: they are never held (the renderer waits for them), the keys still are.
    c = console("start", "--kernel", "python3", cpr=True)
    c.expect_prompt(1)
    c.send("a = 1\rb = 2\rprint('sum', a+b)\r")
    c.expect(r"(?m)^sum 3")
    c.expect_prompt(4)
    c.sendline(gate.cell())
    c.expect(gate.held)
    c.send("n = 5\r0\r")  # typed while the cell still runs
    gate.release()
    c.expect(r"Out\[6\]: 0")
    c.expect_prompt(7)
    c.sendline("print('n is', n)")
    c.expect(r"(?m)^n is 5")
    c.expect_prompt(8)
    leave(c)


@pytest.mark.timeout(90)
def test_answers_to_two_input_calls_typed_in_one_go(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.sendline("a = input('first? '); b = input('second? '); print('got', a, b)")
    c.expect(r"first\? ")
    c.send("one\rtwo\rprint('after', 1)\r")  # both answers and the next cell
    c.expect(r"(?m)^got one two")
    c.expect(r"(?m)^after 1")
    c.expect_prompt(3)
    leave(c)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kernel", KERNELS)
def test_a_pasted_block_with_dedents_keeps_its_own_indentation(console, kernel) -> None:
    c = console("start", "--kernel", kernel)
    c.expect_prompt(1)
    # Pasted without bracketed paste: the text brings its indentation, so Enter adds
    # none of its own (the else would land inside the if block).
    c.send("x = 0\rif x:\r    print('yes')\relse:\r    print('no', 'way')\r\r")
    c.expect(r"(?m)^no way")
    c.expect_prompt(3)
    assert "SyntaxError" not in c.transcript and "IndentationError" not in c.transcript
    leave(c)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kernel", KERNELS)
def test_output_and_input_prompt_of_a_cell_come_below_its_accepted_line(console, kernel) -> None:
    # The cell goes to the kernel as Enter accepts it, before its prompt has drawn its
    # last frame and ended: what it prints at once, and the input() it asks for at
    # once, still come below the accepted line, in order, and the answer is read.
    c = console("start", "--kernel", kernel)
    c.expect_prompt(1)
    c.sendline("print('out' + 'put'); x = input('name? ')")
    c.expect(r"(?m)^name\?")  # the prompt itself, not the echo of the typed cell
    c.sendline("bob")
    c.expect_prompt(2)
    c.sendline("print('hello', x)")
    c.expect(r"(?m)^hello bob")
    c.expect_prompt(3)
    c.settle()
    lines = [ln for ln in c.display() if ln.strip()]
    first = next(i for i, ln in enumerate(lines) if ln.startswith("In [1]: print("))
    assert lines[first + 1 : first + 4] == ["output", "name? bob", "In [2]: print('hello', x)"]
    leave(c)
