"""Input/output history of the built-in kernel, in memory and in sqlite.

Theory of this module
---------------------
The current session's history lives in memory and answers most requests at once.
Every entry is also written to ``history.sqlite`` in :func:`kconsole.paths.user_state_dir`
by a writer thread (so a cell never waits for the disk and sqlite3 is imported only
after the first cell). Requests that need other sessions (``tail``, ``search``, a
``range`` of an older session) first wait for the writer to drain. When the
database cannot be used, everything keeps working from memory for this session.
Sessions are numbered by the database (``session`` rows), as IPython does.
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path
from typing import Any

Entry = tuple[int, int, Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (session INTEGER PRIMARY KEY AUTOINCREMENT,
    start TEXT, end TEXT, kernel TEXT);
CREATE TABLE IF NOT EXISTS history (session INTEGER, line INTEGER, source TEXT,
    PRIMARY KEY (session, line));
CREATE TABLE IF NOT EXISTS output_history (session INTEGER, line INTEGER, output TEXT,
    PRIMARY KEY (session, line));
"""


def default_history_path() -> Path:
    """``<user state dir>/history.sqlite`` (overridable with ``KCONSOLE_HISTORY_FILE``)."""
    env = os.environ.get("KCONSOLE_HISTORY_FILE")
    if env:
        return Path(env)
    from .. import paths

    return paths.user_state_dir() / "history.sqlite"


def _glob_match(pattern: str, text: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(text, pattern)


class History:
    """The history of one kernel session (and access to earlier ones)."""

    def __init__(self, path: Path | None = None, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled and os.environ.get("KCONSOLE_HISTORY", "1") != "0"
        #: line -> (input, output or None), for this session.
        self.inputs: dict[int, str] = {}
        self.outputs: dict[int, str] = {}
        self.session: int = 0  # assigned by the database (0 while unknown)
        self._queue: queue.Queue[tuple[str, Any] | None] = queue.Queue()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._db: Any = None
        self._lock = threading.Lock()

    # -- writing ---------------------------------------------------------------

    def store_input(self, line: int, source: str) -> None:
        self.inputs[line] = source
        self._enqueue(("in", (line, source)))

    def store_output(self, line: int, text: str) -> None:
        self.outputs[line] = text
        self._enqueue(("out", (line, text)))

    def _enqueue(self, item: tuple[str, Any]) -> None:
        if not self.enabled:
            return
        self._start()
        self._queue.put(item)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="kconsole-history", daemon=True
                )
                self._thread.start()

    def _open(self) -> None:
        import datetime
        import sqlite3

        path = self.path or default_history_path()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Everything ever typed is in here: private to the user, like a shell history.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        db = sqlite3.connect(str(path), timeout=5, check_same_thread=False)
        db.executescript(_SCHEMA)
        cur = db.execute(
            "INSERT INTO sessions (start, kernel) VALUES (?, ?)",
            (datetime.datetime.now().isoformat(), "kconsole"),
        )
        db.commit()
        self.session = int(cur.lastrowid or 0)
        self._db = db

    def _run(self) -> None:
        from .iostream import block_sigint

        block_sigint()
        try:
            self._open()
        except Exception:
            self._db = None
        finally:
            self._ready.set()
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self._db is None:
                    continue
                kind, (line, text) = item
                table, col = ("history", "source") if kind == "in" else ("output_history", "output")
                try:
                    self._db.execute(
                        f"INSERT OR REPLACE INTO {table} (session, line, {col}) VALUES (?, ?, ?)",
                        (self.session, line, text),
                    )
                    self._db.commit()
                except Exception:
                    pass
            finally:
                self._queue.task_done()

    def sync(self, timeout: float = 5.0) -> bool:
        """Wait for the writer (starting it if needed); True when the database is usable."""
        if not self.enabled:
            return False
        self._start()
        self._ready.wait(timeout)
        self._queue.join()
        return self._db is not None

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(2)
        if self._db is not None:
            try:
                import datetime

                self._db.execute(
                    "UPDATE sessions SET end=? WHERE session=?",
                    (datetime.datetime.now().isoformat(), self.session),
                )
                self._db.commit()
                self._db.close()
            except Exception:
                pass
            self._db = None

    # -- reading ---------------------------------------------------------------

    def _current(self) -> int:
        if self.enabled and not self._ready.is_set():
            self.sync()
        return self.session

    def _mem(self, output: bool) -> list[Entry]:
        s = self._current()
        return [
            (s, line, (src, self.outputs.get(line)) if output else src)
            for line, src in sorted(self.inputs.items())
        ]

    def _query(self, sql: str, params: tuple[Any, ...], output: bool) -> list[Entry]:
        db = self._db
        if output:
            sql = sql.replace(
                "SELECT session, line, source FROM history",
                "SELECT history.session, history.line, history.source, output_history.output "
                "FROM history LEFT JOIN output_history USING (session, line)",
            )
        rows = db.execute(sql, params).fetchall()
        if output:
            return [(r[0], r[1], (r[2], r[3])) for r in rows]
        return [(r[0], r[1], r[2]) for r in rows]

    def tail(self, n: int = 10, output: bool = False) -> list[Entry]:
        """The last ``n`` entries, across sessions, oldest first."""
        if self.sync():
            rows = self._query(
                "SELECT session, line, source FROM history ORDER BY session DESC, line DESC "
                "LIMIT ?",
                (n,),
                output,
            )
            return rows[::-1]
        return self._mem(output)[-n:] if n else []

    def range(
        self, session: int = 0, start: int = 1, stop: int | None = None, output: bool = False
    ) -> list[Entry]:
        """Lines ``start <= line < stop`` of ``session`` (0 or less: relative to this one).

        In this session, as in IPython, a negative ``start`` or ``stop`` counts from the
        end (``start=-2``: the last two cells) and a ``stop`` of 0 means the end.
        """
        current = self._current()
        if session <= 0:
            session = current + session
        if session == current:
            n = max(self.inputs, default=0) + 1  # IPython's list has a line 0
            if start < 0:
                start += n
            if stop is not None and stop < 0:
                stop += n
            elif stop == 0:
                stop = None
            return [e for e in self._mem(output) if e[1] >= start and (stop is None or e[1] < stop)]
        if not self.sync():
            return []
        sql = "SELECT session, line, source FROM history WHERE session = ? AND line >= ?"
        params: tuple[Any, ...] = (session, start)
        if stop is not None:
            sql += " AND line < ?"
            params += (stop,)
        return self._query(sql + " ORDER BY line", params, output)

    def search(
        self, pattern: str = "*", n: int | None = None, unique: bool = False, output: bool = False
    ) -> list[Entry]:
        """Entries whose input matches the glob ``pattern``, oldest first.

        ``unique``: one entry per distinct input (its latest); ``n``: only the last n.
        """
        if self.sync():
            rows = self._query(
                "SELECT session, line, source FROM history WHERE source GLOB ? "
                "ORDER BY session, line",
                (pattern,),
                output,
            )
        else:
            rows = [e for e in self._mem(output) if _glob_match(pattern, _src(e))]
        if unique:
            last: dict[str, Entry] = {}
            for e in rows:
                last.pop(_src(e), None)
                last[_src(e)] = e
            rows = list(last.values())
        if n is not None and n > 0:
            rows = rows[-n:]
        return rows


def _src(e: Entry) -> str:
    v = e[2]
    return str(v[0] if isinstance(v, tuple) else v)
