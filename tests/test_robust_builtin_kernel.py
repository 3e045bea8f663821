"""The built-in kernel under hostile input and with output no UTF-8 encoder takes:
it always replies, never dies, and a bad message costs only itself."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import zmq
from ptyconsole import KCONSOLE
from test_builtin_kernel import (  # noqa: F401 (fixtures)
    RawClient,
    kc,
    kernelspec,
    km,
    raw_kernel,
    run,
    stream_text,
)

from kconsole.connection import ConnectionInfo
from kconsole.protocol import DELIM, Message, Session, pack

SURROGATE_CELL = (
    "import os, sys\nprint(os.fsdecode(b'\\xff.txt'))\nprint('lone \\ud800', file=sys.stderr)\n"
)


# -- item 5: output holding lone surrogates ---------------------------------------------


@pytest.mark.timeout(60)
def test_script_mode_shows_a_non_utf8_file_name_and_runs_the_next_cell() -> None:
    p = subprocess.run(
        [*KCONSOLE, "start", "--kernel", "builtin"],
        input=SURROGATE_CELL + "print('next cell')\n",
        capture_output=True,
        text=True,
        timeout=45,
    )
    assert "\\xff.txt" in p.stdout, p.stdout + p.stderr
    assert "lone \\ud800" in p.stdout + p.stderr
    assert "next cell" in p.stdout
    assert "Traceback" not in p.stderr
    assert p.returncode == 0


@pytest.mark.timeout(60)
def test_non_utf8_bytes_a_subprocess_writes_are_shown_escaped() -> None:
    p = subprocess.run(
        [*KCONSOLE, "start", "--kernel", "builtin"],
        input="import os\n_ = os.system(\"printf '\\\\377.txt \\\\303\\\\251t\\\\303\\\\251\\\\n'\")\n",
        capture_output=True,
        text=True,
        timeout=45,
    )
    assert "\\xff.txt été" in p.stdout, p.stdout + p.stderr
    assert p.returncode == 0


@pytest.mark.timeout(60)
def test_jupyter_client_gets_the_reply_of_a_cell_printing_surrogates(kc: Any) -> None:  # noqa: F811
    reply, msgs = run(kc, SURROGATE_CELL)
    assert reply["content"]["status"] == "ok"
    assert "\\xff.txt" in stream_text(msgs)
    assert "lone \\ud800" in stream_text(msgs, "stderr")
    reply, msgs = run(kc, "raise ValueError(os.fsdecode(b'bad \\xfe'))")
    assert reply["content"]["status"] == "error"
    assert "\\xfe" in reply["content"]["evalue"]
    reply, msgs = run(kc, "os.fsdecode(b'\\xfd')")  # an execute_result: repr escapes it
    assert reply["content"]["status"] == "ok"
    reply, _ = run(kc, "print('still answering')")
    assert reply["content"]["status"] == "ok"


# -- hostile clients ---------------------------------------------------------------------


def signed_frames(session: Session, msg_type: str, content: bytes) -> list[bytes]:
    """A correctly signed message whose content frame is ``content`` verbatim."""
    parts = [pack(session.header(msg_type)), b"{}", b"{}", content]
    return [DELIM, session.sign(parts), *parts]


def answers(client: RawClient, channel: str = "shell") -> bool:
    req = client.send(channel, "kernel_info_request")
    return client.reply(channel, req).content.get("implementation") == "kconsole"


EXECUTE = {
    "silent": False,
    "store_history": True,
    "user_expressions": {},
    "allow_stdin": False,
    "stop_on_error": True,
}


@pytest.mark.timeout(90)
def test_kernel_keeps_serving_after_hostile_messages(raw_kernel: Any) -> None:  # noqa: F811
    proc, client, cf = raw_kernel
    session = client.session
    deep = b'{"code":' + b"[" * 5000 + b"]" * 5000 + b"}"
    poisons = [
        [DELIM, b"", b"{}", b"{}", b"{}", b"{}"],  # unsigned
        [DELIM, b"0" * 64, pack(session.header("execute_request")), b"{}", b"{}", b"{}"],
        [b"no delimiter at all"],
        [DELIM, b"too few"],
        signed_frames(session, "execute_request", deep),
        signed_frames(session, "execute_request", b'{"code": "print(\'\xff\')"'),
        signed_frames(session, "execute_request", b'{"code": ' + b"7" * 50_000 + b"}"),
        signed_frames(session, "execute_request", b"[1, 2]"),
        signed_frames(session, "execute_request", b"\xff\xfe not JSON"),
        signed_frames(session, "execute_request", b'{"code": ["a list"]}'),
        [DELIM, b"1" * 64, *[b"{}"] * 3, b"x" * 20_000_000],  # huge, forged
    ]
    for channel in ("shell", "control", "stdin"):
        for frames in poisons:
            client.socks[channel].send_multipart(frames)
        assert answers(client, "shell" if channel == "stdin" else channel)
    # Signed, well formed, with content no handler expects: an error reply, not silence.
    for msg_type, content in [
        ("history_request", {"hist_access_type": "tail", "n": "many"}),
        ("execute_request", {**EXECUTE, "code": "1", "user_expressions": ["not", "a", "dict"]}),
        ("inspect_request", {"code": "x", "cursor_pos": "end"}),
        ("complete_request", {"code": "x", "cursor_pos": [1]}),
    ]:
        req = client.send("shell", msg_type, content)
        assert client.reply("shell", req).content["status"] in ("ok", "error")
    # A replayed request is answered once.
    msg = session.msg("kernel_info_request")
    frames = session.serialize(msg)
    client.socks["shell"].send_multipart(frames)
    client.socks["shell"].send_multipart(frames)
    last = client.send("shell", "kernel_info_request")
    seen = []
    while True:
        m = client.recv("shell")
        seen.append(m.parent_id)
        if m.parent_id == last.msg_id:
            break
    assert seen.count(msg.msg_id) == 1
    req = client.send("shell", "execute_request", {**EXECUTE, "code": "print('alive')"})
    out = client.iopub_until(lambda m: m.msg_type == "stream" and m.parent_id == req.msg_id)
    assert out.content["text"] == "alive\n"
    assert client.reply("shell", req).content["status"] == "ok"
    assert client.ping()
    assert proc.poll() is None


@pytest.mark.timeout(60)
def test_subscription_flood_gets_no_welcome_flood(raw_kernel: Any) -> None:  # noqa: F811
    _, client, cf = raw_kernel
    client.iopub_until(lambda m: m.msg_type == "iopub_welcome")
    ctx = zmq.Context()
    attacker = ctx.socket(zmq.XSUB)
    attacker.linger = 0
    attacker.connect(ConnectionInfo.from_file(cf).url("iopub"))
    try:
        for _ in range(2000):
            attacker.send(b"\x01")
            attacker.send(b"\x01kernel")
        # The flood reaches the kernel at some point after these sends: watch what it
        # publishes for two seconds of requests (a window to see a flood in, not a
        # wait for an event).
        welcomes: list[Message] = []
        until = time.monotonic() + 2.0
        while time.monotonic() < until:
            req = client.send("shell", "kernel_info_request")
            while True:
                m = client.recv("iopub")
                if m.msg_type == "iopub_welcome":
                    welcomes.append(m)
                if (
                    m.msg_type == "status"
                    and m.parent_id == req.msg_id
                    and m.content["execution_state"] == "idle"
                ):
                    break
        # The attacker is one new subscriber: at most one welcome (which every
        # subscriber of "" sees), not one per subscription frame.
        assert len(welcomes) <= 2
    finally:
        attacker.close()
        ctx.term()
    # A genuinely new subscriber still gets its welcome first.
    other = RawClient(ConnectionInfo.from_file(cf))
    try:
        assert other.iopub_until(lambda m: True).msg_type == "iopub_welcome"
    finally:
        other.close()


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):  # the peak: what a huge read would have cost
                return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.timeout(60)
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_a_300_mb_frame_is_refused_before_it_is_read(raw_kernel: Any) -> None:  # noqa: F811
    proc, client, cf = raw_kernel
    assert answers(client)
    huge = bytearray(300 * 2**20)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    sock.connect(ConnectionInfo.from_file(cf).url("shell"))
    try:
        sock.send_multipart([DELIM, b"", b"{}", b"{}", b"{}", huge], copy=False)
        del huge
        # The kernel hangs up on a frame announcing 300 MB instead of reading it.
        assert monitor.poll(20_000), "the kernel read the 300 MB frame"
        # Still serving (the huge frame's peer was dropped, not the kernel).
        assert answers(client)
        assert rss_mb(proc.pid) < 200
    finally:
        sock.disable_monitor()
        monitor.close()
        sock.close()
        ctx.term()
