"""Image decoding stays within a memory budget, whatever the image claims.

Each hostile image is rendered in a child process whose peak memory (VmHWM, else
ru_maxrss) is read back: a 400 KB PNG of 12000x12000 pixels used to take the console to 1.7 GB
for sixel, a 1 MB zlib bomb the built-in decoder to 2 GB.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

# Renders the image file argv[1] as argv[2] with the given protocol; prints the
# first line of the result and the peak memory in MB. argv[3] == "nopil" hides Pillow.
_CHILD = r"""
import base64, resource, sys
if sys.argv[4] == "nopil":
    sys.modules["PIL"] = None
from kconsole.display import DisplayConfig, RenderContext, TerminalCapabilities
from kconsole.display.images import render_image
data = open(sys.argv[1], "rb").read()
caps = TerminalCapabilities(is_tty=True, colors=256, cell_width=10, cell_height=20)
ctx = RenderContext(width=80, height=24, tty=True, color=sys.argv[3] == "blocks", caps=caps,
                    config=DisplayConfig(image_protocol=sys.argv[3], image_dir=sys.argv[5]))
out = render_image(base64.b64encode(data).decode(), {}, ctx, sys.argv[2])
print(repr(out[:120]))
# VmHWM: the peak of this program's own memory. ru_maxrss would include the parent's
# (Linux carries the pre-exec peak over exec, and pytest is big by now).
try:
    hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0]
    print(int(hwm.split()[1]) // 1024)
except (OSError, IndexError):
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, colour_type: int, idat: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def deflate_zeros(total: int, piece: int = 1 << 20) -> bytes:
    """``total`` zero bytes deflated, without ever holding them all."""
    z = zlib.compressobj(9)
    out = [z.compress(bytes(piece)) for _ in range(total // piece)]
    out.append(z.compress(bytes(total % piece)))
    out.append(z.flush())
    return b"".join(out)


def render_in_child(
    tmp_path: Path, data: bytes, mime: str, protocol: str, pil: bool
) -> tuple[str, int, str]:
    f = tmp_path / "image.bin"
    f.write_bytes(data)
    p = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            str(f),
            mime,
            protocol,
            "pil" if pil else "nopil",
            str(tmp_path / "saved"),
        ],
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert p.returncode == 0, p.stderr
    first, rss = p.stdout.strip().splitlines()
    return first, int(rss), p.stderr


@pytest.mark.timeout(120)
@pytest.mark.parametrize("protocol", ["sixel", "blocks"])
@pytest.mark.parametrize("pil", [True, False], ids=["pillow", "builtin"])
def test_a_huge_png_with_tiny_data_gets_the_file_line_not_gigabytes(
    tmp_path: Path, pil: bool, protocol: str
) -> None:
    if pil:
        pytest.importorskip("PIL")
    side = 12_000
    data = png(side, side, 0, deflate_zeros(side * (1 + side)))
    assert len(data) < 1_000_000
    first, rss, err = render_in_child(tmp_path, data, "image/png", protocol, pil)
    assert "image/png 12000x12000, " in first and "saved to" in first  # (blocks: in colour)
    assert rss < 250, f"peak memory {rss} MB"
    assert "DecompressionBomb" not in err and "Warning" not in err


@pytest.mark.timeout(120)
def test_a_zlib_bomb_is_inflated_only_as_far_as_the_image_needs(tmp_path: Path) -> None:
    # 500x500 RGB needs 750 KB; the IDAT inflates to 512 MB.
    data = png(500, 500, 2, deflate_zeros(512 << 20))
    first, rss, err = render_in_child(tmp_path, data, "image/png", "sixel", pil=False)
    assert first.startswith("'\\n"), first  # drawn: the image is fine, the tail is ignored
    assert "\\x1bP" in first
    assert rss < 200, f"peak memory {rss} MB"


@pytest.mark.timeout(120)
def test_a_big_jpeg_is_decoded_at_a_reduced_scale(tmp_path: Path) -> None:
    Image = pytest.importorskip("PIL.Image")
    buf = io.BytesIO()
    Image.new("RGB", (6000, 4000), (200, 30, 30)).save(buf, format="JPEG", quality=50)
    first, rss, err = render_in_child(tmp_path, buf.getvalue(), "image/jpeg", "sixel", pil=True)
    assert "\\x1bP" in first  # drawn as sixel, not the file line
    # 24 megapixels at full scale would be 96 MB as RGBA alone, 72 MB as RGB.
    assert rss < 150, f"peak memory {rss} MB"
    assert "Warning" not in err


def test_a_truncated_png_gets_the_file_line_without_pillow(tmp_path: Path) -> None:
    data = png(100, 100, 2, zlib.compress(bytes(50)))
    first, _, err = render_in_child(tmp_path, data, "image/png", "sixel", pil=False)
    assert "image/png 100x100, saved to" in first
    assert not err
