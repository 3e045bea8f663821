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


#: Entries of the history file loaded (``--history-size``; see kconsole.repl.history). Here,
#: not there, for the command line: that module loads prompt_toolkit.
DEFAULT_HISTORY_SIZE = 10_000


# -- reading the small files found there ---------------------------------------------------
#
# Connection files, kernel.json and the config file are a few hundred bytes, written by
# programs or people: a 1 GB file, a FIFO, /dev/zero, binary junk or a 100 000-deep
# nesting must each end in one clear line, never in a hang, an OOM or a RecursionError.

#: The largest connection file, kernel.json or config file kconsole reads.
MAX_SMALL_FILE = 1024 * 1024
#: The deepest nesting of lists/objects accepted in them (real ones use 2 or 3).
MAX_NESTING = 32


class FileProblem(Exception):
    """A small file cannot be used; the message is a phrase to follow its name
    (``"is larger than 1 MiB"``, ``"cannot be read: Permission denied"``)."""


class Unreadable(FileProblem):
    """The file cannot be read at all; ``reason`` is short ("Permission denied",
    "Is a directory", "larger than 1 MiB")."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"cannot be read: {reason}")
        self.reason = reason


class NotJSON(FileProblem):
    """The file's text is not JSON; ``detail`` is the parser's own message."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"is not valid JSON: {detail}")
        self.detail = detail


def read_small_file(path: os.PathLike[str] | str, limit: int = MAX_SMALL_FILE) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes.

    Raises FileNotFoundError when there is no such file (callers word that themselves)
    and :class:`Unreadable` for everything else. Never blocks on a FIFO and never
    reads more than ``limit + 1`` bytes.
    """
    import stat

    try:
        # O_NONBLOCK: opening a FIFO would otherwise wait for a writer, forever.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except OSError as e:
        raise Unreadable(e.strerror or str(e)) from e
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise Unreadable("Is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise Unreadable("not a regular file")
        too_big = f"larger than {_size(limit)}"
        if st.st_size > limit:
            raise Unreadable(f"{too_big} ({_size(st.st_size)})")
        chunks: list[bytes] = []
        got = 0
        while got <= limit:  # the file may grow while it is read
            chunk = os.read(fd, limit + 1 - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        if got > limit:
            raise Unreadable(too_big)
        return b"".join(chunks)
    except OSError as e:
        raise Unreadable(e.strerror or str(e)) from e
    finally:
        os.close(fd)


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


def decode_text(data: bytes) -> str:
    """``data`` as UTF-8 text (a leading BOM allowed); :class:`FileProblem` if it is not."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise FileProblem(f"is not UTF-8 text (byte {e.start})") from e


def check_nesting(value: object, limit: int = MAX_NESTING) -> None:
    """Raise :class:`FileProblem` if lists/dicts in ``value`` nest deeper than ``limit``.

    Iterative, so it is safe on any depth a parser returned."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            children: list[object] = list(v.values())
        elif isinstance(v, list):
            children = list(v)
        else:
            continue
        if depth > limit:
            raise FileProblem(f"is nested too deeply (more than {limit} levels)")
        stack.extend((c, depth + 1) for c in children)


def load_json(data: bytes) -> object:
    """Parse a small JSON file's bytes; :class:`FileProblem` on any defect."""
    import json

    text = decode_text(data)
    try:
        value = json.loads(text)
    except RecursionError:
        raise FileProblem(f"is nested too deeply (more than {MAX_NESTING} levels)") from None
    except ValueError as e:  # JSONDecodeError, or an integer of more than 4300 digits
        raise NotJSON(str(e)) from e
    check_nesting(value)
    return value
