"""kconsole against the gateways kernels live behind at scale, each a real server in
its own environment (tests/engines.py): Jupyter Enterprise Gateway (its local process
proxy) and Jupyter Kernel Gateway (its jupyter-websocket mode), with token auth on
loopback. Neither lists its kernels (by default): nothing here relies on a list.

The same scenario list runs through kconsole's CLI in script mode and in a pty: start
(the kernel deleted on exit), run, input, interrupt, restart, a dropped connection,
attach, and each of the gateway's own refusals as one line.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ptyconsole import PtyConsole
from tcp_relay import Relay

pytest.importorskip("websockets")

KCONSOLE = [sys.executable, "-m", "kconsole"]
#: A kernelspec whose kernel never comes up (a launch that hangs).
SLEEPER = {
    "argv": ["python", "-c", "import time; time.sleep(300)", "{connection_file}"],
    "display_name": "Never starts",
    "language": "python",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: How each gateway is started, and the name of its token option.
COMMANDS = {
    "eg": ("jupyter-enterprisegateway", "EnterpriseGatewayApp"),
    "kg": ("jupyter-kernelgateway", "KernelGatewayApp"),
}


def rest_call(url: str, token: str, method: str, path: str, body: Any = None) -> Any:
    """One REST call to ``url + path`` with ``token``: (status, decoded body); the
    status is None when nothing listens (yet)."""
    req = urllib.request.Request(
        url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"token {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        return e.code, None
    except OSError:  # not listening yet
        return None, None


def wait_until(
    proc: subprocess.Popen[bytes], log: Path, ready: Any, timeout: float, what: str
) -> None:
    """Wait until ``ready()``; RuntimeError (with the end of ``log``) when ``proc``
    exits first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} is not up in {timeout} s:\n{log.read_text()[-3000:]}")
        try:  # its exit is the event that matters; wait on it between polls
            proc.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            pass


