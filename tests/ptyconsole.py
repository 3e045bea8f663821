"""Drive kconsole in a real pseudo-terminal and read what a user would see.

:class:`PtyConsole` spawns the console with pexpect, feeds everything it prints into a
pyte screen (for layout assertions) and into a transcript with escape sequences
removed (for waiting on text). Waiting is always for an event with a timeout.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pexpect
import pyte

KCONSOLE = [sys.executable, "-m", "kconsole"]


#: The kernels a REPL test runs on: ipykernel and kconsole's built-in kernel (part of
#: kconsole: a built-in kernel that does not import fails its tests, it is not skipped).
KERNELS = ["python3", "builtin"]
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[PX^_][^\x1b]*\x1b\\|\x1b[=>()][0-9A-Za-z]?|\r"
)


def half_block_colours(cell: pyte.screens.Char) -> tuple[str, str]:
    """The colours of the two pixels a half-block cell shows, top then bottom, as pyte
    names them ("ff0000", "red", "default"): ▀ is the foreground over the background,
    ▄ the other way up, anything else (a space) the background twice."""
    if cell.data == "\u2580":
        return cell.fg, cell.bg
    if cell.data == "\u2584":
        return cell.bg, cell.fg
    return cell.bg, cell.bg


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a kernel that should be gone, say)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def wait_gone(pid: int, timeout: float) -> bool:
    """Whether process ``pid`` is gone within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)  # polling a pid: there is no event for another process's exit
    return False


class PtyConsole:
    """One kconsole process in a pty of ``rows`` x ``cols``."""

    def __init__(
        self,
        args: list[str],
        *,
        rows: int = 40,
        cols: int = 120,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
        timeout: float = 30.0,
        cpr: bool = False,
    ) -> None:
        """``cpr``: a terminal that answers cursor-position requests (pyte answers
        them), so prompt_toolkit draws what needs them, the bottom toolbar."""
        args = self.with_test_defaults(args)
        full_env = dict(os.environ)
        # pexpect does not answer cursor-position requests; tell prompt_toolkit not to ask.
        full_env["PROMPT_TOOLKIT_NO_CPR"] = "1"
        full_env["TERM"] = full_env.get("KCONSOLE_TEST_TERM", "xterm-256color")
        full_env.setdefault("PAGER", "less -R")
        if cpr:
            full_env["PROMPT_TOOLKIT_NO_CPR"] = "0"
        full_env.update(env or {})
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.Stream(self.screen)
        self.transcript = ""
        self._consumed = 0
        self.timeout = timeout
        self.child = pexpect.spawn(
            KCONSOLE[0],
            KCONSOLE[1:] + args,
            env=full_env,
            cwd=str(cwd) if cwd else None,
            dimensions=(rows, cols),
            encoding="utf-8",
            codec_errors="replace",
            timeout=timeout,
        )
        if cpr:
            # pyte answers ESC[6n (and ESC[c) through this hook.
            self.screen.write_process_input = self.child.send  # type: ignore[method-assign]

    @staticmethod
    def with_test_defaults(args: list[str]) -> list[str]:
        """``start``/``attach`` get ``--no-confirm-exit`` (so Ctrl-D leaves at once) unless
        the test chose ``--confirm-exit`` or ``--no-confirm-exit`` itself."""
        if not args or args[0] not in ("start", "attach"):
            return list(args)
        if any(a in ("--confirm-exit", "--no-confirm-exit") for a in args):
            return list(args)
        return [args[0], "--no-confirm-exit", *args[1:]]

    # -- reading ------------------------------------------------------------------------

    def _pump(self, timeout: float) -> bool:
        try:
            data = self.child.read_nonblocking(65536, timeout=timeout)
        except pexpect.TIMEOUT:
            return False
        except pexpect.EOF:
            raise
        self.stream.feed(data)
        self.transcript += strip_ansi(data)
        return True

    def expect(self, pattern: str, timeout: float | None = None) -> re.Match[str]:
        """Wait until ``pattern`` (a regex) appears in the transcript after the last match."""
        deadline = time.monotonic() + (timeout or self.timeout)
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.transcript, self._consumed)
            if m:
                self._consumed = m.end()
                return m
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                tail = self.transcript[-1500:]
                raise AssertionError(f"timed out waiting for {pattern!r}; last output:\n{tail}")
            try:
                self._pump(min(remaining, 0.5))
            except pexpect.EOF:
                m = rx.search(self.transcript, self._consumed)
                if m:
                    self._consumed = m.end()
                    return m
                self.child.close()
                status = self.child.exitstatus, self.child.signalstatus
                raise AssertionError(
                    f"console exited (status, signal {status}) waiting for {pattern!r}; "
                    f"last output:\n{self.transcript[-1500:]}"
                ) from None

    def expect_prompt(self, n: int | None = None, timeout: float | None = None) -> None:
        number = str(n) if n is not None else r"\d+"
        self.expect(r"In \[" + number + r"\]: ", timeout)

    def expect_cursor_line(self, pattern: str, timeout: float | None = None) -> str:
        """Wait until the screen line the cursor is on, trailing spaces removed, is all of
        ``pattern`` (a regex). For states the transcript cannot tell apart: after Ctrl-C at
        the prompt, the old line's last redraw ("In [2]: text") comes before the new, empty
        prompt ("In [2]: "), and a key sent in between meets a cooked terminal."""
        deadline = time.monotonic() + (timeout or self.timeout)
        rx = re.compile(pattern)
        while True:
            line = self.display()[self.screen.cursor.y]
            if rx.fullmatch(line):
                return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out waiting for the cursor line to read {pattern!r}; it reads "
                    f"{line!r}; screen:\n" + "\n".join(self.display())
                )
            try:
                self._pump(min(remaining, 0.5))
            except pexpect.EOF:
                line = self.display()[self.screen.cursor.y]
                if rx.fullmatch(line):
                    return line
                raise AssertionError(
                    f"console exited waiting for the cursor line to read {pattern!r}; "
                    f"last output:\n{self.transcript[-1500:]}"
                ) from None

    def expect_empty_prompt(self, n: int | None = None, timeout: float | None = None) -> None:
        """Wait for a fresh prompt ``In [n]:`` with nothing typed, the cursor on it."""
        number = str(n) if n is not None else r"\d+"
        self.expect_cursor_line(r"In \[" + number + r"\]:", timeout)

    def settle(self, quiet: float = 0.3, timeout: float = 5.0) -> None:
        """Read until the console has printed nothing for ``quiet`` seconds.

        Not a way to wait for something: wait for its text (or prompt) with
        :meth:`expect`. Use this only to read a final screen with :meth:`display` once
        everything the test waits for has been matched, so that trailing redraws (cursor
        moves, a menu finishing) are on the pyte screen too.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if not self._pump(quiet):
                    return
            except pexpect.EOF:
                return

    def display(self) -> list[str]:
        """The pyte screen's lines, trailing spaces removed."""
        return [line.rstrip() for line in self.screen.display]

    # -- writing ------------------------------------------------------------------------

    def send(self, text: str) -> None:
        self.child.send(text)

    def sendline(self, text: str = "") -> None:
        # A pty line ends with CR, which prompt_toolkit reads as Enter.
        self.child.send(text + "\r")

    def ctrl(self, char: str) -> None:
        self.child.sendcontrol(char)

    # -- ending -------------------------------------------------------------------------

    def wait_exit(self, timeout: float | None = None) -> int:
        deadline = time.monotonic() + (timeout or self.timeout)
        while self.child.isalive():
            if time.monotonic() > deadline:
                raise AssertionError(
                    "console did not exit; last output:\n" + self.transcript[-1500:]
                )
            try:
                self._pump(0.2)
            except pexpect.EOF:
                break
        self.child.close()
        return (
            self.child.exitstatus
            if self.child.exitstatus is not None
            else -(self.child.signalstatus or 0)
        )

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)
        self.child.close()


