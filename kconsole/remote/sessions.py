"""A console for a notebook: which kernel a Jupyter Server runs for a notebook path.

The server's sessions API (``GET /api/sessions``) ties each notebook JupyterLab has
open to its kernel; ``kconsole attach --server URL --notebook PATH`` looks PATH up
there, or starts a session for it the way JupyterLab does when a notebook is opened
(``POST /api/sessions``).

Paths are compared the way JupyterLab stores them: relative to the server's root
directory, with forward slashes. A user may also type ``./nb.ipynb``, or an absolute
path when the server runs on this machine and its root directory can be read from the
``jpserver-*.json`` file it keeps in Jupyter's runtime dir.

Everything fails with one :class:`~kconsole.remote.rest.RemoteError` line.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import urllib.parse
from collections.abc import Iterable
from pathlib import Path

from .. import paths
from ..pids import pid_exists
from .rest import RemoteError, RemoteSession, ServerClient, TokenRefused

#: A JupyterLab drive's prefix on a path (``RTC:nb.ipynb`` from jupyter-collaboration):
#: part of what the frontend calls the file, not of its path on the server.
_DRIVE = re.compile(r"^[A-Za-z][\w.-]*:(?!/)")

_LOOPBACK = {"localhost", "127.0.0.1", "::1", "ip6-localhost"}


def normalise_notebook_path(path: str, root_dir: str | None = None) -> str:
    """``path`` as the server's sessions name it: relative to the server's root,
    forward slashes, no ``.`` or empty parts.

    An absolute path (or ``~/...``) is made relative to ``root_dir`` (the server's root
    directory, when it is known); without one, or outside it, it is a RemoteError, as
    is a path that leaves the root (``../x``) or names the root itself.
    """
    text = path.strip()
    if not text:
        raise RemoteError("--notebook needs the notebook's path")
    if text.startswith("~") or os.path.isabs(text):
        if root_dir is None:
            raise RemoteError(
                f"{path}: the server's root directory is not known here, so give the "
                "notebook's path relative to it (as JupyterLab shows it)"
            )
        local = os.path.realpath(os.path.expanduser(text))
        root = os.path.realpath(os.path.expanduser(root_dir))
        try:
            rel = os.path.relpath(local, root)
        except ValueError:  # another drive (Windows)
            rel = os.pardir
        if rel == os.pardir or rel.startswith(os.pardir + os.sep):
            raise RemoteError(f"{path} is not under the server's root directory {root_dir}")
        text = rel.replace(os.sep, "/")
    norm = posixpath.normpath("/".join(p for p in text.split("/") if p not in ("", ".")) or ".")
    if norm == "..":
        raise RemoteError(f"{path} is outside the server's root directory")
    if norm.startswith("../"):
        raise RemoteError(f"{path} is outside the server's root directory")
    if norm == ".":
        raise RemoteError(f"{path} names the server's root directory, not a notebook")
    return norm


def _session_keys(path: str) -> list[str]:
    """What a session's stored ``path`` may be compared as: itself (tidied), then the
    same without a JupyterLab drive prefix."""
    tidy = posixpath.normpath("/".join(p for p in path.strip().split("/") if p not in ("", ".")))
    keys = [tidy]
    stripped = _DRIVE.sub("", tidy, count=1)
    if stripped != tidy and stripped:
        keys.append(posixpath.normpath(stripped.lstrip("/")))
    return keys


def pick_session(sessions: Iterable[RemoteSession], path: str) -> RemoteSession | None:
    """The session of notebook ``path`` (already normalised) with a kernel, or None.

    An exact match of the stored path wins over one through a drive prefix, and a
    ``notebook`` session over others (a console or file editor opened on the same path);
    several kernels for the same notebook are a RemoteError naming them.
    """
    candidates: list[tuple[int, RemoteSession]] = []
    for s in sessions:
        if s.kernel is None:
            continue
        keys = _session_keys(s.path)
        if path not in keys:
            continue
        rank = keys.index(path) * 2 + (0 if s.type in ("notebook", "") else 1)
        candidates.append((rank, s))
    if not candidates:
        return None
    best = min(rank for rank, _ in candidates)
    chosen = [s for rank, s in candidates if rank == best]
    kernels = sorted({s.kernel.id for s in chosen if s.kernel is not None})
    if len(kernels) > 1:
        raise RemoteError(
            f"{len(kernels)} kernels run for {path} on the server ({', '.join(kernels)}); "
            "pick one with --kernel-id"
        )
    return chosen[0]


async def find_notebook_session(server: ServerClient, path: str) -> RemoteSession | None:
    """The session the server runs for notebook ``path`` (normalised), if any."""
    try:
        sessions = await server.list_sessions()
    except RemoteError as e:
        if e.status == 404:
            raise RemoteError(
                f"{server.base_url} has no sessions API (HTTP 404), so it cannot tell a "
                "notebook's kernel: use --kernel-id",
                404,
            ) from None
        if e.status == 403 and not isinstance(e, TokenRefused):
            # Enterprise and Kernel Gateway: the token is good, the sessions are not
            # shown to anyone.
            raise RemoteError(
                f"{server.base_url} does not list its sessions (HTTP 403), so it cannot tell "
                "a notebook's kernel: use --kernel-id",
                403,
            ) from None
        raise
    return pick_session(sessions, path)


async def kernelspec_for_notebook(server: ServerClient, path: str) -> str | None:
    """The kernelspec to start for notebook ``path``: the one its metadata names, else
    the server's default (None: let the server choose).

    A RemoteError when the server has no such file, when it is a directory, or when the
    notebook's kernelspec is not one the server has (starting another language's kernel
    for it would be a surprise).
    """
    specs = await server.list_kernelspecs()
    wanted: str | None = None
    try:
        model = await server.get_contents(path)
    except RemoteError as e:
        if e.status == 404:
            raise RemoteError(f"the server has no notebook {path}", 404) from None
        if e.status != 200:
            raise
        model = {}  # there, but larger than kconsole reads: its kernelspec is not known
    if model.get("type") == "directory":
        raise RemoteError(f"{path} is a directory on the server, not a notebook")
    content = model.get("content")
    if model.get("type") == "notebook" and isinstance(content, dict):
        metadata = content.get("metadata")
        spec = metadata.get("kernelspec") if isinstance(metadata, dict) else None
        name = spec.get("name") if isinstance(spec, dict) else None
        if isinstance(name, str) and name:
            wanted = name
    if wanted is not None and specs.names and wanted not in specs.names:
        available = ", ".join(specs.names)
        raise RemoteError(
            f"{path} uses kernelspec {wanted!r}, which the server does not have "
            f"(available: {available})"
        )
    return wanted or specs.default or None


async def start_notebook_session(
    server: ServerClient, path: str, kernel_name: str | None
) -> RemoteSession:
    """Start a kernel for notebook ``path`` as JupyterLab does on opening it; the
    server answers with the session the notebook already has, if another client
    started one meanwhile (its kernel is then used, whatever its kernelspec)."""
    session = await server.create_session(path, kernel_name, name=posixpath.basename(path))
    if session.kernel is None:
        raise RemoteError(f"the server made a session for {path} without a kernel")
    return session


# -- where the server's root directory is -------------------------------------------------


def server_root_dir(base_url: str, runtime_dir: Path | None = None) -> str | None:
    """The root directory of the Jupyter Server at ``base_url`` when it runs on this
    machine, read from the ``jpserver-PID.json`` file it writes to Jupyter's runtime
    dir (what ``jupyter server list`` reads); None when that cannot be told."""
    parts = urllib.parse.urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if host not in _LOOPBACK and not host.startswith("127."):
        return None  # another machine's directories mean nothing here
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    base_path = "/" + "".join(s + "/" for s in parts.path.split("/") if s)
    folder = runtime_dir if runtime_dir is not None else paths.runtime_dir()
    try:
        files = sorted(folder.glob("jpserver-*.json"))
    except OSError:
        return None
    for f in files:
        try:
            info = json.loads(paths.decode_text(paths.read_small_file(f)))
        except (OSError, ValueError, RecursionError, paths.FileProblem):
            continue
        if not isinstance(info, dict) or info.get("port") != port:
            continue
        theirs = str(info.get("base_url") or "/")
        if "/" + "".join(s + "/" for s in theirs.split("/") if s) != base_path:
            continue
        pid = info.get("pid")
        if isinstance(pid, int) and not pid_exists(pid):
            continue  # left behind by a server that was killed: its port is reused
        root = info.get("root_dir") or info.get("notebook_dir")
        if isinstance(root, str) and root:
            return root
    return None
