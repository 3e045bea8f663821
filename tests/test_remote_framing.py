"""The remote package without a network: framings, URLs, tokens, host specs, tables."""

from __future__ import annotations

import struct

import pytest

from kconsole.connection import ConnectionInfo
from kconsole.listing import format_kernels
from kconsole.protocol import MalformedMessage, Message, Session
from kconsole.remote.framing import (
    decode_json,
    decode_v1,
    encode_json,
    encode_v1,
    rate_limit_notice,
    server_status,
)
from kconsole.remote.rest import (
    RemoteError,
    RemoteKernelModel,
    ServerClient,
    resolve_token,
    split_server_url,
)
from kconsole.remote.ssh import SSHTunnel, TunnelError, parse_host_spec

pytestmark = pytest.mark.timeout(10)


def _msg(buffers: list[bytes] | None = None) -> Message:
    s = Session(b"")
    parent = s.msg("execute_request", {"code": "x"})
    return s.msg(
        "comm_msg",
        {"comm_id": "c1", "data": {"text": "héllo ✓"}},
        parent=parent,
        metadata={"m": 1},
        buffers=buffers,
    )


# -- v1 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("buffers", [[], [b"\x00\x01\x02"], [b"", b"abc" * 1000, b"\xff"]])
def test_v1_round_trip(buffers: list[bytes]) -> None:
    msg = _msg(buffers)
    channel, back = decode_v1(encode_v1("iopub", msg))
    assert channel == "iopub"
    assert back.header == msg.header
    assert back.parent_header == msg.parent_header
    assert back.metadata == msg.metadata
    assert back.content == msg.content
    assert back.buffers == buffers


def test_v1_exact_layout() -> None:
    msg = _msg([b"BUF"])
    frame = encode_v1("shell", msg)
    (n,) = struct.unpack_from("<Q", frame)
    # channel, 4 dict parts, 1 buffer, and the end offset.
    assert n == 7
    offsets = struct.unpack_from("<7Q", frame, 8)
    assert offsets[0] == 64 and offsets[-1] == len(frame)
    assert frame[offsets[0] : offsets[1]] == b"shell"
    assert frame[offsets[5] : offsets[6]] == b"BUF"


def test_v1_matches_jupyter_server() -> None:
    base = pytest.importorskip("jupyter_server.services.kernels.connection.base")
    msg = _msg([b"\x01\x02", b"xyz"])
    # What we send, the server parses into the right parts (it then signs and forwards).
    channel, parts = base.deserialize_msg_from_ws_v1(encode_v1("shell", msg))
    assert channel == "shell"
    assert [Session(b"").serialize(msg)[2 + i] for i in range(4)] == parts[:4]
    assert parts[4:] == [b"\x01\x02", b"xyz"]
    # What the server sends (the kernel's parts after the signature), we parse.
    kernel_parts = Session(b"").serialize(msg)[2:]
    channel, back = decode_v1(base.serialize_msg_to_ws_v1(kernel_parts, "iopub"))
    assert channel == "iopub" and back.content == msg.content
    assert back.buffers == [b"\x01\x02", b"xyz"]


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x01\x00",
        struct.pack("<Q", 99) + b"\x00" * 16,
        # offsets out of order
        struct.pack("<7Q", 6, 56, 60, 58, 70, 80, 90),
    ],
)
def test_v1_malformed(frame: bytes) -> None:
    with pytest.raises(MalformedMessage):
        decode_v1(frame)


def test_v1_bad_json() -> None:
    parts = [b"iopub", b"{not json", b"{}", b"{}", b"{}"]
    n = len(parts) + 1
    offsets = [8 * (n + 1)]
    for p in parts:
        offsets.append(offsets[-1] + len(p))
    frame = struct.pack(f"<{n + 1}Q", n, *offsets) + b"".join(parts)
    with pytest.raises(MalformedMessage, match="not JSON"):
        decode_v1(frame)