# -- what many tests do with a console --------------------------------------------------


def wait_screen(c: PtyConsole, pattern: str, timeout: float = 20.0) -> str:
    """Wait until ``pattern`` (a regex, ``^``/``$`` per line) is on the pyte screen, for
    in-place redraws (the prompt line, the toolbar) that the transcript only has as
    diffs; the screen it matched."""
    rx = re.compile(pattern, re.MULTILINE)
    deadline = time.monotonic() + timeout
    while True:
        screen = "\n".join(c.display())
        if rx.search(screen):
            return screen
        if time.monotonic() > deadline:
            raise AssertionError(f"{pattern!r} not on the screen:\n{screen}")
        try:
            c._pump(0.2)
        except pexpect.EOF:
            screen = "\n".join(c.display())
            if rx.search(screen):
                return screen
            raise AssertionError(
                f"console exited; {pattern!r} not on the screen:\n{screen}"
            ) from None


def screen_text(c: PtyConsole) -> str:
    """The final screen, once all the test waited for has been matched (see settle)."""
    c.settle()
    return "\n".join(c.display())


def leave(c: PtyConsole) -> None:
    """Ctrl-D at the prompt (the console runs with --no-confirm-exit): it exits 0."""
    c.ctrl("d")
    assert c.wait_exit(30) == 0


class Gate:
    """A cell that keeps the kernel busy until the test lets it go, instead of a
    ``time.sleep(N)`` the test hopes outlasts what it does meanwhile.

    :meth:`cell` is one line of Python: it prints ``marker`` (built from two literals,
    so the echo of the typed line never matches it), then waits until the file
    :meth:`release` creates exists. A Ctrl-C interrupts it as it would a sleep.
    """

    def __init__(self, path: Path, marker: str = "held") -> None:
        self.path = path
        self.marker = marker

    def cell(self, before: str = "", after: str = "") -> str:
        """The gated cell; ``before`` and ``after`` are statements run around it."""
        m = self.marker
        wait = (
            f"import os, time; print({m[:1]!r} + {m[1:]!r}, flush=True); "
            f"[time.sleep(0.01) for _ in iter(lambda: os.path.exists({str(self.path)!r}), True)]"
        )
        return "; ".join(part for part in (before, wait, after) if part)

    @property
    def held(self) -> str:
        """The regex of the marker's line in the transcript: the cell is running."""
        return rf"(?m)^{re.escape(self.marker)}"

    def release(self) -> None:
        """Let the cell end (any number of times; a cell not started yet will not wait)."""
        self.path.touch()
