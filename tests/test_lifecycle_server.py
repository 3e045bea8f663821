"""A Jupyter Server that goes away and comes back, as a user of the console sees it.

The server is stopped under a running console and restarted on the same port with
the same token; a restarted server has forgotten its kernels. The console must show
the connection as lost meanwhile, let Ctrl-C leave a cell waiting for it, say the
kernel is gone, and offer a new kernel there (never a traceback). A server that
accepts connections and never answers is bounded by ``--timeout``.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from ptyconsole import PtyConsole

pytest.importorskip("jupyter_server")
pytest.importorskip("websockets")

import test_remote_server as trs
from test_remote_server import JupyterServer

KCONSOLE = [sys.executable, "-m", "kconsole"]


def server_on(tmp: Path, port: int, token: str) -> JupyterServer:
    """A JupyterServer on ``port`` with ``token`` (the fixture's picks them itself)."""
    tmp.mkdir(parents=True)
    with (
        mock.patch.object(trs, "_free_port", lambda: port),
        mock.patch.object(trs.secrets, "token_hex", lambda n: token),
    ):
        srv = JupyterServer(tmp)
    srv.wait_ready()
    return srv


def kernels_on(srv: JupyterServer) -> list[dict[str, Any]]:
    req = urllib.request.Request(
        srv.url + "api/kernels", headers={"Authorization": f"token {srv.token}"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return list(json.loads(resp.read()))


def console_on(srv: JupyterServer) -> PtyConsole:
    """`kconsole start` of an ipykernel on ``srv``, in a pty."""
    return PtyConsole(
        ["start", "--server", srv.url, "--token", srv.token, "-k", "python3"], timeout=60
    )


@pytest.fixture
def first_server(tmp_path: Path) -> Iterator[JupyterServer]:
    (tmp_path / "a").mkdir()
    srv = JupyterServer(tmp_path / "a")
    try:
        srv.wait_ready()
        yield srv
    finally:
        if srv.proc.poll() is None:
            srv.stop()


@pytest.mark.timeout(150)
def test_server_restart_says_gone_and_offers_a_new_kernel(
    first_server: JupyterServer, tmp_path: Path
) -> None:
    c = console_on(first_server)
    second: JupyterServer | None = None
    try:
        c.expect_prompt(1)
        c.sendline("print('first' + 'kernel')")
        c.expect(r"(?m)^firstkernel")
        c.expect_prompt(2)

        first_server.stop()
        c.expect("lost the connection to the Jupyter server")
        c.expect(r"\[connection lost\]")  # the prompt's state: not idle

        # A cell sent now waits for the connection; Ctrl-C leaves that wait.
        c.sendline("print('wait' + 'ing')")
        c.expect("the cell waits for it")
        t0 = time.monotonic()
        c.ctrl("c")
        c.expect("stopped waiting for the cell", timeout=10)
        assert time.monotonic() - t0 < 5
        c.expect_prompt()
        # A restart would wait for the reconnect too: refused at once, in one line.
        c.ctrl("x")
        c.send("r")
        c.expect(r"Restart the kernel\? \[y/N\]")
        c.sendline("y")  # (a single key or a line: either way of answering works)
        c.expect("restart failed: the connection to the server is lost", timeout=10)

        second = server_on(tmp_path / "b", first_server.port, first_server.token)
        c.expect("the kernel is gone: the server no longer has it", timeout=60)
        c.expect("Press Enter to start a new kernel there")
        c.sendline("")
        c.expect(r"new kernel \S+ started", timeout=60)
        c.expect_prompt(1)
        c.sendline("print('second' + 'kernel')")
        c.expect(r"(?m)^secondkernel")
        c.expect_prompt(2)
        assert len(kernels_on(second)) == 1
        c.ctrl("d")
        assert c.wait_exit(30) == 0
        assert "Traceback" not in c.transcript
        assert kernels_on(second) == []  # the new kernel is the console's: deleted on exit
    finally:
        c.close()
        if second is not None:
            second.stop()


@pytest.mark.timeout(150)
def test_attached_kernel_gone_with_the_server_leaves_with_one_line(
    first_server: JupyterServer, tmp_path: Path
) -> None:
    req = urllib.request.Request(
        first_server.url + "api/kernels",
        data=json.dumps({"name": "python3"}).encode(),
        headers={"Authorization": f"token {first_server.token}"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        kid = json.loads(resp.read())["id"]
    c = PtyConsole(
        ["attach", "--server", first_server.url, "--token", first_server.token, "--kernel-id", kid],
        timeout=60,
    )
    second: JupyterServer | None = None
    try:
        c.expect_prompt()
        first_server.stop()
        c.expect("lost the connection to the Jupyter server")
        second = server_on(tmp_path / "b", first_server.port, first_server.token)
        c.expect("the kernel is gone: the server no longer has it", timeout=60)
        c.sendline("")
        c.expect(r"the kernel is gone from the server; leaving\.")
        assert c.wait_exit(30) == 3
        assert "Traceback" not in c.transcript
        assert kernels_on(second) == []  # nothing was started in its place
    finally:
        c.close()
        if second is not None:
            second.stop()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", ["start", "kernels"])
def test_timeout_bounds_rest_calls(command: str) -> None:
    # Accepts connections (the backlog) and never answers a request.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        t0 = time.monotonic()
        p = subprocess.run(
            [*KCONSOLE, command, "--server", url, "--token", "x", "--timeout", "2"],
            input="print(1)\n",
            capture_output=True,
            text=True,
            timeout=50,
        )
        took = time.monotonic() - t0
    assert p.returncode != 0
    assert "Traceback" not in p.stderr
    assert "did not answer within 2 s" in p.stderr, p.stderr
    assert took < 15, f"--timeout 2 but the REST call took {took:.0f} s"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", ["kernels", "start"])
def test_ctrl_c_leaves_a_call_to_a_server_that_does_not_answer(command: str) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        p = subprocess.Popen(
            [*KCONSOLE, command, "--server", url, "--token", "x"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # The REST call has begun once its connection arrives; it is never answered.
            silent.settimeout(30)
            held, _ = silent.accept()
            t0 = time.monotonic()
            p.send_signal(signal.SIGINT)
            _, err = p.communicate(timeout=20)
            took = time.monotonic() - t0
            held.close()
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert took < 5, f"Ctrl-C took {took:.0f} s to leave a REST call"
    assert p.returncode in (1, 130)
    assert "Traceback" not in err


@pytest.mark.timeout(120)
def test_a_kernel_that_could_not_be_shut_down_is_said_to_be_running(
    first_server: JupyterServer,
) -> None:
    c = PtyConsole(
        [
            "start",
            "--server",
            first_server.url,
            "--token",
            first_server.token,
            "-k",
            "python3",
            "--timeout",
            "3",
        ],
        timeout=60,
    )
    try:
        c.expect_prompt(1)
        c.sendline("print('up' + 'now')")
        c.expect(r"(?m)^upnow")
        c.expect_prompt(2)
        first_server.proc.send_signal(signal.SIGSTOP)  # frozen: connections hang
        try:
            c.ctrl("d")
            c.expect("could not shut the kernel down", timeout=40)
            c.expect("it may still be running on the server")
            c.wait_exit(30)
        finally:
            first_server.proc.send_signal(signal.SIGCONT)
        assert len(kernels_on(first_server)) == 1  # what was said is true
        assert "Traceback" not in c.transcript
    finally:
        c.close()


@pytest.mark.timeout(120)
def test_a_server_that_stops_answering_for_a_while_is_not_a_dead_kernel(
    first_server: JupyterServer,
) -> None:
    c = console_on(first_server)
    try:
        c.expect_prompt(1)
        c.sendline("x = 'kept' + 'state'")
        c.expect_prompt(2)
        first_server.proc.send_signal(signal.SIGSTOP)
        try:
            # The outage itself (the monitor probes twice a second): not a synchronisation.
            time.sleep(5)
        finally:
            first_server.proc.send_signal(signal.SIGCONT)
        c.sendline("print(x)")
        c.expect(r"(?m)^keptstate")
        c.expect_prompt(3)
        assert "died" not in c.transcript
        c.ctrl("d")
        assert c.wait_exit(30) == 0
    finally:
        c.close()


@pytest.mark.timeout(150)
def test_a_server_that_refuses_us_after_a_restart_is_not_a_dead_kernel(
    first_server: JupyterServer, tmp_path: Path
) -> None:
    c = console_on(first_server)
    second: JupyterServer | None = None
    try:
        c.expect_prompt(1)
        first_server.stop()
        c.expect("lost the connection to the Jupyter server")
        second = server_on(tmp_path / "b", first_server.port, "another-token")
        c.expect(r"server refused the token \(HTTP 403\); the kernel cannot be reached", timeout=60)
        c.sendline("")
        c.expect(r"the kernel is unreachable; leaving\.")
        assert c.wait_exit(30) == 3
        assert "died" not in c.transcript
        assert "Traceback" not in c.transcript
    finally:
        c.close()
        if second is not None:
            second.stop()


@pytest.mark.timeout(120)
def test_after_the_server_restarts_a_dead_kernel_the_prompt_says_idle_again(
    first_server: JupyterServer,
) -> None:
    # The server restarts a kernel that died and says "restarting"; the kernel it starts
    # says nothing more until asked. The console must not go on saying "restarting" (or
    # busy) at an idle prompt until the next cell.
    c = console_on(first_server)
    try:
        c.expect_prompt(1)
        c.sendline("import os; os._exit(1)")
        c.expect("restarted it", timeout=60)
        c.expect_prompt()
        line = c.expect_cursor_line(r"^In \[1\]: *$", timeout=30)  # a new kernel counts anew
        assert "[kernel" not in line, line
        c.sendline("print('back' + 'again')")
        c.expect(r"(?m)^backagain")
        c.expect_prompt()
    finally:
        c.close()


#: A kernel that runs once: restarted (on the same connection file), it exits at once.
_ONCE = (
    "import os, sys\n"
    "ran = sys.argv[2] + '.ran'\n"
    "if os.path.exists(ran):\n"
    "    sys.exit(1)\n"
    "open(ran, 'w').close()\n"
    "from ipykernel import kernelapp\n"
    "kernelapp.launch_new_instance(argv=sys.argv[1:])\n"
)


@pytest.mark.timeout(150)
def test_a_kernel_its_server_gave_up_restarting_is_said_to_have_died(tmp_path: Path) -> None:
    # The server restarts a dead kernel a few times, then gives up ("dead") and forgets
    # it. That is a death the server could not mend, not a kernel "shut down, culled as
    # idle, or lost in a server restart": the console says which, and offers a new one.
    spec = tmp_path / "data" / "kernels" / "once"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-c", _ONCE, "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Once", "language": "python"})
    )
    # The restarter looks at its kernel every 0.2 s instead of 3: the 5 tries take 1 s.
    srv = JupyterServer(tmp_path, extra=("--KernelRestarter.time_to_dead=0.2",))
    try:
        srv.wait_ready()
        c = PtyConsole(
            ["start", "--server", srv.url, "--token", srv.token, "-k", "once"], timeout=60
        )
        try:
            c.expect_prompt(1)
            c.sendline("import os; os._exit(1)")
            c.expect("the kernel is gone: it died, and its server could not restart it", 90)
            c.expect("Press Enter to start a new kernel there")
            assert "culled" not in c.transcript
        finally:
            c.close()
    finally:
        srv.stop()
