"""Shared fixtures: every test gets its own Jupyter runtime and data dirs, so kernels
and connection files of one test (or of the user) never leak into another."""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))


def _fix_pyte_line_moves() -> None:
    """pyte 0.8.2's IL and DL (``CSI n L``/``CSI n M``, which kconsole sends to redraw
    a display in place) skip rows its sparse buffer never stored: a row moved over one
    never written kept its old text. Every terminal moves them; so does the screen
    the tests read, with these two methods as the VT spec has them."""
    import pyte
    from pyte.screens import Margins

    def insert_lines(self: pyte.Screen, count: int | None = None) -> None:
        count = count or 1
        top, bottom = self.margins or Margins(0, self.lines - 1)
        if top <= self.cursor.y <= bottom:
            self.dirty.update(range(self.cursor.y, self.lines))
            for y in range(bottom, self.cursor.y - 1, -1):
                if y + count <= bottom:
                    if y in self.buffer:
                        self.buffer[y + count] = self.buffer[y]
                    else:
                        self.buffer.pop(y + count, None)
                self.buffer.pop(y, None)
            self.carriage_return()

    def delete_lines(self: pyte.Screen, count: int | None = None) -> None:
        count = count or 1
        top, bottom = self.margins or Margins(0, self.lines - 1)
        if top <= self.cursor.y <= bottom:
            self.dirty.update(range(self.cursor.y, self.lines))
            for y in range(self.cursor.y, bottom + 1):
                if y + count <= bottom and y + count in self.buffer:
                    self.buffer[y] = self.buffer.pop(y + count)
                else:
                    self.buffer.pop(y, None)
            self.carriage_return()

    pyte.Screen.insert_lines = insert_lines  # type: ignore[method-assign]
    pyte.Screen.delete_lines = delete_lines  # type: ignore[method-assign]


_fix_pyte_line_moves()


def processes_mentioning(path: Path) -> list[int]:
    """The pids of this user's processes with ``path`` in their command line (the
    kernels of a test name a connection file in its own runtime dir)."""
    mine = os.getuid()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if proc.stat().st_uid != mine:
                continue
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        if any(str(path).encode() in arg for arg in argv):
            found.append(int(proc.name))
    return found


def kill_processes_mentioning(path: Path, timeout: float = 10.0) -> list[int]:
    """SIGKILL what :func:`processes_mentioning` finds and wait until it is gone (not
    our children: polled); the pids killed."""
    import signal
    import time

    pids = processes_mentioning(path)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)  # polling a pid: there is no event for another process's exit
    return pids


@pytest.fixture(autouse=True)
def jupyter_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Also the last word on the test's kernels: any process still naming these dirs
    when the test ends (a kernel left by --keep-kernel or exit(keep_kernel=True) whose
    test failed before killing it, say) is killed."""
    base = tmp_path_factory.mktemp("jupyter")
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(base / "runtime"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(base / "data"))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("IPYTHONDIR", str(base / "ipython"))
    monkeypatch.delenv("JUPYTER_PATH", raising=False)
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    monkeypatch.setenv("PROMPT_TOOLKIT_NO_CPR", "1")
    os.makedirs(base / "runtime", exist_ok=True)
    yield base
    kill_processes_mentioning(base)


@pytest.fixture
def shared_kernel(jupyter_dirs: Path) -> Iterator[tuple[Any, Any]]:
    """An ipykernel started as `jupyter kernel` would (connection file in the runtime
    dir), with a ready jupyter_client client: the other party of a shared kernel."""
    from jupyter_client.manager import KernelManager

    from kconsole import paths

    cf = paths.runtime_dir() / f"kernel-{uuid.uuid4()}.json"
    km = KernelManager(kernel_name="python3", connection_file=str(cf))
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=30)
        yield km, kc
    finally:
        kc.stop_channels()
        if km.is_alive():
            km.shutdown_kernel(now=True)


@pytest.fixture
def ipykernel(shared_kernel: tuple[Any, Any]) -> Any:
    """The KernelManager of :func:`shared_kernel`, for tests that only attach to it."""
    return shared_kernel[0]


@pytest.fixture
def kernel_script(tmp_path: Path) -> Iterator[Any]:
    """``kernel_script(script, *args, name=...)``: a kernel of the tests' own (a
    tests/hostile_*.py), run as ``python SCRIPT CONNECTION_FILE ARGS`` (or, when an arg
    is ``{connection_file}``, with the file there) with this tree's kconsole and tests/
    importable; returns the connection file once the kernel has written it. Every
    kernel it started is killed after the test."""
    import subprocess

    from hostile_protocol import wait_started

    here = Path(__file__).parent
    path = [str(here.parent), str(here), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    procs: list[subprocess.Popen[bytes]] = []

    def start(script: Path, *args: str, name: str = "kernel-test.json") -> Path:
        cf = tmp_path / name
        if "{connection_file}" in args:
            argv = [str(cf) if a == "{connection_file}" else a for a in args]
        else:
            argv = [str(cf), *args]
        procs.append(subprocess.Popen([sys.executable, str(script), *argv], env=env))
        wait_started(procs[-1], cf)
        return cf

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(5)


@pytest.fixture
def patient_jedi(jupyter_dirs: Path) -> None:
    """ipykernels of this test give jedi all the time it needs to type each completion
    (IPython's budget is 400 ms a Tab, past which the rest are typed "<unknown>": on a
    loaded machine the menu's types and signatures would come and go)."""
    profile = jupyter_dirs / "ipython" / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "ipython_kernel_config.py").write_text(
        "c.IPCompleter.jedi_compute_type_timeout = 60_000  # ms\n"
    )