# -- JSON framing -----------------------------------------------------------------------


def test_json_text_frame_without_buffers() -> None:
    msg = _msg()
    frame = encode_json("stdin", msg)
    assert isinstance(frame, str)
    channel, back = decode_json(frame)
    assert channel == "stdin"
    assert back.content == msg.content and back.buffers == []


def test_json_binary_frame_with_buffers() -> None:
    msg = _msg([b"\x00" * 10, b"second"])
    frame = encode_json("shell", msg)
    assert isinstance(frame, bytes)
    channel, back = decode_json(frame)
    assert channel == "shell"
    assert back.header == msg.header and back.buffers == [b"\x00" * 10, b"second"]


def test_json_framing_matches_jupyter_server() -> None:
    base = pytest.importorskip("jupyter_server.services.kernels.connection.base")
    msg = _msg([b"abc", b"\xff\xfe"])
    parsed = base.deserialize_binary_message(encode_json("shell", msg))
    assert parsed["channel"] == "shell"
    assert parsed["content"] == msg.content
    assert parsed["buffers"] == [b"abc", b"\xff\xfe"]
    d = {**msg.to_dict(), "channel": "iopub"}
    channel, back = decode_json(base.serialize_binary_message(d))
    assert channel == "iopub" and back.buffers == [b"abc", b"\xff\xfe"]


@pytest.mark.parametrize(
    "frame", ["not json", "[1, 2]", '{"header": {}}', b"\x00", b"\x00\x00\x00\x09"]
)
def test_json_malformed(frame: str | bytes) -> None:
    with pytest.raises(MalformedMessage):
        decode_json(frame)


# -- what the server injects ------------------------------------------------------------


def test_rate_limit_notice() -> None:
    s = Session(b"")
    text = "IOPub message rate exceeded.\nThe Jupyter server will temporarily stop...\n"
    notice = s.msg("stream", {"name": "stderr", "text": text})
    assert rate_limit_notice(notice) == (
        "IOPub message rate exceeded: the server is dropping output"
    )
    data = s.msg("stream", {"name": "stderr", "text": "IOPub data rate exceeded.\n..."})
    assert rate_limit_notice(data) == "IOPub data rate exceeded: the server is dropping output"
    assert rate_limit_notice(s.msg("stream", {"name": "stdout", "text": text})) is None
    assert rate_limit_notice(s.msg("stream", {"name": "stderr", "text": "hello"})) is None
    assert rate_limit_notice(s.msg("status", {"execution_state": "idle"})) is None


def test_server_status() -> None:
    s = Session(b"")
    assert server_status(s.msg("status", {"execution_state": "restarting"})) == "restarting"
    assert server_status(s.msg("status", {"execution_state": "dead"})) == "dead"
    assert server_status(s.msg("status", {"execution_state": "idle"})) is None


# -- URLs and tokens --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, base, token",
    [
        ("http://127.0.0.1:8888/lab?token=abc", "http://127.0.0.1:8888/", "abc"),
        ("localhost:8888", "http://localhost:8888/", None),
        ("https://hub.example/user/me/tree?token=t", "https://hub.example/user/me/", "t"),
        ("https://hub.example/user/me", "https://hub.example/user/me/", None),
    ],
)
def test_split_server_url(url: str, base: str, token: str | None) -> None:
    assert split_server_url(url) == (base, token)


def test_split_server_url_rejects_other_schemes() -> None:
    with pytest.raises(RemoteError, match="http:// or https://"):
        split_server_url("ftp://x")


def test_ws_url_keeps_base_path_and_scheme() -> None:
    assert ServerClient("https://h/user/me/").ws_url("api/kernels/1/channels") == (
        "wss://h/user/me/api/kernels/1/channels"
    )
    assert ServerClient("h:1").ws_url("api/x") == "ws://h:1/api/x"


