"""The built-in kernel as real processes: jupyter_client, raw zmq, jupyter console.

Nothing here sleeps to synchronise: every wait is for a message (or a process exit)
with a timeout.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

jupyter_client = pytest.importorskip("jupyter_client")

from jupyter_client.blocking.client import BlockingKernelClient  # noqa: E402
from jupyter_client.manager import KernelManager  # noqa: E402

from kconsole.connection import ConnectionInfo  # noqa: E402
from kconsole.kernel.install import builtin_kernel_spec_dict, install_kernelspec  # noqa: E402
from kconsole.protocol import Message, Session  # noqa: E402

KERNEL_NAME = "kconsole-test"
TIMEOUT = 20


# -- fixtures ----------------------------------------------------------------------


@pytest.fixture
def kernelspec(jupyter_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The built-in kernel installed into a temporary prefix on JUPYTER_PATH."""
    kdir = install_kernelspec(jupyter_dirs / "prefix", KERNEL_NAME)
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_dirs / "prefix" / "share" / "jupyter"))
    return kdir


@pytest.fixture
def km(kernelspec: Path) -> Iterator[KernelManager]:
    km = KernelManager(kernel_name=KERNEL_NAME)
    km.start_kernel()
    yield km
    if km.has_kernel:
        km.shutdown_kernel(now=True)


@pytest.fixture
def kc(km: KernelManager) -> Iterator[BlockingKernelClient]:
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=TIMEOUT)
    yield kc
    kc.stop_channels()


def collect(
    kc: BlockingKernelClient, msg_id: str, timeout: float = TIMEOUT
) -> list[dict[str, Any]]:
    """IOPub messages of request ``msg_id`` up to its ``idle``."""
    out = []
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        out.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return out


