"""A console for a notebook, and kernels a Jupyter Server loses, as a user sees them.

``kconsole attach --server URL --notebook PATH`` joins the kernel of the notebook's
session (created over REST here, as JupyterLab creates it), or starts one for it. A
kernel the server no longer has (deleted by another client, culled by the server's
idle culler) is said in one line with a new kernel offered; while the connection is
being reopened the toolbar says ``lost``; Ctrl-C stops waiting for a new kernel.

One server is shared by the module; the culling test starts its own (a culler would
take every other test's kernels too).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ptyconsole import PtyConsole, wait_screen

from kconsole.errors import printable
from kconsole.listing import format_kernels_and_sessions
from kconsole.remote.rest import RemoteError, RemoteKernelModel, RemoteSession
from kconsole.remote.sessions import (
    normalise_notebook_path,
    pick_session,
    server_root_dir,
)

KCONSOLE = [sys.executable, "-m", "kconsole"]


# -- without a server ---------------------------------------------------------------------


def test_notebook_paths_are_compared_as_jupyterlab_stores_them(tmp_path: Path) -> None:
    assert normalise_notebook_path("work/a.ipynb") == "work/a.ipynb"
    assert normalise_notebook_path("./work//./a.ipynb") == "work/a.ipynb"
    assert normalise_notebook_path("work/x/../a.ipynb") == "work/a.ipynb"
    root = tmp_path / "root"
    (root / "work").mkdir(parents=True)
    assert normalise_notebook_path(str(root / "work" / "a.ipynb"), str(root)) == "work/a.ipynb"
    for bad, says in [
        ("../a.ipynb", "outside the server's root"),
        (".", "names the server's root directory"),
        ("", "needs the notebook's path"),
        (str(tmp_path / "elsewhere.ipynb"), "not under the server's root directory"),
    ]:
        with pytest.raises(RemoteError, match=says):
            normalise_notebook_path(bad, str(root))
    with pytest.raises(RemoteError, match="give the notebook's path relative to it"):
        normalise_notebook_path("/abs/a.ipynb", None)

    def session(sid: str, path: str, kind: str, kid: str) -> RemoteSession:
        return RemoteSession(sid, path, type=kind, kernel=RemoteKernelModel(kid, "python3"))

    console = session("s1", "work/a.ipynb", "console", "k1")
    notebook = session("s2", "work/a.ipynb", "notebook", "k2")
    rtc = session("s3", "RTC:work/b.ipynb", "notebook", "k3")
    assert pick_session([console, notebook, rtc], "work/a.ipynb") is notebook
    assert pick_session([console], "work/a.ipynb") is console
    assert pick_session([console, notebook, rtc], "work/b.ipynb") is rtc  # a drive prefix
    assert pick_session([rtc], "work/c.ipynb") is None
    no_kernel = RemoteSession("s4", "work/c.ipynb", type="notebook")
    assert pick_session([no_kernel], "work/c.ipynb") is None
    with pytest.raises(RemoteError, match=r"2 kernels run for work/a.ipynb.*--kernel-id"):
        pick_session([notebook, session("s5", "work/a.ipynb", "notebook", "k5")], "work/a.ipynb")

    table = format_kernels_and_sessions(
        [
            RemoteKernelModel("k1", "python3"),
            RemoteKernelModel("k2", "python3"),
            RemoteKernelModel("k9", "ir"),
        ],
        [console, notebook],
    ).splitlines()
    assert table[0].split() == ["ID", "NAME", "STATE", "CONN", "LAST", "ACTIVITY", "NOTEBOOK"]
    assert table[1].endswith("work/a.ipynb (console)")
    assert table[2].endswith("  work/a.ipynb") and table[3].endswith("  -")


def test_the_root_of_a_server_on_this_machine_comes_from_its_runtime_file(
    tmp_path: Path,
) -> None:
    def write(name: str, **info: Any) -> None:
        (tmp_path / name).write_text(json.dumps(info))

    write("jpserver-1.json", port=8888, base_url="/", root_dir="/stale", pid=2**22 + 7)
    write("jpserver-2.json", port=8888, base_url="/other/", root_dir="/other", pid=os.getpid())
    write("jpserver-3.json", port=8888, base_url="/", root_dir="/srv/nb", pid=os.getpid())
    (tmp_path / "jpserver-4.json").write_text("{not json")
    assert server_root_dir("http://127.0.0.1:8888/", tmp_path) == "/srv/nb"
    assert server_root_dir("http://localhost:8888/other/", tmp_path) == "/other"
    assert server_root_dir("http://127.0.0.1:9999/", tmp_path) is None
    assert server_root_dir("http://jupyter.example.org:8888/", tmp_path) is None


@pytest.mark.timeout(30)
def test_notebook_options_that_do_not_go_together_are_one_line(tmp_path: Path) -> None:
    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*KCONSOLE, "attach", *args],
            input="1\n",
            capture_output=True,
            text=True,
            timeout=20,
            env={**os.environ, **env},
        )

    for args, says in [
        (["--notebook", "a.ipynb"], "--notebook goes with --server"),
        (
            ["--server", "http://127.0.0.1:9/", "--notebook", "a.ipynb", "--kernel-id", "k"],
            "--notebook and --kernel-id cannot be combined",
        ),
        (["--existing", "x.json", "--start-if-missing"], "--start-if-missing goes with --notebook"),
        (
            ["--server", "http://127.0.0.1:9/", "--token", "t", "--notebook", "../up.ipynb"],
            "outside the server's root directory",
        ),
    ]:
        p = run(*args)
        assert (p.returncode, p.stdout) == (2, ""), (args, p.stderr)
        assert len(p.stderr.splitlines()) == 1 and says in p.stderr, (args, p.stderr)
    # In the config file it is a default for the attaches that take it, not an error.
    config = tmp_path / "config.toml"
    config.write_text("[attach]\nstart-if-missing = true\n")
    p = run("--existing", str(tmp_path / "x.json"), KCONSOLE_CONFIG=str(config))
    assert p.returncode == 1 and "not found" in p.stderr, p.stderr


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_session_like = st.fixed_dictionaries(
    {"id": st.text(max_size=10)},
    optional={
        "path": _json | st.text(max_size=40),
        "type": _json,
        "name": _json,
        "kernel": st.fixed_dictionaries({"id": st.text(max_size=10)}, optional={"name": _json})
        | _json,
        "notebook": _json,
    },
)


@settings(max_examples=40, deadline=2000)
@given(st.lists(_session_like | _json, max_size=5))
def test_what_a_server_says_of_its_sessions_never_breaks_the_listing(items: list[Any]) -> None:
    sessions = []
    for item in items:
        try:
            sessions.append(RemoteSession.from_json(item))
        except RemoteError:
            continue  # one line for the user: what the CLI shows
    kernels = [s.kernel for s in sessions if s.kernel is not None]
    shown = printable(format_kernels_and_sessions(kernels, sessions), keep_newlines=True)
    assert "\x1b" not in shown and "\r" not in shown
    for s in sessions:
        try:
            pick_session(sessions, s.path)
        except RemoteError:
            pass  # several kernels for one path: one line too


# -- a real Jupyter Server -----------------------------------------------------------------

if TYPE_CHECKING:
    from test_remote_server import JupyterServer

#: A server whose culler takes a kernel idle for 4 s (checked every second), connected
#: consoles or not (by default a connected kernel is never culled).
CULLING = [
    "--MappingKernelManager.cull_idle_timeout=4",
    "--MappingKernelManager.cull_interval=1",
    "--MappingKernelManager.cull_connected=True",
]


def start_server(tmp: Path, extra: list[str] | None = None) -> JupyterServer:
    """A JupyterServer (the shared test helper), with ``extra`` options on its command."""
    # Here, not at the top: the tests above need no server (and no jupyter_server).
    pytest.importorskip("jupyter_server")
    pytest.importorskip("websockets")
    import test_remote_server as trs

    popen = subprocess.Popen

    def with_extra(cmd: list[str], **kw: Any) -> Any:
        return popen([*cmd, *(extra or [])], **kw)

    with mock.patch.object(subprocess, "Popen", with_extra):
        srv = trs.JupyterServer(tmp)
    srv.wait_ready()
    return srv


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    srv = start_server(tmp_path_factory.mktemp("jupyter-server-notebook"))
    try:
        yield srv
    finally:
        srv.stop()


def api(srv: JupyterServer, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(
        srv.url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"token {srv.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
        return json.loads(raw) if raw else None


def write_notebook(srv: JupyterServer, path: str) -> Path:
    """A python3 notebook file in the server's root (what JupyterLab would open)."""
    file = srv.tmp / "root" / path
    file.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3"}}
    file.write_text(
        json.dumps({"cells": [], "metadata": metadata, "nbformat": 4, "nbformat_minor": 5})
    )
    return file


