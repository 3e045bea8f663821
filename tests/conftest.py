"""Shared fixtures: every test gets its own Jupyter runtime and data dirs, so kernels
and connection files of one test (or of the user) never leak into another."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def jupyter_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    base = tmp_path_factory.mktemp("jupyter")
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(base / "runtime"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(base / "data"))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("IPYTHONDIR", str(base / "ipython"))
    monkeypatch.delenv("JUPYTER_PATH", raising=False)
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    monkeypatch.setenv("PROMPT_TOOLKIT_NO_CPR", "1")
    os.makedirs(base / "runtime", exist_ok=True)
    return base