class Gateway:
    """A gateway process on loopback with a token, from its own env."""

    def __init__(self, kind: str, env_dir: Path, tmp: Path, *args: str) -> None:
        self.kind = kind
        exe, app = COMMANDS[kind]
        self.token = secrets.token_hex(16)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = tmp / "gateway.log"
        specs = tmp / "share" / "kernels" / "sleeper"
        specs.mkdir(parents=True)
        (specs / "kernel.json").write_text(json.dumps(SLEEPER))
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("JUPYTER", "PYTHON", "KERNEL_"))
        }
        # The kernelspecs' "python" is the gateway env's, as for its users.
        env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["JUPYTER_PATH"] = str(tmp / "share")
        for var, sub in [("RUNTIME", "runtime"), ("CONFIG", "config"), ("DATA", "data")]:
            env[f"JUPYTER_{var}_DIR"] = str(tmp / sub)
        cmd = [
            str(env_dir / "bin" / exe),
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--port_retries=0",
            f"--{app}.auth_token={self.token}",
            *args,
        ]
        self._log = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self.wait_ready()

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """One REST call with the token; returns (status, decoded body)."""
        return rest_call(self.url, self.token, method, path, body)

    def wait_ready(self, timeout: float = 60.0) -> None:
        ready = lambda: self.api("GET", "api/kernelspecs")[0] == 200  # noqa: E731
        wait_until(self.proc, self.log, ready, timeout, "the gateway")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("eg", marks=pytest.mark.engine("eg")),
        pytest.param("kg", marks=pytest.mark.engine("kg")),
    ],
)
def gateway(
    request: pytest.FixtureRequest, engine_env: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    kind = request.param
    gw = Gateway(kind, engine_env(kind), tmp_path_factory.mktemp(kind))
    try:
        yield gw
    finally:
        gw.stop()


#: Prints the id of the kernel it runs in (ipykernel's connection file is named by it).
PRINT_KERNEL_ID = (
    "from ipykernel import get_connection_file\n"
    "import os\n"
    "print(os.path.basename(get_connection_file())[len('kernel-'):-len('.json')])\n"
)


def run(args: list[str], stdin: str = "", env: dict[str, str] | None = None, timeout: float = 90):
    full = {k: v for k, v in os.environ.items() if not k.startswith("KERNEL_")}
    full.update(env or {})
    return subprocess.run(
        KCONSOLE + args, input=stdin, capture_output=True, text=True, timeout=timeout, env=full
    )


def one_line(p: subprocess.CompletedProcess[str]) -> str:
    """The single line a refused command printed (it must be one, and no traceback)."""
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode != 0 and len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    return lines[0]


@pytest.mark.timeout(180)
def test_gateway_in_script_mode(gateway: Gateway) -> None:
    eg = gateway
    on = ["--server", eg.url, "--token", eg.token]
    if eg.kind == "eg":
        # EG refuses root (its unauthorized_users): its reason, not "refused the token".
        p = run(["start", *on, "-k", "python3"], "print(1)\n", env={"KERNEL_USERNAME": "root"})
        line = one_line(p)
        assert "User 'root' is not authorized" in line and "KERNEL_USERNAME" in line, line
    # $KERNEL_* and --env travel in the start request; the kernel is deleted on exit.
    p = run(
        ["start", *on, "-k", "python3", "--env", "KERNEL_EXTRA=from-env"],
        "import os\nprint(6 * 7)\nprint(os.environ['KERNEL_USERNAME'], os.environ['KERNEL_EXTRA'])\n"
        + PRINT_KERNEL_ID,
        env={"KERNEL_USERNAME": "ada"},
    )
    assert p.returncode == 0, p.stderr
    answer, who, kid = p.stdout.split("\n")[:3]
    assert (answer, who) == ("42", "ada from-env")
    assert eg.api("GET", f"api/kernels/{kid}")[0] == 404
    # A kept kernel is attached by its id: gateways do not list kernels (by default).
    p = run(["start", *on, "--keep-kernel"], PRINT_KERNEL_ID, env={"KERNEL_USERNAME": "ada"})
    assert p.returncode == 0, p.stderr
    kid = p.stdout.strip()
    try:
        p = run(["attach", *on, "--kernel-id", kid], "print('attached')\n")
        assert (p.returncode, p.stdout) == (0, "attached\n"), p.stderr
        assert eg.api("GET", f"api/kernels/{kid}")[0] == 200  # attached: left running
        line = one_line(run(["attach", *on, "--kernel-id", kid[:8]], "1\n"))
        assert "give the whole id" in line
        p = run(["kernels", *on])
        assert p.returncode == 0 and "sleeper" in p.stdout
        assert "does not list its kernels" in p.stdout
    finally:
        eg.api("DELETE", f"api/kernels/{kid}")
    # Each refusal is one line naming its cause.
    env = {"KERNEL_USERNAME": "ada"}
    assert "no kernelspec named 'nope'" in one_line(run(["start", *on, "-k", "nope"], "1\n", env))
    bad = ["--server", eg.url, "--token", "wrong"]
    assert "refused the token" in one_line(run(["start", *bad], "1\n", env))
    t0 = time.monotonic()
    line = one_line(run(["start", *on, "-k", "sleeper", "--timeout", "3"], "1\n", env))
    assert "within 3 s" in line and time.monotonic() - t0 < 30, line


@pytest.mark.timeout(180)
def test_gateway_in_the_repl(gateway: Gateway) -> None:
    eg = gateway
    relay = Relay(eg.port)  # the network between console and gateway
    url = f"http://127.0.0.1:{relay.port}/"
    c = PtyConsole(
        ["start", "--server", url, "--token", eg.token, "-k", "python3"],
        env={"KERNEL_USERNAME": "ada"},
        timeout=60,
    )
    try:
        c.expect_prompt(1)
        c.sendline("name = input('name? ')")
        c.expect(r"(?m)^name\?")
        c.sendline("Ada")
        c.expect_prompt(2)
        c.sendline("print('sleep' + 'ing', flush=True); import time; time.sleep(30)")
        c.expect(r"(?m)^sleeping")
        c.ctrl("c")
        c.expect("KeyboardInterrupt", timeout=15)
        c.expect_prompt(3)
        # The connection drops: the console reconnects and the session goes on.
        assert relay.cut() >= 1
        c.sendline("print(name + '!')")
        c.expect(r"(?m)^Ada!", timeout=40)
        c.expect_prompt(4)
        c.ctrl("x")
        c.send("r")
        c.expect(r"Restart the kernel\? \[y/N\]")
        c.sendline("y")
        c.expect_prompt(1, timeout=60)
        c.sendline("print('name' in dir())")
        c.expect(r"(?m)^False")
        c.expect_prompt(2)
        c.ctrl("d")
        assert c.wait_exit(30) == 0
        assert "Traceback (most recent call last):" not in c.transcript  # (the cell's is IPython's)
    finally:
        c.close()
        relay.close()


@pytest.mark.engine("eg")
@pytest.mark.timeout(120)
def test_a_kernel_enterprise_gateway_culls_is_one_line(engine_env: Any, tmp_path: Path) -> None:
    # EG's culler, connected kernels included, after 3 s of idleness.
    gw = Gateway(
        "eg",
        engine_env("eg"),
        tmp_path,
        "--RemoteMappingKernelManager.cull_idle_timeout=3",
        "--RemoteMappingKernelManager.cull_interval=1",
        "--RemoteMappingKernelManager.cull_connected=True",
    )
    c = PtyConsole(
        ["start", "--server", gw.url, "--token", gw.token, "-k", "python3"],
        env={"KERNEL_USERNAME": "ada"},
        timeout=60,
    )
    try:
        c.expect_prompt(1)
        c.sendline("x = 1")
        c.expect_prompt(2)
        c.expect(r"\[kconsole\] the kernel is gone: the server no longer has it", timeout=40)
        c.expect("Press Enter to start a new kernel there")  # (tested on Jupyter Server)
        c.ctrl("d")
        c.wait_exit(30)
        assert "kernel died" not in c.transcript
        assert "Traceback (most recent call last):" not in c.transcript
    finally:
        c.close()
        gw.stop()


@pytest.mark.timeout(90)
def test_a_kernel_the_gateway_deletes_mid_cell_is_gone_not_interrupted(gateway: Gateway) -> None:
    # As a JupyterLab on the gateway shuts the kernel down while the script's cell runs:
    # the gateway interrupts the kernel, then deletes it. Not a script stopped by Ctrl-C
    # (130, what EG's KeyboardInterrupt reply read as), nor a failed cell: gone (3).
    on = ["--server", gateway.url, "--token", gateway.token]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERNEL_")}
    env["KERNEL_USERNAME"] = "ada"
    p = subprocess.Popen(
        [*KCONSOLE, "start", *on],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert p.stdin is not None and p.stdout is not None
        p.stdin.write(
            PRINT_KERNEL_ID
            + "import time; print('sleeping', flush=True); time.sleep(30)\nprint('after')\n"
        )
        p.stdin.close()
        kid = p.stdout.readline().strip()
        assert p.stdout.readline() == "sleeping\n"
        assert gateway.api("DELETE", f"api/kernels/{kid}")[0] == 204
        p.wait(30)
        out, err = p.stdout.read(), p.stderr.read()  # type: ignore[union-attr]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 3, err
    notes = [ln for ln in err.splitlines() if ln.startswith("kconsole:")]
    assert len(notes) == 1 and "the kernel is gone" in notes[0], err
    assert "after" not in out
    # A gateway shows no sessions to anyone: a console for a notebook needs the id.
    line = one_line(run(["attach", *on, "--notebook", "a.ipynb"], "1\n"))
    assert "does not list its sessions" in line and "--kernel-id" in line, line
