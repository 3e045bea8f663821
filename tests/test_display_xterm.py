"""Sixel drawn by a real xterm (``-ti vt340``) under Xvfb, checked on a screenshot.

Skipped unless xterm, Xvfb and xwd are installed (Debian: xterm xvfb x11-apps).
"""

from __future__ import annotations

import os
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


def test_sixel_in_real_xterm(tmp_path: Path) -> None:
    png = make_png(120, 60, quadrants(120, 60))
    seq_file = tmp_path / "image.txt"
    seq_file.write_text("\x1b[2J\x1b[H" + sixel_sequence(png, 120, 60, rows=4) + "done\n")
    display = f":{100 + os.getpid() % 400}"
    xvfb = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", "640x480x24"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    xterm = None
    try:
        env = {**os.environ, "DISPLAY": display}
        time.sleep(1.0)
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
                f"cat {seq_file}; sleep 10",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        found: dict[tuple[int, int, int], tuple[int, int]] = {}
        for _ in range(20):
            time.sleep(0.5)
            shot = subprocess.run(
                ["xwd", "-root", "-silent"], env=env, capture_output=True, timeout=10
            ).stdout
            if len(shot) < 100:
                continue
            w, h, get = read_xwd(shot)
            found = {}
            for y in range(0, min(h, 200), 2):
                for x in range(0, min(w, 300), 2):
                    c = get(x, y)
                    if c in (RED, GREEN, BLUE, WHITE) and c not in found:
                        found[c] = (x, y)
            if len(found) == 4:
                break
        assert set(found) == {RED, GREEN, BLUE, WHITE}, f"colours on screen: {found}"
        # The quadrants are where the image has them: green right of red, blue below.
        assert found[GREEN][0] > found[RED][0] and found[GREEN][1] == found[RED][1]
        assert found[BLUE][1] > found[RED][1] and found[BLUE][0] == found[RED][0]
        assert found[WHITE][0] == found[GREEN][0] and found[WHITE][1] == found[BLUE][1]
        shot_path = tmp_path / "screenshot.xwd"
        shot_path.write_bytes(shot)
    finally:
        for proc in (xterm, xvfb):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
