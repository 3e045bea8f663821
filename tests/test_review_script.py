"""Script mode, found by review: scripts that ran differently from ``python3 FILE`` (or
``bash FILE``), hung, or kept their output back. Real kernels as real processes; each
Python case is compared with python3 itself."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

KCONSOLE = [sys.executable, "-m", "kconsole"]
KERNELS = ["python3", "builtin"]


def python3(source: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """What ``python3 FILE`` does with ``source``."""
    script = tmp_path / "script.py"
    script.write_text(source)
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30)


def kconsole(args: list[str], stdin: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        KCONSOLE + args, input=stdin, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kernel", KERNELS)
def test_a_backslash_before_a_blank_line_ends_the_statement_as_in_python3(
    kernel: str, tmp_path: Path
) -> None:
    # Joined with the blank line, `x = "a" "b"\` is a complete statement (mpmath's tests
    # write long constants so); the blank line must not be dropped from its cell.
    source = 'x = "a" \\\n"b"\\\n\nprint(x)\nif x:\n    y = 1 + \\\n2\\\n\n    print(y)\n'
    ref = python3(source, tmp_path)
    assert (ref.returncode, ref.stdout) == (0, "ab\n3\n")
    p = kconsole(["start", "--kernel", kernel], source)
    assert (p.returncode, p.stdout) == (0, ref.stdout), p.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kernel", KERNELS)
def test_a_raised_keyboard_interrupt_exits_as_python3_does(kernel: str, tmp_path: Path) -> None:
    source = "print('before')\nraise KeyboardInterrupt\nprint('after')\n"
    ref = python3(source, tmp_path)
    assert (ref.returncode, ref.stdout) == (-2, "before\n")  # killed by its own SIGINT
    p = kconsole(["start", "--kernel", kernel], source)
    # What a shell shows for python3 ($? is 128 + SIGINT).
    assert (p.returncode, p.stdout) == (130, ref.stdout)
    assert "KeyboardInterrupt" in p.stderr


@pytest.mark.timeout(90)
def test_bash_blank_lines_inside_blocks_and_heredocs_neither_split_nor_hang(
    bash_kernelspec: str, tmp_path: Path
) -> None:
    # bash_kernel answers is_complete with "unknown": cutting cells at blank lines sent
    # half a `for` loop or of a heredoc, and the kernel waited for the rest for ever.
    source = (
        "echo start\n"
        "for i in 1 2; do\n"
        '  echo "i=$i"\n'
        "\n"
        "  echo after-blank\n"
        "done\n"
        "cat <<END\n"
        "doc 1\n"
        "\n"
        "doc 3\n"
        "END\n"
        "f() {\n"
        "\n"
        '  echo "in f $1"\n'
        "}\n"
        "f arg\n"
        'echo "two \\\n'
        'lines"\n'
        'echo "a quoted\n'
        "\n"
        'blank line"\n'
        "x=$(echo sub\n"
        "\n"
        "echo stitution)\n"
        'echo "$x"\n'
        "echo end\n"
    )
    script = tmp_path / "script.sh"
    script.write_text(source)
    ref = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=30)
    p = kconsole(["start", "--kernel", bash_kernelspec], source, timeout=60)
    assert p.stdout.replace("\r\n", "\n") == ref.stdout, p.stderr
    assert p.returncode == 0


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kernel", KERNELS)
def test_output_reaches_a_pipe_while_the_cell_runs_and_a_closed_pipe_stops_it(
    kernel: str,
) -> None:
    # python3 with flush=True: each line is in the pipe at once, and `| head -1` stops
    # the script at the next print. kconsole held the cell's output until it ended.
    # The cell never ends by itself: only the closed pipe can end the script.
    source = (
        "import itertools, time\nfor i in itertools.count():\n"
        "    print('line', i, flush=True)\n    time.sleep(0.2)\n"
    )
    # As users run it: PYTHONUNBUFFERED (set in some CI) would hide the defect.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    p = subprocess.Popen(
        [*KCONSOLE, "start", "--kernel", kernel],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert p.stdin is not None and p.stdout is not None and p.stderr is not None
    try:
        p.stdin.write(source.encode())
        p.stdin.close()
        fd = p.stdout.fileno()
        got = b""
        deadline = time.monotonic() + 20  # start-up included
        while b"\n" not in got and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.5)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                got += chunk
        assert got.startswith(b"line 0\n"), got
        p.stdout.close()  # as `head -1` does
        p.wait(15)
        assert p.returncode == 1
        assert p.stderr.read() == b""
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("end", ["", "import sys\nsys.exit(3)\n", "raise ValueError('v')\n"])
def test_the_script_waits_for_its_threads_as_python3_does(
    kernel: str, end: str, tmp_path: Path
) -> None:
    # python3 joins non-daemon threads before it exits, however the main code ended.
    source = (
        "import threading, time\n"
        "def work():\n"
        "    time.sleep(0.5)\n"
        "    print('worker done')\n"
        "threading.Thread(target=work).start()\n"
        "print('main done')\n" + end
    )
    ref = python3(source, tmp_path)
    assert ref.stdout == "main done\nworker done\n"
    p = kconsole(["start", "--kernel", kernel], source)
    assert (p.returncode, p.stdout) == (ref.returncode, ref.stdout), p.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize(("signame", "status"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_ctrl_c_during_a_script_exits_130_and_leaves_no_kernel(
    kernel: str, signame: str, status: int
) -> None:
    # python3 dies of the SIGINT (a shell shows 130); kconsole said 143, as for SIGTERM
    # (which keeps its 143).
    import signal

    source = "print('first', flush=True)\nimport time\ntime.sleep(30)\nprint('never')\n"
    p = subprocess.Popen(
        [*KCONSOLE, "start", "--kernel", kernel],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # A terminal's Ctrl-C: SIGINT not ignored, whatever the test runner inherited.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert p.stdin is not None and p.stdout is not None
    try:
        p.stdin.write(source.encode())
        p.stdin.close()
        assert p.stdout.readline() == b"first\n"
        p.send_signal(getattr(signal, signame))
        p.wait(20)
        assert (p.returncode, p.stdout.read()) == (status, b"")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    runtime = Path(os.environ["JUPYTER_RUNTIME_DIR"])
    assert not list(runtime.glob("kernel-*.json"))  # shut down, its file removed
