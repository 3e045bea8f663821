"""What the user reads when a started kernel dies, and what it must not read on every
start: a real console in a pty, real kernels, a real SIGKILL."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.mark.timeout(90)
def test_sigkill_of_the_kernel_is_one_line_naming_the_signal(console) -> None:
    # 80 columns: a note longer than the terminal wraps (mid-word, as the issue saw).
    c = console("start", "--kernel", "python3", cols=80)
    c.expect_prompt(1)
    c.sendline("import os; print('pid', os.getpid())")
    pid = int(c.expect(r"pid (\d+)").group(1))
    c.expect_prompt(2)
    os.kill(pid, signal.SIGKILL)
    m = c.expect(r"the kernel died[^\n]*\n")
    c.settle()
    note = m.group(0).strip()
    assert "killed by SIGKILL" in note, note
    assert "status -9" not in note and "Kernel is running over TCP" not in c.transcript
    # One screen line: the note fits in 80 columns, nothing of it spills onto the next.
    screen = c.display()
    rows = [i for i, ln in enumerate(screen) if "the kernel died" in ln]
    assert rows, screen
    assert screen[rows[-1]].strip().endswith(("restart it.", "SIGKILL.")), screen
    assert len(note) <= 80, note


def test_describe_exit_says_what_happened() -> None:
    from kconsole.launcher import describe_exit

    assert describe_exit(-signal.SIGKILL, "") == "killed by SIGKILL"
    assert describe_exit(-signal.SIGSEGV, "") == "killed by SIGSEGV"
    assert describe_exit(1, "") == "exited with status 1"
    assert describe_exit(0, "") == "exited with status 0"
    # A log line that explains nothing is left out ...
    noise = (
        "[I 2026-12-01 10:00:00] Kernel is running over TCP without encryption.\n"
        "NOTE: When using the `ipython kernel` entry point, Ctrl-C will not work."
    )
    assert describe_exit(-9, noise) == "killed by SIGKILL"
    # ... an error that does explain is quoted, shortened to keep the note on one line.
    tail = "Traceback (most recent call last):\n  File ...\nMemoryError: " + "x" * 300
    said = describe_exit(1, tail)
    assert said.startswith("exited with status 1: MemoryError: x")
    assert len(said) <= 80 and "\n" not in said
    # A logged error's message is quoted without its log prefix.
    logged = "[IPKernelApp] ERROR | No such comm target registered: x"
    assert describe_exit(1, logged) == "exited with status 1: No such comm target registered: x"


@pytest.mark.timeout(90)
def test_ipykernel_start_and_restart_show_no_debugger_warning(
    console, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The test suite's conftest sets this for every test; a user's shell does not.
    monkeypatch.delenv("PYDEVD_DISABLE_FILE_VALIDATION", raising=False)
    env = {k: v for k, v in os.environ.items() if k != "PYDEVD_DISABLE_FILE_VALIDATION"}
    c = console("start", "--kernel", "python3", env=env)
    c.expect_prompt(1)
    c.sendline("print('up', 6*7)")
    c.expect(r"up 42")
    c.expect_prompt(2)
    # Ctrl-X r restarts the kernel (see the README's key table).
    c.ctrl("x")
    c.send("r")
    c.expect(r"Restart the kernel\? \[y/N\]")
    c.send("y\r")  # the question is answered with Enter
    c.expect(r"kernel restarted")
    c.sendline("print('again', 6*7)")
    c.expect(r"again 42")
    c.expect_prompt(2)
    c.settle()
    assert not re.search(r"Debugger warning|frozen modules", c.transcript), c.transcript[-2000:]
    c.ctrl("d")
    assert c.wait_exit(20) == 0


@settings(max_examples=200, deadline=500)
@given(
    st.one_of(st.none(), st.integers(-70, 300)),
    st.text(max_size=400)
    | st.lists(
        st.sampled_from(
            [
                "MemoryError: \x1b]0;t\x07x",
                "Fatal Python error: \x9b2J",
                "[W 1] ERROR | \r\x1b[2J",
                "ok",
            ]
        ),
        max_size=4,
    ).map("\n".join),
)
def test_describe_exit_is_one_short_clean_line(returncode: int | None, tail: str) -> None:
    from kconsole.launcher import describe_exit

    said = describe_exit(returncode, tail)
    assert said and len(said) <= 80
    assert all(ch.isprintable() for ch in said), repr(said)


@pytest.mark.timeout(90)
def test_a_restart_whose_kernel_command_is_gone_is_one_line(
    console, jupyter_dirs: Path, tmp_path: Path
) -> None:
    # The kernel's interpreter vanishes while the console runs (a venv removed, a
    # package upgraded): Ctrl-X r cannot spawn it again, and says so in one line.
    python = tmp_path / "python-for-kernel"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    spec_dir = jupyter_dirs / "data" / "kernels" / "vanishing"
    spec_dir.mkdir(parents=True)
    argv = [str(python), "-m", "kconsole.kernel", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "Vanishing", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    c = console("start", "--kernel", "vanishing")
    c.expect_prompt(1)
    c.sendline("print('up', 6*7)")
    c.expect(r"up 42")
    c.expect_prompt(2)
    python.unlink()
    c.ctrl("x")
    c.send("r")
    c.expect(r"Restart the kernel\? \[y/N\]")
    c.send("y\r")
    c.expect(r"restart failed: cannot start the kernel again: [^\n]*python-for-kernel")
    c.expect(r"\[kernel dead\]")
    assert "exited with status 0" not in c.transcript  # the old kernel's exit is no news
    assert "Traceback" not in c.transcript
    assert "Unhandled exception" not in c.transcript
    c.ctrl("d")
    assert c.wait_exit(20) in (0, 1)
