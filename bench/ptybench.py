"""Consoles in a real pseudo-terminal, timed the way a user feels them.

A :class:`PtySession` spawns one console with pexpect, strips escape sequences from
what it prints into a transcript and waits for patterns in it (a pyte screen is fed
only while a completion menu is measured: emulating a 1,000,000-line flood would time
the emulator, not the console). Times are from the moment the keys were written to
the moment the pattern was read back; a console's CPU time is read from /proc around
what is measured, and its peak RSS is its own ``VmHWM``.

The driver answers what every terminal answers:

* cursor-position requests (CPR, ``ESC [ 6 n``) with ``ESC [ row ; col R``, the
  position kept by :class:`CursorTracker` from what the console wrote (prompt_toolkit
  asks at every prompt; in a driver that does not answer, it draws less and needs
  less memory, which is why ``PROMPT_TOOLKIT_NO_CPR=1`` is not set);
* the primary device attributes (DA1, ``ESC [ c``) with xterm's own reply, as xterm,
  VTE, kitty, iTerm2 and Windows Terminal do.

It answers nothing else (pixel sizes, kitty's graphics query), as xterm by default
does not. ``silent=True`` answers nothing: a console that asks then waits out its own
timeouts.
"""

from __future__ import annotations

import codecs
import os
import re
import select
import sqlite3
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
from measure import ANSI, cpu_seconds, vm_hwm_kb
from workers import DATAFRAME_SETUP

_PARTIAL_ESC = re.compile(rb"\x1b[^a-zA-Z~\x07\\]{0,40}$")
#: xterm's reply to DA1 (a VT420 with its usual options).
DA1_REPLY = b"\x1b[?64;1;2;6;9;15;16;17;18;21;22;28c"
PROMPT = rb"In \[\d+\]: "


def flood_code(n: int) -> str:
    return f"_ = [print(i) for i in range({n})]"


class PtyTimeout(Exception):
    pass


# -- the terminal's cursor -----------------------------------------------------------------

#: One escape sequence: CSI (params, final), OSC, DCS/SOS/PM/APC strings, or a short one.
_ESCAPE = re.compile(
    rb"\x1b(?:\[([0-?]*)[ -/]*([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)"
    rb"|[PX^_][^\x1b]*\x1b\\|[ -/]+[0-~]|([0-~]))"
)
_CONTROLS = re.compile(rb"[\r\n\b\t]")
_CONTROL_BYTES = (b"\r", b"\n", b"\b", b"\t")


