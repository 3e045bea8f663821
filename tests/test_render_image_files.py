"""Images saved for the file line do not pile up in the temp dir.

A session keeps its copies in one folder of its own, removed at exit; with
``--image-dir`` they are saved there and kept.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from ptyconsole import PtyConsole

from kconsole.display import DisplayConfig, RenderContext
from kconsole.display.images import render_image


def tiny_png_b64() -> str:
    import base64
    import struct

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    raw = b"".join(b"\0" + b"\xff\0\0" * 2 for _ in range(2))
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    return base64.b64encode(png).decode()


CELL = f"for i in range(25): display({{'image/png': {tiny_png_b64()!r}}}, raw=True)\n"


def run_pipe(tmp_path: Path, *args: str) -> str:
    env = dict(os.environ, TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir(exist_ok=True)
    p = subprocess.run(
        [sys.executable, "-m", "kconsole", "start", "--kernel", "builtin", *args],
        input=CELL,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert p.returncode == 0, p.stderr
    return p.stdout


def leftovers(tmp_path: Path) -> list[str]:
    return sorted(n for n in os.listdir(tmp_path / "tmp") if n.startswith("kconsole"))


@pytest.mark.timeout(90)
def test_a_session_s_images_are_in_one_folder_removed_at_exit(tmp_path: Path) -> None:
    out = run_pipe(tmp_path)
    paths = re.findall(r"\[image/png 2x2, saved to (\S+)\]", out)
    assert len(paths) == 25
    folders = {os.path.dirname(p) for p in paths}
    assert len(folders) == 1
    assert folders.pop().startswith(str(tmp_path / "tmp" / "kconsole-images-"))
    assert leftovers(tmp_path) == []  # nothing left in the temp dir once it exits
    assert not any(os.path.exists(p) for p in paths)


@pytest.mark.timeout(90)
def test_images_saved_in_the_folder_the_user_named_are_kept(tmp_path: Path) -> None:
    keep = tmp_path / "keep"
    out = run_pipe(tmp_path, "--image-dir", str(keep))
    paths = re.findall(r"saved to (\S+)\]", out)
    assert len(paths) == 25
    assert all(p.startswith(str(keep)) and os.path.isfile(p) for p in paths)
    assert leftovers(tmp_path) == []


@pytest.mark.timeout(90)
def test_the_folder_of_a_session_that_died_is_removed_by_the_next(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / "tmp" / f"kconsole-images-{dead.pid}-abc"
    stale.mkdir(parents=True)
    (stale / "kconsole-old.png").write_bytes(b"x")
    alive = tmp_path / "tmp" / f"kconsole-images-{os.getpid()}-abc"
    alive.mkdir()
    run_pipe(tmp_path)
    assert not stale.exists()
    assert alive.exists()  # this test's own process is alive: not touched


@pytest.mark.timeout(90)
def test_the_folder_is_removed_when_an_interactive_session_ends(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    c = PtyConsole(
        ["start", "--kernel", "builtin", "--no-banner", "--image-protocol", "none"],
        env={"TMPDIR": str(tmp_path / "tmp")},
    )
    try:
        c.expect_prompt(1)
        c.sendline(CELL.replace("range(25)", "range(2)").rstrip("\n"))
        m = c.expect(r"saved to (\S+)\]")
        path = m.group(1)
        c.expect_prompt(2)
        assert os.path.isfile(path)
        c.ctrl("d")
        assert c.wait_exit(20) == 0
    finally:
        c.close()
    assert not os.path.exists(os.path.dirname(path))
    assert leftovers(tmp_path) == []


def test_render_context_with_no_dir_uses_the_session_folder() -> None:
    ctx = RenderContext(config=DisplayConfig())
    line = render_image(tiny_png_b64(), {}, ctx, "image/png")
    path = re.search(r"saved to (\S+)\]", line).group(1)  # type: ignore[union-attr]
    assert os.path.basename(os.path.dirname(path)).startswith(f"kconsole-images-{os.getpid()}-")
