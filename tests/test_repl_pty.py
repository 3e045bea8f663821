"""The interactive console in a real pseudo-terminal, against real kernels."""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path

import pexpect
import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from ptyconsole import wait_gone, wait_screen

from kconsole import paths


@pytest.mark.timeout(90)
def test_execute_output_interrupt_and_exit_leave_nothing_behind(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.sendline("import os; print(6*7, os.getpid())")
    m = c.expect(r"42 (\d+)")
    kernel_pid = int(m.group(1))
    c.expect_prompt(2)

    c.sendline("print('sleep' + 'ing', flush=True); import time; time.sleep(60)")
    c.expect(r"(?m)^sleeping")  # the output line, not the echo: the cell is running
    c.ctrl("c")
    c.expect("KeyboardInterrupt", timeout=10)  # long before the sleep would have ended
    c.expect_prompt(3)
    c.sendline("print('still usable')")
    c.expect("still usable")
    c.expect_prompt(4)

    c.ctrl("d")
    assert c.wait_exit(20) == 0
    assert wait_gone(kernel_pid, 10), "the kernel outlived the console"
    assert list(paths.runtime_dir().glob("kernel-*")) == []


@pytest.mark.timeout(60)
def test_ctrl_c_at_the_prompt_clears_the_line(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.send("this is not code")
    c.expect("this is not code")
    c.ctrl("c")
    c.expect_empty_prompt(1)
    c.sendline("print('clean')")
    c.expect("clean")
    c.expect_prompt(2)
    c.ctrl("d")
    assert c.wait_exit(20) == 0


@pytest.mark.timeout(60)
def test_terminal_is_sane_after_exit(tmp_path: Path) -> None:
    script = (
        f"{sys.executable} -m kconsole start --kernel python3 --no-confirm-exit; stty -a; echo DONE"
    )
    child = pexpect.spawn(
        "/bin/sh",
        ["-c", script],
        encoding="utf-8",
        timeout=30,
        dimensions=(30, 100),
        env={**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1"},
    )
    try:
        child.expect(r"In \S*\[")
        child.send("\x04")
        child.expect("DONE")
        stty = child.before
        assert re.search(r"(?<!-)icanon", stty) and re.search(r"(?<!-)echo\b", stty), stty
        assert "?2004h" not in stty.split("speed")[-1]
    finally:
        child.close(force=True)


@pytest.mark.timeout(60)
def test_tab_completion_from_the_kernel(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.send("import o")
    c.send("\t")
    # Rows of the menu (below the prompt, at the word's column), not a history
    # suggestion on the prompt line. Not "os  module": jedi types the matches within
    # IPython's 400 ms budget a Tab, past it (a loaded machine) "os" is "<unknown>".
    wait_screen(c, r"(?m)^ +os\b")
    wait_screen(c, r"(?m)^ +operator\b")
    c.ctrl("c")
    c.expect_empty_prompt(1)
    c.sendline("import os")
    c.expect_prompt(2)
    c.send("os.pa\t")
    wait_screen(c, r"(?m)^ +pardir\b")  # the completion menu is drawn
    wait_screen(c, r"(?m)^ +path\b")
    c.ctrl("c")
    c.expect_empty_prompt(2)
    c.ctrl("d")
    assert c.wait_exit(20) == 0


@pytest.mark.timeout(60)
def test_exit_in_ipykernel_leaves_with_status_0(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.sendline("exit")
    assert c.wait_exit(20) == 0


@pytest.mark.timeout(60)
def test_other_clients_output_appears_above_the_prompt(console, shared_kernel) -> None:
    km, kc = shared_kernel
    c = console("attach", "--existing", km.connection_file)
    c.expect_prompt()
    c.send("typed_so_far")
    c.expect("typed_so_far")  # echoed on the prompt line
    kc.execute_interactive("print('from elsewhere')", timeout=20)
    c.expect("from elsewhere")
    # The prompt is redrawn below the output with the typed text intact.
    c.expect(r"In \[\d+\]: typed_so_far")
    c.settle()  # all expected output matched: read the final screen
    screen = c.display()
    where = [i for i, line in enumerate(screen) if "from elsewhere" in line]
    prompt = [i for i, line in enumerate(screen) if "typed_so_far" in line]
    assert where and prompt and where[0] < prompt[-1], screen
    assert re.fullmatch(r"In \[\d+\]: typed_so_far", screen[prompt[-1]]), screen
    assert len(prompt) == 1, screen  # the line was moved, not left behind and redrawn
    c.ctrl("c")
    c.expect_empty_prompt()
    c.ctrl("d")
    assert c.wait_exit(20) == 0
    assert km.is_alive()  # attach never shuts the kernel down


@pytest.mark.timeout(60)
def test_ctrl_c_interrupts_an_attached_kernel(console, shared_kernel) -> None:
    km, _ = shared_kernel
    c = console("attach", "--existing", km.connection_file)
    c.expect_prompt()
    c.sendline("print('sleep' + 'ing', flush=True); import time; time.sleep(30)")
    c.expect(r"(?m)^sleeping")  # the output line, not the echo: the cell is running
    c.ctrl("c")
    c.expect("KeyboardInterrupt", timeout=10)  # long before the sleep would have ended
    c.expect_prompt()
    c.ctrl("d")
    assert c.wait_exit(20) == 0


@pytest.mark.timeout(60)
def test_keep_kernel_is_joined_by_jupyter_client(console) -> None:
    c = console("start", "--kernel", "python3", "--keep-kernel")
    c.expect_prompt(1)
    c.sendline("shared = 'kept'")
    c.expect_prompt(2)
    files = list(paths.runtime_dir().glob("kernel-*.json"))
    assert len(files) == 1
    c.ctrl("d")
    assert c.wait_exit(20) == 0
    kc = BlockingKernelClient(connection_file=str(files[0]))
    kc.load_connection_file()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=20)
        reply = kc.execute_interactive("print(shared)", timeout=20)
        assert reply["content"]["status"] == "ok"
        kc.shutdown()
    finally:
        kc.stop_channels()


@pytest.mark.timeout(60)
def test_kernel_killed_at_idle_prompt_is_reported_and_enter_restarts(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.sendline("import os; print('pid', os.getpid())")
    pid = int(c.expect(r"pid (\d+)").group(1))
    c.expect_prompt(2)
    os.kill(pid, signal.SIGKILL)
    c.expect("kernel died", timeout=10)  # at the idle prompt, with nothing typed
    c.sendline("")
    c.expect("kernel restarted", timeout=30)
    c.expect_prompt()
    c.sendline("print('alive again')")
    # The output line, not the echo of the typed cell; then the *next* prompt: a key
    # sent while the cell still runs meets a cooked terminal (^D turns into NUL).
    c.expect(r"(?m)^alive again")
    c.expect_prompt(2)
    c.ctrl("d")
    assert c.wait_exit(20) == 0
