"""The README's first promise: in a fresh venv with only `pip install .` (no ipykernel,
no jupyter_client), `kconsole start` works on the built-in kernel."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(300)
def test_pip_install_then_start_runs_on_the_builtin_kernel(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=280,
    )
    if pip.returncode != 0 and "Could not find a version" in pip.stderr:
        pytest.skip("no package index reachable to install kconsole's dependencies")
    assert pip.returncode == 0, pip.stderr
    listed = subprocess.run(
        [str(venv / "bin" / "pip"), "list"], capture_output=True, text=True
    ).stdout
    assert "ipykernel" not in listed and "jupyter" not in listed.lower()
    # An empty Jupyter world: no kernelspecs anywhere but what the venv ships.
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path / "home"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    p = subprocess.run(
        [str(venv / "bin" / "kconsole"), "start"],
        input="print(1+1)\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "2"
    kernels = subprocess.run(
        [str(venv / "bin" / "kconsole"), "kernels"], capture_output=True, text=True, env=env
    )
    assert "builtin" in kernels.stdout
