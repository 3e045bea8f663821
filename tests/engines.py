"""The kernel servers people run at scale, each in a virtualenv of its own.

Enterprise Gateway and Kernel Gateway pin older jupyter_server and jupyter_client
releases than the ones kconsole's tests use, and JupyterHub needs its proxy from npm,
so each is tested as its users run it: in its own environment, built once from the
pins below and cached
(``$KCONSOLE_TEST_ENVS``, else ``~/.cache/kconsole/test-engines``), keyed by the pins
and the Python version. A test session that needs an engine starts its build in the
background as soon as the tests are collected (see conftest.py), so the few seconds of
pip overlap the rest of the suite; the fixture then waits for it.

Run as a script: ``python tests/engines.py build eg kg hub`` builds (or finds) the envs.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

#: What each engine's environment holds: the releases that were tested, pinned.
ENGINES: dict[str, list[str]] = {
    # Enterprise Gateway 3.3 (its local process proxy) with what it resolved to.
    "eg": [
        "jupyter-enterprise-gateway==3.3.0",
        "jupyter-server==1.24.0",
        "jupyter-client==6.1.12",
        "ipykernel==6.29.5",
    ],
    # Kernel Gateway 3.0 (its jupyter-websocket mode) with what it resolved to.
    "kg": [
        "jupyter-kernel-gateway==3.0.1",
        "jupyter-server==2.21.1",
        "jupyter-client==8.10.0",
        "ipykernel==7.4.0",
    ],
    # JupyterHub 6.1 with jupyterhub-singleuser (jupyter_server) and a kernel for it.
    "hub": [
        "jupyterhub==6.1.1",
        "jupyter-server==2.21.1",
        "ipykernel==7.4.0",
    ],
}

#: npm packages an engine also needs (``npm install --prefix ENV``: their commands are
#: in ``ENV/node_modules/.bin``, see :func:`npm_bin`). configurable-http-proxy 5.3
#: wants a newer node than 20 (its commander 15); 5.2 runs on node 20.
NPM: dict[str, list[str]] = {
    "hub": ["configurable-http-proxy@5.2.0"],
}


def cache_root() -> Path:
    """Where engine environments live."""
    env = os.environ.get("KCONSOLE_TEST_ENVS")
    return Path(env) if env else Path.home() / ".cache" / "kconsole" / "test-engines"


def env_dir(name: str) -> Path:
    """The environment directory of engine ``name`` (built or not)."""
    key = "\n".join([sys.version, *ENGINES[name], *NPM.get(name, [])]).encode()
    return cache_root() / f"{name}-{hashlib.sha256(key).hexdigest()[:12]}"


def is_built(name: str) -> bool:
    """Whether ``name``'s environment is complete (its marker is written last)."""
    return (env_dir(name) / ".complete").exists()


def npm_bin(env: Path) -> Path:
    """Where the commands of an engine's npm packages are (to put on ``PATH``)."""
    return env / "node_modules" / ".bin"


def log_path(name: str) -> Path:
    """The build's pip output (shown when a build fails)."""
    return cache_root() / f"{name}.log"


def build(name: str) -> Path:
    """Build ``name``'s environment unless it is there; returns its directory.

    A lock keeps two sessions from building one env at once; a half-built env (an
    interrupted build: no marker) is removed and built again.
    """
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    target = env_dir(name)
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_built(name):
            return target
        if target.exists():
            shutil.rmtree(target)
        with open(log_path(name), "wb") as log:
            # The base interpreter, not this venv's: the engine must not see our packages.
            base = getattr(sys, "_base_executable", sys.executable)
            subprocess.run([base, "-m", "venv", str(target)], check=True, stdout=log, stderr=log)
            pip = [str(target / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
            subprocess.run(
                [*pip, "install", "-q", "--no-compile", *ENGINES[name]],
                check=True,
                stdout=log,
                stderr=log,
            )
            if NPM.get(name):
                npm = shutil.which("npm")
                if npm is None:
                    log.write(b"npm is not on PATH: node and npm are needed for this engine\n")
                    raise subprocess.CalledProcessError(127, "npm")
                subprocess.run(
                    [npm, "install", "--prefix", str(target), "--no-audit", "--no-fund"]
                    + ["--no-save", "--loglevel=warn", *NPM[name]],
                    check=True,
                    stdout=log,
                    stderr=log,
                    stdin=subprocess.DEVNULL,
                )
        (target / ".complete").write_text("\n".join(ENGINES[name] + NPM.get(name, [])) + "\n")
    return target


def start_builds(names: set[str]) -> dict[str, subprocess.Popen[bytes]]:
    """Start a background build of every engine in ``names`` not built yet."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for name in sorted(names):
        if name in ENGINES and not is_built(name):
            procs[name] = subprocess.Popen(
                [sys.executable, __file__, "build", name],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C of pytest does not leave a half env
            )
    return procs


def wait_built(name: str, procs: dict[str, subprocess.Popen[bytes]], timeout: float) -> Path:
    """Wait for ``name``'s build (started by :func:`start_builds` or not); raises
    RuntimeError with the end of pip's log when it failed."""
    proc = procs.get(name)
    if proc is not None:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"building the {name} environment took over {timeout:g} s") from None
    elif not is_built(name):
        with contextlib.suppress(subprocess.CalledProcessError):
            build(name)
    if not is_built(name):
        tail = log_path(name).read_text(errors="replace")[-1500:] if log_path(name).exists() else ""
        raise RuntimeError(f"the {name} environment could not be built:\n{tail}")
    return env_dir(name)


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] != "build":
        sys.exit("usage: engines.py build NAME...")
    # A build in the background of a test session: pip and npm yield the CPU to the
    # tests, some of which time what a user would notice.
    with contextlib.suppress(OSError):
        os.nice(10)
    for engine in sys.argv[2:]:
        print(build(engine))
