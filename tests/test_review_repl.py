"""Review of the interactive REPL: defects found by using it, each reproduced from the
user's side with real kernels in a real pty (see tests/ptyconsole.py)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ptyconsole import PtyConsole, pid_alive

from kconsole.display.terminal import typed_keys


@pytest.mark.timeout(90)
@pytest.mark.parametrize("cell", ["exit(0)", "quit(1)", "exit( 0 );"])
def test_exit_with_a_status_leaves_an_attached_kernel_running(ipykernel: Any, cell: str) -> None:
    """`exit(0)` is how many type exit in Python; in an IPython kernel it would stop the
    kernel kconsole only attached to, as `exit()` would, so the console handles it."""
    pid = ipykernel.provisioner.process.pid
    c = PtyConsole(["attach", "--existing", ipykernel.connection_file])
    try:
        c.expect_prompt(1, timeout=60)
        c.sendline(cell)
        assert c.wait_exit(30) == 0
        assert "ended itself" not in c.transcript
        assert ipykernel.is_alive() and pid_alive(pid)
    finally:
        c.close()


@pytest.mark.timeout(90)
def test_clear_output_works_after_a_cell_whose_output_had_no_newline() -> None:
    """The prompt line after `print('abc', end='')` ends where prompt_toolkit left the
    cursor (column 0), not where the kernel's text did: clear_output in a later cell
    still erases, and an Out[] gets no stray blank line."""
    c = PtyConsole(["start", "--kernel", "python3"])
    try:
        c.expect_prompt(1, timeout=60)
        c.sendline("from IPython.display import clear_output")
        c.expect_prompt(2)
        c.sendline("print('abc', end='')")
        c.expect_prompt(3)
        c.sendline("pass")
        c.expect_prompt(4)
        c.sendline("print('gone' + 'X'); clear_output(); print('kept' + 'X')")
        c.expect("keptX")
        c.expect_prompt(5)
        c.sendline("41 + 1")
        c.expect(r"Out\[5\]: 42")
        c.expect_empty_prompt(6)
        c.settle()
        screen = c.display()
        assert not any("goneX" in line for line in screen), "\n".join(screen)
        at = next(i for i, line in enumerate(screen) if line.startswith("In [5]: 41 + 1"))
        assert screen[at + 1] == "Out[5]: 42", "\n".join(screen)
    finally:
        c.close()


@pytest.mark.timeout(90)
def test_keys_typed_before_the_first_prompt_are_not_lost() -> None:
    """Keys typed right after `kconsole start`, before the console draws anything
    (while it asks the terminal what it can do), run once the kernel is up."""
    c = PtyConsole(["start", "--kernel", "python3"])
    try:
        c.send("s = 11\r")
        c.send("s * 2\r")
        c.expect(r"Out\[2\]: 22", timeout=60)
    finally:
        c.close()


_REPLIES = ["\x1b[?62;4;22c", "\x1b_Gi=31;OK\x1b\\", "\x1b[6;20;10t", "\x1b[4;800;1200t"]


@settings(max_examples=60, deadline=1000)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet=st.characters(blacklist_characters="\x1b"), max_size=8),
            st.sampled_from(_REPLIES),
        ),
        max_size=12,
    )
)
def test_typed_keys_are_what_is_left_of_the_terminal_replies(parts: list[str]) -> None:
    """Whatever mix of keys and query replies the startup query read, the keys come
    back in order (Enter as CR) and no reply is taken for typing."""
    data = "".join(parts)
    keys = "".join(p for p in parts if p not in _REPLIES)
    assert typed_keys(data) == keys.replace("\n", "\r")
    assert typed_keys(data, icrnl=False) == keys


@pytest.mark.timeout(90)
def test_display_update_after_a_resize_never_erases_what_came_before(tmp_path: Path) -> None:
    """After the terminal was narrowed, the rows the old output takes are not known
    (xterm cuts lines, others re-wrap): the update is printed below instead of erasing
    by a guess, which took the cell's own input line and the output above with it."""
    flag = tmp_path / "resized"
    c = PtyConsole(["start", "--kernel", "python3"], rows=40, cols=120)
    try:
        c.expect_prompt(1, timeout=60)
        c.sendline("from IPython.display import display; import os, time")
        c.expect_prompt(2)
        c.sendline("print('MARK' + 'BEFORE')")
        c.expect_prompt(3)
        c.sendline(
            "h = display('A0', display_id=True); print('x' * 100); print('y' * 100); "
            f"print('z' * 99 + 'Z'); wait = lambda: os.path.exists({str(flag)!r}); "
            "[time.sleep(0.05) for _ in iter(wait, True)]; h.update('A' + '1'); print('do' + 'ne')"
        )
        c.expect("z{99}Z")
        c.child.setwinsize(40, 60)
        c.screen.resize(40, 60)
        flag.touch()
        c.expect("done")
        c.expect_empty_prompt(4)
        c.settle()
        screen = c.display()
        assert "MARKBEFORE" in screen, "\n".join(screen)
        assert any(line.startswith("In [3]: h = display(") for line in screen), "\n".join(screen)
        assert "'A1'" in screen, "\n".join(screen)
    finally:
        c.close()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_ends_the_console_while_the_restart_question_is_up(sig: int) -> None:
    """SIGTERM/SIGHUP while Ctrl-X r asks "Restart the kernel?": the console leaves at
    once and shuts its kernel down (it waited for an answer nobody may give)."""
    c = PtyConsole(["start", "--kernel", "python3"])
    try:
        c.expect_prompt(1, timeout=60)
        c.sendline("import os; os.getpid()")
        pid = int(c.expect(r"Out\[1\]: (\d+)").group(1))
        c.expect_empty_prompt(2)
        c.ctrl("x")
        c.send("r")
        c.expect(r"Restart the kernel\? \[y/N\]")
        os.kill(c.child.pid, sig)
        assert c.wait_exit(20) != 0
        deadline = time.monotonic() + 20
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)  # polling for the kernel's exit, not synchronisation
        assert not pid_alive(pid), "the kernel was left running"
    finally:
        c.close()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("device", ["/dev/full", "fifo"])
