"""The review of the gateway work (REVIEW.md), from the user's side: servers that
redirect, drip-feed, refuse with a good token, list hostile names, or are slow to start
a kernel the user stops waiting for. One scripted HTTP server per test, no Jupyter."""

from __future__ import annotations

import http.server
import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ptyconsole import KCONSOLE

pytest.importorskip("websockets")

#: A handler's answer: (status, body or None, extra headers); None: hang up.
Answer = tuple[int, Any, dict[str, str]]
Route = Callable[[str, str], Answer | None]

SPECS = {"default": "python3", "kernelspecs": {"python3": {"spec": {"language": "python"}}}}


class Scripted:
    """An HTTP server answering each request by ``route(method, path)``; it records
    every request (method, path, Authorization header)."""

    def __init__(self, route: Route) -> None:
        self.requests: list[tuple[str, str, str | None]] = []
        self.seen = threading.Condition()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                with outer.seen:
                    outer.requests.append(
                        (self.command, self.path, self.headers.get("Authorization"))
                    )
                    outer.seen.notify_all()
                answer = route(self.command, self.path)
                if answer is None:
                    return
                status, body, headers = answer
                if callable(body):  # writes its own answer (drip-feeding, hanging)
                    body(self)
                    return
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = handle_one

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def wait_for(self, method: str, fragment: str, timeout: float = 20) -> bool:
        with self.seen:
            return self.seen.wait_for(
                lambda: any(m == method and fragment in p for m, p, _ in self.requests), timeout
            )

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted() -> Iterator[Callable[[Route], Scripted]]:
    made: list[Scripted] = []

    def make(route: Route) -> Scripted:
        made.append(Scripted(route))
        return made[-1]

    yield make
    for s in made:
        s.close()


def kconsole(*args: str, stdin: str = "", timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KCONSOLE, *args], input=stdin, capture_output=True, text=True, timeout=timeout
    )


