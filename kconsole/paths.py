"""Jupyter's directories: data dir, runtime dir and the kernelspec search path.

Mirrors jupyter_core.paths closely enough that kconsole and Jupyter tools find the
same connection files and kernelspecs, without importing jupyter_core.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() not in ("", "0", "false", "no", "off")


def data_dir() -> Path:
    """The user's Jupyter data dir (``$JUPYTER_DATA_DIR`` or the platform default)."""
    env = os.environ.get("JUPYTER_DATA_DIR")
    if env:
        return Path(env).expanduser()
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Jupyter"
    if os.name == "nt":
        appdata = os.environ.get("APPDATA")
        return Path(appdata) / "jupyter" if appdata else home / ".jupyter" / "data"
    xdg = os.environ.get("XDG_DATA_HOME") or str(home / ".local" / "share")
    return Path(xdg) / "jupyter"


def runtime_dir() -> Path:
    """Where connection files live (``$JUPYTER_RUNTIME_DIR`` or ``<data dir>/runtime``)."""
    env = os.environ.get("JUPYTER_RUNTIME_DIR")
    if env:
        return Path(env).expanduser()
    return data_dir() / "runtime"


def _prefer_env_path() -> bool:
    # jupyter_core prefers the environment's share/jupyter inside a venv/conda env the
    # user owns, or when JUPYTER_PREFER_ENV_PATH says so.
    if "JUPYTER_PREFER_ENV_PATH" in os.environ:
        return _env_flag("JUPYTER_PREFER_ENV_PATH")
    in_venv = sys.prefix != getattr(sys, "base_prefix", sys.prefix)
    return in_venv or "CONDA_PREFIX" in os.environ


def jupyter_path(*subdirs: str) -> list[Path]:
    """Jupyter's data search path, earliest first, each joined with ``subdirs``."""
    paths: list[Path] = []
    env = os.environ.get("JUPYTER_PATH")
    if env:
        paths.extend(Path(p).expanduser() for p in env.split(os.pathsep) if p)
    user = data_dir()
    env_share = Path(sys.prefix) / "share" / "jupyter"
    if _prefer_env_path():
        paths.extend([env_share, user])
    else:
        paths.extend([user, env_share])
    if os.name == "nt":
        programdata = os.environ.get("PROGRAMDATA")
        if programdata:
            paths.append(Path(programdata) / "jupyter")
    else:
        paths.extend([Path("/usr/local/share/jupyter"), Path("/usr/share/jupyter")])
    seen: set[Path] = set()
    unique = []
    for p in paths:
        if p not in seen:
            seen.add(p)
            unique.append(p.joinpath(*subdirs))
    return unique


def user_state_dir() -> Path:
    """kconsole's own per-user files (history), inside the Jupyter data dir."""
    return data_dir() / "kconsole"
