"""Sixel drawn by a real xterm (``-ti vt340``) under Xvfb, checked on a screenshot;
and kconsole inside a real tmux in that xterm.

Skipped unless xterm, Xvfb and xwd are installed (Debian: xterm xvfb x11-apps), the
tmux test unless tmux is too.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kconsole.display.images import sixel_sequence

sys.path.insert(0, str(Path(__file__).parent))
from ptyconsole import half_block_colours
from test_display_images import BLUE, GREEN, RED, WHITE, make_png, quadrants

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("xterm", "Xvfb", "xwd")),
    reason="needs xterm, Xvfb and xwd (apt-get install xterm xvfb x11-apps)",
)


def read_xwd(data: bytes) -> tuple[int, int, Callable[[int, int], tuple[int, int, int]]]:
    """A minimal XWD (xwd -root) reader for TrueColor screens: (width, height, pixel)."""
    f = struct.unpack(">25I", data[:100])
    hsize, w, h, byte_order, bpp, bpl = f[0], f[4], f[5], f[7], f[11], f[12]
    masks = f[14:17]
    pixels = data[hsize + f[19] * 12 :]
    order = "little" if byte_order == 0 else "big"

    def get(x: int, y: int) -> tuple[int, int, int]:
        i = y * bpl + x * (bpp // 8)
        v = int.from_bytes(pixels[i : i + bpp // 8], order)
        r, g, b = (((v & m) >> ((m & -m).bit_length() - 1)) for m in masks)
        return r, g, b

    return w, h, get


def start_xvfb(timeout: float = 30.0) -> tuple[subprocess.Popen[bytes], str]:
    """Xvfb on a display it picks itself; returns once it accepts connections (it writes
    the display number to ``-displayfd`` then: an event, not a sleep)."""
    r, w = os.pipe()
    try:
        xvfb = subprocess.Popen(
            ["Xvfb", "-displayfd", str(w), "-screen", "0", "640x480x24"],
            pass_fds=(w,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(w)
        w = -1
        number = b""
        deadline = time.monotonic() + timeout
        while not number.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([r], [], [], remaining)[0]:
                xvfb.kill()
                raise AssertionError(f"Xvfb did not get ready in {timeout} s")
            chunk = os.read(r, 16)
            if not chunk:
                raise AssertionError(f"Xvfb exited with status {xvfb.wait()}")
            number += chunk
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    display = f":{int(number)}"
    assert Path(f"/tmp/.X11-unix/X{int(number)}").exists()
    return xvfb, display


def screen_colours(
    env: dict[str, str],
    wanted: set[tuple[int, int, int]],
    unwanted: frozenset[tuple[int, int, int]] = frozenset(),
    timeout: float = 15.0,
    rows: tuple[int, int] = (0, 200),
) -> tuple[dict[tuple[int, int, int], tuple[int, int]], bytes]:
    """Where each ``wanted`` colour first appears on the X screen (the left 300 pixels
    of ``rows``, every other pixel), once all of them do and none of ``unwanted`` does,
    or what was found at the deadline; and the last screenshot."""
    # Nothing signals that xterm has painted: poll screenshots within a deadline.
    deadline = time.monotonic() + timeout
    while True:
        shot = subprocess.run(
            ["xwd", "-root", "-silent"], env=env, capture_output=True, timeout=10
        ).stdout
        found: dict[tuple[int, int, int], tuple[int, int]] = {}
        if len(shot) >= 100:
            w, h, get = read_xwd(shot)
            for y in range(rows[0], min(h, rows[1]), 2):
                for x in range(0, min(w, 300), 2):
                    c = get(x, y)
                    if (c in wanted or c in unwanted) and c not in found:
                        found[c] = (x, y)
        if (set(found) == wanted) or time.monotonic() > deadline:
            return found, shot
        time.sleep(0.1)  # between screenshots of the polling loop above


def assert_quadrants(found: dict[tuple[int, int, int], tuple[int, int]]) -> None:
    """The four colours of :func:`quadrants` are on screen, each where the image has it."""
    assert set(found) == {RED, GREEN, BLUE, WHITE}, f"colours on screen: {found}"
    # Green right of red, blue below it, white below green.
    assert found[GREEN][0] > found[RED][0] and found[GREEN][1] == found[RED][1]
    assert found[BLUE][1] > found[RED][1] and found[BLUE][0] == found[RED][0]
    assert found[WHITE][0] == found[GREEN][0] and found[WHITE][1] == found[BLUE][1]


def stop(*procs: subprocess.Popen[bytes] | None) -> None:
    """Terminate the processes a test started (then kill what lingers)."""
    for proc in procs:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_sixel_in_real_xterm(tmp_path: Path) -> None:
    png = make_png(120, 60, quadrants(120, 60))
    seq_file = tmp_path / "image.txt"
    seq_file.write_text("\x1b[2J\x1b[H" + sixel_sequence(png, 120, 60, rows=4) + "done\n")
    shown = tmp_path / "shown"
    os.mkfifo(shown)
    shown_fd = os.open(shown, os.O_RDONLY | os.O_NONBLOCK)
    xvfb, display = start_xvfb()
    xterm = None
    try:
        env = {**os.environ, "DISPLAY": display}
        xterm = subprocess.Popen(
            [
                "xterm",
                "-ti",
                "vt340",
                "-xrm",
                "XTerm*numColorRegisters: 256",
                "-bg",
                "black",
                "-fg",
                "grey",
                "-geometry",
                "60x20+0+0",
                "-e",
                "sh",
                "-c",
                f"cat {seq_file}; echo shown > {shown}; sleep 60",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # xterm has been given the whole image once the shell writes to the fifo.
        assert select.select([shown_fd], [], [], 30)[0], "xterm did not run its command"
        found, shot = screen_colours(env, {RED, GREEN, BLUE, WHITE})
        assert_quadrants(found)
        shot_path = tmp_path / "screenshot.xwd"
        shot_path.write_bytes(shot)
    finally:
        os.close(shown_fd)
        stop(xterm, xvfb)


# -- tmux ----------------------------------------------------------------------------------

YELLOW, MAGENTA, CYAN = (255, 255, 0), (255, 0, 255), (0, 255, 255)
GREY = (190, 190, 190)  # X's "grey", the text colour these xterms are given


def _tmux(sock: str, *args: str) -> str:
    r = subprocess.run(["tmux", "-S", sock, *args], capture_output=True, text=True, timeout=10)
    return r.stdout


def _wait_pane(sock: str, pattern: str, gone: str | None = None, timeout: float = 30) -> str:
    """The pane's text once ``pattern`` (a regex) is on it (and ``gone`` is not)."""
    import re

    deadline = time.monotonic() + timeout
    while True:
        text = _tmux(sock, "capture-pane", "-p", "-t", "%0")
        if re.search(pattern, text) and not (gone and re.search(gone, text)):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {pattern!r} in the pane:\n{text}")
        time.sleep(0.05)  # between polls of the pane for the event waited for


