"""kconsole against a JupyterHub user's server, reached through the hub's proxy: a real
JupyterHub (its own env, tests/engines.py, with configurable-http-proxy from npm) on
loopback, its dummy authenticator, and the simple local-process spawner starting a real
jupyterhub-singleuser for user "ada" (home under the test's tmp).

The token is got as a user would (the hub's token page): here an admin service of the
hub config creates the user, spawns the server and issues a token with the
access:servers scope through the hub's REST API. The same scenarios as the gateways'
run through kconsole's CLI in script mode and in a pty; each of the hub's refusals
(a redirect to its login page, a 403 from the user's server, a server not running) is
one line naming the token missing or refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ptyconsole import PtyConsole
from test_engine_gateways import (
    KCONSOLE,
    PRINT_KERNEL_ID,
    _free_port,
    one_line,
    rest_call,
    run,
    wait_until,
)

from kconsole.remote import RemoteError, ServerClient, WebSocketTransport

pytest.importorskip("websockets")

pytestmark = pytest.mark.engine("hub")

CONFIG = """\
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_port}"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {home!r} + "/{{username}}"
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.args = ["--allow-root"]  # CI runs as root
c.JupyterHub.db_url = "sqlite:///" + {tmp!r} + "/hub.sqlite"
c.JupyterHub.cookie_secret_file = {tmp!r} + "/cookie_secret"
c.JupyterHub.pid_file = {tmp!r} + "/hub.pid"
c.ConfigurableHTTPProxy.pid_file = {tmp!r} + "/proxy.pid"
c.JupyterHub.services = [{{"name": "tests", "api_token": {admin!r}}}]
c.JupyterHub.load_roles = [
    {{"name": "tests", "scopes": ["admin:users", "admin:servers", "tokens"], "services": ["tests"]}}
]
"""


class Hub:
    """A JupyterHub on loopback with its proxy, from its own env; ``admin`` is the token
    of a service allowed to manage users, their servers and their tokens."""

    def __init__(self, env_dir: Path, tmp: Path) -> None:
        import engines

        self.tmp = tmp
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.admin = secrets.token_hex(16)
        self.log = tmp / "hub.log"
        (tmp / "home").mkdir()
        config = tmp / "jupyterhub_config.py"
        config.write_text(
            CONFIG.format(
                port=self.port,
                hub_port=_free_port(),
                proxy_port=_free_port(),
                home=str(tmp / "home"),
                singleuser=str(env_dir / "bin" / "jupyterhub-singleuser"),
                tmp=str(tmp),
                admin=self.admin,
            )
        )
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("JUPYTER", "PYTHON", "KERNEL_"))
        }
        # The hub's python and its proxy (npm's) first, as in a hub's own install.
        path = [str(env_dir / "bin"), str(engines.npm_bin(env_dir)), env.get("PATH", "")]
        env["PATH"] = os.pathsep.join(path)
        self._log = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(env_dir / "bin" / "jupyterhub"), "-f", str(config)],
            cwd=tmp,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a session of its own: killed whole if it is stuck
        )
        self.wait(lambda: self.api("GET", "hub/api/")[0] == 200, 60, "the hub")

    def api(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        """One REST call (the admin token unless ``token``); (status, decoded body)."""
        return rest_call(self.url, token or self.admin, method, path, body)

    def wait(self, ready: Any, timeout: float, what: str) -> None:
        wait_until(self.proc, self.log, ready, timeout, what)

    def user(self, name: str, scopes: list[str] | None = None) -> str:
        """Create user ``name`` (if new) and return a token of theirs with ``scopes``
        (default: access to their servers, what the hub's token page gives)."""
        assert self.api("POST", f"hub/api/users/{name}")[0] in (201, 409)
        body = {"scopes": scopes or [f"access:servers!user={name}"], "note": "kconsole tests"}
        status, d = self.api("POST", f"hub/api/users/{name}/tokens", body)
        assert status == 201, status
        return str(d["token"])

    def running(self, name: str) -> bool:
        d = self.api("GET", f"hub/api/users/{name}")[1] or {}
        return bool(d.get("servers", {}).get("", {}).get("ready"))

    def spawn(self, name: str) -> str:
        """Start ``name``'s server (if not running); its URL through the proxy."""
        if not self.running(name):
            assert self.api("POST", f"hub/api/users/{name}/server")[0] in (201, 202, 400)
            self.wait(lambda: self.running(name), 90, f"{name}'s server")
        return f"{self.url}user/{name}/"

    def stop(self) -> None:
        self.proc.terminate()  # the hub stops its servers and its proxy
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        # Whatever a stuck hub left: its session, and its proxy (a session of its own).
        pids = [-self.proc.pid]
        with contextlib.suppress(OSError, ValueError):
            pids.append(int((self.tmp / "proxy.pid").read_text()))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()
        self._log.close()


@pytest.fixture(scope="module")
def hub(engine_env: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    h = Hub(engine_env("hub"), tmp_path_factory.mktemp("hub"))
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture(scope="module")
def ada_token(hub: Hub) -> str:
    """ada's token with access to her servers (what the hub's token page gives)."""
    return hub.user("ada")


@pytest.fixture
def ada(hub: Hub, ada_token: str) -> tuple[str, str]:
    """ada's token and her running server's URL through the proxy, as a user pastes
    it: without the trailing slash."""
    return ada_token, hub.spawn("ada").rstrip("/")


@pytest.mark.timeout(120)
def test_hub_in_script_mode(hub: Hub, ada: tuple[str, str]) -> None:
    token, url = ada
    on = ["--server", url, "--token", token]
    # A kernel started on ada's server through the proxy: a cell, input() answered by
    # the next line, then Ctrl-C interrupts a sleeping cell (status 130, as python3's);
    # the kernel is deleted on exit.
    script = (
        "print(6 * 7)\nname = input()\nAda\nprint(name + '!')\n"
        + PRINT_KERNEL_ID
        + "import time; print('sleeping', flush=True); time.sleep(60)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERNEL_")}
    proc = subprocess.Popen(
        [*KCONSOLE, "start", *on],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(script)
        proc.stdin.close()
        lines = [proc.stdout.readline() for _ in range(4)]
        assert lines[:2] == ["42\n", "Ada!\n"] and lines[3] == "sleeping\n", lines
        kid = lines[2].strip()
        proc.send_signal(signal.SIGINT)  # the last cell is running: it is interrupted
        proc.wait(timeout=30)
        err = proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "KeyboardInterrupt" in err, err
    assert hub.api("GET", f"user/ada/api/kernels/{kid}", token=token)[0] == 404
    # A kept one is listed by `kernels`, attached by id (a prefix too), left running.
    p = run(["start", *on, "--keep-kernel"], PRINT_KERNEL_ID)
    assert p.returncode == 0, p.stderr
    kid = p.stdout.strip()
    try:
        p = run(["kernels", *on])
        assert p.returncode == 0 and "python3" in p.stdout and kid in p.stdout, p.stderr
        p = run(["attach", *on, "--kernel-id", kid[:8]], "print('attached')\n")
        assert (p.returncode, p.stdout) == (0, "attached\n"), p.stderr
        assert hub.api("GET", f"user/ada/api/kernels/{kid}", token=token)[0] == 200
    finally:
        hub.api("DELETE", f"user/ada/api/kernels/{kid}", token=token)
    # The hub's refusals through the CLI: each one line, naming the token.
    line = one_line(run(["start", "--server", url], "1\n", env={"JUPYTER_TOKEN": ""}))
    assert line == (
        f"kconsole: the JupyterHub at {hub.url} requires a token: give a JupyterHub API "
        f"token with access to /user/ada/ (from {hub.url}hub/token) with --token or "
        "$JUPYTER_TOKEN"
    )
    hub.user("bob")  # a user whose server is not running: the proxy sends it to the hub
    line = one_line(run(["kernels", "--server", f"{hub.url}user/bob/", "--token", "wrong"]))
    assert f"the JupyterHub at {hub.url} redirects to its login page" in line, line
    assert "it does not accept the token" in line and "access to /user/bob/" in line, line


def _refusal(url: str, token: str, ws: bool = False) -> str:
    """What kconsole says when ``token`` opens ``url``'s kernels (REST), or a kernel's
    WebSocket (``ws``: the handshake, as on a reconnect)."""

    async def go() -> None:
        server = ServerClient(url, token, timeout=20)
        if ws:
            await WebSocketTransport(server, "0" * 8 + "-0000-0000-0000-" + "0" * 12).connect()
        else:
            await server.list_kernels()

    with pytest.raises(RemoteError) as e:
        asyncio.run(go())
    return str(e.value)


@pytest.mark.timeout(60)
def test_hub_refusals_name_the_token(hub: Hub, ada: tuple[str, str]) -> None:
    token, url = ada
    bob = hub.user("bob")
    hub_url = hub.url
    need = (
        "give a JupyterHub API token with {} (from " + hub_url + "hub/token) with --token "
        "or $JUPYTER_TOKEN"
    )
    ada_need = need.format("access to /user/ada/")
    # A 403 from ada's server: a token the hub does not know, or one without access.
    assert _refusal(url, "wrong") == (
        f"the JupyterHub at {hub_url} does not accept the token: {ada_need}"
    )
    reader = hub.user("ada", scopes=["read:users:name!user=ada"])
    assert _refusal(url, reader) == (
        f"the JupyterHub at {hub_url} knows the token (of user 'ada') but it has no access "
        f"to /user/ada/: " + need.format("the access:servers scope for it")
    )
    assert "(of service 'tests')" in _refusal(url, hub.admin)  # an admin's is not a server's
    # bob's server is not running: the proxy redirects to the hub, which says why.
    bob_url = f"{hub_url}user/bob"
    bob_need = need.format("access to /user/bob/")
    assert _refusal(bob_url, "") == (
        f"the JupyterHub at {hub_url} redirects to its login page (no token was given): " + bob_need
    )
    assert _refusal(bob_url, token) == (
        f"the JupyterHub at {hub_url} has no server at /user/bob/ that the token can use: "
        + bob_need
    )
    assert _refusal(bob_url, bob) == (
        f"the JupyterHub at {hub_url} has no server running at /user/bob/: start it (or wait "
        f"for it to start) at {hub_url}hub/home"
    )
    # The hub itself is no user's server.
    assert _refusal(hub_url, token) == (
        f"{hub_url} is a JupyterHub, not a user's server on it: give the server's URL "
        f"({hub_url}user/NAME/) as --server"
    )
    # The same answers on the WebSocket's handshake (a 403, a redirect).
    assert _refusal(url, "wrong", ws=True) == _refusal(url, "wrong")
    assert _refusal(bob_url, "", ws=True) == _refusal(bob_url, "")


@pytest.mark.timeout(120)
def test_hub_in_the_repl(hub: Hub, ada: tuple[str, str]) -> None:
    token, url = ada
    c = PtyConsole(["start", "--server", url, "--token", token], timeout=60)
    try:
        c.expect_prompt(1)
        c.sendline("name = input('name? ')")
        c.expect(r"(?m)^name\?")
        c.sendline("Ada")
        c.expect_prompt(2)
        c.sendline(PRINT_KERNEL_ID.replace("\n", "; ").rstrip("; "))
        kid = c.expect(r"(?m)^([0-9a-f-]{36})\s*$").group(1)
        c.expect_prompt(3)
        c.sendline("print('sleep' + 'ing', flush=True); import time; time.sleep(30)")
        c.expect(r"(?m)^sleeping")
        c.ctrl("c")
        c.expect("KeyboardInterrupt", timeout=15)
        c.expect_prompt(4)
        c.sendline("print(name + '!')")
        c.expect(r"(?m)^Ada!")
        c.expect_prompt(5)
        c.ctrl("d")
        assert c.wait_exit(30) == 0
        assert "Traceback (most recent call last):" not in c.transcript
    finally:
        c.close()
    assert hub.api("GET", f"user/ada/api/kernels/{kid}", token=token)[0] == 404


@pytest.mark.timeout(60)
def test_hub_server_stopped_under_the_console(hub: Hub, ada: tuple[str, str]) -> None:
    """ada's server is stopped (by her, an admin, or the idle culler) while a console
    uses one of its kernels: the reconnect meets the hub's redirect, and says so once,
    instead of retrying for two minutes; leaving needs no shutdown that cannot be."""
    token, url = ada
    c = PtyConsole(["start", "--server", url, "--token", token], timeout=30)
    try:
        c.expect_prompt(1)
        assert hub.api("DELETE", "hub/api/users/ada/server")[0] in (202, 204)
        c.expect(
            re.escape(
                f"could not reconnect: the JupyterHub at {hub.url} has no server running at "
                f"/user/ada/: start it (or wait for it to start) at {hub.url}hub/home"
            )
        )
        c.ctrl("d")
        c.wait_exit(30)
        assert "could not shut the kernel down" not in c.transcript
        assert "Traceback" not in c.transcript
    finally:
        c.close()
