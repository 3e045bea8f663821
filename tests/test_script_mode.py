"""Script mode from the user's side: where stderr and tracebacks go, how input() and
exit statuses behave, what a closed stdout does, and how non-Python kernels group
lines. Real kernels as real processes; the pure line grouper also by property."""

from __future__ import annotations

import ast
import json
import os
import pty
import select
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kconsole.script_input import split_python_cells

KCONSOLE = [sys.executable, "-m", "kconsole"]
KERNELS = ["python3", "builtin"]


def run(args: list[str], stdin: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        KCONSOLE + args, input=stdin, capture_output=True, text=True, timeout=timeout
    )


# -- stderr and tracebacks (item 19) ------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kernel", KERNELS)
def test_stderr_and_tracebacks_go_to_stderr_uncoloured(kernel: str) -> None:
    code = "import sys\nprint('out')\nprint('err', file=sys.stderr)\nraise KeyError('k')\n"
    p = run(["start", "--kernel", kernel], code)
    assert p.returncode == 1
    assert p.stdout == "out\n"
    assert p.stderr.startswith("err\n"), p.stderr
    assert "KeyError: 'k'" in p.stderr
    assert "\x1b[" not in p.stderr


@pytest.mark.timeout(60)
def test_tracebacks_on_a_terminal_stderr_keep_their_colours() -> None:
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(
            [*KCONSOLE, "start", "--kernel", "python3"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=slave,
        )
        os.close(slave)
        out, _ = p.communicate(b"print('ok')\n1/0\n", timeout=30)
        err = b""
        while select.select([master], [], [], 0.5)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            err += chunk
    finally:
        os.close(master)
    assert out == b"ok\n"
    assert b"ZeroDivisionError" in err and b"\x1b[" in err


# -- exit statuses -----------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kernel", KERNELS)
def test_sys_exit_gives_its_status_and_no_traceback(kernel: str) -> None:
    p = run(["start", "--kernel", kernel], "import sys\nprint('a')\nsys.exit(3)\nprint('b')\n")
    assert (p.returncode, p.stdout, p.stderr) == (3, "a\n", "")
    p = run(["start", "--kernel", kernel], "raise SystemExit('bye now')\nprint('b')\n")
    assert (p.returncode, p.stdout, p.stderr) == (1, "", "bye now\n")
    p = run(["start", "--kernel", kernel], "import sys\nsys.exit()\n")
    assert (p.returncode, p.stderr) == (0, "")


@pytest.mark.timeout(60)
def test_a_syntax_error_stops_the_script() -> None:
    p = run(["start", "--kernel", "builtin"], "print(1)\nx = = 2\nprint(2)\n")
    assert p.returncode == 1
    assert p.stdout == "1\n"
    assert "SyntaxError" in p.stderr


# -- input() -----------------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kernel", KERNELS)
def test_input_in_a_block_reads_the_lines_after_the_block(kernel: str) -> None:
    code = (
        "for i in range(2):\n"
        "    name = input()\n"
        "\n"
        "    print('hi', name)\n"
        "ann\n"
        "bob\n"
        "def ask():\n"
        "    return input('? ')\n"
        "answer = ask()\n"
        "42\n"
        "print('got', answer)\n"
    )
    p = run(["start", "--kernel", kernel], code)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "hi ann\nhi bob\n? got 42\n"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kernel", KERNELS)
def test_a_crlf_script_answers_input_without_the_cr(kernel: str) -> None:
    code = "if True:\r\n    a = input()\r\nab\r\nb = input()\r\ncd\r\nprint([a, b])\r\n"
    p = run(["start", "--kernel", kernel], code)
    assert (p.returncode, p.stdout) == (0, "['ab', 'cd']\n"), p.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kernel", KERNELS)
def test_a_coding_declaration_is_honoured_as_by_python3(kernel: str, tmp_path: Path) -> None:
    path = tmp_path / "latin.py"
    path.write_bytes(
        b"#!/usr/bin/env python3\n# -*- coding: latin-1 -*-\nprint('caf\xe9', len('\xe9'))\n"
    )
    want = subprocess.run([sys.executable, str(path)], capture_output=True, timeout=30)
    with path.open("rb") as f:
        got = subprocess.run(
            [*KCONSOLE, "start", "--kernel", kernel], stdin=f, capture_output=True, timeout=60
        )
    assert (got.returncode, got.stdout) == (0, want.stdout), got.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kernel", KERNELS)
def test_bytes_not_in_the_encoding_are_one_clear_line(kernel: str) -> None:
    p = subprocess.run(
        [*KCONSOLE, "start", "--kernel", kernel],
        input=b"print('a')\n\xff\xfe = 1\nprint('b')\n",
        capture_output=True,
        timeout=60,
    )
    assert (p.returncode, p.stdout) == (1, b"a\n")
    assert p.stderr.decode().splitlines() == [
        "kconsole: line 2 of stdin is not valid utf-8 (byte 0xff); declare its encoding with"
        " `# coding: ...`"
    ]


# -- a closed stdout (item 8) ------------------------------------------------------------

FLOOD = "import itertools\nfor i in itertools.count():\n    print('line', i)\n"


def _read_one_line_and_close(args: list[str]) -> tuple[subprocess.Popen[str], float, str]:
    p = subprocess.Popen(
        [*KCONSOLE, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert p.stdin is not None and p.stdout is not None and p.stderr is not None
    try:
        p.stdin.write(FLOOD)
        p.stdin.close()
        assert p.stdout.readline() == "line 0\n"
        p.stdout.close()  # as `head -1` does
        t0 = time.monotonic()
        p.wait(15)
        return p, time.monotonic() - t0, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kernel", KERNELS)
def test_a_closed_stdout_ends_the_script_at_once(kernel: str) -> None:
    p, elapsed, err = _read_one_line_and_close(["start", "--kernel", kernel])
    assert p.returncode == 1
    assert err == ""
    assert elapsed < 5, elapsed


@pytest.mark.timeout(60)
def test_a_closed_stdout_interrupts_the_cell_of_an_attached_kernel(
    shared_kernel: tuple[Any, Any],
) -> None:
    km, kc = shared_kernel
    p, elapsed, err = _read_one_line_and_close(["attach", "--existing", km.connection_file])
    assert p.returncode == 1
    assert err == ""
    assert elapsed < 5, elapsed
    # The kernel stopped flooding: it answers the next request at once.
    reply = kc.execute_interactive("print('still here')", timeout=10)
    assert reply["content"]["status"] == "ok"
    assert km.is_alive()


# -- other kernels -----------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_bash_kernel_groups_by_is_complete_and_runs_every_cell(bash_kernelspec: str) -> None:
    code = "for i in 1 2; do\n  echo n$i\ndone\n\nfalse\n\necho after\n"
    p = run(["start", "--kernel", "bash"], code)
    assert p.stdout.split() == ["n1", "n2", "after"], p.stderr
    assert p.returncode == 1


# -- IPython syntax ------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_ipython_magics_and_shell_lines() -> None:
    code = (
        "%%capture captured\n"
        "print('hidden')\n"
        "print('hidden too')\n"
        "\n"
        "print('captured', captured.stdout.split())\n"
        "!echo from-the-shell\n"
        "%time x = (1 +\n"
        "print('x is', x)\n"
    )
    p = run(["start", "--kernel", "python3"], code)
    lines = p.stdout.splitlines()
    assert lines[0] == "captured ['hidden', 'hidden', 'too']", p.stdout
    assert lines[1] == "from-the-shell"


# -- the grouper, by property ----------------------------------------------------------------

STATEMENTS = [
    "x = 1\n",
    "print(x)\n",
    "y = [\n    1,\n\n    2,\n]\n",
    "s = '''a\n\nb\n'''\n",
    "def f(a):\n    b = a\n\n    return b\n",
    "@dec\ndef g():\n    pass\n",
    "class C:\n    '''doc'''\n\n    def m(self):\n        return 1\n",
    "if x:\n    pass\nelif y:\n    pass\nelse:\n    pass\n",
    "try:\n    pass\nexcept E:\n    pass\nelse:\n    pass\nfinally:\n    pass\n",
    "for i in r:\n    continue\nelse:\n    pass\n",
    "while x: x -= 1\n",
    "with a as b, c:\n    pass\n",
    "z = 1 + \\\n    2\n",
    "t = {'k': (1,\n2)}\n",
    "if True:\n\tpass\n",
    "match p:\n    case 1:\n        pass\n",
    "@a\n\n# why\n@b(1,\n2)\nclass K:\n    pass\n",
    "if __name__ == '__main__':\n    main()\n",
    "def h():\n    x = 1\n# col-0 comment in a body\n\n    return x\n",
    "q = '''\ndef not_code():\n\nelse:\n'''\n",
    "w = (1 +\n2\n)\n",
    "async def co():\n    await x\n",
    "if a: b()\nelse: c()\n",
    "d = {'k':\n    lambda v:\n        v}\n",
    "with a, \\\nb:\n    pass\n",
    "u = 1; v = 2\n",
    "print('#', \"(\", '\\'')\n",
]
FILLER = st.sampled_from(["", "\n", "\n\n", "# note\n", "   \n"])


@settings(max_examples=60, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(FILLER, st.sampled_from(STATEMENTS)), min_size=1, max_size=8))
def test_valid_scripts_split_into_one_compilable_cell_per_statement(
    parts: list[tuple[str, str]],
) -> None:
    source = "".join(filler + stmt for filler, stmt in parts)
    cells = split_python_cells(source)
    # One cell per top-level logical line (statements joined by ";" share one).
    assert len(cells) == len({node.lineno for node in ast.parse(source).body})
    for cell in cells:
        compile(cell, "<cell>", "exec")

    # Nothing is lost but blank lines.
    def code(text: str) -> list[str]:
        return [ln for ln in text.splitlines() if ln.strip()]

    assert code("".join(cells)) == code(source)


@settings(max_examples=200, deadline=1000)
@given(st.text(alphabet=st.sampled_from(list("ab :#'\"\\()[]{}@\n\t\r%!")), max_size=200))
def test_any_text_splits_without_losing_code(text: str) -> None:
    # Every line but blank lines and comments stays, in order, except string literal
    # statements at the very end (they do nothing).
    def code(text: str) -> list[str]:
        lines = (text + "\n").replace("\r\n", "\n").replace("\r", "\n").split("\n")
        return [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]

    kept, want = code("".join(split_python_cells(text))), code(text)
    assert kept == want[: len(kept)]
    if len(kept) < len(want):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes in the strings dropped
            dropped = ast.parse("\n".join(want[len(kept) :])).body
        assert all(isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) for s in dropped)


@pytest.mark.timeout(60)
def test_an_error_told_only_in_the_reply_is_shown_and_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kdir = tmp_path / "kernels" / "reply-only-errors"
    kdir.mkdir(parents=True)
    argv = [sys.executable, str(Path(__file__).with_name("hostile_script_kernel.py"))]
    spec = {"argv": [*argv, "-f", "{connection_file}"], "display_name": "R", "language": "python"}
    (kdir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    p = run(["start", "--kernel", "reply-only-errors"], "print(1)\n1/0\nprint(2)\n")
    assert (p.returncode, p.stdout) == (1, "1\n"), p.stderr
    assert "ZeroDivisionError: division by zero" in p.stderr
