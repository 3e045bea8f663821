"""Review of the refactor: behaviour a user sees, driven as a user drives kconsole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _kconsole(args: list[str], runtime: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(runtime), PYTHONPATH=str(ROOT))
    env.pop("KCONSOLE_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "kconsole", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("attempt", range(3))
def test_ctrl_c_during_the_kernel_start_exits_130_and_leaves_no_files(
    tmp_path: Path, attempt: int
) -> None:
    """Ctrl-C as soon as `kconsole start` has written the kernel's connection file
    (the kernel being spawned, the event loop not yet running): exit status 130 as
    the man page says for Ctrl-C (it was click's "Aborted!", status 1), and the
    kernel's files are removed (they were sometimes left behind)."""
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    p = _kconsole(["start", "--kernel", "builtin"], runtime)
    assert p.stdin is not None
    p.stdin.write(b"print(1)\n")
    p.stdin.close()
    p.stdin = None  # closed: communicate() must not flush it
    deadline = time.monotonic() + 30
    while not list(runtime.glob("*.json")) and p.poll() is None:
        assert time.monotonic() < deadline, "no connection file appeared"
        time.sleep(0.001)  # polling the file system for the file, not a synchronising sleep
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    assert b"Aborted" not in err
    assert b"Traceback" not in err
    # The kernel is shut down (its files removed) before kconsole exits.
    assert [f.name for f in runtime.iterdir()] == []


@pytest.mark.timeout(60)
def test_builtin_kernel_says_its_port_is_taken(tmp_path: Path) -> None:
    """The built-in kernel started (as any Jupyter frontend starts it) on a connection
    file whose port another process holds: one line naming the clash on stderr, exit
    status 1. It used to exit 1 silently (its stderr already captured for the cells),
    so `kconsole start --kernel builtin` could not tell a lost port race, which it
    retries on fresh ports, from a kernel that cannot start."""
    import json
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        ports = {}
        for name in ("iopub", "stdin", "control", "hb"):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                ports[f"{name}_port"] = s.getsockname()[1]
        conn = tmp_path / "kernel-clash.json"
        conn.write_text(
            json.dumps(
                {
                    "shell_port": taken,
                    **ports,
                    "ip": "127.0.0.1",
                    "key": "k",
                    "transport": "tcp",
                    "signature_scheme": "hmac-sha256",
                }
            )
        )
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        r = subprocess.run(
            [sys.executable, "-m", "kconsole.kernel", "-f", str(conn)],
            capture_output=True,
            env=env,
            timeout=30,
        )
    assert r.returncode == 1
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("kconsole kernel: ")
    assert "Address already in use" in lines[0]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "setting", ['env = ["GREETING=hello", "OTHER=2"]', 'env = "GREETING=hello"']
)
def test_env_can_be_set_in_the_config_file(tmp_path: Path, setting: str) -> None:
    """`env` in config.toml (every option of start can be set there, --help says): a
    list of NAME=VALUE, or one. It was refused with click's "Value must be an iterable"
    whatever its form."""
    config = tmp_path / "config.toml"
    config.write_text(f'kernel = "builtin"\n{setting}\n')
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    env = dict(
        os.environ,
        JUPYTER_RUNTIME_DIR=str(runtime),
        PYTHONPATH=str(ROOT),
        KCONSOLE_CONFIG=str(config),
    )
    r = subprocess.run(
        [sys.executable, "-m", "kconsole", "start"],
        input=b"import os\nprint(os.environ.get('GREETING'))\n",
        capture_output=True,
        env=env,
        timeout=50,
    )
    assert (r.returncode, r.stdout, r.stderr) == (0, b"hello\n", b"")


@pytest.mark.timeout(120)
def test_script_on_a_server_whose_kernel_dies_and_is_restarted_ends(tmp_path: Path) -> None:
    """A script on a Jupyter Server whose kernel dies under a cell: the server's
    restarter starts another, which never answers that cell. The script ends with one
    line and status 1 (it waited for the reply forever)."""
    import json
    import shutil
    import socket
    import urllib.request

    server = shutil.which("jupyter-server", path=os.path.dirname(sys.executable))
    if server is None:
        pytest.skip("jupyter-server is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = tmp_path / "root"
    root.mkdir()
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(runtime), PYTHONPATH=str(ROOT))
    srv = subprocess.Popen(
        [
            server,
            "--allow-root",
            "--no-browser",
            f"--port={port}",
            "--IdentityProvider.token=t0k",
            f"--ServerApp.root_dir={root}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}api/status?token=t0k", timeout=2) as r:
                    json.load(r)
                break
            except OSError:
                assert srv.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)  # polling for the server to listen
        r = subprocess.run(
            [sys.executable, "-m", "kconsole", "start", "--server", url, "--token", "t0k"],
            input=b"import os\nos._exit(1)\nprint('never')\n",
            capture_output=True,
            env=env,
            timeout=90,
        )
        assert r.returncode == 1, r.stderr
        assert r.stdout == b""
        assert b"the kernel died and its server restarted it" in r.stderr
        assert b"Traceback" not in r.stderr
    finally:
        srv.terminate()
        srv.wait(timeout=30)


# -- an attached kernel: what the banner offers, and its death told once ---------------


@pytest.fixture
def builtin_kernel(tmp_path: Path) -> Any:
    """kconsole's built-in kernel, started as another frontend would (kconsole only
    attaches to it): its process and connection file; killed after the test."""
    from hostile_protocol import wait_started

    cf = tmp_path / "kernel-attached.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "kconsole.kernel", "-f", str(cf)], env=env)
    try:
        wait_started(proc, cf)
        yield proc, cf
    finally:
        proc.kill()
        proc.wait(10)


@pytest.mark.timeout(60)
def test_an_attached_kernel_is_not_offered_a_restart_and_its_death_is_told_once(
    console: Any, builtin_kernel: Any
) -> None:
    proc, cf = builtin_kernel
    c = console("attach", "--existing", str(cf))
    c.expect_prompt(1)
    banner = " ".join(c.transcript.split())  # the banner wraps at the terminal's width
    assert "Ctrl-X s saves" in banner
    # kconsole cannot restart a kernel it only attached to: no key is promised for it.
    assert "Ctrl-X r" not in banner and "twice: restart" not in banner
    c.sendline("import os; os.kill(os.getpid(), 9)")
    assert c.wait_exit() == 3
    assert c.transcript.count("the kernel died") == 1, c.transcript[-600:]


@pytest.mark.timeout(60)
def test_a_started_kernel_is_offered_its_restart_keys(console: Any) -> None:
    c = console("start", "--kernel", "builtin")
    c.expect_prompt(1)
    banner = " ".join(c.transcript.split())
    assert "twice: restart" in banner and "Ctrl-X r restarts the kernel" in banner
    c.ctrl("d")
    assert c.wait_exit() == 0
