"""Script mode runs a file as python3 does: a corpus of real-looking scripts, each run by
``python3 FILE`` and by ``kconsole start < FILE`` on ipykernel and on the built-in kernel,
must give the same stdout, the same exit status and (when it does not raise) the same stderr.

The scripts read no input (test_final2_script.py compares bare expressions and input())."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

KCONSOLE = [sys.executable, "-m", "kconsole"]

CORPUS: dict[str, str] = {}

CORPUS["issue_loop"] = """\
total = 0
for x in range(10):
    y = x * 2
    total += y

print(total)
"""

CORPUS["function_with_paragraphs"] = '''\
def summarize(values):
    """Mean and spread of values.

    Blank lines in a docstring and in the body do not end the function.
    """
    n = len(values)

    mean = sum(values) / n

    # spread: a comment after a blank line
    spread = max(values) - min(values)
# a comment at column 0 inside the body

    return mean, spread


m, s = summarize([3, 1, 4, 1, 5, 9, 2, 6])
print(f"mean={m:.3f} spread={s}")
'''

CORPUS["nested_blocks"] = """\
import math

for n in range(2, 30):
    if n % 2 == 0:
        if n % 4 == 0:
            print(n, "multiple of 4")
        elif n % 3 == 0:
            print(n, "even, multiple of 3")

        else:
            continue
    else:
        for d in range(3, int(math.sqrt(n)) + 1, 2):
            if n % d == 0:
                print(n, "odd composite")
                break
        else:
            print(n, "prime")
print("done")
"""

CORPUS["class_with_methods"] = '''\
class Vector:
    """A 2-D vector."""

    dims = 2

    def __init__(self, x, y):
        self.x = x
        self.y = y

    def __add__(self, other):
        return Vector(self.x + other.x, self.y + other.y)

    def __repr__(self):
        return f"Vector({self.x}, {self.y})"

    @property
    def norm2(self):
        return self.x**2 + self.y**2

    @classmethod
    def zero(cls):
        return cls(0, 0)

    @staticmethod
    def describe():
        return "a vector"


v = Vector(1, 2) + Vector(3, 4)
print(v, v.norm2, Vector.zero(), Vector.describe(), Vector.dims)
'''

CORPUS["decorators"] = """\
import functools


