"""Reviewer's regression tests (final-b): interactive-console cases beyond the obvious ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import zmq
from jupyter_client import BlockingKernelClient
from ptyconsole import KERNELS


def answers(connection_file: str | Path, timeout: float = 15.0) -> bool:
    """Whether the kernel behind ``connection_file`` still runs code (a real request)."""
    ctx = zmq.Context()
    kc = BlockingKernelClient(connection_file=str(connection_file), context=ctx)
    kc.load_connection_file()
    kc.start_channels(hb=False)
    try:
        kc.wait_for_ready(timeout=timeout)
        reply = kc.execute_interactive("1", timeout=timeout)
        return bool(reply["content"]["status"] == "ok")
    except (RuntimeError, TimeoutError):
        return False
    finally:
        kc.stop_channels()
        ctx.destroy(linger=0)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("word", ["exit()  # done", "quit # bye", "exit;  # now"])
def test_exit_with_a_comment_in_attach_leaves_the_kernel_running(
    console: Any, ipykernel: Any, word: str
) -> None:
    # A trailing comment does not make `exit` code: sent to ipykernel, `exit() # done`
    # stopped the attached kernel (someone else's), and `exit # bye` became IPython's
    # `exit(# bye)`, a SyntaxError, leaving the user at the prompt.
    c = console("attach", "--existing", ipykernel.connection_file)
    c.expect_prompt()
    c.sendline("print('at' + 'tached')")
    c.expect(r"(?m)^attached")
    c.expect_prompt()
    c.sendline(word)
    assert c.wait_exit(20) == 0
    assert "SyntaxError" not in c.transcript
    assert "ended itself" not in c.transcript
    assert answers(ipykernel.connection_file), f"`{word}` ended the attached kernel"


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kernel", KERNELS)
def test_output_without_a_final_newline_keeps_its_own_line(console: Any, kernel: str) -> None:
    # The next prompt started right after the text ("abcIn [2]: "), and prompt_toolkit,
    # which draws as if it started at column 0, then wrote over it as the user typed.
    c = console("start", "--kernel", kernel, timeout=60)
    c.expect_prompt(1)
    c.sendline("print('ab' + 'c', end='')")
    c.expect_prompt(2)
    c.sendline("import sys; _ = [sys.stdout.write(f'\\rprog {i}/3') for i in range(3)]")
    c.expect_prompt(3)
    c.send("x = 12345")
    c.expect_cursor_line(r"In \[3\]: x = 12345")
    c.settle()
    screen = c.display()
    assert "abc" in screen, "\n".join(screen)
    assert "prog 2/3" in screen, "\n".join(screen)
    assert screen[screen.index("abc") + 1].startswith("In [2]: ")


@pytest.mark.timeout(60)
def test_late_output_without_a_newline_is_not_on_the_prompt_line(console: Any) -> None:
    # A thread's print(..., end='') after the cell ended went above the prompt, and the
    # prompt was redrawn on the same line after it ("LATEIn [2]: y = 1").
    c = console("start", "--kernel", "python3", timeout=60)
    c.expect_prompt(1)
    c.sendline(
        "import threading; "
        "threading.Timer(0.5, lambda: print('LA' + 'TE', end='', flush=True)).start()"
    )
    c.expect_prompt(2)
    c.send("y = 1")
    c.expect("LATE", timeout=10)
    c.send("23")
    c.expect_cursor_line(r"In \[2\]: y = 123")
    c.settle()
    screen = c.display()
    assert "LATE" in screen, "\n".join(screen)
