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
    ) -> None:
        args = self.with_test_defaults(args)
        full_env = dict(os.environ)
        # pexpect does not answer cursor-position requests; tell prompt_toolkit not to ask.
        full_env["PROMPT_TOOLKIT_NO_CPR"] = "1"
        full_env["TERM"] = full_env.get("KCONSOLE_TEST_TERM", "xterm-256color")
        full_env.setdefault("PAGER", "less -R")
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
