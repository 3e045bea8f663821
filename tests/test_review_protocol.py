"""Defects found by the protocol review, each from the user's side: a hostile kernel
(tests/hostile_review.py, a real process with real sockets and the real key), the
built-in kernel, and the sans-IO core with bytes alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ptyconsole import KCONSOLE, PtyConsole

HOSTILE = Path(__file__).with_name("hostile_review.py")


def _env() -> dict[str, str]:
    root = str(Path(__file__).parent.parent)
    return dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))


@pytest.fixture
def review_kernel(kernel_script) -> Path:
    return kernel_script(HOSTILE, name="kernel-review.json")


# -- a reply of the wrong type -------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("reply_type", ["complete_reply", "kernel_info_reply", "execute_result"])
def test_script_mode_survives_an_execute_answered_by_another_reply_type(
    review_kernel: Path, reply_type: str
) -> None:
    # The reply was validated as what it claimed to be, so an execute_request answered
    # by a complete_reply reached the console with a payload of strings: a traceback.
    p = subprocess.run(
        [*KCONSOLE, "attach", "--existing", str(review_kernel)],
        input=f"wrongtype {reply_type}\nafter\n",
        capture_output=True,
        text=True,
        timeout=45,
    )
    assert "Traceback" not in p.stderr, p.stderr
    assert "before-reply" in p.stdout
    assert "echo: after" in p.stdout, p.stdout + p.stderr
    assert p.stderr.count("[kconsole]") == 1, p.stderr
    assert p.returncode == 0, p.stderr


@pytest.mark.timeout(60)
def test_repl_survives_an_execute_answered_by_another_reply_type(review_kernel: Path) -> None:
    c = PtyConsole(["attach", "--existing", str(review_kernel)])
    try:
        c.expect_prompt()
        c.sendline("wrongtype complete_reply")
        c.expect("before-reply")
        c.sendline("still here")
        c.expect("echo: still here")
        c.expect_empty_prompt()
        assert "Traceback" not in c.transcript
        assert c.transcript.count("[kconsole]") == 1
        c.ctrl("d")
        assert c.wait_exit(20) == 0
    finally:
        c.close()


# -- a signature scheme hashlib knows but HMAC cannot use ----------------------------------

_XOF_SCHEMES = ["hmac-shake_128", "hmac-shake_256"]


@pytest.mark.parametrize("scheme", [*_XOF_SCHEMES, "hmac-sha256\x00", "hmac-\udcff"])
def test_session_refuses_a_hash_hmac_cannot_use(scheme: str) -> None:
    from kconsole.protocol import Session, UnknownSignatureScheme

    # hashlib.new("shake_128") works, hmac.new(..., "shake_128") raises ValueError;
    # hashlib.new("sha256\x00") raises TypeError.
    with pytest.raises(UnknownSignatureScheme, match="signature scheme"):
        Session(b"key", scheme)


def _connection_file(tmp_path: Path, scheme: str) -> Path:
    cf = tmp_path / "kernel-scheme.json"
    ports = dict(shell_port=1, iopub_port=2, stdin_port=3, control_port=4, hb_port=5)
    cf.write_text(
        json.dumps(
            {**ports, "ip": "127.0.0.1", "transport": "tcp", "key": "k", "signature_scheme": scheme}
        )
    )
    return cf


@pytest.mark.timeout(60)
@pytest.mark.parametrize("scheme", [*_XOF_SCHEMES, "hmac-sha256\x00"])
def test_console_says_one_line_for_an_unusable_signature_scheme(
    tmp_path: Path, scheme: str
) -> None:
    cf = _connection_file(tmp_path, scheme)
    p = subprocess.run(
        [*KCONSOLE, "attach", "--existing", str(cf)],
        input="1\n",
        capture_output=True,
        text=True,
        timeout=45,
    )
    assert p.returncode != 0
    assert "Traceback" not in p.stderr, p.stderr
    assert "signature scheme" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


@pytest.mark.timeout(60)
def test_builtin_kernel_says_one_line_for_an_unusable_signature_scheme(tmp_path: Path) -> None:
    cf = _connection_file(tmp_path, "hmac-shake_256")
    p = subprocess.run(
        [sys.executable, "-m", "kconsole.kernel", "-f", str(cf)],
        capture_output=True,
        text=True,
        timeout=45,
        env=_env(),
    )
    assert p.returncode == 1
    assert "Traceback" not in p.stderr, p.stderr
    assert "hmac-shake_256" in p.stderr


# -- WebSocket frames declaring millions of parts ------------------------------------------


def _v1_frame_with_empty_parts(n: int) -> bytes:
    import struct

    parts = [b"iopub", b'{"msg_type":"stream","msg_id":"m"}', b"{}", b"{}", b"{}"]
    offsets = [8 * (1 + n)]
    for p in parts:
        offsets.append(offsets[-1] + len(p))
    offsets += [offsets[-1]] * (n - len(offsets))
    return struct.pack(f"<{n + 1}Q", n, *offsets) + b"".join(parts)


def _json_frame_with_empty_parts(n: int) -> bytes:
    import struct

    text = b'{"header":{"msg_type":"stream","msg_id":"m"},"channel":"iopub"}'
    offsets = [4 * (n + 1)] * n
    return struct.pack(f"!{n + 1}I", n, *offsets) + text


@pytest.mark.timeout(60)
@pytest.mark.parametrize("framing", ["v1", "json"])
def test_a_frame_declaring_millions_of_parts_is_dropped_in_bounded_memory(framing: str) -> None:
    import tracemalloc

    from kconsole.protocol import MalformedMessage
    from kconsole.remote.framing import decode_json, decode_v1

    n = 1_000_000  # an 8 MB frame; the 256 MiB a WebSocket may carry is 32 times that
    if framing == "v1":
        frame, decode = _v1_frame_with_empty_parts(n), decode_v1
    else:
        frame, decode = _json_frame_with_empty_parts(n), decode_json
    tracemalloc.start()
    try:
        with pytest.raises(MalformedMessage, match="parts"):
            decode(frame)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Each part cost some 60 bytes of Python objects: 7 times the frame's own size.
    assert peak < len(frame), peak


@pytest.mark.parametrize("framing", ["v1", "json"])
def test_a_frame_with_many_buffers_still_decodes(framing: str) -> None:
    from kconsole.protocol import Message
    from kconsole.remote.framing import decode_json, decode_v1, encode_json, encode_v1

    msg = Message(header={"msg_type": "comm_msg", "msg_id": "m"}, buffers=[b"b"] * 1000)
    if framing == "v1":
        _, back = decode_v1(encode_v1("iopub", msg))
    else:
        encoded = encode_json("iopub", msg)
        assert isinstance(encoded, bytes)
        _, back = decode_json(encoded)
    assert back.buffers == [b"b"] * 1000


# -- the built-in kernel's replies to odd requests ------------------------------------------

from test_builtin_kernel import RawClient, raw_kernel  # noqa: E402, F401 (fixture)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("cursor_pos", [2.5, "2", True, {"at": 1}, [1]])
def test_builtin_kernel_completes_with_integer_cursors_whatever_the_request(
    raw_kernel: tuple[subprocess.Popen[bytes], RawClient, Path],  # noqa: F811
    cursor_pos: object,
) -> None:
    # The cursor of a complete_reply is what a console slices the line with: the kernel
    # echoed a cursor_pos of 2.5 or "2" back into cursor_start and cursor_end.
    _, client, _ = raw_kernel
    code = "pri"
    req = client.send("shell", "complete_request", {"code": code, "cursor_pos": cursor_pos})
    reply = client.reply("shell", req)
    for key in ("cursor_start", "cursor_end"):
        value = reply.content[key]
        assert type(value) is int and 0 <= value <= len(code), reply.content
    req = client.send("shell", "kernel_info_request")
    assert client.reply("shell", req).content["status"] == "ok"


# -- JSON that made the depth check's regex quadratic ---------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("text", ['"' + '\\"' * 200_000, '"\\\\' * 100_000 + '"x'])
def test_loads_rejects_pathological_strings_in_linear_time(text: str) -> None:
    from kconsole.protocol import MalformedMessage, loads

    # 400 KB took some ten minutes: each escaped quote restarted a scan to the end.
    start = time.monotonic()
    with pytest.raises(MalformedMessage):
        loads("[" * 101 + text)
    assert time.monotonic() - start < 5


def test_depth_check_still_sees_through_strings() -> None:
    from kconsole.protocol import MalformedMessage, loads

    deep_in_string = '["' + "[" * 500 + '\\"' + "{" * 500 + '"]'
    assert loads(deep_in_string) == ["[" * 500 + '"' + "{" * 500]
    with pytest.raises(MalformedMessage, match="deeper"):
        loads('"\\\\"' + "," + "[" * 200 + "]" * 200)


@pytest.mark.timeout(60)
def test_script_mode_shows_output_after_a_pathological_message(review_kernel: Path) -> None:
    p = subprocess.run(
        [*KCONSOLE, "attach", "--existing", str(review_kernel)],
        input="quotes\nafter\n",
        capture_output=True,
        text=True,
        timeout=45,
    )
    assert "after-quotes" in p.stdout, p.stdout + p.stderr
    assert "echo: after" in p.stdout
    assert "Traceback" not in p.stderr
    assert p.stderr.count("[kconsole]") <= 1, p.stderr
    assert p.returncode == 0, p.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize("expressions", [["x"], "x", 5])
def test_builtin_kernel_reports_a_cell_that_ran_as_ok_whatever_its_user_expressions(
    raw_kernel: tuple[subprocess.Popen[bytes], RawClient, Path],  # noqa: F811
    expressions: object,
) -> None:
    # The cell ran, then user_expressions.items() raised: the reply said "error".
    _, client, _ = raw_kernel
    content = {"code": "x = 41 + 1", "user_expressions": expressions}
    reply = client.reply("shell", client.send("shell", "execute_request", content))
    assert reply.content["status"] == "ok", reply.content
    assert reply.content["user_expressions"] == {}
    content = {"code": "", "user_expressions": {"v": "x"}}
    reply = client.reply("shell", client.send("shell", "execute_request", content))
    assert reply.content["user_expressions"]["v"]["data"]["text/plain"] == "42"


# -- a kernel that never answers the running cell ------------------------------------------


@pytest.mark.timeout(60)
def test_repl_can_stop_waiting_for_a_cell_an_attached_kernel_never_answers(
    review_kernel: Path,
) -> None:
    # Attached (no restart possible), Ctrl-C only sent interrupt_request again and
    # again, and Ctrl-D was not read: the console had to be killed.
    c = PtyConsole(["attach", "--existing", str(review_kernel)])
    try:
        c.expect_prompt()
        c.sendline("never-reply")
        c.expect("waiting-forever")
        c.ctrl("c")
        c.expect("interrupt requested")
        c.ctrl("c")  # a kernel kconsole may not restart: the second Ctrl-C stops waiting
        c.expect("stopped waiting for the cell")
        c.expect_empty_prompt()
        c.sendline("after")
        c.expect("echo: after")
        c.expect_empty_prompt()
        assert "Traceback" not in c.transcript
        c.ctrl("d")
        assert c.wait_exit(20) == 0
    finally:
        c.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("channel", ["shell", "control"])
def test_builtin_kernel_logs_a_huge_unknown_msg_type_in_one_short_line(
    raw_kernel: tuple[subprocess.Popen[bytes], RawClient, Path],  # noqa: F811
    channel: str,
) -> None:
    from test_builtin_kernel import _read_line_with_timeout

    # The kernel's log (kernel-<id>.log, quoted in kconsole's errors) got the whole
    # megabyte of a msg_type nobody knows, for every such message.
    proc, client, _ = raw_kernel
    client.send(channel, "x" * 1_000_000)
    line = _read_line_with_timeout(proc.stderr, 20)
    assert "unknown" in line
    assert len(line) < 300, len(line)
    reply = client.reply("shell", client.send("shell", "kernel_info_request"))
    assert reply.content["status"] == "ok"


# -- the built-in kernel out of file descriptors --------------------------------------------


@pytest.mark.timeout(90)
def test_builtin_kernel_survives_running_out_of_file_descriptors(jupyter_dirs: Path) -> None:
    import resource

    import zmq
    from test_builtin_kernel import _read_line_with_timeout

    from kconsole.connection import ConnectionInfo

    # Anyone who can reach the iopub port can open connections (no key needed): with
    # the kernel's descriptors used up, building its shell (imports, files) failed, and
    # the warm-up that retries it while idle let the OSError end the process.
    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))

    cf = jupyter_dirs / "runtime" / "kernel-fds.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kconsole.kernel", "-f", str(cf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=low_limit,
        env=_env(),
    )
    ctx = zmq.Context()
    hogs: list[zmq.Socket[bytes]] = []
    try:
        assert str(cf) in _read_line_with_timeout(proc.stderr, 20)
        client = RawClient(ConnectionInfo.from_file(cf))
        iopub = ConnectionInfo.from_file(cf).url("iopub")
        for _ in range(300):
            s = ctx.socket(zmq.SUB)
            s.linger = 0
            s.connect(iopub)
            hogs.append(s)
        # Every hog is connected once the kernel has answered a later request... or has
        # refused it for want of a descriptor: either way the limit has been reached.
        reply = client.reply("shell", client.send("shell", "execute_request", {"code": "1"}))
        assert reply.content["status"] in ("ok", "error")
        for s in hogs:
            s.close()
        hogs.clear()
        # The kernel sees the hogs go as zmq notices each disconnect: until then a
        # request may still fail for want of a descriptor, but it is answered.
        deadline = time.monotonic() + 30
        while True:
            content = {"code": "6 * 7"}
            reply = client.reply("shell", client.send("shell", "execute_request", content))
            assert proc.poll() is None, "the kernel died"
            if reply.content["status"] == "ok" or time.monotonic() > deadline:
                break
        assert reply.content["status"] == "ok", reply.content
        client.close()
    finally:
        for s in hogs:
            s.close()
        ctx.term()
        proc.kill()
        proc.wait(10)


# -- a Jupyter server whose names drive the terminal -----------------------------------------


@pytest.mark.timeout(60)
def test_kernels_listing_of_a_server_shows_control_characters_escaped() -> None:
    import http.server
    import threading

    # OSC 0 sets the window title, OSC 52 writes the clipboard: a server's kernel ids,
    # names and display names reached the terminal as they came.
    osc = "\x1b]0;PWNED\x07"
    bodies = {
        "/api/kernelspecs": {
            "default": "py",
            "kernelspecs": {"py": {"name": "py", "spec": {"display_name": "P" + osc}}},
        },
        "/api/kernels": [
            {"id": "k" + osc, "name": "n\x1b]52;c;cHduZWQ=\x07", "execution_state": "idle"}
        ],
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(bodies.get(self.path.split("?")[0], {})).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        p = subprocess.run(
            [*KCONSOLE, "kernels", "--server", url, "--token", "t"],
            capture_output=True,
            text=True,
            timeout=45,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert p.returncode == 0, p.stderr
    assert "\x1b" not in p.stdout and "\x07" not in p.stdout, repr(p.stdout)
    assert "PWNED" in p.stdout  # shown, escaped


# -- Ctrl-C just after Enter ---------------------------------------------------------------


@pytest.mark.timeout(60)
def test_ctrl_c_right_after_enter_is_no_traceback(review_kernel: Path) -> None:
    # Enter asks the kernel is_complete; a Ctrl-C read while the answer was on its way
    # ended the prompt, then the answer accepted it again: "Unhandled exception in
    # event loop ... Return value already set" and a "Press ENTER to continue".
    c = PtyConsole(["attach", "--existing", str(review_kernel)])
    try:
        c.expect_prompt()
        # A race: each try hits it some one time in fifteen on the old code.
        for i in range(30):
            c.sendline(f"typed{i}")
            c.ctrl("c")
        c.sendline("after")
        c.expect("echo: after")
        c.expect_empty_prompt()
        assert "Unhandled exception" not in c.transcript, c.transcript
        assert "Press ENTER" not in c.transcript
        c.ctrl("d")
        assert c.wait_exit(20) == 0
    finally:
        c.close()
