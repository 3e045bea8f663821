"""The built-in kernel as a drop-in for ipykernel's everyday idioms (issue 16, 9-12, 15).

Each cell runs on the built-in kernel and on a real ipykernel, both real processes
driven by jupyter_client; where ipykernel's messages are the reference, they must
match (addresses and colours aside).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("ipykernel")
from jupyter_client.manager import KernelManager, start_new_kernel

from kconsole.kernel.install import install_kernelspec

TIMEOUT = 30
pytestmark = pytest.mark.timeout(90)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def kernels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``{"builtin": client, "ipykernel": client}``, one kernel each for the module."""
    base = tmp_path_factory.mktemp("idioms")
    install_kernelspec(base / "prefix", "kconsole-idioms")
    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_PATH", str(base / "prefix" / "share" / "jupyter"))
    mp.setenv("JUPYTER_RUNTIME_DIR", str(base / "runtime"))
    mp.setenv("IPYTHONDIR", str(base / "ipython"))
    started: list[tuple[KernelManager, Any]] = []
    try:
        for name in ("kconsole-idioms", "python3"):
            started.append(start_new_kernel(kernel_name=name, startup_timeout=TIMEOUT))
        yield {"builtin": started[0][1], "ipykernel": started[1][1]}
    finally:
        for km, kc in started:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
        mp.undo()


def run(kc: Any, code: str) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """Run ``code``: its reply content and its outputs as ``(msg_type, content)``."""
    msg_id = kc.execute(code)
    outs: list[tuple[str, dict[str, Any]]] = []
    deadline = time.monotonic() + TIMEOUT
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        t = msg["msg_type"]
        if t == "status" and msg["content"]["execution_state"] == "idle":
            break
        if t not in ("status", "execute_input"):
            outs.append((t, msg["content"]))
    while True:
        reply = kc.get_shell_msg(timeout=TIMEOUT)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"], outs


def wait_for_output(kc: Any, msg_id: str, msg_type: str) -> None:
    """Wait for the first ``msg_type`` output of request ``msg_id``."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        m = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        if m["msg_type"] == msg_type and m["parent_header"].get("msg_id") == msg_id:
            return


def both(kernels: dict[str, Any], code: str) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Outputs of ``code`` on each kernel, with object addresses and counts blanked."""
    out = {}
    for name, kc in kernels.items():
        _, outs = run(kc, code)
        norm = []
        for t, c in outs:
            c = {k: v for k, v in c.items() if k != "execution_count"}
            if "data" in c:
                c["data"] = {
                    k: re.sub(r"0x[0-9a-f]+", "0x", v) if k == "text/plain" else v
                    for k, v in c["data"].items()
                }
            norm.append((t, c))
        out[name] = norm
    return out


def test_ipython_display_publishes_like_ipykernel(kernels: dict[str, Any]) -> None:
    # The built-in kernel must not pay for IPython at start-up.
    _, outs = run(kernels["builtin"], "import sys; 'IPython' in sys.modules")
    assert outs[0][1]["data"]["text/plain"] == "False"
    code = (
        "from IPython.display import display, HTML, Markdown, clear_output\n"
        "display(Markdown('**hi**'))\n"
        "display(HTML('<b>x</b>'), metadata={'isolated': True})\n"
        "h = display('a', display_id='d1')\n"
        "display('b', display_id='d1', update=True)\n"
        "h.update('c')\n"
        "clear_output(wait=True)\n"
        "print('after')\n"
    )
    got = both(kernels, code)
    assert got["builtin"] == got["ipykernel"]
    assert [t for t, _ in got["builtin"]][:2] == ["display_data", "display_data"]


def test_top_level_await_and_syntax_errors_show_the_line(kernels: dict[str, Any]) -> None:
    code = "import asyncio\nawait asyncio.sleep(0)\nx = await asyncio.sleep(0, result=41)\nx + 1"
    got = both(kernels, code)
    assert (
        got["builtin"]
        == got["ipykernel"]
        == [("execute_result", {"data": {"text/plain": "42"}, "metadata": {}})]
    )
    # The loop persists, as IPython's: a task made in one cell runs in the next.
    kc = kernels["builtin"]
    run(kc, "t = asyncio.ensure_future(asyncio.sleep(0, result=7))")
    _, outs = run(kc, "await t")
    assert [c["data"] for t, c in outs] == [{"text/plain": "7"}]
    # An interrupted await cell is cancelled, so its cleanup runs before the reply.
    code = "try:\n    print('go', flush=True)\n    await asyncio.sleep(3600)\nfinally:\n    print('clean')"
    msg_id = kc.execute(code)
    wait_for_output(kc, msg_id, "stream")
    kc.parent.interrupt_kernel()  # the client's KernelManager
    assert kc.get_shell_msg(timeout=TIMEOUT)["content"]["ename"] == "KeyboardInterrupt"
    wait_for_output(kc, msg_id, "stream")  # 'clean', before the cell's idle
    reply, _ = run(kernels["builtin"], "x = 1\nreturn x")
    assert reply["ename"] == "SyntaxError"
    assert "return x" in _ANSI.sub("", "\n".join(reply["traceback"]))


