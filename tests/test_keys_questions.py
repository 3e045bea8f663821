"""The console's yes/no questions are answered by a line ended with Enter.

Ctrl-X r (restart at the prompt), double Ctrl-C (restart while a cell runs) and the
exit question of ``--confirm-exit``: the answer is typed and ended by Enter, as the
``[y/N]`` says; the line typed at the prompt before Ctrl-X r survives intact and is
not run by the answer's Enter.
"""

from __future__ import annotations

import pytest
from ptyconsole import PtyConsole, leave

HALF = "print('kept', 'fresh' in globals())"
HALF_LINE = r"In \[\d+\]: print\('kept', 'fresh' in globals\(\)\)"


def start_with_half_line(c: PtyConsole) -> None:
    c.expect_prompt(1)
    c.sendline("fresh = 1")
    c.expect_prompt(2)
    c.send(HALF)
    c.expect_cursor_line(HALF_LINE)


@pytest.mark.timeout(90)
def test_ctrl_x_r_y_enter_restarts_and_keeps_the_half_typed_line_unrun(console) -> None:
    c = console("start", "--kernel", "python3")
    start_with_half_line(c)
    c.send("\x18r")
    c.expect(r"Restart the kernel\? \[y/N\]")
    c.send("y")
    c.expect_cursor_line(r"Restart the kernel\? \[y/N\] y")  # typed, not yet an answer
    c.send("\r")
    c.expect("kernel restarted", timeout=30)
    c.expect_cursor_line(r"In \[1\]: print\('kept', 'fresh' in globals\(\)\)")
    assert "kept True" not in c.transcript and "kept False" not in c.transcript
    c.sendline("")
    c.expect(r"(?m)^kept False")  # ran on the new kernel, once, when asked to
    c.expect_prompt(2)
    leave(c)


@pytest.mark.timeout(90)
def test_ctrl_x_r_answered_in_the_same_read_goes_to_the_question(console) -> None:
    c = console("start", "--kernel", "python3")
    start_with_half_line(c)
    c.send("\x18rn\r")  # Ctrl-X r, n, Enter: all in one write
    c.expect(r"\[y/N\] n")
    c.expect_cursor_line(r"In \[2\]: print\('kept', 'fresh' in globals\(\)\)")
    c.sendline("")
    c.expect(r"(?m)^kept True")  # no restart happened
    c.expect_prompt(3)
    assert "restarting" not in c.transcript
    leave(c)


@pytest.mark.timeout(90)
def test_an_unclear_answer_asks_again(console) -> None:
    c = console("start", "--kernel", "python3")
    start_with_half_line(c)
    c.send("\x18r")
    c.expect(r"Restart the kernel\? \[y/N\]")
    c.send("maybe\r")
    c.expect(r"\[y/N\] maybe")
    c.expect_cursor_line(r"Restart the kernel\? \[y/N\]")  # asked again
    c.send("\r")  # Enter alone: the default, no
    c.expect_cursor_line(HALF_LINE)
    c.sendline("")
    c.expect(r"(?m)^kept True")
    c.expect_prompt(3)
    leave(c)


@pytest.mark.timeout(90)
def test_exit_question_takes_a_line(console) -> None:
    c = console("start", "--kernel", "python3", "--confirm-exit")
    c.expect_prompt(1)
    c.ctrl("d")
    c.expect(r"Do you really want to exit \(\[y\]/n\)\?")
    c.send("n")
    c.expect_cursor_line(r"Do you really want to exit \(\[y\]/n\)\? n")
    c.send("\r")
    c.expect_empty_prompt(1)
    c.sendline("print('still', 'here')")
    c.expect(r"(?m)^still here")
    c.expect_prompt(2)
    c.ctrl("d")
    c.expect(r"Do you really want to exit")
    c.send("yes\r")
    assert c.wait_exit(30) == 0


STUCK_CELL = (
    "import itertools, signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "print('stuck', 'now', flush=True); "
    "[print('tick', i, flush=True) or time.sleep(0.3) for i in itertools.count()]"
)


@pytest.mark.timeout(90)
def test_double_ctrl_c_restart_question_takes_a_line(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.sendline(STUCK_CELL)
    c.expect(r"(?m)^stuck now")
    c.ctrl("c")
    c.expect(r"\^C: ")
    c.ctrl("c")
    c.expect(r"Restart the kernel\? \[y/N\]")
    c.send("yes\r")  # one answer: "y" alone does not answer, "es" does not leak
    c.expect(r"\[y/N\] yes")
    c.expect("kernel restarted", timeout=30)
    c.expect_empty_prompt(1)
    c.sendline("print('fresh' + 'ly', 'up')")
    c.expect(r"(?m)^freshly up")
    c.expect_prompt(2)
    assert "NameError" not in c.transcript
    leave(c)