def test_a_history_file_that_is_a_device_is_not_read_forever(
    jupyter_dirs: Path, device: str
) -> None:
    """/dev/full (the usual stand-in for a full disk) reads as endless zeros, a FIFO
    blocks: either as the history file hung the console at its first prompt (and ate
    memory). Only a regular file is history; else it is kept in memory, said once."""
    state = jupyter_dirs / "data" / "kconsole"
    state.mkdir(parents=True)
    path = state / "history-python"
    if device == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(device)
    c = PtyConsole(["start", "--kernel", "python3"])
    try:
        c.expect_prompt(1, timeout=60)
        c.sendline("a = 5")
        c.expect_prompt(2)
        c.send("\x1b[A")  # Up: the cell typed is still in the history, in memory
        c.expect_cursor_line(r"In \[2\]: a = 5")
        c.send("\x15a * 2\r")
        c.expect(r"Out\[2\]: 10")
        c.expect_prompt(3)
        assert c.transcript.count("history is kept in memory") == 1, c.transcript[-1500:]
    finally:
        c.close()


@pytest.mark.timeout(90)
def test_sigterm_ends_the_console_while_the_double_ctrl_c_offer_is_up() -> None:
    """SIGTERM while a cell that ignores Ctrl-C runs and the restart offer of a double
    Ctrl-C waits for an answer: the console leaves and its kernel is shut down."""
    c = PtyConsole(["start", "--kernel", "python3"])
    try:
        c.expect_prompt(1, timeout=60)
        c.sendline("import os, time; os.getpid()")
        pid = int(c.expect(r"Out\[1\]: (\d+)").group(1))
        c.expect_prompt(2)
        c.sendline(
            "def ign():\n    while True:\n        try: time.sleep(10)\n        except KeyboardInterrupt: pass\n"
        )
        c.expect_prompt(3)
        c.sendline("print('go' + 'ing'); ign()")
        c.expect("going")
        c.ctrl("c")
        c.expect("SIGINT sent to the kernel")
        c.ctrl("c")
        c.expect(r"Restart the kernel\? \[y/N\]")
        os.kill(c.child.pid, signal.SIGTERM)
        assert c.wait_exit(20) != 0
        deadline = time.monotonic() + 20
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)  # polling for the kernel's exit, not synchronisation
        assert not pid_alive(pid), "the kernel was left running"
    finally:
        c.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_the_exit_status_after_a_signal_names_that_signal(sig: int, status: int) -> None:
    """128 + the signal's number, as a shell reports a process ended by it: SIGHUP
    (the terminal closed) is not told as SIGTERM."""
    c = PtyConsole(["start", "--kernel", "builtin"])
    try:
        c.expect_empty_prompt(1, timeout=60)
        os.kill(c.child.pid, sig)
        assert c.wait_exit(20) == status
    finally:
        c.close()
