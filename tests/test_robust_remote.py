"""Hostile Jupyter servers: REST answers and WebSocket frames no real server sends.
A bad frame costs that frame (one note), never the reader; sizes are capped."""

from __future__ import annotations

import asyncio
import http.server
import json
import subprocess
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("websockets")

from ptyconsole import KCONSOLE
from websockets.asyncio.server import ServerConnection, serve

from kconsole.client import KernelClient
from kconsole.protocol import Message, Session
from kconsole.remote import ServerClient, WebSocketTransport
from kconsole.remote import websocket as ws_module
from kconsole.remote.framing import V1_SUBPROTOCOL, encode_json, encode_v1

# -- REST --------------------------------------------------------------------------------

#: path -> (content type, body chunks): what the fake server answers.
Answers = dict[str, tuple[str, Callable[[], Iterator[bytes]], int]]


def huge_body() -> Iterator[bytes]:
    chunk = b" " * 2**20
    for _ in range(300):  # 300 MB of JSON whitespace, produced as it is read
        yield chunk


def fake_server(answers: Answers) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ctype, body, length = answers.get(
                self.path, ("application/json", lambda: iter([b"{}"]), 2)
            )
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            try:
                for chunk in body():
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading: what a capped reader does

        def log_message(self, *args: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}/"


def kernels_cli(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KCONSOLE, "kernels", "--server", url, "--token", "t"],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.timeout(60)
def test_a_300_mb_rest_answer_is_not_read_whole() -> None:
    srv, url = fake_server({"/api/kernels": ("application/json", huge_body, 300 * 2**20)})
    try:
        p = kernels_cli(url)
    finally:
        srv.shutdown()
    assert p.returncode != 0
    assert "larger than 16 MiB" in p.stderr
    assert "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "body, says",
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
        (b'[{"id": "k1", "name": "python3", "connections": "many"}]', "k1"),
        (b'{"not": "a list"}', "not a JSON list"),
    ],
)
def test_odd_kernel_lists_are_one_line(body: bytes, says: str) -> None:
    srv, url = fake_server({"/api/kernels": ("application/json", lambda: iter([body]), len(body))})
    try:
        p = kernels_cli(url)
    finally:
        srv.shutdown()
    assert "Traceback" not in p.stderr
    assert says in p.stdout + p.stderr, p.stdout + p.stderr


# -- WebSocket ---------------------------------------------------------------------------


Handler = Callable[[ServerConnection], Awaitable[None]]


def _stream(text: str) -> Message:
    return Session(b"").msg("stream", {"name": "stdout", "text": text})


def run_client(handler: Handler, pick: str | None, expect: str, events: list[Any] | None = None):
    """Connect a KernelClient to ``handler``; return (texts shown, notes) once a stream
    with ``expect`` was shown. Shown text is encoded as a terminal would."""

    def select(conn: ServerConnection, offered: Any) -> Any:
        return pick if pick in offered else None

    async def main() -> tuple[list[str], list[str]]:
        shown: list[str] = []
        notes: list[str] = []
        done = asyncio.Event()

        def show(msg: Message) -> None:
            text = msg.content["text"]
            text.encode("utf-8")  # what writing it to a UTF-8 terminal does
            shown.append(text)
            if expect in text:
                done.set()

        async with serve(handler, "127.0.0.1", 0, select_subprotocol=select) as server:
            port = server.sockets[0].getsockname()[1]
            t = WebSocketTransport(
                ServerClient(f"http://127.0.0.1:{port}", "tok"),
                "k1",
                on_event=events.append if events is not None else None,
            )
            client = KernelClient(t, t.session())
            client.on_broadcast = show
            client.on_note = notes.append
            await client.start()
            try:
                await asyncio.wait_for(done.wait(), 10)
            finally:
                await client.close()
        return shown, notes

    return asyncio.run(main())


