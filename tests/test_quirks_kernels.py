"""kconsole against kernels nobody here wrote, installed from PyPI: xeus-python (C++),
bash_kernel and echo_kernel (ipykernel-based, but not IPython), deno (Rust).

Each kernel's quirk is what a user of it meets: bash_kernel goes idle without an
execute_reply after `for i in 1 2; do` and reports failures with an empty ename and
traceback; echo_kernel's output never ends with a newline; bash's colours land in a
pipe; xeus-python cannot bind an ipc socket whose path is longer than 23 characters.
Their kernelspecs live in a directory of this module only (JUPYTER_PATH), so the
user's or the venv's never leak in; a kernel whose package is missing is skipped.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ptyconsole import KCONSOLE, PtyConsole


def _deno() -> str | None:
    try:
        from deno import find_deno_bin  # the PyPI package's own binary

        return str(find_deno_bin())
    except Exception:
        return shutil.which("deno")


def _argv() -> dict[str, list[str] | None]:
    """Each kernel's argv, None when it is not installed."""
    py = sys.executable

    def module(name: str, *argv: str) -> list[str] | None:
        return [py, *argv] if importlib.util.find_spec(name) is not None else None

    deno = _deno()
    return {
        "echo": module("echo_kernel", "-m", "echo_kernel", "-f", "{connection_file}"),
        "bash": module("bash_kernel", "-m", "bash_kernel", "-f", "{connection_file}"),
        "xpython": module("xpython_launcher", "-m", "xpython_launcher", "-f", "{connection_file}"),
        "deno": [deno, "jupyter", "--kernel", "--conn", "{connection_file}"] if deno else None,
    }


_LANGUAGE = {"echo": "text", "bash": "bash", "xpython": "python", "deno": "typescript"}


class Foreign:
    """The kernels' specs in a JUPYTER_PATH dir of this module only."""

    def __init__(self, root: Path) -> None:
        self.argv = _argv()
        for name, argv in self.argv.items():
            if argv is None:
                continue
            d = root / "kernels" / name
            d.mkdir(parents=True)
            spec = {"argv": argv, "display_name": name, "language": _LANGUAGE[name]}
            (d / "kernel.json").write_text(json.dumps(spec))
        self.path = str(root)

    def need(self, name: str) -> None:
        """Skip the test unless kernel ``name`` is installed."""
        if self.argv[name] is None:
            pytest.skip(f"{name} kernel not installed (pip install '.[test]' installs it)")

    def console(self, kernel: str) -> PtyConsole:
        self.need(kernel)
        return PtyConsole(["start", "-k", kernel], env={"JUPYTER_PATH": self.path})

    def script(
        self, kernel: str, code: str, *args: str, timeout: float = 60
    ) -> subprocess.CompletedProcess[bytes]:
        """Script mode: ``code`` piped to ``kconsole start -k kernel``; stdout a pipe."""
        self.need(kernel)
        return subprocess.run(
            [*KCONSOLE, "start", "-k", kernel, *args],
            input=code.encode(),
            capture_output=True,
            timeout=timeout,
            env={**os.environ, "JUPYTER_PATH": self.path},
        )


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Foreign:
    return Foreign(tmp_path_factory.mktemp("foreign-specs"))


# -- 1, 3: bash_kernel --------------------------------------------------------------------


@pytest.mark.timeout(90)
def test_bash_repl_error_without_ename_and_idle_without_reply(foreign: Foreign) -> None:
    """`false` shows bash_kernel's evalue (the status) alone, not ": 1"; a cell the kernel
    goes idle on without answering (`for` alone) ends after a grace, with one line."""
    c = foreign.console("bash")
    try:
        c.expect_prompt(1, timeout=30)
        c.sendline("false")
        c.expect_prompt(2)
        c.settle()
        screen = c.display()
        at = next(i for i, line in enumerate(screen) if line.startswith("In [1]: false"))
        assert screen[at + 1 : at + 2] == ["1"], screen
        assert not any(line.startswith(": ") for line in screen), screen
        t0 = time.monotonic()
        c.sendline("for i in 1 2; do")
        c.expect(r"no execute_reply")
        # bash_kernel counted the cell (its execute_input said 2): the prompt says so.
        c.expect_prompt(3)
        assert time.monotonic() - t0 < 10
        c.ctrl("d")
        assert c.wait_exit(20) == 0
    finally:
        c.close()


def test_bash_script_colours_stripped_and_idle_without_reply_fails_the_cell(
    foreign: Foreign,
) -> None:
    """Item 4: bash's colours do not land in a pipe. Item 1: the cell the kernel goes
    idle on without answering fails after a grace, with one line; the rest ran."""
    t0 = time.monotonic()
    p = foreign.script(
        "bash", r"printf '\033[31mred\033[0m\n'" + "\necho before\n\nfor i in 1 2; do\n"
    )
    assert time.monotonic() - t0 < 30
    assert p.stdout == b"red\nbefore\n"
    err = p.stderr.decode()
    assert "no execute_reply" in err and err.count("\n") == 1, err
    assert p.returncode == 1


# -- 2: output without a final newline ----------------------------------------------------


def test_echo_repl_prompt_starts_on_its_own_line(foreign: Foreign) -> None:
    """echo_kernel's output is the cell itself, without a newline: the next prompt must
    not be drawn after it."""
    c = foreign.console("echo")
    try:
        c.expect_prompt(1, timeout=30)
        c.sendline("parrot")
        c.expect_empty_prompt(2)
        c.settle()
        screen = c.display()
        at = screen.index("In [1]: parrot")
        assert screen[at + 1] == "parrot", screen
        c.ctrl("d")
        assert c.wait_exit(20) == 0
    finally:
        c.close()


def test_echo_script_output_is_the_kernels_bytes(foreign: Foreign) -> None:
    p = foreign.script("echo", "one\ntwo\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"one\ntwo\n"


# -- 8: ipc with xeus-python --------------------------------------------------------------


def test_xpython_over_ipc(foreign: Foreign, jupyter_dirs: Path) -> None:
    """xeus-python binds ipc sockets of at most 23 characters: kconsole's must be short."""
    p = foreign.script(
        "xpython", "import sys\nprint(6 * 7)\nsys.stdout.write('partial')\n", "--transport", "ipc"
    )
    assert p.stderr == b"" and p.returncode == 0, p.stderr
    assert p.stdout == b"42\npartial"  # as python3 prints it: no newline added
    left = list((jupyter_dirs / "runtime").iterdir())
    assert left == [], left


# -- deno (Rust kernel) -------------------------------------------------------------------


def test_deno_script_output_error_and_colours(foreign: Foreign) -> None:
    p = foreign.script(
        "deno",
        'console.log(6 * 7)\nconsole.log("\\x1b[31mred\\x1b[0m")\nthrow new Error("boom")\n',
    )
    assert p.returncode == 1
    assert p.stdout == b"42\nred\n"
    assert b"Error: boom" in p.stderr and b"\x1b[" not in p.stderr
