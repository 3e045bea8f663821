"""Modules the console's dependencies import at load but rarely use are deferred
(kconsole.lazy_imports): they must behave exactly as before when used, character
widths included, and stay unloaded until then."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

PROBE = r"""
import json, sys, types
from kconsole import lazy_imports
lazy_imports.defer_unused()
import prompt_toolkit.shortcuts  # what the REPL loads
from prompt_toolkit.utils import get_cwidth
ascii_widths = [get_cwidth(c) for c in "In [1]: print(6*7) ~"]
ui = [get_cwidth(c) for c in sorted(lazy_imports.ONE_CELL)]
def loaded(name):
    return type(sys.modules.get(name)) is types.ModuleType
untouched = [m for m in lazy_imports.UNUSED_AT_START if not loaded(m)]
wide = [get_cwidth(c) for c in "中文é\u0301"]
import wcwidth
real = [max(0, wcwidth.wcwidth(c)) for c in "中文é\u0301"]
real_ui = [wcwidth.wcwidth(c) for c in sorted(lazy_imports.ONE_CELL)]
# Used after all: each behaves as the real module.
import tempfile, shutil, os
fd, path = tempfile.mkstemp()
os.close(fd); os.unlink(path)
from prompt_toolkit.formatted_text import HTML, to_formatted_text
html = to_formatted_text(HTML("<b>bold</b>"))
print(json.dumps({
    "ascii": ascii_widths, "ui": ui, "real_ui": real_ui, "untouched": untouched, "wide": wide, "real": real,
    "which": bool(shutil.which("sh")), "html": [list(t) for t in html],
    "after": [m for m in ("tempfile", "shutil") if loaded(m)],
}))
"""


@pytest.mark.timeout(60)
def test_deferred_modules_stay_unloaded_until_used_then_behave_as_before() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout
    got = json.loads(out)
    assert got["ascii"] == [1] * 20  # every ASCII character of a prompt is one cell
    assert got["ui"] == got["real_ui"] == [1] * len(got["ui"])  # the toolbar's separator
    # Loading prompt_toolkit and drawing ASCII loaded none of them.
    assert got["untouched"] == ["tempfile", "shutil", "bz2", "lzma", "zlib", "wcwidth"]
    assert got["wide"] == got["real"] == [2, 2, 1, 0]  # CJK wide, combining mark 0
    assert got["which"]
    assert got["html"] == [["class:b", "bold"]]
    assert got["after"] == ["tempfile", "shutil"]


def _mapped_libraries(pid: int) -> set[str]:
    with open(f"/proc/{pid}/maps") as f:
        return {Path(line.split()[5]).name for line in f if len(line.split()) > 5}


@pytest.mark.timeout(60)
def test_repl_in_a_terminal_answering_cpr_maps_no_openssl_nor_wcwidth_tables() -> None:
    """A REPL on a kernel that declares Curve support (the built-in kernel), in a
    terminal that answers cursor-position requests (the bottom toolbar is drawn): its
    start loads no ssl (OpenSSL, ~5 MB resident) and drawing the toolbar loads neither
    wcwidth's tables nor, through them, OpenSSL's libcrypto."""
    from ptyconsole import PtyConsole

    # pyte answers ESC[6n (cpr), so prompt_toolkit draws the toolbar.
    c = PtyConsole(["start", "--kernel", "builtin"], env={"PAGER": "cat"}, cpr=True)
    try:
        c.expect_prompt(1)
        c.sendline("6*7")
        c.expect(r"Out\[1\]: 42")
        c.expect_prompt(2)
        deadline = time.monotonic() + 15
        while not any(" │ idle │ count 1 │ " in ln for ln in c.display()):
            assert time.monotonic() < deadline, "\n".join(c.display())
            c._pump(0.2)
        libs = _mapped_libraries(c.child.pid)
        assert "libzmq" in " ".join(libs)  # what is read is the console's map
        loaded = sorted(
            n for n in libs if n.startswith(("libssl", "libcrypto", "_ssl", "_wcwidth"))
        )
        assert loaded == []
    finally:
        c.close()


SCRIPT_PROBE = r"""
import atexit, json, runpy, sys, types