@pytest.mark.timeout(30)
@pytest.mark.parametrize("pick", [None, V1_SUBPROTOCOL])
def test_lone_surrogate_in_stream_text_is_shown_and_later_output_too(pick: str | None) -> None:
    async def handler(ws: ServerConnection) -> None:
        if pick is None:  # jupyter_server's JSON framing: json.dumps, ASCII escapes
            d = json.loads(encode_json("iopub", _stream("x")))
            d["content"]["text"] = "lone \ud800 surrogate\n"
            await ws.send(json.dumps(d))
        else:
            frame = encode_v1("iopub", _stream("lone SURROG surrogate\n"))
            await ws.send(frame.replace(b"SURROG", b"\\ud800"))  # same length
        await ws.send(
            encode_v1("iopub", _stream("later\n"))
            if pick
            else encode_json("iopub", _stream("later\n"))
        )
        await ws.wait_closed()

    shown, notes = run_client(handler, pick, "later")
    assert "lone \\ud800 surrogate\n" in shown
    assert notes == []


@pytest.mark.timeout(30)
def test_bad_frames_cost_one_note_and_the_reader_keeps_reading() -> None:
    async def handler(ws: ServerConnection) -> None:
        nested = b"[" * 2000 + b"]" * 2000
        await ws.send("a text frame on the binary subprotocol")
        await ws.send(_v1_with_content(b'{"name":"stdout","text":' + nested + b"}"))
        await ws.send(_v1_with_content(b"\xff\xfe"))
        await ws.send(encode_v1("iopub", _stream("later\n")))
        await ws.wait_closed()

    shown, notes = run_client(handler, V1_SUBPROTOCOL, "later")
    assert shown == ["later\n"]
    assert len(notes) == 1 and "could not be read" in notes[0]


def _v1_with_content(content: bytes) -> bytes:
    """A v1 frame whose content part is ``content`` verbatim."""
    import struct

    from kconsole.protocol import pack

    msg = _stream("")
    parts = [b"iopub", pack(msg.header), b"{}", b"{}", content]
    n = len(parts) + 1
    offsets = [8 * (1 + n)]
    for p in parts:
        offsets.append(offsets[-1] + len(p))
    return b"".join([struct.pack(f"<{n + 1}Q", n, *offsets), *parts])


@pytest.mark.timeout(30)
def test_a_frame_past_the_size_cap_is_one_clear_line_and_the_session_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ws_module, "MAX_MESSAGE_BYTES", 2**20)
    connections = []

    async def handler(ws: ServerConnection) -> None:
        connections.append(ws)
        if len(connections) == 1:
            await ws.send(encode_v1("iopub", _stream("x" * (3 * 2**20))))
        else:
            await ws.send(encode_v1("iopub", _stream("after the big one\n")))
        await ws.wait_closed()

    events: list[Any] = []
    shown, _ = run_client(handler, V1_SUBPROTOCOL, "after the big one", events)
    assert shown == ["after the big one\n"]
    lines = [e.message for e in events if e.kind == "disconnected"]
    assert len(lines) == 1 and "larger than 1 MiB" in lines[0], lines


# -- a server's reasons for refusing ----------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=400),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def _refusal(status: int, body: bytes, token_ok: bool = True) -> str:
    """What kconsole says of ``status`` with ``body``, the token being good or not (as a
    GET of the kernelspecs with it would tell)."""
    import io
    import urllib.error

    from kconsole.remote.rest import ServerClient

    err = urllib.error.HTTPError("http://x/api/kernels", status, "x", {}, io.BytesIO(body))  # type: ignore[arg-type]
    client = ServerClient("http://127.0.0.1:9/", "t")
    client._token_accepted = lambda path: token_ok  # type: ignore[method-assign]
    return str(client._http_error(err, "POST", "api/kernels", None))


@settings(max_examples=150, deadline=None)
@given(
    status=st.sampled_from([400, 401, 403, 404, 409, 500, 503]),
    body=st.one_of(
        st.binary(max_size=300),
        st.builds(
            lambda d: json.dumps(d).encode(),
            st.dictionaries(st.sampled_from(["message", "reason", "traceback", "x"]), _json_values),
        ),
    ),
)
def test_any_refusal_body_is_one_short_printable_line(status: int, body: bytes) -> None:
    text = _refusal(status, body)
    assert "\n" not in text and text.isprintable() and len(text) < 500


