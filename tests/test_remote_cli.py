"""kconsole's remote commands against a real Jupyter Server: start, attach, kernels,
in script mode and in a real pty."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from ptyconsole import PtyConsole

pytest.importorskip("jupyter_server")
pytest.importorskip("websockets")

from test_remote_server import JupyterServer, https_server

KCONSOLE = [sys.executable, "-m", "kconsole"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    srv = JupyterServer(tmp_path_factory.mktemp("jupyter-server-cli"))
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def api(server: JupyterServer, method: str, path: str, body: dict | None = None):
    req = urllib.request.Request(
        server.url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"token {server.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
        return json.loads(raw) if raw else None


def run(args: list[str], stdin: str = "", timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        KCONSOLE + args, input=stdin, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.timeout(120)
def test_start_on_server_runs_a_cell_and_deletes_the_kernel(server: JupyterServer) -> None:
    p = run(["start", "--server", server.url, "--token", server.token], "print(6*7)\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "42"
    assert api(server, "GET", "api/kernels") == []


@pytest.mark.timeout(120)
def test_token_from_environment_and_keep_kernel(server: JupyterServer, monkeypatch) -> None:
    monkeypatch.setenv("JUPYTER_TOKEN", server.token)
    p = run(["start", "--server", server.url, "--keep-kernel"], "x = 'kept'\n")
    assert p.returncode == 0, p.stderr
    kernels = api(server, "GET", "api/kernels")
    assert len(kernels) == 1
    kid = kernels[0]["id"]
    try:
        p = run(["attach", "--server", server.url, "--kernel-id", kid[:8]], "print(x)\n")
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == "kept"
        assert [k["id"] for k in api(server, "GET", "api/kernels")] == [kid]  # attach keeps it
    finally:
        api(server, "DELETE", f"api/kernels/{kid}")


@pytest.mark.timeout(60)
def test_wrong_token_is_one_clear_line(server: JupyterServer) -> None:
    p = run(["start", "--server", server.url, "--token", "wrong"], "print(1)\n")
    assert p.returncode != 0
    assert "Traceback" not in p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "token" in lines[0], p.stderr
    p = run(["kernels", "--server", server.url, "--token", "wrong"])
    assert p.returncode != 0 and "Traceback" not in p.stderr and "token" in p.stderr


@pytest.mark.timeout(60)
def test_kernels_lists_the_servers_specs_and_kernels(server: JupyterServer) -> None:
    model = api(server, "POST", "api/kernels", {"name": "python3"})
    try:
        p = run(["kernels", "--server", server.url, "--token", server.token])
        assert p.returncode == 0, p.stderr
        assert "python3" in p.stdout and model["id"] in p.stdout
    finally:
        api(server, "DELETE", f"api/kernels/{model['id']}")


@pytest.mark.timeout(60)
def test_server_and_kernel_id_go_together() -> None:
    p = run(["attach", "--kernel-id", "abc"])
    assert p.returncode != 0 and "--server" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.timeout(150)
def test_interactive_session_on_the_server(server: JupyterServer, tmp_path: Path) -> None:
    c = PtyConsole(["start", "--server", server.url, "--token", server.token], timeout=60)
    try:
        c.expect_prompt(1)
        c.sendline("print('on the server')")
        c.expect("on the server")
        c.expect_prompt(2)
        c.send("import o\t")
        c.expect(r"\bos +module\b")  # the menu entry, not a history suggestion
        c.ctrl("c")
        c.expect_empty_prompt(2)
        c.sendline("name = input('name? ')")
        c.expect(r"(?m)^name\?")  # the kernel's prompt, not the echo of the cell
        c.sendline("Ada")
        c.expect_prompt(3)
        c.sendline("print(name)")
        c.expect("Ada")
        c.expect_prompt(4)
        c.sendline("print('sleep' + 'ing', flush=True); import time; time.sleep(30)")
        c.expect(r"(?m)^sleeping")  # the output line, not the echo: the cell is running
        t0 = time.monotonic()
        c.ctrl("c")
        c.expect("KeyboardInterrupt", timeout=15)
        assert time.monotonic() - t0 < 5
        c.expect_prompt(5)
        c.ctrl("d")
        assert c.wait_exit(30) == 0
    finally:
        c.close()
    assert api(server, "GET", "api/kernels") == []


@pytest.mark.timeout(60)
def test_ssh_to_an_unreachable_host_is_one_line(tmp_path: Path) -> None:
    import shutil
    import socket

    if shutil.which("ssh") is None:
        pytest.skip("the ssh client is not installed")
    from kconsole.connection import ConnectionInfo

    cf = ConnectionInfo.new().write(tmp_path / "kernel-remote.json")
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = run(["attach", "--existing", str(cf), "--ssh", f"127.0.0.1:{port}"], "print(1)\n")
    assert p.returncode != 0 and "Traceback" not in p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "SSH to 127.0.0.1 failed" in lines[0], p.stderr


@pytest.mark.timeout(120)
def test_attached_console_sees_another_clients_output(server: JupyterServer) -> None:
    model = api(server, "POST", "api/kernels", {"name": "python3"})
    kid = model["id"]
    c = PtyConsole(["attach", "--server", server.url, "--token", server.token, "--kernel-id", kid])
    try:
        c.expect_prompt()
        c.send("typed_here")
        c.expect("typed_here")
        # Another client of the same server kernel: kconsole in script mode.
        p = run(
            ["attach", "--server", server.url, "--token", server.token, "--kernel-id", kid],
            "print('from elsewhere')\n",
        )
        assert p.returncode == 0, p.stderr
        c.expect("from elsewhere")
        c.expect(r"In \[\d+\]: typed_here")  # the prompt comes back with the text intact
        c.ctrl("c")
        c.expect_empty_prompt()
        c.ctrl("d")
        assert c.wait_exit(30) == 0
    finally:
        c.close()
        api(server, "DELETE", f"api/kernels/{kid}")


@pytest.mark.timeout(180)
def test_start_on_an_https_server_from_the_command_line(tmp_path: Path) -> None:
    # The zmq paths import asyncio without its TLS support (see cli.py): a --server
    # path must keep it, or wss:// would fail only when run from the command line.
    with https_server(tmp_path) as own:
        argv = ["start", "--server", own.url, "--token", own.token, "--insecure"]
        p = run(argv, "print('over tls')\n")
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == "over tls"