@contextlib.contextmanager
def xterm_with_tmux(
    geometry: str, command: str, env_drop: tuple[str, ...] = (), **env_set: str
) -> Iterator[tuple[dict[str, str], str]]:
    """A sixel xterm (``geometry`` in cells) under Xvfb running tmux (passthrough on, no
    status line) whose one pane runs ``command``: ``(env, tmux socket)``; all of it
    stopped at the end. ``env_drop``/``env_set``: the environment changed besides."""
    work = tempfile.mkdtemp(prefix="kc-tmux-")  # a unix socket path has ~100 bytes at most
    sock = os.path.join(work, "sock")
    conf = os.path.join(work, "tmux.conf")
    Path(conf).write_text("set -g status off\nset -g allow-passthrough on\n")
    xvfb, display = start_xvfb()
    xterm = None
    try:
        drop = ("TMUX", "TMUX_PANE", *env_drop)
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env.update(DISPLAY=display, **env_set)
        xterm = subprocess.Popen(
            ["xterm", "-ti", "vt340", "-xrm", "XTerm*numColorRegisters: 256"]
            + ["-bg", "black", "-fg", "grey", "-geometry", f"{geometry}+0+0"]
            + ["-e", "tmux", "-S", sock, "-f", conf, "new-session", command],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        yield env, sock
    finally:
        subprocess.run(["tmux", "-S", sock, "kill-server"], capture_output=True, timeout=10)
        stop(xterm, xvfb)
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.timeout(90)
@pytest.mark.skipif(not shutil.which("tmux"), reason="needs tmux (apt-get install tmux)")
def test_tmux_passes_sixel_through_when_allowed_and_shows_blocks_when_not(
    tmp_path: Path,
) -> None:
    import pyte

    # An image, then an update to a smaller one in its place: what is left on screen is
    # the small one alone (the first is erased, through tmux, in xterm too).
    big, small = tmp_path / "big.png", tmp_path / "small.png"
    big.write_bytes(
        make_png(120, 60, lambda x, y: YELLOW if x < 60 else MAGENTA if y < 30 else CYAN)
    )
    small.write_bytes(make_png(60, 30, quadrants(60, 30)))
    cell = (
        "from IPython.display import Image, display; "
        f"h = display(Image(filename={str(big)!r}), display_id=True); "
        f"h.update(Image(filename={str(small)!r}))"
    )
    console = f"{sys.executable} -m kconsole start --kernel builtin --no-banner --no-confirm-exit"
    with xterm_with_tmux(
        "100x30",
        f"{console}; clear; {console}; sleep 60",
        ("COLORTERM",),
        TERM_PROGRAM="",
        KITTY_WINDOW_ID="",
    ) as (env, sock):
        # Passthrough on, xterm answers DA1 with sixel: the picture arrives as sixel.
        _wait_pane(sock, r"In \[1\]:")
        _tmux(sock, "send-keys", "-t", "%0", "-l", cell)
        _tmux(sock, "send-keys", "-t", "%0", "Enter")
        pane = _wait_pane(sock, r"In \[2\]:").splitlines()
        assert not any("\u2580" in ln or "\u2584" in ln for ln in pane)  # no blocks in tmux
        # The image is on the rows left blank below the input (their pixels: from the
        # cell height tmux knows), in xterm's own pixels, in the small image's colours.
        top = next(i for i, ln in enumerate(pane) if not ln.strip())
        end = next(i for i, ln in enumerate(pane) if ln.startswith("In [2]"))
        cell_h = int(_tmux(sock, "display", "-p", "#{client_cell_height}"))
        found, _ = screen_colours(
            env,
            {RED, GREEN, BLUE, WHITE},
            frozenset({YELLOW, MAGENTA, CYAN}),
            rows=(top * cell_h, end * cell_h),
        )
        assert_quadrants(found)

        # Passthrough off: a new console draws the same in half blocks, stored by tmux.
        _tmux(sock, "set", "-g", "allow-passthrough", "off")
        _tmux(sock, "send-keys", "-t", "%0", "C-d")
        _wait_pane(sock, r"In \[1\]:", gone=r"In \[2\]")
        _tmux(sock, "send-keys", "-t", "%0", "-l", cell)
        _tmux(sock, "send-keys", "-t", "%0", "Enter")
        _wait_pane(sock, r"In \[2\]:")
        screen = pyte.Screen(100, 30)
        # -N: keep the trailing cells even when blank (they have a background here).
        captured = _tmux(sock, "capture-pane", "-p", "-e", "-N", "-t", "%0")
        pyte.Stream(screen).feed(captured.replace("\n", "\r\n"))
        rows = []
        for y in range(30):
            cells = [half_block_colours(screen.buffer[y][x]) for x in range(100)]
            if any(c != ("default", "default") for c in cells):
                rows.append(cells)
        hexes = {c: "".join(f"{v:02x}" for v in c) for c in (RED, GREEN, BLUE, WHITE)}
        # 60x30 pixels: 60 columns; a half block is half a cell tall (6x13 pixels in
        # this xterm: 6.5 for 6 wide), so 30 rows of pixels take 28 half blocks, 14 rows.
        cell_w = int(_tmux(sock, "display", "-p", "#{client_cell_width}"))
        assert len(rows) == math.ceil(round(30 * 2 * cell_w / cell_h) / 2), rows
        # The quadrants where the image has them; the big image erased (no row is wider).
        assert rows[0][0] == (hexes[RED],) * 2 and rows[0][59] == (hexes[GREEN],) * 2
        assert rows[-1][0] == (hexes[BLUE],) * 2 and rows[-1][59] == (hexes[WHITE],) * 2
        assert all(c == ("default", "default") for r in rows for c in r[60:])


@pytest.mark.timeout(60)
@pytest.mark.skipif(not shutil.which("tmux"), reason="needs tmux (apt-get install tmux)")
def test_a_passed_through_sixel_lands_where_tmux_has_the_cursor(tmp_path: Path) -> None:
    # tmux moves the outer terminal's cursor lazily and hands a passthrough on at once:
    # text before the image, and the cursor moves that place it, are drawn after it unless
    # tmux is made to catch up first. Written in one go (as one read for tmux, the case
    # that used to draw the image on the row of "above", one row too high).
    png = make_png(60, 30, quadrants(60, 30))
    seq_file = tmp_path / "image.txt"
    seq = sixel_sequence(png, 60, 30, rows=3, passthrough=True)
    seq_file.write_text("\x1b[2J\x1b[H" + "above\n" + seq + "below\n")
    go, shown = tmp_path / "go", tmp_path / "shown"
    os.mkfifo(go)
    os.mkfifo(shown)
    shown_fd = os.open(shown, os.O_RDONLY | os.O_NONBLOCK)
    command = f"echo ready; read x < {go}; cat {seq_file}; echo shown > {shown}; sleep 60"
    try:
        with xterm_with_tmux("60x20", command) as (env, sock):
            # tmux redraws the whole window once its client is attached (a passthrough
            # image is not in its grid, so that erases it): go once "ready" is on screen.
            _wait_pane(sock, "ready")
            found, _ = screen_colours(env, {GREY}, rows=(0, 16))
            assert GREY in found, "tmux did not draw its pane"
            with open(go, "w") as f:
                f.write("go\n")
            assert select.select([shown_fd], [], [], 30)[0], "tmux did not run its command"
            pane = _wait_pane(sock, "below").splitlines()
            assert pane[0] == "above" and pane[4] == "below", pane
            cell_h = int(_tmux(sock, "display", "-p", "#{client_cell_height}"))
            found, _ = screen_colours(env, {RED, GREEN, BLUE, WHITE})
            assert_quadrants(found)
            # The image's top is on row 1, right below "above" (xterm's border: 2 pixels).
            assert (found[RED][1] - 2) // cell_h == 1, (found, cell_h)
    finally:
        os.close(shown_fd)