def test_a_refusal_says_the_servers_reason_not_a_token_problem() -> None:
    eg = json.dumps(
        {"reason": "User 'root' is not authorized to start kernel 'Python 3'.", "message": ""}
    )
    assert _refusal(403, eg.encode()) == (
        "the server refused POST /api/kernels: User 'root' is not authorized to start kernel 'Python 3'."
    )
    # A bad token's refusal is about the token, whatever words come with it.
    xsrf = b'{"message": "\'_xsrf\' argument missing from POST", "reason": null}'
    assert _refusal(403, xsrf, token_ok=False) == "server refused the token (HTTP 403)"
    # A bare refusal is about the token when the token opens nothing...
    bare = b'{"reason": "Forbidden", "message": "Forbidden"}'
    assert _refusal(403, bare, token_ok=False) == "server refused the token (HTTP 403)"
    assert _refusal(401, b"", token_ok=False) == "server refused the token (HTTP 401)"
    # ...and about the action when it opens the rest (a gateway's policy, a reason too
    # long or not a string: the token is not to blame for those either).
    assert _refusal(403, bare) == "the server refused POST /api/kernels (HTTP 403)"
    long = json.dumps({"message": "x" * 100_000}).encode()
    assert _refusal(403, long) == "the server refused POST /api/kernels (HTTP 403)"
    # A 500's words say nothing: the exception that ends its traceback does.
    tb = "Traceback...\n  File x\njupyter_client.kernelspec.NoSuchKernel: No such kernel named nope\n"
    body = json.dumps(
        {"reason": "Internal Server Error", "message": "Unknown server error", "traceback": tb}
    )
    assert _refusal(500, body.encode()) == (
        "POST /api/kernels failed (HTTP 500): NoSuchKernel: No such kernel named nope"
    )
    # A server's words never drive the terminal.
    assert "\x1b" not in _refusal(403, json.dumps({"reason": "no \x1b[2J way"}).encode())


# -- redirects: never followed (urllib would send the token on) --------------------------


def _recording_server(status: int, location: str) -> tuple[http.server.ThreadingHTTPServer, list]:
    """Answers every GET with ``status`` and ``location``; records each request's
    path and Authorization header."""
    seen: list[tuple[str, str | None]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    # A short poll: shutdown() waits for it.
    threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True).start()
    return srv, seen


def test_a_redirect_elsewhere_is_one_line_and_the_token_stays_here() -> None:
    from kconsole.remote.rest import RemoteError

    elsewhere, seen_there = _recording_server(200, "")
    there = f"http://127.0.0.1:{elsewhere.server_address[1]}/api/kernels"
    here, seen_here = _recording_server(302, there)
    try:
        url = f"http://127.0.0.1:{here.server_address[1]}/"
        with pytest.raises(RemoteError) as e:
            asyncio.run(ServerClient(url, "secret").list_kernels())
    finally:
        here.shutdown()
        elsewhere.shutdown()
    assert str(e.value) == (
        f"{url} redirects /api/kernels to {there} (HTTP 302): give the server's own URL as --server"
    )
    assert seen_here == [("/api/kernels", "token secret")] and seen_there == []


@settings(max_examples=60, deadline=None)
@given(
    status=st.sampled_from([301, 302, 303, 307, 308]),
    location=st.text(max_size=200),
    hub=st.booleans(),
)
def test_any_redirect_is_one_short_printable_line(status: int, location: str, hub: bool) -> None:
    import io
    import urllib.error

    from kconsole.remote.rest import ServerClient

    headers = {"Location": location, **({"X-JupyterHub-Version": "6.1.1"} if hub else {})}
    err = urllib.error.HTTPError(
        "http://127.0.0.1:9/user/a/api/kernels", status, "x", headers, io.BytesIO(b"")
    )  # type: ignore[arg-type]
    client = ServerClient("http://127.0.0.1:9/user/a/", "t", timeout=2)
    text = str(client._http_error(err, "GET", "api/kernels", None))
    assert "\n" not in text and text.isprintable() and len(text) < 600