def open_in_jupyterlab(srv: JupyterServer, path: str) -> str:
    """The session JupyterLab creates on opening ``path``: its kernel's id."""
    body = {
        "path": path,
        "type": "notebook",
        "name": Path(path).name,
        "kernel": {"name": "python3"},
    }
    return str(api(srv, "POST", "api/sessions", body)["kernel"]["id"])


def sessions_of(srv: JupyterServer) -> dict[str, str]:
    """``{notebook path: kernel id}`` of the server's sessions."""
    return {s["path"]: s["kernel"]["id"] for s in api(srv, "GET", "api/sessions")}


def delete_all_kernels(srv: JupyterServer) -> None:
    for k in api(srv, "GET", "api/kernels"):
        api(srv, "DELETE", f"api/kernels/{k['id']}")


def kconsole(
    srv: JupyterServer, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``kconsole attach --server ... ARGS`` in script mode (stdin a pipe)."""
    return subprocess.run(
        [*KCONSOLE, "attach", "--server", srv.url, "--token", srv.token, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )


def pty_attach(srv: JupyterServer, *args: str, url: str | None = None, **kw: Any) -> PtyConsole:
    return PtyConsole(
        ["attach", "--server", url or srv.url, "--token", srv.token, *args], timeout=60, **kw
    )


@pytest.mark.timeout(120)
def test_a_console_for_a_notebook_sees_its_variables_and_its_cells(server: JupyterServer) -> None:
    file = write_notebook(server, "work/analysis.ipynb")
    kid = open_in_jupyterlab(server, "work/analysis.ipynb")
    other = api(server, "POST", "api/kernels", {"name": "python3"})["id"]  # no notebook's
    c: PtyConsole | None = None
    try:
        # Another client of the notebook's kernel (script mode, with --notebook too).
        p = kconsole(
            server,
            "--notebook",
            "work/analysis.ipynb",
            stdin="shared = 'from the ' + 'notebook'\nprint('set')\n",
        )
        assert (p.returncode, p.stdout, p.stderr) == (0, "set\n", "")

        p = subprocess.run(
            [*KCONSOLE, "kernels", "--server", server.url, "--token", server.token],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode == 0, p.stderr
        rows = {ln.split()[0]: ln for ln in p.stdout.splitlines() if ln[:1].isalnum()}
        assert "NOTEBOOK" in rows["ID"]
        assert rows[kid].endswith("  work/analysis.ipynb") and rows[other].endswith("  -")

        # The absolute path of a server on this machine: its root from its runtime file.
        env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(server.runtime_dir))
        p = kconsole(server, "--notebook", str(file), stdin="print(shared)\n", env=env)
        assert (p.returncode, p.stdout) == (0, "from the notebook\n"), p.stderr

        c = pty_attach(server, "--notebook", "./work/analysis.ipynb")
        c.expect(
            r"on http\S+, notebook\s+work/analysis\.ipynb"
        )  # the banner's label, wrapped or not
        c.expect_prompt()
        c.sendline("print(shared)")
        c.expect(r"(?m)^from the notebook")
        c.expect_prompt()
        c.send("typed")
        # A cell of the notebook's (run by another client) shows above the prompt, marked.
        p = kconsole(
            server, "--notebook", "work/analysis.ipynb", stdin="print('from ' + 'the other')\n"
        )
        assert p.returncode == 0, p.stderr
        c.expect(r"\[remote\] In \[\d+\]: print\('from ' \+ 'the other'\)")
        c.expect("from the other")  # (concatenated: not the echo of the code)
        c.expect(r"In \[\d+\]: typed")  # the prompt is back below it, the text kept
        c.ctrl("c")
        c.expect_empty_prompt()
        c.ctrl("d")
        assert c.wait_exit(30) == 0
        assert "Traceback" not in c.transcript
        assert sessions_of(server)["work/analysis.ipynb"] == kid  # the notebook's, kept
    finally:
        if c is not None:
            c.close()
        delete_all_kernels(server)


@pytest.mark.timeout(120)
def test_a_notebook_without_a_kernel_gets_one_when_the_user_says_so(server: JupyterServer) -> None:
    write_notebook(server, "fresh.ipynb")
    write_notebook(server, "batch.ipynb")
    c: PtyConsole | None = None
    try:
        # Script mode never asks: one line saying how, and nothing is started.
        p = kconsole(server, "--notebook", "fresh.ipynb", stdin="print(1)\n")
        assert p.returncode == 1 and p.stdout == ""
        assert p.stderr == (
            "kconsole: no kernel runs for fresh.ipynb on the server; --start-if-missing "
            "starts one (python3)\n"
        )
        p = kconsole(server, "--notebook", "gone.ipynb", "--start-if-missing", stdin="1\n")
        assert (p.returncode, p.stderr) == (1, "kconsole: the server has no notebook gone.ipynb\n")
        assert api(server, "GET", "api/kernels") == []

        # A terminal asks; "n" starts nothing.
        c = pty_attach(server, "--notebook", "fresh.ipynb")
        c.expect(r"No kernel runs for fresh\.ipynb on the server; start one \(python3\)\? \[Y/n\]")
        c.sendline("n")
        c.expect("no kernel started for fresh.ipynb")
        assert c.wait_exit(30) == 1
        assert api(server, "GET", "api/kernels") == []
        # (Enter starts one: see the next test.) The flag starts one without asking.
        p = kconsole(
            server, "--notebook", "batch.ipynb", "--start-if-missing", stdin="print('batch')\n"
        )
        assert (p.returncode, p.stdout, p.stderr) == (0, "batch\n", "")
        assert list(sessions_of(server)) == ["batch.ipynb"]  # kept: it is the notebook's
    finally:
        if c is not None:
            c.close()
        delete_all_kernels(server)


class Relay:
    """A TCP relay to the server that a test can cut (connections reset, new ones
    refused), set to hold (new connections accepted and never answered), and restore."""

    def __init__(self, target_port: int) -> None:
        import test_remote_server as trs

        self.target = target_port
        self.port = trs._free_port()
        self.hold = False
        self._conns: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self._call(self._listen())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        if self.hold:
            await reader.read()  # until the client gives up or the relay drops it
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self._conns.add(up_writer)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    async def _drop(self, stop_listening: bool) -> None:
        if stop_listening and self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._conns):
            w.transport.abort()
        self._conns.clear()

    def cut(self) -> None:
        self._call(self._drop(stop_listening=True))

    def restore(self) -> None:
        self.hold = False
        if self._server is not None:  # held connections go (and the ones they wait for)
            self._call(self._drop(stop_listening=False))
        self._call(self._listen())

    def close(self) -> None:
        self._call(self._drop(stop_listening=True))
        self.loop.call_soon_threadsafe(self.loop.stop)


def toolbar_console(srv: JupyterServer, *args: str, url: str) -> PtyConsole:
    """A console in a pty that answers cursor-position requests: the toolbar is drawn."""
    return pty_attach(srv, *args, url=url, cpr=True)


@pytest.mark.timeout(120)
def test_lost_connection_deleted_kernel_and_ctrl_c_on_the_wait_for_a_new_one(
    server: JupyterServer,
) -> None:
    write_notebook(server, "shared.ipynb")
    relay = Relay(server.port)
    c = toolbar_console(server, "--notebook", "shared.ipynb", url=relay.url)
    try:
        # In a terminal, Enter starts a kernel for it, as JupyterLab would, and it stays.
        c.expect(r"No kernel runs for shared\.ipynb on the server; start one \(python3\)\? \[Y/n\]")
        c.sendline("")
        c.expect("started a python3 kernel for shared.ipynb; it stays running")
        c.expect_prompt(1)
        kid = sessions_of(server)["shared.ipynb"]
        wait_screen(c, r"│ idle │ count \d+ │ server")
        relay.cut()  # the network goes: the console reconnects, the toolbar says lost
        c.expect("lost the connection to the Jupyter server")
        wait_screen(c, r"│ count \d+ │ lost")
        relay.restore()
        c.expect(r"reconnected to the kernel after \d")
        wait_screen(c, r"│ idle │ count \d+ │ server")

        api(server, "DELETE", f"api/kernels/{kid}")  # another client shuts it down
        c.expect(r"the kernel is gone: the server no longer has it \(shut down, culled as idle")
        c.expect("Press Enter to start a new kernel for the notebook, Ctrl-D to leave")
        wait_screen(c, r"│ dead │ count \d+ │ lost")
        relay.hold = True  # the server now takes its time: Ctrl-C leaves the wait
        c.sendline("")
        c.expect(r"starting a new kernel on the server\.\.\. \(Ctrl-C stops waiting\)")
        t0 = time.monotonic()
        c.ctrl("c")
        c.expect("stopped waiting for the new kernel; Enter tries again, Ctrl-D leaves")
        assert time.monotonic() - t0 < 5
        c.expect_prompt()
        relay.restore()
        c.sendline("")
        c.expect(r"new kernel (\S+) started", timeout=60)
        c.expect_prompt(1)
        c.sendline("print('new' + 'kernel')")
        c.expect(r"(?m)^newkernel")
        c.expect_prompt(2)
        c.ctrl("d")
        assert c.wait_exit(30) == 0
        assert "Traceback" not in c.transcript
        # The notebook's new session, and no kernel left from the abandoned wait.
        (new,) = [k["id"] for k in api(server, "GET", "api/kernels")]
        assert sessions_of(server) == {"shared.ipynb": new} and new != kid
    finally:
        c.close()
        relay.close()
        delete_all_kernels(server)


@pytest.mark.timeout(120)
def test_a_culled_kernel_is_one_line_in_the_repl_and_in_script_mode(tmp_path: Path) -> None:
    srv = start_server(tmp_path, CULLING)
    script: subprocess.Popen[str] | None = None
    c: PtyConsole | None = None
    try:
        open_in_jupyterlab(srv, "idle.ipynb")
        script = subprocess.Popen(
            [
                *KCONSOLE,
                "attach",
                "--server",
                srv.url,
                "--token",
                srv.token,
                "--notebook",
                "idle.ipynb",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert script.stdin is not None and script.stdout is not None
        script.stdin.write("print('first', flush=True)\n")
        script.stdin.flush()
        assert script.stdout.readline() == "first\n"
        c = pty_attach(srv, "--notebook", "idle.ipynb")
        c.expect_prompt()
        # Idle for 4 s: the culler shuts the kernel down under both consoles.
        c.expect(
            r"\[kconsole\] the kernel is gone: the server no longer has it \(shut down, "
            r"culled as idle, or the server restarted\)\. Press Enter",
            timeout=30,
        )
        script.stdin.write("print('second')\n")
        script.stdin.close()
        assert script.wait(30) == 3
        assert script.stdout.read() == ""
        assert script.stderr is not None and script.stderr.read() == (
            "kconsole: the kernel is gone: the server no longer has it (shut down, culled as "
            "idle, or the server restarted)\n"
        )
        c.ctrl("d")
        assert c.wait_exit(30) == 0
        assert "Traceback" not in c.transcript and "kernel died" not in c.transcript
    finally:
        if c is not None:
            c.close()
        if script is not None and script.poll() is None:
            script.kill()
            script.wait()
        srv.stop()