def shell_reply(kc: BlockingKernelClient, msg_id: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_shell_msg(timeout=max(0.01, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg  # type: ignore[no-any-return]


def run(
    kc: BlockingKernelClient, code: str, **kw: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    msg_id = kc.execute(code, **kw)
    reply = shell_reply(kc, msg_id)
    return reply, collect(kc, msg_id)


def stream_text(msgs: list[dict[str, Any]], name: str = "stdout") -> str:
    return "".join(
        m["content"]["text"]
        for m in msgs
        if m["msg_type"] == "stream" and m["content"]["name"] == name
    )


def wait_for_stream(kc: BlockingKernelClient, msg_id: str, text: str) -> None:
    seen = ""
    deadline = time.monotonic() + TIMEOUT
    while text not in seen:
        msg = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
            seen += msg["content"]["text"]


# -- jupyter_client ------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_cell_runs_with_repl_semantics(kc: BlockingKernelClient) -> None:
    reply, msgs = run(kc, "print('hello')\nx = 6 * 7\nx")
    assert reply["content"]["status"] == "ok"
    assert reply["content"]["execution_count"] == 1
    types = [m["msg_type"] for m in msgs]
    assert types == ["status", "execute_input", "stream", "execute_result", "status"]
    assert msgs[3]["content"]["data"]["text/plain"] == "42"
    assert msgs[3]["content"]["execution_count"] == 1
    # `_` is the last result, as in the Python REPL; None shows nothing.
    reply, msgs = run(kc, "_ + 1")
    assert msgs[-2]["content"]["data"]["text/plain"] == "43"
    _, msgs = run(kc, "None")
    assert "execute_result" not in [m["msg_type"] for m in msgs]


@pytest.mark.timeout(60)
def test_errors_have_clean_tracebacks(kc: BlockingKernelClient) -> None:
    reply, msgs = run(kc, "def f():\n    return 1 / 0\nf()")
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "ZeroDivisionError"
    errors = [m for m in msgs if m["msg_type"] == "error"]
    assert len(errors) == 1
    tb = "\n".join(errors[0]["content"]["traceback"])
    assert "kconsole" not in tb and "shell.py" not in tb
    assert "return 1 / 0" in tb and "Cell In[1]" in re.sub(r"\x1b\[[0-9;]*m", "", tb)
    reply, msgs = run(kc, "1 +")
    assert reply["content"]["ename"] == "SyntaxError"
    assert "kconsole" not in "\n".join(reply["content"]["traceback"])
    # SystemExit does not end the kernel.
    reply, _ = run(kc, "raise SystemExit(3)")
    assert reply["content"]["ename"] == "SystemExit"
    reply, _ = run(kc, "'still alive'")
    assert reply["content"]["status"] == "ok"


@pytest.mark.timeout(60)
def test_stop_on_error_aborts_queued_cells(kc: BlockingKernelClient) -> None:
    # The first cell fails only once the other two are queued in the kernel. Nothing
    # announces their arrival, so it polls the kernel's request queue (builtins.input is
    # the kernel's bound method) within a deadline.
    first = kc.execute(
        "import time\n"
        "queued = input.__self__._requests\n"
        "deadline = time.monotonic() + 20\n"
        "while queued.qsize() < 2 and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        "assert queued.qsize() == 2, queued.qsize()\n"
        "1/0"
    )
    second = kc.execute("print('never')")
    third = kc.execute("print('never either')")
    assert shell_reply(kc, first)["content"]["ename"] == "ZeroDivisionError"
    assert shell_reply(kc, second)["content"]["status"] == "aborted"
    assert shell_reply(kc, third)["content"]["status"] == "aborted"
    # stop_on_error=False: the next cell runs.
    a = kc.execute("1/0", stop_on_error=False)
    b = kc.execute("'ran'")
    assert shell_reply(kc, a)["content"]["status"] == "error"
    assert shell_reply(kc, b)["content"]["status"] == "ok"


@pytest.mark.timeout(60)
def test_silent_store_history_and_user_expressions(kc: BlockingKernelClient) -> None:
    reply, msgs = run(kc, "y = 5\ny", silent=True, user_expressions={"sq": "y * y", "bad": "1/0"})
    assert [m["msg_type"] for m in msgs] == ["status", "status"]  # no execute_input/result
    ue = reply["content"]["user_expressions"]
    assert ue["sq"] == {"status": "ok", "data": {"text/plain": "25"}, "metadata": {}}
    assert ue["bad"]["status"] == "error" and ue["bad"]["ename"] == "ZeroDivisionError"
    reply, _ = run(kc, "1", store_history=False)
    assert reply["content"]["execution_count"] == 0
    reply, _ = run(kc, "2")
    assert reply["content"]["execution_count"] == 1


@pytest.mark.timeout(60)
def test_input_and_getpass_over_stdin(kc: BlockingKernelClient) -> None:
    msg_id = kc.execute(
        "name = input('who? ')\nimport getpass\npw = getpass.getpass()\nprint(name, len(pw))",
        allow_stdin=True,
    )
    req = kc.get_stdin_msg(timeout=TIMEOUT)
    assert req["msg_type"] == "input_request"
    assert req["content"] == {"prompt": "who? ", "password": False}
    assert req["parent_header"]["msg_id"] == msg_id
    kc.input("kernel")
    req = kc.get_stdin_msg(timeout=TIMEOUT)
    assert req["content"]["password"] is True
    kc.input("secret")
    assert shell_reply(kc, msg_id)["content"]["status"] == "ok"
    assert stream_text(collect(kc, msg_id)) == "kernel 6\n"


@pytest.mark.timeout(60)
def test_input_without_allow_stdin_is_a_clear_error(kc: BlockingKernelClient) -> None:
    reply, _ = run(kc, "input()", allow_stdin=False)
    assert reply["content"]["ename"] == "StdinNotImplementedError"


@pytest.mark.timeout(60)
def test_interrupt_signal_mode(km: KernelManager, kc: BlockingKernelClient) -> None:
    msg_id = kc.execute("import time\nprint('sleeping', flush=True)\ntime.sleep(60)")
    wait_for_stream(kc, msg_id, "sleeping")
    km.interrupt_kernel()  # SIGINT to the process group (interrupt_mode: signal)
    reply = shell_reply(kc, msg_id)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    reply, _ = run(kc, "'survived'")
    assert reply["content"]["status"] == "ok"


AWAIT_WITH_A_THREAD_TAKING_SIGINT = """\
import asyncio, signal, threading, time
threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
# The OS gives a process's SIGINT to a thread that does not block it: here, with the
# main thread blocking it, always that other thread (under load it can happen anyway).
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
try:
    print('waiting', flush=True)
    await asyncio.sleep(3600)
finally:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
"""


@pytest.mark.timeout(60)
def test_interrupt_of_an_await_cell_when_another_thread_takes_the_signal(
    km: KernelManager, kc: BlockingKernelClient
) -> None:
    # The cell waits in its event loop's select(): it was woken only by a signal to
    # its own thread, so the interrupt was lost (for 3600 s) when another one took it.
    msg_id = kc.execute(AWAIT_WITH_A_THREAD_TAKING_SIGINT)
    wait_for_stream(kc, msg_id, "waiting")
    os.kill(km.provisioner.pid, signal.SIGINT)  # process-directed, as `kill -INT` sends
    reply = shell_reply(kc, msg_id)
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    reply, _ = run(kc, "'survived'")
    assert reply["content"]["status"] == "ok"


@pytest.mark.timeout(60)
def test_interrupt_waiting_for_input(km: KernelManager, kc: BlockingKernelClient) -> None:
    msg_id = kc.execute("input('x')", allow_stdin=True)
    kc.get_stdin_msg(timeout=TIMEOUT)
    km.interrupt_kernel()
    assert shell_reply(kc, msg_id)["content"]["ename"] == "KeyboardInterrupt"


@pytest.mark.timeout(90)
def test_restart(km: KernelManager, kc: BlockingKernelClient) -> None:
    run(kc, "marker = 1")
    pid = km.provisioner.process.pid  # type: ignore[union-attr]
    km.restart_kernel()
    assert km.provisioner.process.pid != pid  # type: ignore[union-attr]
    kc.wait_for_ready(timeout=TIMEOUT)
    reply, _ = run(kc, "'marker' in globals()")
    assert reply["content"]["execution_count"] == 1
    _, msgs = run(kc, "'marker' in dir()")
    assert [m for m in msgs if m["msg_type"] == "execute_result"][0]["content"]["data"][
        "text/plain"
    ] == "False"


@pytest.mark.timeout(60)
def test_shutdown_reply_then_exit(km: KernelManager, kc: BlockingKernelClient) -> None:
    msg_id = kc.shutdown(restart=False)  # on control
    reply = kc.get_control_msg(timeout=TIMEOUT) if hasattr(kc, "get_control_msg") else None
    if reply is not None:
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"] == {"status": "ok", "restart": False}
    km.provisioner.process.wait(timeout=TIMEOUT)  # type: ignore[union-attr]


@pytest.mark.timeout(120)
def test_a_million_prints_arrive_complete_and_in_order(kc: BlockingKernelClient) -> None:
    n = 1_000_000
    msg_id = kc.execute(f"for i in range({n}):\n    print(i)")
    chunks: list[str] = []
    deadline = time.monotonic() + 100
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            assert msg["content"]["name"] == "stdout"
            chunks.append(msg["content"]["text"])
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    lines = "".join(chunks).split("\n")
    assert lines[-1] == ""
    assert len(lines) - 1 == n
    assert lines[:-1] == [str(i) for i in range(n)]
    # Batched: far fewer messages than lines.
    assert len(chunks) < n // 50
    assert shell_reply(kc, msg_id)["content"]["status"] == "ok"


@pytest.mark.timeout(60)
def test_output_from_threads_subprocesses_and_order(kc: BlockingKernelClient) -> None:
    code = (
        "import sys, threading, os\n"
        "def w():\n"
        "    for i in range(200):\n"
        "        print('t', i)\n"
        "t = threading.Thread(target=w); t.start(); t.join()\n"
        "print('a'); print('b', file=sys.stderr); print('c')\n"
        "os.system('echo from-shell; echo shell-err >&2')\n"
    )
    reply, msgs = run(kc, code)
    assert reply["content"]["status"] == "ok"
    out = stream_text(msgs, "stdout")
    assert out.startswith("".join(f"t {i}\n" for i in range(200)) + "a\n")
    assert "from-shell\n" in out
    assert "shell-err\n" in stream_text(msgs, "stderr")
    streams = [
        (m["content"]["name"], m["content"]["text"]) for m in msgs if m["msg_type"] == "stream"
    ]
    flat = [(name, line) for name, text in streams for line in text.splitlines()]
    ia, ib, ic = (
        flat.index(("stdout", "a")),
        flat.index(("stderr", "b")),
        flat.index(("stdout", "c")),
    )
    assert ia < ib < ic  # stdout/stderr interleaving is kept


@pytest.mark.timeout(60)
def test_display_update_and_clear(kc: BlockingKernelClient) -> None:
    code = (
        "class R:\n"
        "    def _repr_html_(self): return '<b>r</b>'\n"
        "    def _repr_png_(self): return b'\\x89PNG fake'\n"
        "    def _repr_mimebundle_(self, include=None, exclude=None):\n"
        "        return {'text/x-custom': 'c'}, {'text/x-custom': {'k': 1}}\n"
        "h = display(R(), display_id=True)\n"
        "h.update('two')\n"
        "clear_output(wait=True)\n"
        "from kconsole.kernel import display as d2, clear_output as c2\n"
        "assert d2 is display and c2 is clear_output\n"
    )
    reply, msgs = run(kc, code)
    assert reply["content"]["status"] == "ok", reply["content"]
    outs = [m for m in msgs if m["msg_type"] not in ("status", "execute_input")]
    assert [m["msg_type"] for m in outs] == ["display_data", "update_display_data", "clear_output"]
    data = outs[0]["content"]["data"]
    assert data["text/html"] == "<b>r</b>"
    assert data["text/x-custom"] == "c"
    import base64

    assert base64.b64decode(data["image/png"]) == b"\x89PNG fake"
    assert outs[0]["content"]["metadata"] == {"text/x-custom": {"k": 1}}
    display_id = outs[0]["content"]["transient"]["display_id"]
    assert outs[1]["content"]["transient"]["display_id"] == display_id
    assert outs[1]["content"]["data"]["text/plain"] == "'two'"
    assert outs[2]["content"] == {"wait": True}


@pytest.mark.timeout(90)
def test_matplotlib_figure_is_shown_as_png(kc: BlockingKernelClient) -> None:
    pytest.importorskip("matplotlib")
    reply, msgs = run(kc, "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()")
    assert reply["content"]["status"] == "ok", reply["content"]
    displays = [m for m in msgs if m["msg_type"] == "display_data"]
    assert len(displays) == 1
    import base64

    png = base64.b64decode(displays[0]["content"]["data"]["image/png"])
    assert png.startswith(b"\x89PNG")
    assert stream_text(msgs, "stderr") == ""  # no "non-interactive" warning
    # Figures are closed once shown: the next cell shows nothing.
    _, msgs = run(kc, "1")
    assert not [m for m in msgs if m["msg_type"] == "display_data"]


@pytest.mark.timeout(60)
def test_completion_inspection_and_is_complete(kc: BlockingKernelClient) -> None:
    def reply_to(msg_id: str) -> dict[str, Any]:
        return shell_reply(kc, msg_id)["content"]

    c = reply_to(kc.complete("import o", 8))
    assert "os" in c["matches"] and c["cursor_start"] == 7
    c = reply_to(kc.complete("import os\nos.pa", 15))
    assert {"os.path", "os.pardir"} <= set(c["matches"])
    types = {t["text"]: t["type"] for t in c["metadata"]["_jupyter_types_experimental"]}
    assert types["os.path"] == "module"
    c = reply_to(kc.complete("from os import pa", 17))
    assert "path" in c["matches"]
    run(
        kc,
        "class Thing:\n    '''A thing.'''\n    def method(self, a, b=2):\n"
        "        '''Does it.'''\n        return a\nthing = Thing()",
    )
    c = reply_to(kc.complete("thing.me", 8))
    assert c["matches"] == ["thing.method"]
    # jedi (when importable) completes what the namespace completer cannot.
    c = reply_to(kc.complete("'abc'.upp", 9))
    if c["matches"]:
        assert "upper" in c["matches"]
    i = reply_to(kc.inspect("thing.method(", 13, 0))
    assert i["found"] and "Signature: thing.method(a, b=2)" in i["data"]["text/plain"]
    assert "Does it." in i["data"]["text/plain"]
    i = reply_to(kc.inspect("Thing", 5, 1))
    assert "def method(self, a, b=2):" in i["data"]["text/plain"]
    assert reply_to(kc.inspect("nothing_here", 3, 0))["found"] is False
    assert reply_to(kc.is_complete("x = 1"))["status"] == "complete"
    r = reply_to(kc.is_complete("for i in range(3):"))
    assert r == {"status": "incomplete", "indent": "    "}
    assert reply_to(kc.is_complete("for i in range(3):\n    print(i)"))["status"] == "incomplete"
    assert reply_to(kc.is_complete("for i in range(3):\n    print(i)\n"))["status"] == "complete"
    assert reply_to(kc.is_complete("1 +* 2"))["status"] == "invalid"


@pytest.mark.timeout(60)
def test_pager_payloads(kc: BlockingKernelClient) -> None:
    for code, expect in (("len?", "Return the number"), ("help(len)", "len(obj, /)")):
        reply, _ = run(kc, code)
        payload = reply["content"]["payload"]
        assert len(payload) == 1 and payload[0]["source"] == "page"
        assert expect in payload[0]["data"]["text/plain"]
    run(kc, "def g():\n    return 'src'\n")
    reply, _ = run(kc, "g??")
    assert "return 'src'" in reply["content"]["payload"][0]["data"]["text/plain"]
    reply, _ = run(kc, "exit()")
    assert reply["content"]["payload"] == [{"source": "ask_exit", "keepkernel": False}]


@pytest.mark.timeout(90)
def test_history_persists_across_sessions(kernelspec: Path) -> None:
    sessions = []
    for code in ("first_session = 1", "second_session = 2"):
        km = KernelManager(kernel_name=KERNEL_NAME)
        km.start_kernel()
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=TIMEOUT)
            run(kc, code)
            h = shell_reply(kc, kc.history(hist_access_type="tail", n=2, output=False, raw=True))
            sessions.append(h["content"]["history"])
            s = shell_reply(
                kc, kc.history(hist_access_type="search", pattern="*_session*", unique=True)
            )
        finally:
            kc.stop_channels()
            km.shutdown_kernel()
    assert sessions[1][0][2] == "first_session = 1"
    assert sessions[1][1][2] == "second_session = 2"
    assert sessions[1][0][0] < sessions[1][1][0]  # different session numbers
    assert [e[2] for e in s["content"]["history"]] == ["first_session = 1", "second_session = 2"]
    db = Path(os.environ["JUPYTER_DATA_DIR"]) / "kconsole" / "history.sqlite"
    assert db.is_file()


@pytest.mark.timeout(60)
def test_startup_imports_nothing_heavy(kc: BlockingKernelClient) -> None:
    msg_id = kc.execute(
        "",
        silent=True,
        user_expressions={
            "heavy": "sorted(m for m in ('jedi', 'sqlite3', 'pydoc', 'IPython') "
            "if m in __import__('sys').modules)"
        },
    )
    reply = shell_reply(kc, msg_id)
    assert reply["content"]["user_expressions"]["heavy"]["data"]["text/plain"] == "[]"


@pytest.mark.timeout(60)
def test_kernel_info_busy_idle(kc: BlockingKernelClient) -> None:
    msg_id = kc.kernel_info()
    info = shell_reply(kc, msg_id)["content"]
    assert info["protocol_version"] == "5.4"
    assert info["implementation"] == "kconsole"
    li = info["language_info"]
    assert li["name"] == "python" and li["pygments_lexer"] == "python3"
    assert li["version"] == ".".join(map(str, sys.version_info[:3]))
    states = [m["content"]["execution_state"] for m in collect(kc, msg_id)]
    assert states == ["busy", "idle"]
    cinfo = shell_reply(kc, kc.comm_info())["content"]
    assert cinfo == {"status": "ok", "comms": {}}


# -- raw zmq: the process itself -------------------------------------------------------


class RawClient:
    """A minimal zmq client signing with kconsole.protocol (no jupyter_client)."""

    def __init__(self, info: ConnectionInfo) -> None:
        import zmq

        self.zmq = zmq
        self.ctx = zmq.Context()
        self.session: Session = info.session()
        ident = self.session.session_id.encode()
        self.socks = {}
        for ch in ("shell", "control", "stdin"):
            s = self.ctx.socket(zmq.DEALER)
            s.linger = 0
            s.setsockopt(zmq.IDENTITY, ident)
            s.connect(info.url(ch))
            self.socks[ch] = s
        sub = self.ctx.socket(zmq.SUB)
        sub.linger = 0
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(info.url("iopub"))
        self.socks["iopub"] = sub
        hb = self.ctx.socket(zmq.REQ)
        hb.linger = 0
        hb.connect(info.url("hb"))
        self.socks["hb"] = hb

    def send(self, channel: str, msg_type: str, content: dict[str, Any] | None = None) -> Message:
        msg = self.session.msg(msg_type, content or {})
        self.socks[channel].send_multipart(self.session.serialize(msg))
        return msg

    def recv(self, channel: str, timeout: float = TIMEOUT) -> Message:
        s = self.socks[channel]
        if not s.poll(int(timeout * 1000)):
            raise TimeoutError(f"nothing on {channel} within {timeout}s")
        frames = s.recv_multipart()
        return self.session.deserialize(frames)

    def reply(self, channel: str, request: Message) -> Message:
        while True:
            m = self.recv(channel)
            if m.parent_id == request.msg_id:
                return m

    def iopub_until(self, pred: Any, timeout: float = TIMEOUT) -> Message:
        deadline = time.monotonic() + timeout
        while True:
            m = self.recv("iopub", max(0.01, deadline - time.monotonic()))
            if pred(m):
                return m

    def ping(self, timeout: float = 2.0) -> bool:
        self.socks["hb"].send(b"ping")
        if not self.socks["hb"].poll(int(timeout * 1000)):
            return False
        return self.socks["hb"].recv() == b"ping"

    def close(self) -> None:
        for s in self.socks.values():
            s.close(linger=0)
        self.ctx.term()


def _read_line_with_timeout(stream: Any, timeout: float) -> str:
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    if not sel.select(timeout):
        raise TimeoutError("no line from the kernel")
    return stream.readline().decode()  # type: ignore[no-any-return]


@pytest.fixture
def raw_kernel(jupyter_dirs: Path) -> Iterator[tuple[subprocess.Popen[bytes], RawClient, Path]]:
    """``python -m kconsole.kernel -f <new file>``: the kernel binds and writes the file."""
    cf = jupyter_dirs / "runtime" / "kernel-raw.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kconsole.kernel", "-f", str(cf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        line = _read_line_with_timeout(proc.stderr, TIMEOUT)
        assert str(cf) in line
        client = RawClient(ConnectionInfo.from_file(cf))
        yield proc, client, cf
        client.close()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(TIMEOUT)


@pytest.mark.timeout(60)
def test_kernel_writes_its_connection_file(raw_kernel: Any) -> None:
    proc, client, cf = raw_kernel
    assert (cf.stat().st_mode & 0o777) == 0o600
    info = ConnectionInfo.from_file(cf)
    assert all(info.port(ch) > 0 for ch in ("shell", "iopub", "stdin", "control", "hb"))
    assert info.key
    req = client.send("shell", "kernel_info_request")
    reply = client.reply("shell", req)
    assert reply.msg_type == "kernel_info_reply"
    assert reply.header["version"] == "5.4"
    # A forged (wrongly signed) request is dropped, not answered.
    forged = Session(b"wrong key").msg("kernel_info_request")
    client.socks["shell"].send_multipart(Session(b"wrong key").serialize(forged))
    req = client.send("shell", "kernel_info_request")
    assert client.recv("shell").parent_id == req.msg_id


@pytest.mark.timeout(60)
def test_iopub_welcome_for_each_subscriber(raw_kernel: Any) -> None:
    _, client, cf = raw_kernel
    welcome = client.iopub_until(lambda m: m.msg_type == "iopub_welcome")
    assert welcome.content == {"subscription": ""}
    # A second subscriber to the same kernel gets its own welcome (XPUB_VERBOSE).
    other = RawClient(ConnectionInfo.from_file(cf))
    try:
        m = other.iopub_until(lambda m: True)
        assert m.msg_type == "iopub_welcome"
    finally:
        other.close()


@pytest.mark.timeout(60)
def test_a_cell_run_right_after_the_first_kernel_info_reply_is_seen(jupyter_dirs: Path) -> None:
    """jupyter console runs the first cell as soon as kernel_info is answered; a
    subscriber still connecting then used to miss the whole cell (and jupyter console
    waited for its idle forever). Here the subscriber connects only after the
    request was sent: the reply waits for it, and the cell's output reaches it."""
    import zmq

    cf = jupyter_dirs / "runtime" / "kernel-late-sub.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kconsole.kernel", "-f", str(cf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    ctx = zmq.Context()
    try:
        assert str(cf) in _read_line_with_timeout(proc.stderr, TIMEOUT)
        info = ConnectionInfo.from_file(cf)
        session = info.session()
        shell = ctx.socket(zmq.DEALER)
        shell.linger = 0
        shell.connect(info.url("shell"))
        request = session.msg("kernel_info_request", {})
        shell.send_multipart(session.serialize(request))
        # No subscriber yet: the kernel holds its answer (without the wait, the reply
        # is here within milliseconds).
        assert not shell.poll(300)
        sub = ctx.socket(zmq.SUB)
        sub.linger = 0
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(info.url("iopub"))
        assert shell.poll(TIMEOUT * 1000)
        assert session.deserialize(shell.recv_multipart()).parent_id == request.msg_id
        cell = session.msg("execute_request", {"code": "print(6 * 7)", "silent": False})
        shell.send_multipart(session.serialize(cell))
        seen: list[tuple[str, Any]] = []
        while ("status", "idle") not in seen:
            assert sub.poll(TIMEOUT * 1000), f"the cell's idle never came; saw {seen}"
            m = session.deserialize(sub.recv_multipart())
            if m.parent_id == cell.msg_id:
                seen.append((m.msg_type, m.content.get("execution_state", m.content.get("text"))))
        assert ("stream", "42\n") in seen
    finally:
        ctx.destroy(linger=0)
        proc.kill()
        proc.wait(TIMEOUT)


@pytest.mark.timeout(60)
def test_heartbeat_and_control_while_a_cell_runs(raw_kernel: Any) -> None:
    proc, client, _ = raw_kernel
    client.iopub_until(lambda m: m.msg_type == "iopub_welcome")
    # A busy loop holding the GIL in Python code.
    req = client.send(
        "shell",
        "execute_request",
        {
            "code": "print('spinning', flush=True)\nwhile True:\n    pass",
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
    )
    client.iopub_until(lambda m: m.msg_type == "stream" and m.parent_id == req.msg_id)
    assert client.ping()
    ki = client.send("control", "kernel_info_request")
    assert client.reply("control", ki).content["implementation"] == "kconsole"
    intr = client.send("control", "interrupt_request")  # message mode
    assert client.reply("control", intr).content["status"] == "ok"
    reply = client.reply("shell", req)
    assert reply.content["ename"] == "KeyboardInterrupt"
    err = client.iopub_until(lambda m: m.msg_type == "error")
    assert err.content["ename"] == "KeyboardInterrupt"
    assert proc.poll() is None


@pytest.mark.timeout(60)
def test_shutdown_during_a_long_cell(raw_kernel: Any) -> None:
    proc, client, _ = raw_kernel
    req = client.send(
        "shell",
        "execute_request",
        {
            "code": "import time\nprint('sleeping', flush=True)\ntime.sleep(600)",
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
    )
    client.iopub_until(lambda m: m.msg_type == "stream" and m.parent_id == req.msg_id)
    sd = client.send("control", "shutdown_request", {"restart": False})
    assert client.reply("control", sd).content == {"status": "ok", "restart": False}
    assert proc.wait(10) == 0


@pytest.mark.timeout(60)
def test_shutdown_on_shell(raw_kernel: Any) -> None:
    proc, client, _ = raw_kernel
    sd = client.send("shell", "shutdown_request", {"restart": True})
    assert client.reply("shell", sd).content == {"status": "ok", "restart": True}
    assert proc.wait(10) == 0


@pytest.mark.timeout(60)
def test_kernel_exits_when_its_parent_dies(jupyter_dirs: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    cf = jupyter_dirs / "runtime" / "kernel-orphan.json"
    env = dict(os.environ, JPY_PARENT_PID=str(parent.pid))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kconsole.kernel", "-f", str(cf)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _read_line_with_timeout(proc.stderr, TIMEOUT)
        assert proc.poll() is None
        parent.kill()
        parent.wait()
        assert proc.wait(15) == 0
    finally:
        for p in (parent, proc):
            if p.poll() is None:
                p.kill()
                p.wait()


# -- kernelspec and jupyter console ----------------------------------------------------


def test_builtin_spec_dict_and_install_destinations(tmp_path: Path) -> None:
    spec = builtin_kernel_spec_dict()
    assert spec["argv"] == [sys.executable, "-m", "kconsole.kernel", "-f", "{connection_file}"]
    assert spec["display_name"] == "Python 3 (kconsole built-in)"
    assert spec["language"] == "python" and spec["interrupt_mode"] == "signal"
    kdir = install_kernelspec(tmp_path, "My-Kernel")
    assert kdir == tmp_path / "share" / "jupyter" / "kernels" / "my-kernel"
    import json

    assert json.loads((kdir / "kernel.json").read_text()) == spec
    user = install_kernelspec("user")
    assert user == Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels" / "kconsole-python"
    with pytest.raises(ValueError):
        install_kernelspec(tmp_path, "bad name!")


@pytest.mark.timeout(90)
def test_jupyter_console_runs_a_cell(kernelspec: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    exe = shutil.which("jupyter-console", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("jupyter-console is not installed")
    env = dict(os.environ, TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1")
    child = pexpect.spawn(
        exe,
        ["--kernel", KERNEL_NAME, "--simple-prompt"],
        env=env,
        timeout=TIMEOUT,
        encoding="utf-8",
        dimensions=(40, 120),
    )
    try:
        # jupyter console imports IPython and more before its first prompt: slow under load.
        child.expect(r"In \[1\]: ", timeout=3 * TIMEOUT)
        child.sendline("print(6 * 7); 'x' * 3")
        child.expect("42")
        child.expect(r"Out\[1\]: 'xxx'")
        child.expect(r"In \[2\]: ")
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0 or child.signalstatus in (None, signal.SIGHUP)


# -- in-process pieces (no sockets) ----------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("x = 1", {"status": "complete"}),
        ("len?", {"status": "complete"}),
        ("def f(x):", {"status": "incomplete", "indent": "    "}),
        ("def f(x):\n  x += 1", {"status": "incomplete", "indent": "  "}),
        ("def f(x):\n  x += 1\n", {"status": "complete"}),
        ("x = (1,", {"status": "incomplete", "indent": ""}),
        # A closed bracket ends the statement, as in IPython; inside a block it goes on.
        ("x = [1,\n     2]", {"status": "complete"}),
        ("if x:\n    y = [1,\n         2]", {"status": "incomplete", "indent": " " * 9}),
        ("print('''a", {"status": "incomplete", "indent": ""}),
        ("import = 7q", {"status": "invalid"}),
        # Top-level await is valid in a cell, so a block using it goes on (IPython).
        ("await x", {"status": "complete"}),
        ("async for v in agen():\n    print(v)", {"status": "incomplete", "indent": "    "}),
        ("if x:\n    await y", {"status": "incomplete", "indent": "    "}),
        # Pasted indented code: IPython removes the first line's indentation.
        ("  x = 1", {"status": "complete"}),
        ("  x = [1,\n  2]", {"status": "complete"}),
    ],
)
def test_is_complete_table(code: str, expected: dict[str, str]) -> None:
    from kconsole.kernel.shell import is_complete

    assert is_complete(code) == expected


def test_stream_batcher_keeps_order_across_names() -> None:
    from kconsole.kernel.iostream import StreamBatcher

    sent: list[tuple[str, str]] = []
    b = StreamBatcher(lambda name, text: sent.append((name, text)), max_chars=10)
    b.write("stdout", "a")
    b.write("stdout", "b")
    b.write("stderr", "E")
    b.write("stdout", "c")
    b.flush()
    assert sent == [("stdout", "ab"), ("stderr", "E"), ("stdout", "c")]
    sent.clear()
    b.write("stdout", "x" * 25)  # past max_chars: sent at once, in the writer's thread
    assert sent == [("stdout", "x" * 25)]


def test_format_object_bundles() -> None:
    from kconsole.kernel.displays import format_object

    class Png:
        def _repr_png_(self) -> bytes:
            return b"\x89PNG"

        def _repr_html_(self) -> tuple[str, dict[str, int]]:
            return "<p>", {"w": 1}

    data, md = format_object(Png())
    assert data["image/png"] == "iVBORw=="
    assert data["text/html"] == "<p>" and md == {"text/html": {"w": 1}}
    assert "text/plain" in data
    # A class is shown by its repr only (its _repr_*_ are unbound methods).
    assert list(format_object(Png)[0]) == ["text/plain"]

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("nope")

    assert "repr failed" in format_object(Broken())[0]["text/plain"]


def test_history_sqlite_across_sessions(tmp_path: Path) -> None:
    from kconsole.kernel.history_store import History

    db = tmp_path / "h.sqlite"
    h1 = History(db)
    h1.store_input(1, "a = 1")
    h1.store_input(2, "b = 2")
    h1.store_output(2, "2")
    h1.sync()
    h1.close()
    h2 = History(db)
    h2.store_input(1, "a = 1")
    assert [e[2] for e in h2.tail(3)] == ["a = 1", "b = 2", "a = 1"]
    assert h2.search("a*", unique=True) == [(h2.session, 1, "a = 1")]
    assert len(h2.search("*", n=2)) == 2
    assert h2.range(h1.session, 2, 3, output=True) == [(h1.session, 2, ("b = 2", "2"))]
    assert h2.range(0, 1, None) == [(h2.session, 1, "a = 1")]
    h2.close()


def test_completer_and_name_at_cursor() -> None:
    from kconsole.kernel.completer import Completer
    from kconsole.kernel.inspector import name_at_cursor

    c = Completer({"value": 1, "values": [1]}, use_jedi=False)
    assert c.complete("val")["matches"] == ["value", "values"]
    assert c.complete("values.ap")["matches"] == ["values.append"]
    assert "json" in c.complete("import js")["matches"]
    assert "dumps" in c.complete("from json import du")["matches"]
    r = c.complete("x = valu", 8)
    assert r["cursor_start"] == 4 and r["cursor_end"] == 8
    assert name_at_cursor("print(os.path.jo", 16) == "os.path.jo"
    assert name_at_cursor("len([1, 2], ", 12) == "len"


def test_tab_inside_a_string_completes_file_paths(tmp_path: Path) -> None:
    """`open('/usr/li<Tab>` offers paths as ipykernel does, not Python names (`list`)."""
    from kconsole.kernel.completer import Completer

    (tmp_path / "data.csv").write_text("")
    (tmp_path / "dir").mkdir()
    c = Completer({}, use_jedi=False)
    code = f"df = read_csv('{tmp_path}/d"
    r = c.complete(code)
    assert r["matches"] == [f"{tmp_path}/data.csv", f"{tmp_path}/dir/"]
    assert r["cursor_start"] == code.index("'") + 1 and r["cursor_end"] == len(code)
    assert c.complete(f'open("{tmp_path}/da')["matches"] == [f"{tmp_path}/data.csv"]
    # A closed string, or a quote inside a comment, is code again.
    assert "list" in c.complete("x = 'a'; li")["matches"]
    assert "list" in c.complete("# don't\nli")["matches"]
    # A path that matches nothing gives nothing, not Python names; an f-string's field
    # still completes names.
    assert c.complete(f"open('{tmp_path}/li")["matches"] == []
    assert Completer({"value": 1}, use_jedi=False).complete('print(f"{val')["matches"] == ["value"]
