"""Terminal capabilities: from the environment, and by asking a (fake) terminal on a pty."""

from __future__ import annotations

import os
import pty
import termios
import threading
import time

from kconsole.display import capabilities_from_env, detect_terminal
from kconsole.display.terminal import DA1_QUERY, KITTY_QUERY, parse_replies


def test_env_kitty() -> None:
    caps = capabilities_from_env({"TERM": "xterm-kitty", "KITTY_WINDOW_ID": "1"})
    assert caps.image_protocol == "kitty" and caps.hyperlinks and caps.colors == 16777216


def test_env_iterm_and_wezterm() -> None:
    assert capabilities_from_env({"TERM_PROGRAM": "iTerm.app"}).image_protocol == "iterm"
    caps = capabilities_from_env({"TERM": "xterm-256color", "WEZTERM_PANE": "0"})
    assert caps.image_protocol == "iterm"


def test_env_plain_xterm_has_no_images_and_tmux_disables_them() -> None:
    caps = capabilities_from_env({"TERM": "xterm-256color"})
    assert caps.image_protocol is None and caps.colors == 256 and not caps.hyperlinks
    caps = capabilities_from_env(
        {"TERM": "tmux-256color", "TMUX": "/tmp/x", "KITTY_WINDOW_ID": "1"}
    )
    assert caps.image_protocol is None
    assert capabilities_from_env({"TERM": "foot"}).image_protocol == "sixel"


def test_env_colour_depth() -> None:
    assert capabilities_from_env({"TERM": "xterm", "COLORTERM": "truecolor"}).colors == 16777216
    assert capabilities_from_env({"TERM": "dumb"}).colors == 0
    assert capabilities_from_env({"TERM": "xterm-256color", "NO_COLOR": "1"}).colors == 0


def test_not_a_tty_means_no_images() -> None:
    caps = capabilities_from_env({"TERM": "xterm-kitty"}, is_tty=False)
    assert caps.image_protocol is None and not caps.hyperlinks


def test_parse_replies() -> None:
    r = parse_replies("\x1b_Gi=31;OK\x1b\\\x1b[6;20;10t\x1b[4;480;800t\x1b[?62;4;22c")
    assert r.kitty_ok and r.cell_size == (10, 20) and r.window_size == (800, 480)
    assert r.da1 == (62, 4, 22)
    assert parse_replies("garbage").da1 is None


class FakeTerminal:
    """Answers queries on the master side of a pty, like a terminal emulator would."""

    def __init__(self, replies: dict[str, str]) -> None:
        self.master, self.slave = pty.openpty()
        self.replies = replies
        self.seen = ""
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop:
            try:
                data = os.read(self.master, 4096).decode("latin-1")
            except OSError:
                return
            self.seen += data
            for query, answer in self.replies.items():
                if query in data:
                    os.write(self.master, answer.encode("latin-1"))

    def close(self) -> None:
        self.stop = True
        os.close(self.slave)
        os.close(self.master)


def test_detect_sixel_terminal_with_cell_size() -> None:
    term = FakeTerminal({"\x1b[16t": "\x1b[6;18;9t", DA1_QUERY: "\x1b[?63;1;2;4;6;9;15;22c"})
    try:
        before = termios.tcgetattr(term.slave)
        caps = detect_terminal(term.slave, term.slave, timeout=1.0, env={"TERM": "xterm"})
        assert termios.tcgetattr(term.slave) == before  # settings restored
    finally:
        term.close()
    assert caps.image_protocol == "sixel" and caps.queried
    assert (caps.cell_width, caps.cell_height) == (9, 18)
    assert KITTY_QUERY in term.seen


def test_detect_kitty_terminal() -> None:
    term = FakeTerminal({KITTY_QUERY: "\x1b_Gi=31;OK\x1b\\", DA1_QUERY: "\x1b[?62;c"})
    try:
        caps = detect_terminal(term.slave, term.slave, timeout=1.0, env={"TERM": "xterm-kitty"})
    finally:
        term.close()
    assert caps.image_protocol == "kitty"


def test_detect_silent_terminal_times_out_quickly() -> None:
    term = FakeTerminal({})
    try:
        before = termios.tcgetattr(term.slave)
        t0 = time.monotonic()
        caps = detect_terminal(term.slave, term.slave, timeout=0.2, env={"TERM": "xterm"})
        elapsed = time.monotonic() - t0
        assert termios.tcgetattr(term.slave) == before
    finally:
        term.close()
    assert elapsed < 1.0
    assert caps.image_protocol is None and not caps.queried


def test_detect_on_a_pipe_uses_env_only() -> None:
    r, w = os.pipe()
    try:
        caps = detect_terminal(r, w, env={"TERM": "xterm-kitty"})
    finally:
        os.close(r)
        os.close(w)
    assert not caps.is_tty and caps.image_protocol is None