def test_tracebacks_are_coloured_without_kernel_frames(kernels: dict[str, Any]) -> None:
    kc = kernels["builtin"]
    reply, outs = run(kc, "def f():\n    1/0\nf()")
    (err,) = [c for t, c in outs if t == "error"]
    assert (err["ename"], err["evalue"]) == ("ZeroDivisionError", "division by zero")
    tb = "\n".join(err["traceback"])
    assert "\x1b[" in tb
    plain = _ANSI.sub("", tb)
    assert "Cell In[" in plain and "1/0" in plain and "in f" in plain
    assert "kconsole" not in plain
    reply, _ = run(kc, "raise ValueError('two\\nlines')")
    assert reply["traceback"][-1] == "\x1b[31mValueError\x1b[39m: two\nlines"
    # Interrupted: the signal handler's frame is the kernel's, not the user's.
    msg_id = kc.execute(
        "import time\nprint('go', flush=True)\nfor _ in range(600): time.sleep(0.05)"
    )
    wait_for_output(kc, msg_id, "stream")
    kc.parent.interrupt_kernel()  # the client's KernelManager
    reply = kc.get_shell_msg(timeout=TIMEOUT)["content"]
    assert reply["ename"] == "KeyboardInterrupt"
    plain = _ANSI.sub("", "\n".join(reply["traceback"]))
    assert "_sigint" not in plain and "kconsole" not in plain and "Cell In[" in plain
    # The user's line it stopped on: the sleep, or print while its flush returns (the
    # "go" it waited for is out before print is). Never a line of the kernel's own.
    assert "time.sleep" in plain or "print('go', flush=True)" in plain, plain


def test_is_complete_closed_bracket(kernels: dict[str, Any]) -> None:
    for kc in kernels.values():
        kc.is_complete("x = [1,\n     2]")
        assert kc.get_shell_msg(timeout=TIMEOUT)["content"]["status"] == "complete"


def test_latex_only_value_and_figure_value(kernels: dict[str, Any]) -> None:
    got = both(kernels, "class L:\n    def _repr_latex_(self): return r'$x^2$'\nL()")
    assert got["builtin"] == got["ipykernel"]
    assert got["builtin"][0][0] == "execute_result"
    code = "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2])\nfig"
    _, outs = run(kernels["builtin"], code)
    assert [t for t, _ in outs] == ["execute_result"]
    assert set(outs[0][1]["data"]) == {"text/plain", "image/png"}


def test_value_that_displays_itself_and_pasted_indented_code(kernels: dict[str, Any]) -> None:
    # A widget-like value displays itself (its hook runs) instead of an Out[n] repr.
    code = (
        "class W:\n"
        "    def _ipython_display_(self): print('I display myself')\n"
        "    def __repr__(self): return 'W()'\n"
        "W()"
    )
    got = both(kernels, code)
    assert got["builtin"] == got["ipykernel"]
    assert got["builtin"] == [("stream", {"name": "stdout", "text": "I display myself\n"})]
    got = both(kernels, "  x = 6 * 7\n  x")
    assert got["builtin"] == got["ipykernel"]
    assert got["builtin"][0][1]["data"] == {"text/plain": "42"}


def test_reprs_like_ipython(kernels: dict[str, Any]) -> None:
    # include= leaves text/plain out; _repr_pretty_ is the text; a wrong type is dropped.
    code = (
        "from IPython.display import display, Pretty\n"
        "class F:\n"
        "    def _repr_mimebundle_(self, include=None, exclude=None):\n"
        "        return {'text/html': '<b>f</b>', 'text/plain': 'F!'}\n"
        "display(F(), include=['text/html'])\n"
        "display(Pretty('hello'))\n"
        "class Q:\n"
        "    def _repr_html_(self): return 42\n"
        "display(Q())\n"
    )
    got = both(kernels, code)
    outputs = [c for t, c in got["builtin"] if t != "stream"]
    assert outputs == [c for t, c in got["ipykernel"] if t != "stream"]
    assert [c["data"] for c in outputs][:2] == [{"text/html": "<b>f</b>"}, {"text/plain": "hello"}]
    # The dropped value is said on stderr, as IPython's FormatterWarning.
    (warning,) = [c["text"] for t, c in got["builtin"] if t == "stream"]
    assert "text/html" in warning and "int" in warning


