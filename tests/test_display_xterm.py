"""Sixel drawn by a real xterm (``-ti vt340``) under Xvfb, checked on a screenshot.

Skipped unless xterm, Xvfb and xwd are installed (Debian: xterm xvfb x11-apps).
"""

from __future__ import annotations

import os
import select
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kconsole.display.images import sixel_sequence

sys.path.insert(0, str(Path(__file__).parent))
from test_display_images import BLUE, GREEN, RED, WHITE, make_png, quadrants  # noqa: E402

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
        # Nothing signals that xterm has painted it: poll screenshots within a deadline.
        found: dict[tuple[int, int, int], tuple[int, int]] = {}
        deadline = time.monotonic() + 15
        while True:
            shot = subprocess.run(
                ["xwd", "-root", "-silent"], env=env, capture_output=True, timeout=10
            ).stdout
            if len(shot) >= 100:
                w, h, get = read_xwd(shot)
                found = {}
                for y in range(0, min(h, 200), 2):
                    for x in range(0, min(w, 300), 2):
                        c = get(x, y)
                        if c in (RED, GREEN, BLUE, WHITE) and c not in found:
                            found[c] = (x, y)
            if len(found) == 4 or time.monotonic() > deadline:
                break
            time.sleep(0.1)  # between screenshots of the polling loop above
        assert set(found) == {RED, GREEN, BLUE, WHITE}, f"colours on screen: {found}"
        # The quadrants are where the image has them: green right of red, blue below.
        assert found[GREEN][0] > found[RED][0] and found[GREEN][1] == found[RED][1]
        assert found[BLUE][1] > found[RED][1] and found[BLUE][0] == found[RED][0]
        assert found[WHITE][0] == found[GREEN][0] and found[WHITE][1] == found[BLUE][1]
        shot_path = tmp_path / "screenshot.xwd"
        shot_path.write_bytes(shot)
    finally:
        os.close(shown_fd)
        for proc in (xterm, xvfb):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
