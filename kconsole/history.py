"""The REPL's input history: a file per kernel language, plus the kernel's own.

The file (``<Jupyter data dir>/kconsole/history-<language>``) persists what was typed
in kconsole. When kconsole attaches to a kernel that already has a history (typed in
a notebook, another console, an earlier session), the tail of that history is merged
in for this session only: entries not already in the file come after the file's
entries (so Up reaches them first) and are never written to the file.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable
from typing import Any

from prompt_toolkit.history import FileHistory, History, InMemoryHistory

from . import paths


class SessionHistory(History):
    """``backend`` (usually a FileHistory) plus entries merged in memory.

    A backend that fails (a full disk, an unreadable file) is replaced by one in
    memory for the rest of the session: an exception here would surface from every
    Enter (prompt_toolkit stores the entry after accepting it). Why, in one line, is
    :attr:`problem`; ``on_problem`` is told once.
    """

    def __init__(self, backend: History, problem: str | None = None) -> None:
        super().__init__()
        self.backend = backend
        self._merged: list[str] = []  # oldest first
        #: Why the history is not kept on disk (None while it is).
        self.problem = problem
        self.on_problem: Callable[[str], None] | None = None

    def _fail(self, doing: str, e: OSError) -> None:
        if self.problem is not None and not isinstance(self.backend, FileHistory):
            return
        name = getattr(self.backend, "filename", "the history file")
        reason = e.strerror or str(e)
        self.problem = f"could not {doing} {name} ({reason}); history is kept in memory"
        self.backend = InMemoryHistory()
        if self.on_problem is not None:
            self.on_problem(self.problem)

    def _backend_strings(self) -> list[str]:
        try:
            return list(self.backend.load_history_strings())
        except OSError as e:
            self._fail("read", e)
            return []

    def merge(self, entries: Iterable[str]) -> int:
        """Add ``entries`` (oldest first) that the backend does not have; return how
        many were added. Call before the first prompt (history loads once)."""
        known = set(self._backend_strings()) | set(self._merged)
        added = 0
        for e in entries:
            if not e.strip() or e in known:
                continue
            known.add(e)
            self._merged.append(e)
            added += 1
        if self._loaded:  # already loaded by a prompt: keep the cache in step
            self._loaded_strings = list(self.load_history_strings())
        return added

    def load_history_strings(self) -> Iterable[str]:
        yield from reversed(self._merged)
        yield from self._backend_strings()

    def store_string(self, string: str) -> None:
        try:
            self.backend.store_string(string)
        except OSError as e:
            # The entry is in the loaded strings already (History.append_string): Up
            # still finds it.
            self._fail("write", e)


def history_for(language: str) -> SessionHistory:
    """The persistent history for ``language`` (in memory if it can't be written)."""
    d = paths.user_state_dir()
    # Lower case: a kernelspec says "Python" where its kernel_info says "python", and
    # `start` (the prompt is up before kernel_info) and `attach` must share one file.
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in language.lower())
    safe = safe or "unknown"
    path = d / f"history-{safe}"
    try:
        # Everything typed is kept here: private to the user, like a shell history.
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        # O_NONBLOCK: a FIFO there must not block the open (it is refused below).
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_NONBLOCK, 0o600)
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
        finally:
            os.close(fd)
        if not regular:
            # The whole file is read at the first prompt: /dev/full or /dev/zero never
            # end, a FIFO blocks.
            raise OSError(errno.EINVAL, "not a regular file")
    except OSError as e:
        problem = f"could not open {path} ({e.strerror or e}); history is kept in memory"
        return SessionHistory(InMemoryHistory(), problem)
    return SessionHistory(FileHistory(str(path)))


def kernel_history_inputs(items: Iterable[Any]) -> list[str]:
    """The inputs of a history_reply's ``history`` (oldest first), consecutive
    duplicates collapsed."""
    out: list[str] = []
    for item in items:
        if not isinstance(item, (list, tuple)) or len(item) < 3:
            continue
        source = item[2]
        if isinstance(source, (list, tuple)):  # output=True form: (input, output)
            source = source[0] if source else ""
        if not isinstance(source, str) or not source.strip():
            continue
        source = source.rstrip("\n")
        if out and out[-1] == source:
            continue
        out.append(source)
    return out
