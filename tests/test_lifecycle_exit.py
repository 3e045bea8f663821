"""Every way out of the console, and what becomes of the kernel.

A kernel kconsole did not start (``attach``), or was told to keep (``start
--keep-kernel``), stays running whichever way the console ends; one it started
without ``--keep-kernel`` is shut down. Each case checks the kernel with a real
process check or a real request through jupyter_client, never kconsole's word.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import zmq
from jupyter_client.blocking.client import BlockingKernelClient
from ptyconsole import PtyConsole, pid_alive, wait_gone

from kconsole import paths
from kconsole.kernel_connection import exit_command

KCONSOLE = [sys.executable, "-m", "kconsole"]


def answers(connection_file: str | Path, timeout: float = 15.0) -> bool:
    """Whether the kernel behind ``connection_file`` still runs code (a real request)."""
    ctx = zmq.Context()  # its own, destroyed after: no sockets left open across tests
    kc = BlockingKernelClient(connection_file=str(connection_file), context=ctx)
    kc.load_connection_file()
    kc.start_channels(hb=False)  # no heartbeat thread to outlive the context
    try:
        kc.wait_for_ready(timeout=timeout)
        reply = kc.execute_interactive("1", timeout=timeout)
        return bool(reply["content"]["status"] == "ok")
    except RuntimeError:  # wait_for_ready: "Kernel didn't respond in N seconds"
        return False
    finally:
        kc.stop_channels()
        ctx.destroy(linger=0)


def shutdown(connection_file: str | Path, pid: int | None) -> None:
    """Stop a kernel a test kept alive."""
    ctx = zmq.Context()
    kc = BlockingKernelClient(connection_file=str(connection_file), context=ctx)
    kc.load_connection_file()
    kc.start_channels(hb=False)  # no heartbeat thread to outlive the context
    if pid is None:
        # Known for certain, so that a kernel deaf to the request is killed: a kept
        # kernel left behind outlives the test run.
        pids: list[int] = []

        def hook(msg: dict) -> None:
            if msg["msg_type"] == "stream":
                pids.extend(int(w) for w in msg["content"]["text"].split() if w.isdigit())

        with contextlib.suppress(Exception):
            kc.execute_interactive("import os; print(os.getpid())", output_hook=hook, timeout=15)
        pid = pids[0] if pids else None
    with contextlib.suppress(Exception):
        msg_id = kc.shutdown()
        # Wait for the answer: a context destroyed with linger=0 drops a request
        # still queued, and the kernel never hears it.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            reply = kc.control_channel.get_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                break
    kc.stop_channels()
    ctx.destroy(linger=0)
    if pid is not None and not wait_gone(pid, 10):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def kernel_pid(c: PtyConsole) -> int:
    c.sendline("import os; print('pid', os.getpid())")
    pid = int(c.expect(r"pid (\d+)").group(1))
    c.expect_prompt(2)
    return pid


# -- start --keep-kernel ----------------------------------------------------------------


@pytest.mark.timeout(30)
def test_what_a_test_left_naming_its_jupyter_dirs_is_killed_when_it_ends(tmp_path: Path) -> None:
    # conftest's last word on kept kernels (jupyter_dirs): a process whose command line
    # names the dirs is killed; one that does not is left alone.
    from conftest import kill_processes_mentioning

    forever = [sys.executable, "-c", "import signal; signal.pause()"]
    left = subprocess.Popen([*forever, str(tmp_path / "runtime" / "kernel-left.json")])
    other = subprocess.Popen(forever)
    try:
        assert kill_processes_mentioning(tmp_path) == [left.pid]
        assert left.wait(10) == -signal.SIGKILL
        assert other.poll() is None
    finally:
        for proc in (left, other):
            proc.kill()
            proc.wait()


EXITS = ["exit", "quit", "exit()", "quit()", "ctrl-d", "sigterm", "sighup"]


def leave(c: PtyConsole, how: str) -> None:
    if how == "ctrl-d":
        c.ctrl("d")
    elif how == "sigterm":
        c.child.kill(signal.SIGTERM)
    elif how == "sighup":
        c.child.kill(signal.SIGHUP)
    else:
        c.sendline(how)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", EXITS)
def test_kept_kernel_survives_every_exit_and_the_note_is_true(console, how: str) -> None:
    c = console("start", "--kernel", "python3", "--keep-kernel")
    c.expect_prompt(1)
    pid = kernel_pid(c)
    files = list(paths.runtime_dir().glob("kernel-*.json"))
    assert len(files) == 1
    try:
        leave(c, how)
        c.wait_exit(20)
        if how not in ("sigterm", "sighup"):
            assert "kernel left running" in c.transcript
        assert answers(files[0]), f"`{how}` ended a kernel started with --keep-kernel"
        assert pid_alive(pid)
    finally:
        shutdown(files[0], pid)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["exit", "quit()", "ctrl-d", "sigterm"])
def test_owned_kernel_is_shut_down_on_every_exit(console, how: str) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    pid = kernel_pid(c)
    leave(c, how)
    c.wait_exit(20)
    assert wait_gone(pid, 10), f"`{how}` left the console's own kernel running"
    assert "left running" not in c.transcript


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["exit", "quit", "exit()", "ctrl-d", "sigterm", "sighup"])
def test_attach_never_ends_the_kernel(console, ipykernel: Any, how: str) -> None:
    c = console("attach", "--existing", ipykernel.connection_file)
    c.expect_prompt()
    c.sendline("print('at' + 'tached')")
    c.expect(r"(?m)^attached")
    c.expect_prompt()
    leave(c, how)
    c.wait_exit(20)
    assert answers(ipykernel.connection_file), f"`{how}` in attach ended someone else's kernel"
    assert ipykernel.is_alive()


@pytest.mark.timeout(60)
def test_exit_inside_code_that_ends_an_attached_ipykernel_is_said(console, ipykernel: Any) -> None:
    # exit() called by code (not typed as the whole cell) reaches ipykernel, which stops
    # itself: the console cannot prevent that, but must not pretend otherwise.
    c = console("attach", "--existing", ipykernel.connection_file)
    c.expect_prompt()
    c.sendline("def leave(): exit()")
    c.expect_prompt()
    c.sendline("leave()")
    c.expect("the kernel ended itself", timeout=20)
    c.wait_exit(20)
    assert not answers(ipykernel.connection_file, timeout=3)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("code", ["exit\n", "print('before')\nquit()\nprint('after')\n"])
def test_script_mode_exit_in_attach_keeps_the_kernel(ipykernel: Any, code: str) -> None:
    p = subprocess.run(
        [*KCONSOLE, "attach", "--existing", ipykernel.connection_file],
        input=code,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    assert "after" not in p.stdout  # exit still ends the script
    assert answers(ipykernel.connection_file), "exit in a script ended an attached kernel"


@pytest.mark.timeout(60)
def test_builtin_kernel_does_not_end_itself_on_exit(console) -> None:
    # The console decides: the built-in kernel only asks (an ask_exit payload).
    c = console("start", "--kernel", "builtin", "--keep-kernel")
    c.expect_prompt(1)
    pid = kernel_pid(c)
    files = list(paths.runtime_dir().glob("kernel-*.json"))
    try:
        c.sendline("def leave(): exit()")
        c.expect_prompt(3)
        c.sendline("leave()")
        c.wait_exit(20)
        assert "kernel left running" in c.transcript
        assert answers(files[0])
    finally:
        shutdown(files[0], pid)


@pytest.mark.timeout(60)
def test_exit_after_the_kernel_died_leaves_without_restarting_it(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    pid = kernel_pid(c)
    os.kill(pid, signal.SIGKILL)
    c.expect("Press Enter to restart it", timeout=10)
    c.sendline("exit")
    assert c.wait_exit(20) == 0
    assert "restarting the kernel" not in c.transcript
    assert list(paths.runtime_dir().glob("kernel-*.json")) == []  # nothing left behind


@pytest.mark.timeout(60)
def test_leaving_a_kept_kernel_while_it_starts_says_it_is_left_running(console) -> None:
    c = console("start", "--kernel", "python3", "--keep-kernel")
    c.expect(r"In \[1\]: .*starting")  # the prompt is up before the kernel answers
    c.ctrl("d")
    c.wait_exit(20)
    files = list(paths.runtime_dir().glob("kernel-*.json"))
    assert len(files) == 1
    try:
        assert answers(files[0]), "--keep-kernel: the kernel must outlive the console"
        assert "kernel left running" in c.transcript, "a kernel left running, not said"
    finally:
        shutdown(files[0], None)


PY = {"name": "python"}


@pytest.mark.parametrize(
    ("code", "language", "expected"),
    [
        ("exit", PY, False),
        ("quit\n", PY, False),
        ("  exit()  ", PY, False),
        ("exit(keep_kernel=True)", PY, True),
        ("quit( True );", PY, True),
        ("exit(keep_kernel=False)", PY, False),
        ("exit = 3", PY, None),
        # IPython reads a status as keep_kernel and stops itself, as for exit()
        ("exit(0)", PY, False),
        ("print(exit)", PY, None),
        ("exit\nprint(1)", PY, None),
        ("exit", {"name": "bash"}, None),  # bash_kernel restarts its shell by itself
        ("exit", {}, None),
    ],
)
def test_exit_command_recognises_only_the_whole_cell(
    code: str, language: dict[str, str], expected: bool | None
) -> None:
    assert exit_command(code, language) is expected


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--keep-kernel"], "x = 41\n"),
        (["--keep-kernel"], "x = 41\nexit(keep_kernel=True)\nprint('after')\n"),
    ],
    ids=["--keep-kernel", "exit(keep_kernel=True)"],
)
def test_script_mode_says_where_a_kept_kernel_stays_and_it_does(
    jupyter_dirs: Path, args: list[str], code: str
) -> None:
    # A script's kernel left running is said on stderr as in the REPL (stdout stays the
    # script's output), and the command it names reaches that kernel, x and all.
    p = subprocess.run(
        [*KCONSOLE, "start", "--kernel", "builtin", *args],
        input=code,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout == "", p.stdout  # nothing printed, `after` not run
    line = p.stderr.strip()
    assert line.startswith("kconsole: kernel left running; attach with `kconsole attach"), line
    command = line.split("`")[1].split()
    files = list((jupyter_dirs / "runtime").glob("kernel-*.json"))
    assert len(files) == 1 and command[-1] == str(files[0])
    try:
        again = subprocess.run(
            [*KCONSOLE, *command[1:]],
            input="print(x + 1)\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (again.returncode, again.stdout) == (0, "42\n"), again.stderr
    finally:
        shutdown(files[0], None)


@pytest.mark.timeout(60)
def test_script_mode_exit_keep_kernel_on_a_kernel_that_cannot_be_kept_says_why(
    jupyter_dirs: Path,
) -> None:
    # Started without --keep-kernel, the kernel watches our pid: it cannot stay, and the
    # script says so in one line rather than keeping quiet about the request.
    p = subprocess.run(
        [*KCONSOLE, "start", "--kernel", "builtin"],
        input="exit(keep_kernel=True)\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    assert "use `kconsole start --keep-kernel` to keep it" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not list((jupyter_dirs / "runtime").glob("kernel-*.json"))