@pytest.fixture
def bash_kernelspec(jupyter_dirs: Path) -> str:
    """A kernelspec for bash_kernel in this test's own Jupyter data dir (pip installs
    the package but not its kernelspec, and the user's must not leak in)."""
    import json

    pytest.importorskip("bash_kernel")
    spec_dir = jupyter_dirs / "data" / "kernels" / "bash"
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "bash_kernel", "-f", "{connection_file}"],
        "display_name": "Bash",
        "language": "bash",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return "bash"


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Any]:
    """A :class:`~ptyconsole.Gate`: a cell that holds its kernel busy until released
    (released at the end of the test too, so no kernel is left waiting)."""
    from ptyconsole import Gate

    g = Gate(tmp_path / "gate-released")
    yield g
    g.release()


@pytest.fixture
def console(request: pytest.FixtureRequest) -> Iterator[Any]:
    """``console(*args, **kw)`` starts a :class:`~ptyconsole.PtyConsole`; every console
    a test started is closed after it. A module's ``pytest.mark.console_env(NAME=value)``
    sets environment defaults for its consoles (``env=`` of a call overrides them); a
    test file may also wrap this fixture in one of the same name."""
    from ptyconsole import PtyConsole

    marker = request.node.get_closest_marker("console_env")
    defaults: dict[str, str] = dict(marker.kwargs) if marker else {}
    consoles: list[PtyConsole] = []

    def make(*args: str, **kw: Any) -> PtyConsole:
        env = {**defaults, **kw.pop("env", {})}
        c = PtyConsole(list(args), env=env, **kw)
        consoles.append(c)
        return c

    yield make
    for c in consoles:
        c.close()


# -- engines in environments of their own (tests/engines.py) ----------------------------

_ENGINE_BUILDS: dict[str, Any] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "engine(name): needs the engine environment NAME of tests/engines.py"
    )
    config.addinivalue_line(
        "markers", "console_env(**env): environment defaults for the console fixture"
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start building the engine envs the collected tests need, in the background:
    pip's seconds then overlap the tests that run before them."""
    import engines

    needed = {m.args[0] for item in session.items for m in item.iter_markers("engine")}
    if needed and not session.config.option.collectonly:
        _ENGINE_BUILDS.update(engines.start_builds(needed))


@pytest.fixture(scope="session")
def engine_env() -> Any:
    """``engine_env(name)``: the built environment of engine ``name`` (waits for its
    background build; skips, with pip's words, when it cannot be built: no index)."""
    import engines

    def get(name: str) -> Path:
        try:
            return engines.wait_built(name, _ENGINE_BUILDS, timeout=600)
        except RuntimeError as e:
            pytest.skip(str(e))

    return get