def trace(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        print("call", fn.__name__, args)
        return fn(*args, **kwargs)

    return wrapper


def repeat(times):
    def deco(fn):
        def inner(*args):
            return [fn(*args) for _ in range(times)]
        return inner
    return deco


@trace
@repeat(3)
def square(x):
    return x * x


print(square(4))


@functools.lru_cache(maxsize=None)

# a comment and a blank line between a decorator and its function
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
print(fib(30), fib.__name__)
"""

CORPUS["class_decorators"] = """\
from dataclasses import dataclass, field
from enum import Enum, auto


@dataclass(frozen=True)
class Point:
    x: int
    y: int = 0
    tags: tuple = field(default=())


class Color(Enum):
    RED = auto()
    GREEN = auto()


registry = []


def register(cls):
    registry.append(cls.__name__)
    return cls


@register
class Plugin:
    pass
@register
class Other:
    pass
print(Point(1), Point(2, 3, ("a",)), Color.GREEN, registry)
"""

CORPUS["try_except_else_finally"] = """\
class AppError(Exception):
    pass


def parse(text):
    try:
        value = int(text)
    except ValueError as e:
        print("bad:", e)
        return None
    except TypeError:
        print("not a string")
        return None
    else:
        print("parsed", value)
        return value
    finally:
        print("finally for", repr(text))


for t in ["12", "x", None]:
    parse(t)

try:
    try:
        raise AppError("boom")
    except AppError as inner:
        raise RuntimeError("wrapped") from inner
except RuntimeError as e:
    print("chained", e, "from", repr(e.__cause__))
try:
    pass
finally:
    print("outer finally")
"""

CORPUS["with_statements"] = """\
import contextlib
import io


@contextlib.contextmanager
def tag(name):
    print(f"<{name}>")
    yield name
    print(f"</{name}>")


with tag("a") as a, tag("b") as b:
    print(a, b)

with (
    tag("c"),
    contextlib.redirect_stdout(io.StringIO()) as buf,
):
    print("captured")
print("buffer held", repr(buf.getvalue()))
"""

CORPUS["multiline_calls"] = """\
print(
    "a",
    "b",
    sep="-",
)
config = {
    "name": "demo",
    "sizes": [
        1,
        2,
    ],
    "nested": {"k":
        "v"},
}
print(config)
result = max(
    [3, 9, 2],
    key=lambda v: (
        -v
    )
)
print(result)
"""

CORPUS["comprehensions"] = """\
words = ["apple", "banana", "cherry", "date"]
lengths = {
    w: len(w)
    for w in words
    if len(w) > 4
}
pairs = [
    (i, j)
    for i in range(3)
    for j in range(3)
    if i != j
]
total = sum(
    n * n
    for n in range(10)
)
letters = {c for w in words for c in w
           if c in "aeiou"}
print(lengths, pairs, total, sorted(letters))
"""

CORPUS["main_guard"] = """\
import sys


def main(argv):
    print("running main with", len(argv) >= 0)
    return 0


if __name__ == "__main__":
    status = main(sys.argv)
    print("status", status)
"""

CORPUS["backslash_continuation"] = """\
a = 1 + \\
    2 + \\
3
if a > 1 and \\
        a < 10:
    print("in range", a)
text = "one " \\
"two"
print(text)
"""

CORPUS["triple_quoted_strings"] = '''\
TEMPLATE = """
def fake():
    pass

print("this is text, not code")
"""
print(TEMPLATE.count("\\n"))
note = \'\'\'first

last\'\'\'
print(note.splitlines())


def f():
    s = """inside
a function
with col-0 lines

and a blank one"""
    return s
print(len(f()))
'''

CORPUS["match_statement"] = """\
def kind(value):
    match value:
        case 0:
            return "zero"

        case int(n) if n < 0:
            return "negative"
        case [x, y]:
            return f"pair {x},{y}"
        case _:
            return "other"


match = {"a": 1}
print(match)
for v in [0, -5, [1, 2], "s"]:
    print(kind(v))
match kind(0):
    case "zero":
        print("matched at top level")
"""

CORPUS["while_else_and_one_liners"] = """\
n = 0
while n < 5: n += 1
else: print("while done", n)
for i in range(3): print("i", i)
if n > 3: print("big")
elif n > 1: print("medium")
else: print("small")
x = 1; y = 2; print(x + y)
"""

CORPUS["closures_generators"] = """\
def counter():
    count = 0

    def step():
        nonlocal count
        count += 1
        return count

    return step


c = counter()
for _ in range(2):
    c()
print(c())


def gen(n):
    for i in range(n):
        yield i * i


print(list(gen(5)))
squares = (lambda xs: [x * x for x in xs])(range(4))
print(squares)
"""

CORPUS["async_defs"] = """\
async def answer():
    return 42


async def double():
    value = await answer()
    return value * 2


coro = double()
try:
    coro.send(None)
except StopIteration as stop:
    print("result", stop.value)
"""

CORPUS["strings_that_look_like_code"] = """\
print("(")
print(')')
print("# not a comment", '[', "{")
s = "else:"
print(s)
t = f"{'#'}{{braces}}{len('(')}"
print(t)
raw = r"\\\\"
quoted = r"a\\"b"
print(raw, len(raw), quoted, len(quoted))
"""

CORPUS["stderr_and_stdout"] = """\
import sys

print("to stdout")
print("to stderr", file=sys.stderr)
for i in range(3):
    print("err", i, file=sys.stderr)
    print("out", i)
print("partial", end="", file=sys.stderr)
print(" end")
"""

CORPUS["raises_midway"] = """\
def risky(n):
    if n > 2:
        raise ValueError(f"too big: {n}")
    return n


for i in range(5):
    print(risky(i))
print("never printed")
"""

CORPUS["sys_exit_status"] = """\
import sys

print("before exit")
if True:
    sys.exit(3)
print("never printed")
"""

CORPUS["whitespace_only_lines"] = (
    "def f(x):\n    y = x + 1\n    \n        \n    return y\n\t\nprint(f(1))\n"
)

CORPUS["tab_indented"] = (
    "def f(items):\n"
    "\tout = []\n"
    "\tfor i in items:\n"
    "\t\tif i:\n"
    "\t\t\tout.append(i)\n"
    "\n"
    "\treturn out\n"
    "print(f([0, 1, 2]))\n"
)

CORPUS["crlf_line_endings"] = CORPUS["issue_loop"].replace("\n", "\r\n") + (
    'x = 1 + \\\r\nlen("ab")\r\nprint(x)\r\n'
)

CORPUS["no_trailing_newline_in_block"] = "for i in range(3):\n    print(i)"

CORPUS["no_trailing_newline"] = "total = 0\nfor i in range(4):\n    total += i\nprint(total)"

CORPUS["module_docstring"] = '''\
"""A tool.

Usage: run it.
"""

from __future__ import annotations

import os

print("docstring ok", os.sep)
'''

CORPUS["globals_del_assert"] = """\
counter = 0


def bump():
    global counter
    counter += 1


bump()
bump()
assert counter == 2, "counter"
del counter
print("counter" in globals())
try:
    assert False, "expected"
except AssertionError as e:
    print("caught", e)
"""


CORPUS["byte_order_mark"] = "\ufeff" + CORPUS["main_guard"]

CORPUS["old_mac_line_ends"] = CORPUS["function_with_paragraphs"].replace("\n", "\r")


CORPUS["docstrings_only_at_the_end"] = '''\
"""Module doc."""
print("body")
"""A trailing string literal does nothing."""
'''


def _run(cmd: list[str], path: Path) -> subprocess.CompletedProcess[bytes]:
    with path.open("rb") as f:
        return subprocess.run(cmd, stdin=f, capture_output=True, timeout=60)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kernel", ["python3", "builtin"])
@pytest.mark.parametrize("name", sorted(CORPUS))
def test_script_output_equals_python3(name: str, kernel: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.py"
    path.write_bytes(CORPUS[name].encode())
    want = subprocess.run(
        [sys.executable, str(path)], stdin=subprocess.DEVNULL, capture_output=True, timeout=60
    )
    got = _run([*KCONSOLE, "start", "--kernel", kernel], path)
    assert got.stdout.decode() == want.stdout.decode(), got.stderr.decode()
    assert got.returncode == want.returncode, got.stderr.decode()
    if want.returncode == 0:
        assert got.stderr.decode() == want.stderr.decode()
    else:
        # The traceback's last line (the exception) is on stderr, not on stdout.
        last = want.stderr.decode().strip().splitlines()[-1:] or [""]
        assert last[0] in got.stderr.decode()
        assert b"Traceback" not in got.stdout


def test_the_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 20