class CursorTracker:
    """Where a terminal of ``rows`` x ``cols`` puts its cursor, from the bytes it is sent.

    Enough of a VT100 for the cursor: printable text (wrapping at the right margin,
    xterm's pending wrap included; one cell per code point), CR, LF, BS, TAB, the
    relative and absolute moves (CUU/CUD/CUF/CUB/CNL/CPL/CHA/VPA/CUP), save and
    restore, index and reverse index; erasing and attributes do not move it; the whole
    screen scrolls at the bottom. :meth:`feed` returns the replies owed to the queries
    in the bytes (CPR, DA1), in order. A run of text with more line feeds than the
    screen has rows leaves the cursor on the last row whatever wrapped in it, so a
    flood costs two ``bytes.count`` calls, not a pass over its characters.
    """

    def __init__(self, rows: int, cols: int, answer_da1: bool = True) -> None:
        self.rows, self.cols = rows, cols
        self.row = self.col = 0  # col == cols: the pending wrap after the last column
        self.saved = (0, 0)
        self.answer_da1 = answer_da1
        self._carry = b""

    def feed(self, data: bytes) -> list[bytes]:
        data = self._carry + data
        m = _PARTIAL_ESC.search(data)
        if m:
            self._carry, data = data[m.start() :], data[: m.start()]
        else:
            self._carry = b""
        replies: list[bytes] = []
        pos = 0
        for m in _ESCAPE.finditer(data):
            if m.start() > pos:
                self._text(data[pos : m.start()])
            pos = m.end()
            final, short = m.group(2), m.group(3)
            if final is not None:
                reply = self._csi(m.group(1), final)
                if reply:
                    replies.append(reply)
            elif short is not None:
                self._short(short)
        if pos < len(data):
            self._text(data[pos:])
        return replies

    # -- text and controls

    def _text(self, seg: bytes) -> None:
        lf = seg.count(b"\n")
        if lf >= self.rows:
            self.row = self.rows - 1
            self.col = 0  # the pty ends lines with CR LF (onlcr)
            seg = seg[seg.rfind(b"\n") + 1 :]
        if not any(c in seg for c in _CONTROL_BYTES):  # memchr speed: a 50 MB line
            self._print(seg)
            return
        pos = 0
        for m in _CONTROLS.finditer(seg):
            if m.start() > pos:
                self._print(seg[pos : m.start()])
            pos = m.end()
            c = m.group()
            if c == b"\r":
                self.col = 0
            elif c == b"\n":
                self._lf()
            elif c == b"\b":
                self.col = max(0, min(self.col, self.cols - 1) - 1)
            else:  # tab
                self.col = min(self.cols - 1, (min(self.col, self.cols - 1) // 8 + 1) * 8)
        if pos < len(seg):
            self._print(seg[pos:])

    def _print(self, run: bytes) -> None:
        # One cell per code point (wide characters are rare here); BEL draws nothing.
        k = len(run) - run.count(b"\x07") if run.isascii() else len(run.decode("utf-8", "ignore"))
        if k <= 0:
            return
        if self.col >= self.cols:  # pending wrap: the next character starts a new row
            self.col = 0
            self._lf()
        total = self.col + k  # the cursor ends after the last cell printed
        wraps = (total - 1) // self.cols
        for _ in range(min(wraps, self.rows)):
            self._lf()
        self.col = total - wraps * self.cols

    def _lf(self) -> None:
        if self.row < self.rows - 1:
            self.row += 1

    # -- escape sequences

    def _clamp(self) -> None:
        self.row = max(0, min(self.row, self.rows - 1))
        self.col = max(0, min(self.col, self.cols - 1))

    def _csi(self, params: bytes, final: bytes) -> bytes | None:
        if params[:1] in (b"?", b">", b"<", b"="):
            return None  # private modes (cursor visibility, bracketed paste...)
        nums = [int(p) if p.isdigit() else 0 for p in params.split(b";")] if params else []
        n = (nums[0] if nums else 0) or 1
        f = final
        if f == b"n":
            if nums[:1] == [6]:
                r, c = self.row, min(self.col, self.cols - 1)
                return b"\x1b[%d;%dR" % (r + 1, c + 1)
            return None
        if f == b"c":
            return DA1_REPLY if self.answer_da1 and nums in ([], [0]) else None
        if f in b"ABCDEFGHfd`ae":
            self.col = min(self.col, self.cols - 1)
        if f == b"A":
            self.row -= n
        elif f in (b"B", b"e"):
            self.row += n
        elif f in (b"C", b"a"):
            self.col += n
        elif f == b"D":
            self.col -= n
        elif f == b"E":
            self.row, self.col = self.row + n, 0
        elif f == b"F":
            self.row, self.col = self.row - n, 0
        elif f in (b"G", b"`"):
            self.col = n - 1
        elif f == b"d":
            self.row = n - 1
        elif f in (b"H", b"f"):
            self.row = (nums[0] or 1) - 1 if nums else 0
            self.col = (nums[1] or 1) - 1 if len(nums) > 1 else 0
        elif f == b"s" and not params:
            self.saved = (self.row, self.col)
        elif f == b"u" and not params:
            self.row, self.col = self.saved
        else:
            return None
        self._clamp()
        return None

    def _short(self, c: bytes) -> None:
        if c == b"7":
            self.saved = (self.row, self.col)
        elif c == b"8":
            self.row, self.col = self.saved
        elif c == b"D":
            self._lf()
        elif c == b"E":
            self.col = 0
            self._lf()
        elif c == b"M":
            self.row = max(0, self.row - 1)
        elif c == b"c":  # full reset
            self.row = self.col = 0


# -- one console in a pty ---------------------------------------------------------------------


class PtySession:
    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        rows: int = 40,
        cols: int = 120,
        silent: bool = False,
    ):
        env = dict(env)
        env.pop("PROMPT_TOOLKIT_NO_CPR", None)
        env.setdefault("TERM", "xterm-256color")
        self.silent = silent
        self.cursor = CursorTracker(rows, cols, answer_da1=not silent)
        self.t0 = time.perf_counter()
        self.child = pexpect.spawn(argv[0], argv[1:], env=env, dimensions=(rows, cols))
        os.set_blocking(self.child.child_fd, False)
        self._eof = False
        self.pid = self.child.pid
        self.text = b""  # escape-stripped transcript since the last match
        self._searched = 0  # where the next search of it starts
        self._carry = b""
        self.peak_kb = 0
        self.screen = None
        self.stream = None
        self._decoder = None
        self.rows, self.cols = rows, cols
        self.cprs = 0  # cursor-position requests answered

    def _read_raw(self, timeout: float) -> bytes:
        """What the console wrote, waiting up to ``timeout`` s for the first byte, then
        all that is there (up to 1 MB); b"" on timeout; pexpect.EOF once it is gone.

        Straight from the pty's file descriptor (non-blocking): the pty hands out 4 KB
        a read, and pexpect's read_nonblocking does a select and a string
        concatenation for each of them, which made this driver, not the console, the
        bottleneck of a 50 MB print."""
        if self._eof:
            raise pexpect.EOF("the console exited")
        fd = self.child.child_fd
        if not select.select([fd], [], [], timeout)[0]:
            return b""
        chunks: list[bytes] = []
        size = 0
        while size < 1 << 20:
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                break
            except OSError:  # EIO: the console's side of the pty is closed
                chunk = b""
            if not chunk:
                self._eof = True
                if not chunks:
                    raise pexpect.EOF("the console exited")
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)

    def _read(self, timeout: float) -> None:
        data = self._read_raw(timeout)
        self.peak_kb = max(self.peak_kb, vm_hwm_kb(self.pid))
        if not data:
            return
        replies = self.cursor.feed(data)
        if replies and not self.silent:
            for r in replies:
                self.cprs += r.endswith(b"R")
            self.send(b"".join(replies))
        if self.stream is not None:
            self.stream.feed(self._decoder.decode(data))
        data = self._carry + data
        m = _PARTIAL_ESC.search(data)
        if m:
            self._carry = data[m.start() :]
            data = data[: m.start()]
        else:
            self._carry = b""
        # ANSI matches escape sequences and CR: without an ESC, only CRs to drop.
        self.text += ANSI.sub(b"", data) if b"\x1b" in data else data.replace(b"\r", b"")
        if len(self.text) > 1 << 20:
            cut = len(self.text) - (1 << 16)
            self.text = self.text[cut:]
            self._searched = max(0, self._searched - cut)

    def expect(self, pattern: bytes, timeout: float = 60.0) -> float:
        """Wait for ``pattern`` in the transcript; return perf_counter() when it came.

        Each search starts a little before where the last one ended (patterns are
        short), so a flood of megabytes is searched once, not once per read."""
        rx = re.compile(pattern)
        deadline = time.perf_counter() + timeout
        while True:
            m = rx.search(self.text, max(0, self._searched - 512))
            if m:
                t = time.perf_counter()
                self.text = self.text[m.end() :]
                self._searched = 0
                return t
            self._searched = len(self.text)
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise PtyTimeout(f"no {pattern!r} in {timeout} s; tail: {self.text[-400:]!r}")
            try:
                self._read(min(remaining, 0.5))
            except pexpect.EOF:
                m = rx.search(self.text)
                if m:
                    return time.perf_counter()
                raise PtyTimeout(
                    f"console exited waiting for {pattern!r}: {self.text[-400:]!r}"
                ) from None

    def send(self, data: bytes) -> float:
        fd = self.child.child_fd
        while data:
            try:
                data = data[os.write(fd, data) :]
            except BlockingIOError:  # the console is not reading its keys yet
                select.select([], [fd], [], 1.0)
        return time.perf_counter()

    def prompt(self, timeout: float = 60.0) -> float:
        return self.expect(PROMPT, timeout)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss_mb(self) -> float:
        """The console's peak RSS so far, in MB."""
        self.peak_kb = max(self.peak_kb, vm_hwm_kb(self.pid))
        return self.peak_kb / 1024

    # -- the screen, for the completion menu ------------------------------------------------

    def start_screen(self) -> None:
        import pyte

        self.screen = pyte.Screen(self.cols, self.rows)
        self.stream = pyte.Stream(self.screen)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def stop_screen(self) -> None:
        self.screen = self.stream = self._decoder = None

    def wait_screen(self, needle: str, present: bool, timeout: float = 10.0) -> float:
        assert self.screen is not None
        deadline = time.perf_counter() + timeout
        while True:
            shown = any(needle in line for line in self.screen.display)
            if shown == present:
                return time.perf_counter()
            if time.perf_counter() > deadline:
                raise PtyTimeout(
                    f"screen never {'showed' if present else 'dropped'} {needle!r}:\n"
                    + "\n".join(x.rstrip() for x in self.screen.display if x.strip())
                )
            self._read(0.2)

    # -- ending ---------------------------------------------------------------------------

    def close(self, exit_keys: bytes | None = b"exit\r", timeout: float = 15.0) -> None:
        """Leave with ``exit_keys`` (None: SIGHUP, then SIGKILL), waiting for the exit."""
        try:
            if self.child.isalive() and exit_keys is not None:
                self.child.send(exit_keys)
                deadline = time.perf_counter() + timeout
                while self.child.isalive() and time.perf_counter() < deadline:
                    try:
                        self._read_raw(0.2)
                    except pexpect.EOF:
                        break
        finally:
            if self.child.isalive():
                self.child.terminate(force=True)
            self.child.close()


