"""Consoles in a real pseudo-terminal, timed the way a user feels them.

A :class:`PtySession` spawns one console with pexpect, strips escape sequences from
what it prints into a transcript and waits for patterns in it (a pyte screen is fed
only while a completion menu is measured: emulating the 200,000-line flood would time
the emulator, not the console). Times are from the moment the keys were written to
the moment the pattern was read back.

The driver answers the one terminal query every VT100-compatible terminal answers, the
primary device attributes (DA1, ``ESC [ c``), with xterm's own reply, as xterm, VTE,
kitty, iTerm2 and Windows Terminal do; it answers nothing else (cursor position, pixel
sizes, kitty's graphics query), as xterm by default does not. ``silent=True`` answers
nothing: a console that asks then waits out its own timeout.
"""

from __future__ import annotations

import codecs
import os
import re
import statistics
import time

import pexpect
from measure import ANSI, vm_hwm_kb

FLOOD_LINES = 200_000
FLOOD_CODE = f"_ = [print(i) for i in range({FLOOD_LINES})]"
_PARTIAL_ESC = re.compile(rb"\x1b[^a-zA-Z~\x07]{0,40}$")
_DA1_QUERY = re.compile(rb"\x1b\[0?c")
#: xterm's reply to DA1 (a VT420 with its usual options).
DA1_REPLY = b"\x1b[?64;1;2;6;9;15;16;17;18;21;22;28c"


class PtyTimeout(Exception):
    pass


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
        self.silent = silent
        env["PROMPT_TOOLKIT_NO_CPR"] = "1"  # pexpect never answers cursor-position requests
        env.setdefault("TERM", "xterm-256color")
        self.t0 = time.perf_counter()
        self.child = pexpect.spawn(argv[0], argv[1:], env=env, dimensions=(rows, cols))
        self.pid = self.child.pid
        self.text = b""  # escape-stripped transcript since the last match
        self._carry = b""
        self.peak_kb = 0
        self.screen = None
        self._decoder = None
        self.rows, self.cols = rows, cols

    def _read(self, timeout: float) -> None:
        try:
            data = self.child.read_nonblocking(1 << 20, timeout=timeout)
        except pexpect.TIMEOUT:
            data = b""
        self.peak_kb = max(self.peak_kb, vm_hwm_kb(self.pid))
        if not data:
            return
        if not self.silent and _DA1_QUERY.search(self._carry + data):
            self.child.send(DA1_REPLY)
        if self.screen is not None:
            self.stream.feed(self._decoder.decode(data))
        data = self._carry + data
        m = _PARTIAL_ESC.search(data)
        if m:
            self._carry = data[m.start() :]
            data = data[: m.start()]
        else:
            self._carry = b""
        self.text += ANSI.sub(b"", data)
        if len(self.text) > 1 << 20:
            self.text = self.text[-(1 << 16) :]

    def expect(self, pattern: bytes, timeout: float = 60.0) -> float:
        """Wait for ``pattern`` in the transcript; return perf_counter() when it came."""
        rx = re.compile(pattern)
        deadline = time.perf_counter() + timeout
        while True:
            m = rx.search(self.text)
            if m:
                t = time.perf_counter()
                self.text = self.text[m.end() :]
                return t
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
        self.child.send(data)
        return time.perf_counter()

    def prompt(self, timeout: float = 60.0) -> float:
        return self.expect(rb"In \[\d+\]: ", timeout)

    # -- the screen, for the completion menu ------------------------------------------------

    def start_screen(self) -> None:
        import pyte

        self.screen = pyte.Screen(self.cols, self.rows)
        self.stream = pyte.Stream(self.screen)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def wait_screen(self, needle: str, present: bool, timeout: float = 10.0) -> float:
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
                        self.child.read_nonblocking(1 << 16, timeout=0.2)
                    except pexpect.TIMEOUT:
                        pass
                    except pexpect.EOF:
                        break
        finally:
            if self.child.isalive():
                self.child.terminate(force=True)
            self.child.close()


def repl_session(
    argv: list[str], env: dict[str, str], cells: int = 20, flood: bool = True
) -> dict[str, float]:
    """First prompt, first result, Enter-to-Out latency and (``flood``) a 200k-line
    print."""
    s = PtySession(argv, env)
    try:
        first_prompt = s.prompt(60) - s.t0
        s.send(b"6*7\r")
        # 20 s: jupyter console now and then never prints this result; the run is
        # then retried, sooner than after a minute.
        first_result = s.expect(rb"Out\[\d+\]: 42", 20) - s.t0
        s.prompt()
        lat = []
        for i in range(cells):
            value = str(1000 + 7 * i).encode()
            t = s.send(value + b"\r")
            lat.append(s.expect(rb"Out\[\d+\]: " + value + rb"\b", 30) - t)
            s.prompt()
        result = {
            "first_prompt": first_prompt,
            "first_result": first_result,
            "enter_to_out": statistics.median(lat),
        }
        if flood:
            t = s.send(FLOOD_CODE.encode() + b"\r")
            s.expect(rb"\n199999\n", 300)
            result["flood"] = s.prompt(60) - t
    finally:
        s.close()
    result["rss_mb"] = s.peak_kb / 1024
    return result


def first_prompt(argv: list[str], env: dict[str, str], silent: bool) -> dict[str, float]:
    """Time to the first prompt only (``silent``: in a terminal that answers nothing)."""
    s = PtySession(argv, env, silent=silent)
    try:
        result = {"first_prompt": s.prompt(60) - s.t0}
    finally:
        s.close(b"\x04")
    return result


def tab_session(argv: list[str], env: dict[str, str], tabs: int = 5) -> dict[str, float]:
    """Tab-to-completion-menu latency: ``os.pa`` + Tab until ``pathconf_names`` shows."""
    s = PtySession(argv, env)
    try:
        s.prompt(60)
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
        result = {"tab": statistics.median(lat)}
    finally:
        # Not `exit`: on a kernel it attached to, jupyter console shuts the kernel down.
        s.close(None)
    result["rss_mb"] = s.peak_kb / 1024
    return result


#: A tqdm.auto loop that redraws its bar 60 times (mininterval=0: every iteration), 20
#: times a second; with ipywidgets in the kernel, each redraw is 3 comm messages.
TQDM_UPDATES = 60
TQDM_CODE = (
    f"for i in tqdm.auto.tqdm(range({TQDM_UPDATES}), mininterval=0, miniters=1): time.sleep(0.05)"
)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time ``pid`` has used so far (its own, not its children's)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
        cpu0 = cpu_seconds(s.pid)
        t0 = s.send(TQDM_CODE.encode() + b"\r")
        t1 = s.expect(rb"In \[4\]: ", 60)
        cpu = cpu_seconds(s.pid) - cpu0
    finally:
        s.close()
    return {"cpu_share": cpu / (t1 - t0), "wall": t1 - t0}


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(repl_session(sys.argv[1:], dict(os.environ))))
