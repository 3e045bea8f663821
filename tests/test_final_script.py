"""Script mode from the user's side: scripts shaped like real ones, compared with python3
on both Python kernels, and a reader that leaves while the script is quiet."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from ptyconsole import Gate

KERNELS = ["python3", "builtin"]

#: Scripts whose top-level statements are no bare expressions and that read no input:
#: README promises the stdout and status of ``python3 FILE``.
CORPUS: dict[str, str] = {
    "dataclass_sorted_property": """\
        from __future__ import annotations
        import sys
        from dataclasses import dataclass, field
        from typing import Iterator


        @dataclass
        class Item:
            name: str
            price: float
            tags: list[str] = field(default_factory=list)

            @property
            def label(self) -> str:
                return f"{self.name:>8}|{self.price:8.2f}"


        class Inventory:
            def __init__(self) -> None:
                self.items: list[Item] = []

            def __iter__(self) -> Iterator[Item]:

                yield from sorted(
                    self.items,
                    key=lambda i: (
                        -i.price,
                        i.name,
                    ),
                )


        inv = Inventory()
        for n, p in [("apple", 1.5), ("pear", 2.25), ("kiwi", 1.5), ("\u03a9mega", 9.0)]:
            inv.items.append(Item(n, p, tags=[n[0]]))

        for it in inv:
            print(it.label)

        counts = {
            k: v
            for k, v in sorted(
                {"b": 2, "a": 1}.items()
            )
        }
        print(counts, sep="", end="!\\n")
        print("x", "y", sep="--", end="")
        print()
        print("err between", file=sys.stderr)
        print("after err")
        """,
    "loops_else_closures_cm": """\
        total = 0
        def gen(n):
            for i in range(n):
                if i % 3 == 0:
                    continue
                yield i

        for x in gen(10):
            try:
                if x == 7:
                    raise ValueError(x)
                total += x
            except ValueError as e:
                print("skip", e)
                continue
            finally:
                print("f", x, end=" ")
        else:
            print("\\nfor-else ran")
        i = 0
        while i < 3:
            i += 1
        else:
            print("while-else", i)
        class CM:
            def __enter__(self):
                print("enter")
                return self
            def __exit__(self, *a):
                print("exit", a[0].__name__ if a[0] else None)
                return True

        with CM() as c:
            raise KeyError("x")
        print("suppressed", total)
        def outer():
            count = 0
            def inc():
                nonlocal count
                count += 1
                return count
            return inc
        f = outer(); _ = f(); print(f())
        def fib(n): return n if n < 2 else fib(n - 1) + fib(n - 2)
        print([fib(k) for k in range(12)])
        """,
    "comment_col0_between_if_else": """\
        x = 1
        if x:
            print("a")
        # a comment at column 0

        else:
            print("b")
        try:
            print("t")

        # c
        except Exception:
            pass
        print("end")
        """,
    "black_style_continuations": """\
        result = sum(
            x * x
            for x in range(10)
        )
        value = (1 +
        2 +
        3)
        d = {
        "k": 1,
        }
        y = 1 + \\
            2
        def f(
            a,
            b=2,
        ):
            return a + b
        print(result, value, d, y, f(
            1,
        ))
        """,
    "main_sys_exit_return": """\
        #!/usr/bin/env python3
        import sys
        def main() -> int:
            print("in main")
            return 4
        if __name__ == "__main__":
            sys.exit(main())
        """,
    "sys_exit_message_partial_line": """\
        import sys
        print("partial", end="")
        sys.exit("fatal message")
        """,
    "exit_in_try_finally": """\
        import sys
        try:
            sys.exit(2)
        finally:
            print("cleanup")
        """,
    "exception_from_generator": """\
        class MyError(Exception):
            pass
        def g():
            yield 1
            raise MyError("from gen")
        for v in g():
            print(v)
        print("never")
        """,
    "assert_fails": """\
        print("one")
        assert 1 + 1 == 3, "math broke"
        print("never")
        """,
    "warning_then_exit_code": """\
        import warnings, sys
        print("a")
        warnings.warn("careful")
        print("b")
        sys.exit(3)
        """,
    "thread_outlives_main": """\
        import threading
        def work():
            for _ in range(3):
                print("thread", flush=True)
        t = threading.Thread(target=work)
        print("main done")
        t.start()
        """,
}


def _env(jupyter_dirs: Path) -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("name", sorted(CORPUS))
def test_script_like_python3(name: str, kernel: str, jupyter_dirs: Path, tmp_path: Path) -> None:
    code = textwrap.dedent(CORPUS[name])
    script = tmp_path / "s.py"
    script.write_text(code, encoding="utf-8")
    env = _env(jupyter_dirs)
    want = subprocess.run(
        [sys.executable, str(script)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
        env=env,
    )
    with script.open("rb") as f:
        got = subprocess.run(
            [sys.executable, "-m", "kconsole", "start", "--kernel", kernel],
            stdin=f,
            capture_output=True,
            timeout=50,
            env=env,
        )
    assert (got.stdout.decode(), got.returncode) == (want.stdout.decode(), want.returncode), (
        got.stderr.decode()
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kernel", KERNELS)
def test_reader_gone_while_cell_is_quiet(kernel: str, jupyter_dirs: Path, tmp_path: Path) -> None:
    """`| head -1` on a script that prints a line and then computes without output:
    kconsole exits at once (status 1) rather than when the cell next prints."""
    # The cell stays quiet until the test ends (its gate is released only then): an
    # exit can only be the console's own.
    gate = Gate(tmp_path / "released-at-the-end", marker="header")
    code = gate.cell() + '\nprint("late")\n'
    proc = subprocess.Popen(
        [sys.executable, "-m", "kconsole", "start", "--kernel", kernel],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(jupyter_dirs),
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(code.encode())
        proc.stdin.close()
        assert proc.stdout.readline() == b"header\n"
        proc.stdout.close()  # the reader leaves, as head does
        status = proc.wait(timeout=30)
        assert status == 1
    finally:
        gate.release()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kernel", KERNELS)
def test_reader_gone_while_code_is_still_to_come(kernel: str, jupyter_dirs: Path) -> None:
    """`(echo 'print(1)'; sleep 60; ...) | kconsole | head -1`: kconsole exits once the
    reader leaves, not when (if ever) the next code arrives."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "kconsole", "start", "--kernel", kernel],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(jupyter_dirs),
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        # The last cell's stderr says it is done; kconsole then waits for more code
        # (the block after it is not complete) with stdin open.
        proc.stdin.write(b'import sys\nprint("header")\nprint("ready", file=sys.stderr)\nif 1:\n')
        proc.stdin.flush()
        assert proc.stdout.readline() == b"header\n"
        assert proc.stderr is not None and proc.stderr.readline() == b"ready\n"
        proc.stdout.close()
        status = proc.wait(timeout=15)
        assert status == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()