# -- what is measured in a session ------------------------------------------------------------


def enter_to_out(s: PtySession, cells: int, start: int = 1000) -> list[float]:
    """Seconds from Enter to ``Out[n]: value`` for ``cells`` cells typed one after
    the other, each at its prompt (a number no history entry starts with)."""
    lat = []
    for i in range(cells):
        value = str(start + 7 * i).encode()
        t = s.send(value + b"\r")
        lat.append(s.expect(rb"Out\[\d+\]: " + value + rb"\b", 30) - t)
        s.prompt()
    return lat


def flood(s: PtySession, n: int) -> dict[str, float]:
    """One cell printing ``n`` lines: Enter to the next prompt, the console's CPU time
    meanwhile and its peak RSS after it."""
    cpu0 = s.cpu()
    t = s.send(flood_code(n).encode() + b"\r")
    s.expect(rb"\n%d\n" % (n - 1), 600)
    wall = s.prompt(60) - t
    return {"wall": wall, "cpu": s.cpu() - cpu0, "rss": s.rss_mb()}


def repl_session(
    argv: list[str], env: dict[str, str], cells: int = 20, floods: tuple[int, ...] = ()
) -> dict:
    """A cold start and a short session: first prompt, first result (``1+1`` typed at
    the first prompt to ``Out[1]: 2``), Enter-to-Out (median of ``cells``), peak RSS
    after them, then one flood per entry of ``floods`` (keys ``flood<n>_wall``,
    ``_cpu``, ``_rss``)."""
    s = PtySession(argv, env)
    try:
        first_prompt = s.prompt(60) - s.t0
        s.send(b"1+1\r")
        # 30 s: jupyter console now and then never prints this result; the run is
        # then retried, sooner than after a minute.
        first_result = s.expect(rb"Out\[1\]: 2\s", 30) - s.t0
        s.prompt()
        lat = enter_to_out(s, cells)
        result: dict = {
            "first_prompt": first_prompt,
            "first_result": first_result,
            "enter_to_out": statistics.median(lat),
            "rss": s.rss_mb(),
        }
        for n in floods:
            result.update({f"flood{n}_{k}": v for k, v in flood(s, n).items()})
        result["cprs"] = s.cprs
    finally:
        s.close()
    return result