def test_token_resolution_order() -> None:
    def never(prompt: str) -> str:
        raise AssertionError("must not prompt")

    env = {"JUPYTER_TOKEN": "from-env"}
    url = "http://h:1/?token=from-url"
    assert resolve_token(url, "opt", environ=env, prompt=never) == "opt"
    assert resolve_token(url, None, environ=env, prompt=never) == "from-url"
    assert resolve_token("http://h:1", None, environ=env, prompt=never) == "from-env"
    asked: list[str] = []

    def answer(prompt: str) -> str:
        asked.append(prompt)
        return " typed \n"

    assert resolve_token("http://h:1", None, environ={}, prompt=answer, interactive=True) == (
        "typed"
    )
    assert asked == ["Token for http://h:1/: "]
    # No terminal: no prompt, no token.
    assert resolve_token("http://h:1", None, environ={}, prompt=never, interactive=False) == ""


def test_token_never_in_repr() -> None:
    assert "secret" not in repr(ServerClient("http://h:1", "secret"))
    assert ServerClient("http://h:1", "secret").auth_headers == {"Authorization": "token secret"}
    assert ServerClient("http://h:1").auth_headers == {}


def test_format_kernels() -> None:
    assert format_kernels([]) == "no kernels running on the server"
    table = format_kernels(
        [
            RemoteKernelModel("a1b2", "python3", "idle", 1, "2026-01-01T00:00:00Z"),
            RemoteKernelModel("c3", "ir", "busy", 0, ""),
        ]
    ).splitlines()
    assert table[0].split() == ["ID", "NAME", "STATE", "CONN", "LAST", "ACTIVITY"]
    assert table[1].split() == ["a1b2", "python3", "idle", "1", "2026-01-01T00:00:00Z"]
    assert table[2].split() == ["c3", "ir", "busy", "0", "-"]


# -- SSH host specs and the command line ------------------------------------------------


@pytest.mark.parametrize(
    "spec, parsed",
    [
        ("host", (None, "host", None)),
        ("me@host", ("me", "host", None)),
        ("me@host:2222", ("me", "host", 2222)),
        ("[::1]:22", (None, "::1", 22)),
        ("me@[fe80::1]", ("me", "fe80::1", None)),
        ("::1", (None, "::1", None)),
    ],
)
def test_parse_host_spec(spec: str, parsed: tuple[str | None, str, int | None]) -> None:
    assert parse_host_spec(spec) == parsed


@pytest.mark.parametrize("spec", ["", "@host", "host:99999", "host:x", "-oProxyCommand=x"])
def test_parse_host_spec_errors(spec: str) -> None:
    with pytest.raises(TunnelError):
        parse_host_spec(spec)


def test_ssh_command() -> None:
    remote = ConnectionInfo(
        shell_port=1, iopub_port=2, stdin_port=3, control_port=4, hb_port=5, ip="0.0.0.0"
    )
    tunnel = SSHTunnel("me@box:2200", ssh_options=["StrictHostKeyChecking=no"])
    cmd = tunnel.command(remote, [11, 12, 13, 14, 15])
    assert cmd[1] == "-N"
    joined = " ".join(cmd)
    for opt in ("BatchMode=yes", "ExitOnForwardFailure=yes", "StrictHostKeyChecking=no"):
        assert f"-o {opt}" in joined
    assert "-p 2200" in joined
    # A wildcard address in the file means the remote host itself.
    assert "-L 127.0.0.1:11:127.0.0.1:1" in joined
    assert "-L 127.0.0.1:15:127.0.0.1:5" in joined
    assert cmd[-1] == "me@box"
    # The user's ssh config (ControlMaster, ProxyJump...) is not switched off.
    assert "-F" not in cmd and "ControlMaster=no" not in joined


def test_ssh_refuses_ipc() -> None:
    remote = ConnectionInfo(1, 2, 3, 4, 5, ip="/tmp/k", transport="ipc")
    with pytest.raises(TunnelError, match="ipc transport"):
        SSHTunnel("box").open(remote)