def one_line(p: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in p.stderr
    assert len(lines) == 1, p.stderr
    return lines[0]


@pytest.mark.timeout(30)
def test_a_redirect_is_one_line_and_the_token_never_leaves_for_another_host(scripted) -> None:
    elsewhere = scripted(lambda m, p: (404, {}, {}))
    where = elsewhere.url.replace("127.0.0.1", "localhost") + "steal"
    server = scripted(lambda m, p: (302, None, {"Location": where}))
    p = kconsole("kernels", "--server", server.url, "--token", "SECRET")
    assert p.returncode == 1
    line = one_line(p)
    assert "redirect" in line and "localhost" in line, line
    assert elsewhere.requests == []  # not followed: the token stayed with the server asked


def _drip(handler: Any) -> None:
    handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
    try:
        for _ in range(60):
            time.sleep(0.5)
            handler.wfile.write(b"X-Still: here\r\n")
            handler.wfile.flush()
    except OSError:
        pass


@pytest.mark.timeout(30)
def test_timeout_bounds_a_server_that_drip_feeds_its_answer(scripted) -> None:
    server = scripted(lambda m, p: (200, _drip, {}))
    t0 = time.monotonic()
    p = kconsole("kernels", "--server", server.url, "--token", "t", "--timeout", "1.5")
    took = time.monotonic() - t0
    assert p.returncode == 1
    assert "did not answer within 1.5 s" in one_line(p)
    assert took < 8, f"--timeout 1.5 but kconsole took {took:.0f} s"


def _hang(handler: Any) -> None:
    time.sleep(30)


def _slow_start(release: threading.Event) -> Route:
    """A gateway that answers the start only once ``release`` is set (as Enterprise
    Gateway does once its kernel is launched) and never opens the WebSocket."""

    def route(method: str, path: str) -> Answer | None:
        if path.startswith("/api/kernelspecs"):
            return 200, SPECS, {}
        if method == "POST" and path == "/api/kernels":
            release.wait(20)
            return 201, {"id": "k1", "name": "python3"}, {}
        if method == "DELETE":
            return 204, None, {}
        if "/channels" in path:
            return 200, _hang, {}
        return 200, {"id": "k1", "name": "python3", "execution_state": "idle"}, {}

    return route


@pytest.mark.timeout(40)
@pytest.mark.parametrize("when", ["starting", "connecting"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_leaving_while_the_server_starts_the_kernel_deletes_it(scripted, when, sig) -> None:
    release = threading.Event()
    server = scripted(_slow_start(release))
    p = subprocess.Popen(
        [*KCONSOLE, "start", "--server", server.url, "--token", "t"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.wait_for("POST", "/api/kernels")
        if when == "connecting":
            release.set()
            assert server.wait_for("GET", "/channels")
        p.send_signal(sig)
        release.set()  # the server finishes starting the kernel after the user left
        _, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert "Traceback" not in err
    assert p.returncode == 128 + sig
    assert server.wait_for("DELETE", "/api/kernels/k1", timeout=5), server.requests


def _gateway_sessions(method: str, path: str) -> Answer:
    # A gateway: the token opens the kernelspecs; sessions are refused with tornado's
    # bare word, as Enterprise and Kernel Gateway do.
    if path.startswith("/api/kernelspecs"):
        return 200, SPECS, {}
    return 403, {"reason": "Forbidden", "message": "Forbidden"}, {}


@pytest.mark.timeout(30)
def test_a_gateway_refusing_sessions_is_not_called_a_token_problem(scripted) -> None:
    server = scripted(_gateway_sessions)
    p = kconsole(
        "attach", "--server", server.url, "--token", "good", "--notebook", "a.ipynb", stdin="1\n"
    )
    assert p.returncode == 1
    line = one_line(p)
    assert "token" not in line, line
    assert "sessions" in line and "--kernel-id" in line, line


def _lister(method: str, path: str) -> Answer:
    if path.startswith("/api/kernelspecs"):
        return 200, SPECS, {}
    if path.startswith("/api/kernels"):
        return 200, [{"id": "k1\nFAKE ROW", "name": "python3", "execution_state": "idle"}], {}
    if path.startswith("/api/sessions"):
        sessions = [{"id": "s", "path": "nb\nID  injected", "kernel": {"id": "k1\nFAKE ROW"}}]
        return 200, sessions, {}
    return 404, {}, {}


@pytest.mark.timeout(30)
def test_the_server_listing_keeps_each_kernel_on_its_row_and_hides_the_token(scripted) -> None:
    server = scripted(_lister)
    p = kconsole("kernels", "--server", server.url + "lab?token=SECRET")
    assert p.returncode == 0, p.stderr
    assert "SECRET" not in p.stdout + p.stderr
    table = p.stdout.split("Running kernels:\n", 1)[1].splitlines()
    assert len(table) == 2, table  # the header and the one kernel
    assert "k1\\nFAKE ROW" in table[1] and "nb\\nID  injected" in table[1], table


@pytest.mark.timeout(30)
def test_credentials_in_the_url_are_refused_without_echoing_them() -> None:
    p = kconsole("kernels", "--server", "http://ada:hunter2@127.0.0.1:9/")
    assert p.returncode == 2
    line = one_line(p)
    assert "hunter2" not in line and "--token" in line, line


@pytest.mark.timeout(40)
def test_ctrl_c_in_a_terminal_while_the_server_starts_the_kernel(scripted) -> None:
    from ptyconsole import PtyConsole

    release = threading.Event()
    server = scripted(_slow_start(release))
    c = PtyConsole(["start", "--server", server.url, "--token", "t"])
    try:
        assert server.wait_for("POST", "/api/kernels")
        c.ctrl("c")  # while the console still asks the terminal what it can show
        release.set()
        status = c.wait_exit(20)
    finally:
        c.close()
    assert "Traceback" not in c.transcript, c.transcript[-2000:]
    assert status == 130
    assert server.wait_for("DELETE", "/api/kernels/k1", timeout=5), server.requests
