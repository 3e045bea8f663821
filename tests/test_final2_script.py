"""Script mode byte for byte against ``python3 FILE``: what the final review of
non-interactive use found (REVIEW.md, findings 1 and 2). Both Python kernels."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

KCONSOLE = [sys.executable, "-m", "kconsole"]
KERNELS = ["python3", "builtin"]


def both(
    tmp_path: Path, kernel: str, code: str, stdin: str = "", piped: str | None = None
) -> tuple[str, str]:
    """stdout of ``kconsole start < piped`` (default: the code) and of
    ``python3 FILE < stdin``."""
    script = tmp_path / "s.py"
    script.write_text(code)
    ours = subprocess.run(
        [*KCONSOLE, "start", "--kernel", kernel],
        input=code if piped is None else piped,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ours.returncode == 0, ours.stderr
    theirs = subprocess.run(
        [sys.executable, str(script)], input=stdin, capture_output=True, text=True, timeout=30
    )
    return ours.stdout, theirs.stdout


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kernel", KERNELS)
def test_expression_statements_print_nothing(kernel: str, tmp_path: Path) -> None:
    # write() and os.system() return values that python3 never prints.
    code = (
        "import os, sys\n"
        "sys.stdout.write('partial')\n"
        "print()\n"
        "1 + 1\n"
        "os.system('true')\n"
        "print('end', end='')\n"
    )
    ours, theirs = both(tmp_path, kernel, code)
    assert theirs == "partial\nend"
    assert ours == theirs


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kernel", KERNELS)
def test_an_input_prompt_is_written_as_python3_writes_it(kernel: str, tmp_path: Path) -> None:
    # kconsole reads the answer from the line after the cell, python3 from stdin.
    code = "x = input('name? ')\nprint('got', x)\n"
    piped = "x = input('name? ')\nalice\nprint('got', x)\n"
    ours, theirs = both(tmp_path, kernel, code, stdin="alice\n", piped=piped)
    assert theirs == "name? got alice\n"
    assert ours == theirs


@pytest.mark.timeout(60)
def test_xeus_python_sys_exit_and_keyboard_interrupt_give_python3s_status(
    tmp_path: Path,
) -> None:
    # xeus-python names the exception "<class 'SystemExit'>", not "SystemExit".
    if importlib.util.find_spec("xpython_launcher") is None:
        pytest.skip("xeus-python not installed (pip install '.[test]' installs it)")
    spec = tmp_path / "kernels" / "xpython"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "xpython_launcher", "-f", "{connection_file}"]
    spec.joinpath("kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "xpython", "language": "python"})
    )
    env = {**os.environ, "JUPYTER_PATH": str(tmp_path)}
    for code, status in [
        ("print(1)\nimport sys\nsys.exit(3)\n", 3),
        ("raise KeyboardInterrupt\n", 130),
    ]:
        p = subprocess.run(
            [*KCONSOLE, "start", "--kernel", "xpython"],
            input=code,
            capture_output=True,
            text=True,
            timeout=40,
            env=env,
        )
        assert p.returncode == status, p.stderr
        if status == 3:
            assert p.stdout == "1\n" and "SystemExit" not in p.stderr, p.stderr
    assert p.stdout == "" and "KeyboardInterrupt" in p.stderr