def long_session(argv: list[str], env: dict[str, str], cells: int, window: int = 100) -> dict:
    """``cells`` cells in a row: median Enter-to-Out of the first and the last
    ``window``, peak RSS after the first ``window`` and at the end."""
    s = PtySession(argv, env)
    try:
        s.prompt(60)
        first = enter_to_out(s, window)
        rss_first = s.rss_mb()
        enter_to_out(s, cells - 2 * window, start=1000 + 7 * window)
        last = enter_to_out(s, window, start=1000 + 7 * (cells - window))
        result = {
            "first": statistics.median(first),
            "last": statistics.median(last),
            "rss_first": rss_first,
            "rss": s.rss_mb(),
        }
    finally:
        s.close(None)
    return result


BIG_STRING = 50_000_000


def attached_session(
    argv: list[str], env: dict[str, str], tabs: int = 5, tab: bool = True, big: bool = True
) -> dict:
    """On a shared kernel: Tab-to-completion-menu (``tab``: ``os.pa`` + Tab until
    ``pathconf_names`` shows on a pyte screen), then (``big``) a 5,000-row DataFrame
    shown in full and a 50 MB string printed, each Enter to the next prompt."""
    s = PtySession(argv, env)
    result: dict = {}
    try:
        s.prompt(60)
        if tab:
            s.send(b"import os\r")
            s.prompt(30)
            s.start_screen()
            lat = []
            for i in range(tabs + 1):  # the first one warms the kernel's completer
                t = s.send(b"os.pa\t")
                shown = s.wait_screen("pathconf_names", True)
                if i:
                    lat.append(shown - t)
                s.send(b"\x05\x15")  # Ctrl-E Ctrl-U: end of line, delete it (menu closes)
                s.wait_screen("pathconf_names", False)
            s.stop_screen()
            result["tab"] = statistics.median(lat)
        if big:
            s.send(DATAFRAME_SETUP.encode() + b"\r")
            s.prompt(60)
            cpu0 = s.cpu()
            t = s.send(b"df\r")
            s.expect(rb"\n4999\s", 60)  # its last row
            result["dataframe"] = s.prompt(60) - t
            result["dataframe_cpu"] = s.cpu() - cpu0
            cpu0 = s.cpu()
            t = s.send(b"print('x' * %d); print('big-' + 'done')\r" % BIG_STRING)
            s.expect(rb"big-done", 60)
            result["big_string"] = s.prompt(60) - t
            result["big_string_cpu"] = s.cpu() - cpu0
            result["rss"] = s.rss_mb()
    finally:
        # Not `exit`: on a kernel it attached to, jupyter console shuts the kernel down.
        s.close(None)
    return result


