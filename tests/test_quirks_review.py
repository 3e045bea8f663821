"""What the review of issue 16's client side found: Ctrl-C in script mode pressed
again while kconsole leaves, or while a script's threads are waited for; the blank line
before the prompt after coloured output; script mode's error text."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from ptyconsole import KCONSOLE


def _script(code: str) -> subprocess.Popen[bytes]:
    """`kconsole start -k python3` reading ``code`` from a pipe left open (no EOF)."""
    p = subprocess.Popen(
        [*KCONSOLE, "start", "-k", "python3"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert p.stdin is not None
    p.stdin.write(code.encode())
    p.stdin.flush()
    return p


def _hammer(p: subprocess.Popen[bytes]) -> tuple[int, bytes]:
    """Ctrl-C every 20 ms until kconsole exits (a user pressing it again and again):
    the presses land in whatever kconsole is doing on its way out. Status, stderr."""
    deadline = time.monotonic() + 20
    while p.poll() is None and time.monotonic() < deadline:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(0.02)
        except subprocess.TimeoutExpired:
            pass
    _, err = p.communicate(timeout=20)
    return p.returncode, err


@pytest.mark.timeout(60)
def test_script_ctrl_c_pressed_again_while_leaving_exits_130_without_traceback() -> None:
    p = _script("print('ready', flush=True)\n")  # then waits for the next cell
    try:
        assert p.stdout is not None and p.stdout.readline() == b"ready\n"
        status, err = _hammer(p)
        # (The first press may still find the cell running: its KeyboardInterrupt is
        # the kernel's to show. None of kconsole's own frames may be.)
        assert b"CancelledError" not in err and b"kconsole/" not in err, err.decode()
        assert status == 130
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()


@pytest.mark.timeout(60)
def test_script_ctrl_c_while_its_threads_are_waited_for_exits_130_quietly() -> None:
    """python3 waits for non-daemon threads at exit, and Ctrl-C then exits 130; the
    code kconsole runs to wait for them is not the user's: no traceback of it."""
    # The thread tells when the kernel's main thread is in kconsole's wait for it.
    p = _script(
        "import sys, threading, time\n"
        "def worker():\n"
        "    main = threading.main_thread().ident\n"
        "    while True:\n"
        "        f = sys._current_frames().get(main)\n"
        "        while f is not None and 'join_threads' not in f.f_code.co_name:\n"
        "            f = f.f_back\n"
        "        if f is not None:\n"
        "            print('waited for', flush=True)\n"
        "            break\n"
        "        time.sleep(0.01)\n"
        "    time.sleep(30)\n"
        "threading.Thread(target=worker).start()\n"
        "print('started', flush=True)\n"
    )
    try:
        assert p.stdin is not None and p.stdout is not None
        p.stdin.close()  # the script ends: its thread is waited for
        assert p.stdout.readline() == b"started\n"
        assert p.stdout.readline() == b"waited for\n"
        p.send_signal(signal.SIGINT)
        assert p.wait(15) == 130
        err = p.stderr.read() if p.stderr is not None else b""
        assert b"_kconsole" not in err and b"threading.py" not in err, err.decode()
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()


@pytest.mark.parametrize(
    "content",
    [
        {"name": "stderr", "text": "oops\n"},  # kconsole colours stderr red
        {"name": "stdout", "text": "\x1b[32mgreen\n\x1b[0m"},  # a kernel's reset last
    ],
)
def test_coloured_output_ending_a_line_needs_no_extra_line_before_the_prompt(
    content: dict[str, Any],
) -> None:
    from kconsole.output import OutputPrinter
    from kconsole.protocol import Message

    out = io.StringIO()
    printer = OutputPrinter(out, color=True, tty=False)
    printer.handle(Message(header={"msg_type": "stream"}, content=content))
    printer.end_line()  # what the REPL does before its next prompt
    assert out.getvalue().endswith("\n\x1b[0m"), repr(out.getvalue())


def test_script_mode_shows_an_error_with_a_malformed_traceback_as_the_repl_does() -> None:
    from kconsole.output import OutputPrinter
    from kconsole.script import ScriptRunner

    err = io.StringIO()
    conn: Any = SimpleNamespace(client=SimpleNamespace())  # _error talks to no kernel
    runner = ScriptRunner(conn, OutputPrinter(io.StringIO()), stdin=io.StringIO(), stderr=err)
    runner._error({"ename": "E", "evalue": "v", "traceback": "abc"})
    runner._error({"ename": "", "evalue": "2", "traceback": []})
    assert err.getvalue() == "E: v\n2\n"


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="no pidfd on this system")
@pytest.mark.timeout(30)
def test_the_reaper_follows_the_kernel_process_not_whatever_has_its_pid(tmp_path: Path) -> None:
    """The watcher left for a kept kernel waits on the pidfd kconsole holds: its pid may
    name another, living process by the time the watcher starts (pid reuse, shown here
    by the pid of this test's own process), and the files go when the kernel exits."""
    from kconsole.reaper import watch

    kept = tmp_path / "kernel-x.json"
    kept.write_text("{}")
    kernel = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    fd = os.pidfd_open(kernel.pid)
    try:
        watch(os.getpid(), [kept], pidfd=fd)  # the pid: alive as long as the test
    finally:
        os.close(fd)
    assert kernel.stdin is not None
    kernel.stdin.close()  # the "kernel" ends
    kernel.wait(10)
    deadline = time.monotonic() + 10
    while kept.exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the file: no event tells its removal
    assert not kept.exists()


@pytest.mark.timeout(60)
def test_script_ctrl_c_during_input_leaves_while_stdin_stays_open() -> None:
    """Ctrl-C while kconsole waits for an input() answer from a stdin whose writer goes
    on (a fifo, a slow producer): it leaves with 130 then, not once stdin ends."""
    shown = b"? "
    p = _script("x = input('? ')\n")
    try:
        assert p.stdout is not None
        got = b""
        while not got.endswith(shown):
            chunk = os.read(p.stdout.fileno(), 100)
            assert chunk, got
            got += chunk
        p.send_signal(signal.SIGINT)
        assert p.wait(15) == 130
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