def report():
    loaded = sorted(n for n, m in sys.modules.items() if type(m) is types.ModuleType)
    sys.stderr.write("MODULES " + json.dumps(loaded) + "\n")

atexit.register(report)
# As `python -m kconsole ARGS` runs: through kconsole/__main__.py, whatever it calls.
sys.argv = ["kconsole", *sys.argv[1:]]
runpy.run_module("kconsole", run_name="__main__", alter_sys=True)
"""

#: What a script run must not load (issue 12): OpenSSL's two modules, pyzmq's asyncio
#: layer, tempfile, IPython and the line editor. With each one's submodules.
SCRIPT_MODE_NEVER = ("_ssl", "_hashlib", "zmq.asyncio", "tempfile", "IPython", "prompt_toolkit")
#: And what an earlier review found loaded: the highlighter, ssl, the HTML5 entity
#: table (widgets unescape their labels only when they have some), wcwidth's tables.
ALSO_NEVER = ("pygments", "ssl", "html", "wcwidth")


def _script_run_modules(*args: str) -> list[str]:
    """The modules a ``kconsole ARGS`` process had loaded when it exited, stdin the
    one-line script ``print(6*7)`` (which it must have run)."""
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT_PROBE, *args],
        input="print(6*7)\n",
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert (r.returncode, r.stdout) == (0, "42\n"), r.stderr
    loaded: list[str] = json.loads(r.stderr.split("MODULES ", 1)[1])
    assert "zmq" in loaded  # the probe saw the run
    return loaded


def _forbidden(loaded: list[str], names: tuple[str, ...]) -> list[str]:
    return [m for m in loaded if any(m == n or m.startswith(n + ".") for n in names)]


@pytest.fixture
def builtin_kernel(tmp_path: Path) -> Iterator[Path]:
    """A built-in kernel in a process of its own, for ``attach``: its connection file."""
    cf = tmp_path / "kernel.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kconsole.kernel", "-f", str(cf)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        # The kernel says so once the file it wrote (with free ports) is complete.
        line = proc.stderr.readline()
        assert line.startswith("kconsole kernel: connection file"), line
        yield cf
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.timeout(60)
def test_script_mode_loads_no_line_editor_openssl_html_tables_or_zmq_asyncio() -> None:
    """stdin piped: what a script run loads is what it uses. No line editor or
    highlighter, no ssl (OpenSSL, ~5 MB: the built-in kernel declares Curve support),
    no HTML5 entity table, no tempfile, no IPython, and no zmq.asyncio (pyzmq's monitor
    helpers import it; kconsole parses the monitor's two frames itself)."""
    loaded = _script_run_modules("start", "--kernel", "builtin")
    assert "kconsole.kernel" not in loaded  # the kernel is another process
    assert _forbidden(loaded, SCRIPT_MODE_NEVER + ALSO_NEVER) == []


@pytest.mark.timeout(60)
def test_script_mode_attached_loads_none_of_them_either(builtin_kernel: Path) -> None:
    loaded = _script_run_modules("attach", "--existing", str(builtin_kernel))
    assert _forbidden(loaded, SCRIPT_MODE_NEVER + ALSO_NEVER) == []


def test_the_budget_check_sees_each_name_and_its_submodules() -> None:
    # The check itself: a name, a submodule of it, and a mere prefix that is not one.
    loaded = ["IPython.core", "_ssl", "zmq", "zmq.asyncio", "tempfile", "_hashlibx"]
    assert _forbidden(loaded, SCRIPT_MODE_NEVER) == [
        "IPython.core",
        "_ssl",
        "zmq.asyncio",
        "tempfile",
    ]