def flood_session(argv: list[str], env: dict[str, str], floods: tuple[int, ...]) -> dict:
    """Attached to a shared kernel: one flood per entry of ``floods``."""
    s = PtySession(argv, env)
    try:
        s.prompt(60)
        result = {}
        for n in floods:
            result.update({f"flood{n}_{k}": v for k, v in flood(s, n).items()})
    finally:
        s.close(None)
    return result


#: A tqdm.auto loop that redraws its bar 60 times (mininterval=0: every iteration), 20
#: times a second; with ipywidgets in the kernel, each redraw is 3 comm messages.
TQDM_UPDATES = 60
TQDM_CODE = (
    f"for i in tqdm.auto.tqdm(range({TQDM_UPDATES}), mininterval=0, miniters=1): time.sleep(0.05)"
)


def widget_session(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """The console's CPU share while a tqdm.auto loop runs (Enter to the next prompt):
    the cost of following a live widget bar."""
    s = PtySession(argv, env)
    try:
        # Each prompt by its number: the one being typed at is redrawn as it is typed.
        s.expect(rb"In \[1\]: ", 60)
        s.send(b"import tqdm.auto, time\r")  # imports and the first widget out of the way
        s.expect(rb"In \[2\]: ", 60)
        s.send(b"tqdm.auto.tqdm(range(1)).close()\r")
        s.expect(rb"In \[3\]: ", 60)
        cpu0 = s.cpu()
        t0 = s.send(TQDM_CODE.encode() + b"\r")
        t1 = s.expect(rb"In \[4\]: ", 60)
        cpu = s.cpu() - cpu0
    finally:
        s.close()
    return {"cpu_share": cpu / (t1 - t0), "wall": t1 - t0}


# -- a lived-in history -------------------------------------------------------------------------


def history_entries(n: int) -> Iterator[str]:
    """``n`` distinct inputs such as a session of data work leaves behind, some of two
    lines; none starts with a digit, so the cells timed (numbers) match none of them
    and a search of the history for a suggestion scans all of it."""
    templates = (
        "x{i} = {i} * 2",
        "print('step', {i})",
        "df{j}.head({k})",
        "result_{i} = sum(range({k}))",
        "for k in range({k}):\n    total_{i} += k",
        "import math; math.sqrt({i})",
        "data[{k}:{i}].mean()",
        "def f{i}(a, b={k}):\n    return a + b",
    )
    for i in range(n):
        yield templates[i % len(templates)].format(i=i, j=i % 37, k=i % 100)


def write_history(data_dir: Path, ipython_dir: Path, n: int) -> None:
    """``n`` entries in kconsole's history file (prompt_toolkit's FileHistory format,
    in ``<data_dir>/kconsole/history-python``) and the same entries in IPython's
    ``history.sqlite`` of the default profile (what ipykernel opens; 100 per session)."""
    d = data_dir / "kconsole"
    d.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, e in enumerate(history_entries(n)):
        stamp = f"2026-01-{1 + i * 28 // max(n, 1):02d} 12:00:00.{i % 1000000:06d}"
        lines.append(f"\n# {stamp}\n")
        lines.extend(f"+{line}\n" for line in e.split("\n"))
    (d / "history-python").write_text("".join(lines))
    p = ipython_dir / "profile_default"
    p.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(p / "history.sqlite")
    try:
        db.execute(
            "CREATE TABLE IF NOT EXISTS sessions (session integer primary key autoincrement,"
            " start timestamp, end timestamp, num_cmds integer, remark text)"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS history (session integer, line integer,"
            " source text, source_raw text, PRIMARY KEY (session, line))"
        )
        db.execute(
            "CREATE TABLE IF NOT EXISTS output_history (session integer, line integer,"
            " output text, PRIMARY KEY (session, line))"
        )
        rows = []
        for i, e in enumerate(history_entries(n)):
            rows.append((i // 100 + 1, i % 100 + 1, e, e))
        sessions = {r[0] for r in rows}
        db.executemany(
            "INSERT INTO sessions VALUES (?, '2026-01-01 12:00', '2026-01-01 13:00', 100, '')",
            [(s,) for s in sorted(sessions)],
        )
        db.executemany("INSERT INTO history VALUES (?, ?, ?, ?)", rows)
        db.commit()
    finally:
        db.close()


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(repl_session(sys.argv[1:], dict(os.environ))))