def test_await_cells_and_the_current_loop(kernels: dict[str, Any]) -> None:
    kc = kernels["builtin"]
    # A loop got before any await cell is the one await cells run on.
    code = (
        "import asyncio\n"
        "async def bg(): return 'bgdone'\n"
        "t = asyncio.get_event_loop().create_task(bg())"
    )
    reply, _ = run(kc, code)
    assert reply["status"] == "ok"
    _, outs = run(kc, "await t")
    assert [c.get("data") for _, c in outs] == [{"text/plain": "'bgdone'"}]
    # asyncio's own frames (run_until_complete) are the kernel's: not in the traceback.
    reply, _ = run(kc, "async def boom(): raise ValueError('x')\nawait boom()")
    plain = _ANSI.sub("", "\n".join(reply["traceback"]))
    assert "asyncio" not in plain and "await boom()" in plain and "Cell In[" in plain
    # But asyncio's frames under the user's call stay (here those of the timed-out sleep).
    reply, _ = run(kc, "await asyncio.wait_for(asyncio.sleep(1), 0.01)")
    plain = _ANSI.sub("", "\n".join(reply["traceback"]))
    assert "in sleep" in plain and "in wait_for" in plain
    # An interrupted await cell's traceback ends in the cell's line, not in the loop's.
    msg_id = kc.execute("print('go', flush=True)\nawait asyncio.sleep(3600)")
    wait_for_output(kc, msg_id, "stream")
    kc.parent.interrupt_kernel()  # the client's KernelManager
    reply = kc.get_shell_msg(timeout=TIMEOUT)["content"]
    plain = _ANSI.sub("", "\n".join(reply["traceback"]))
    assert reply["ename"] == "KeyboardInterrupt" and "await asyncio.sleep(3600)" in plain
    assert "selectors" not in plain and "base_events" not in plain


def test_odd_exceptions(kernels: dict[str, Any]) -> None:
    kc = kernels["builtin"]
    # An exception whose __str__ fails is still the cell's error, as python3 shows it.
    failed, outs = run(kc, "class S(Exception):\n    def __str__(self): return 42\nraise S()")
    (err,) = [c for t, c in outs if t == "error"]
    assert (err["ename"], err["evalue"]) == ("S", "<exception str() failed>")
    assert failed["ename"] == "S"
    reply, _ = run(kc, "1")  # the next cell's number follows (none is skipped)
    assert reply["execution_count"] == failed["execution_count"] + 1
    if sys.version_info >= (3, 11):
        # Exception groups: cells named and coloured as elsewhere, inside the margin.
        reply, _ = run(kc, "raise ExceptionGroup('eg', [ValueError('a')])")
        tb = "\n".join(reply["traceback"])
        plain = _ANSI.sub("", tb)
        assert "Cell In[" in plain and "<cell-" not in plain
        assert "\x1b[31mValueError\x1b[39m: a" in tb
    # A chained traceback keeps python3's blank line after the separator.
    reply, _ = run(kc, "try:\n    1/0\nexcept Exception as e:\n    raise KeyError('k') from e")
    plain = _ANSI.sub("", "\n".join(reply["traceback"]))
    assert "following exception:\n\nTraceback" in plain


def test_fresh_kernel_loop_and_ipython_imported_at_startup(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernel that nothing ran in yet, with IPython.display imported before it started
    (by a sitecustomize, as some environments do)."""
    import os

    install_kernelspec(tmp_path / "prefix", "kconsole-fresh")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "prefix" / "share" / "jupyter"))
    (tmp_path / "sitecustomize.py").write_text("import IPython.display\n")
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    km, kc = start_new_kernel(
        kernel_name="kconsole-fresh",
        startup_timeout=TIMEOUT,
        env={**os.environ, "PYTHONPATH": path},
    )
    try:
        # The loop a cell gets before any await cell is the one await cells run on.
        code = (
            "import asyncio\n"
            "async def bg(): return 'bgdone'\n"
            "t = asyncio.get_event_loop().create_task(bg())"
        )
        assert run(kc, code)[0]["status"] == "ok"
        _, outs = run(kc, "await t")
        assert [c.get("data") for _, c in outs] == [{"text/plain": "'bgdone'"}]
        code = "from IPython.display import display, Markdown\ndisplay(Markdown('**m**'))"
        _, outs = run(kc, code)
        assert [(t, c["data"].get("text/markdown")) for t, c in outs] == [("display_data", "**m**")]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
