"""Terminal capabilities: from the environment, and by asking a (fake) terminal on a pty."""

from __future__ import annotations

import os
import pty
import termios
import threading
import time

from kconsole.display import RenderContext, capabilities_from_env, detect_terminal
from kconsole.display.terminal import (
    DA1_QUERY,
    KITTY_QUERY,
    TmuxClient,
    outer_protocol,
    parse_replies,
    parse_tmux_client,
    tmux_client,
)


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
    assert caps.image_protocol is None and caps.multiplexer == "tmux"
    screen = capabilities_from_env({"TERM": "screen.xterm-256color", "COLORTERM": "truecolor"})
    assert screen.multiplexer == "screen" and screen.colors == 256  # screen has no 24-bit
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


# -- tmux ----------------------------------------------------------------------------------


def fake_tmux(tmp_path, answer: str) -> dict[str, str]:
    """An environment inside "tmux": $TMUX set, and a `tmux` on PATH that answers
    display-message with ``answer`` (and logs its arguments)."""
    script = tmp_path / "tmux"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/args\nprintf '{answer}\\n'\n")
    script.chmod(0o755)
    return {
        "TERM": "tmux-256color",
        "TMUX": f"/tmp/tmux-fake-{tmp_path.name},1,0",  # one cache entry per test
        "TMUX_PANE": "%7",
        "PATH": f"{tmp_path}:{os.environ.get('PATH', '')}",
    }


def test_parse_tmux_client() -> None:
    c = parse_tmux_client("3.3a\t1\txterm\tXTerm(379)\t256,RGB,title\t6\t13\n")
    assert c is not None and c.passthrough and c.cell_size == (6, 13) and "RGB" in c.features
    assert c.termtype == "XTerm(379)" and c.termname == "xterm"
    assert parse_tmux_client("3.4\tall\txterm-kitty\t\t\t0\t0").passthrough  # type: ignore[union-attr]
    off = parse_tmux_client("3.4\toff\txterm\t\t\t\t")
    assert off is not None and not off.passthrough and off.cell_size is None
    # Before 3.3 there was no option: passthrough always worked.
    assert parse_tmux_client("3.2a\t\tscreen\t\t\t\t").passthrough  # type: ignore[union-attr]
    assert parse_tmux_client("") is None and parse_tmux_client("no tabs") is None


def test_outer_protocol_from_what_tmux_knows_and_the_outer_replies() -> None:
    kitty = TmuxClient(passthrough=True, termname="xterm-kitty")
    wez = TmuxClient(passthrough=True, termname="xterm-256color", termtype="WezTerm 20240203")
    xterm = TmuxClient(passthrough=True, termname="xterm", termtype="XTerm(379)")
    assert outer_protocol(kitty, None) == "kitty"
    assert outer_protocol(wez, None) == "iterm"
    assert outer_protocol(xterm, None) is None
    assert outer_protocol(xterm, parse_replies("\x1b[?63;1;2;4;6;9;15;22c")) == "sixel"
    assert outer_protocol(xterm, parse_replies("\x1b[?64;1;2;6;9;15;22c")) is None


def test_detect_in_tmux_with_passthrough_asks_the_outer_terminal(tmp_path) -> None:
    env = fake_tmux(tmp_path, "3.3a\\t1\\txterm\\tXTerm(379)\\t256,RGB,title\\t7\\t14")
    # tmux answers DA1 at once; the outer terminal's answer to the wrapped query follows.
    term = FakeTerminal({DA1_QUERY: "\x1b[?1;2c", "\x1bPtmux;": "\x1b[?63;1;2;4;6;9;22c"})
    try:
        caps = detect_terminal(term.slave, term.slave, timeout=1.0, env=env)
    finally:
        term.close()
    assert "\x1bPtmux;\x1b\x1b_Gi=31" in term.seen and "\x1b\x1b[c\x1b\\" in term.seen
    assert caps.image_protocol == "sixel" and caps.passthrough and not caps.sixel
    assert caps.colors == 16777216 and (caps.cell_width, caps.cell_height) == (7, 14)
    assert (tmp_path / "args").read_text().startswith("display-message -p -t %7 ")
    # The picture goes through tmux, wrapped.
    ctx = RenderContext(tty=True, caps=caps)
    assert ctx.image_protocol == "sixel" and ctx.image_passthrough("sixel")


def test_detect_in_tmux_without_passthrough_draws_blocks_without_waiting(tmp_path) -> None:
    env = fake_tmux(tmp_path, "3.3a\\t0\\txterm\\tXTerm(379)\\t256\\t6\\t13")
    term = FakeTerminal({DA1_QUERY: "\x1b[?1;2c"})
    try:
        t0 = time.monotonic()
        # A timeout far above any scheduling delay: only the DA1 reply can end it soon.
        caps = detect_terminal(term.slave, term.slave, timeout=30.0, env=env)
        elapsed = time.monotonic() - t0
    finally:
        term.close()
    assert "tmux;" not in term.seen  # nothing to ask the outer terminal through
    assert elapsed < 15  # tmux's own DA1 reply ended the wait, not the timeout
    assert caps.image_protocol is None and not caps.passthrough and caps.multiplexer == "tmux"
    assert RenderContext(tty=True, caps=caps).image_protocol == "blocks"


def test_detect_in_tmux_that_draws_sixel_itself_sends_it_unwrapped(tmp_path) -> None:
    env = fake_tmux(tmp_path, "3.4\\ton\\txterm\\tXTerm(390)\\t256,sixel\\t6\\t13")
    term = FakeTerminal({DA1_QUERY: "\x1b[?1;2;4c", "\x1bPtmux;": "\x1b[?63;1;2;4c"})
    try:
        caps = detect_terminal(term.slave, term.slave, timeout=1.0, env=env)
    finally:
        term.close()
    ctx = RenderContext(tty=True, caps=caps)
    assert ctx.image_protocol == "sixel" and not ctx.image_passthrough("sixel")
    assert ctx.image_passthrough("kitty")  # a protocol tmux does not draw would go through


def test_a_tmux_that_does_not_answer_costs_at_most_its_timeout(tmp_path) -> None:
    script = tmp_path / "tmux"
    script.write_text("#!/bin/sh\nexec sleep 30\n")
    script.chmod(0o755)
    env = {"TMUX": f"/tmp/tmux-silent-{tmp_path.name},1,0", "PATH": str(tmp_path)}
    t0 = time.monotonic()
    assert tmux_client(env, timeout=0.3) is None
    assert time.monotonic() - t0 < 2
    assert tmux_client(env, timeout=0.3) is None  # asked once: the answer is kept
    assert tmux_client({"TERM": "xterm"}) is None  # not in tmux: nothing asked
