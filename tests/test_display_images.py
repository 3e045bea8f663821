"""Image protocols: the escape sequences decode back to the image, at the right size."""

from __future__ import annotations

import base64
import io
import os
import re
import struct
import sys
import zlib
from pathlib import Path

import pytest

from kconsole.display import DisplayConfig, RenderContext, TerminalCapabilities
from kconsole.display.images import (
    fit_cells,
    image_size,
    iterm_sequence,
    kitty_sequence,
    render_image,
    sixel_sequence,
)
from kconsole.display.png import decode_png
from kconsole.display.text import strip_ansi
from kconsole.output import OutputPrinter
from kconsole.protocol import Message

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def make_png(width: int, height: int, pixel, filt: int = 0) -> bytes:
    """A PNG (RGB, 8-bit) built by hand: no Pillow needed. ``filt`` picks the row filter."""
    raw = b""
    prev = bytes(width * 3)
    for y in range(height):
        row = b"".join(bytes(pixel(x, y)) for x in range(width))
        if filt == 2:  # Up
            enc = bytes((row[i] - prev[i]) & 0xFF for i in range(len(row)))
        elif filt == 1:  # Sub
            enc = bytes((row[i] - (row[i - 3] if i >= 3 else 0)) & 0xFF for i in range(len(row)))
        else:
            enc = row
        raw += bytes([filt]) + enc
        prev = row

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def quadrants(w: int, h: int):
    def pixel(x: int, y: int):
        if y < h // 2:
            return RED if x < w // 2 else GREEN
        return BLUE if x < w // 2 else WHITE

    return pixel


def ctx(protocol: str | None, width: int = 80, cell=(10, 20)) -> RenderContext:
    caps = TerminalCapabilities(
        is_tty=True, colors=256, image_protocol=protocol, cell_width=cell[0], cell_height=cell[1]
    )
    return RenderContext(width=width, height=40, tty=True, caps=caps)


# -- sizes ------------------------------------------------------------------------------


def test_sizes_from_headers() -> None:
    assert image_size(make_png(64, 32, quadrants(64, 32)), "image/png") == (64, 32)
    assert image_size(b"GIF89a" + struct.pack("<HH", 7, 5) + b"\0" * 10, "image/gif") == (7, 5)
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="120" height="80"></svg>'
    assert image_size(svg, "image/svg+xml") == (120, 80)
    svg = b'<svg viewBox="0 0 300 150"></svg>'
    assert image_size(svg, "image/svg+xml") == (300, 150)


def test_jpeg_size() -> None:
    pil = pytest.importorskip("PIL.Image")
    out = io.BytesIO()
    pil.new("RGB", (33, 21), (10, 20, 30)).save(out, format="JPEG")
    assert image_size(out.getvalue(), "image/jpeg") == (33, 21)


def test_fit_cells_keeps_aspect_and_fits_width() -> None:
    c = ctx("kitty", width=41)
    cols, rows, tw, th = fit_cells((800, 400), c)
    assert cols <= 40 and tw <= 400
    assert abs(tw / th - 2.0) < 0.05
    # Small images keep their natural size.
    assert fit_cells((100, 40), c) == (10, 2, 100, 40)
    # Metadata width wins (IPython's Image(width=...)).
    assert fit_cells((100, 40), c, {"width": 50}) == (5, 1, 50, 20)


# -- kitty --------------------------------------------------------------------------------


def parse_kitty(seq: str) -> tuple[dict[str, str], bytes]:
    chunks = re.findall(r"\x1b_G([^;]*);([^\x1b]*)\x1b\\", seq)
    assert chunks
    first = dict(kv.split("=") for kv in chunks[0][0].split(","))
    payload = "".join(c[1] for c in chunks)
    for keys, _ in chunks[:-1]:
        assert "m=1" in keys
    assert "m=0" in chunks[-1][0]
    return first, base64.b64decode(payload)


def test_kitty_round_trip_and_size() -> None:
    png = make_png(300, 200, quadrants(300, 200)) + b"\0" * 5000  # several chunks
    seq = render_image(base64.b64encode(png).decode(), {}, ctx("kitty"), "image/png")
    keys, data = parse_kitty(seq)
    assert data == png
    assert keys["a"] == "T" and keys["f"] == "100"
    assert (keys["c"], keys["r"]) == ("30", "10")
    # The rows are reserved with newlines, and the cursor ends below the image.
    assert seq.startswith("\n" * 10 + "\x1b[10A") and seq.endswith("\r\x1b[10B")


def test_kitty_sequence_chunks_are_at_most_4096() -> None:
    seq = kitty_sequence(os.urandom(20000), 4, 2)
    for _, payload in re.findall(r"\x1b_G([^;]*);([^\x1b]*)\x1b\\", seq):
        assert len(payload) <= 4096


# -- iTerm2 -------------------------------------------------------------------------------


def test_iterm_round_trip_and_size() -> None:
    png = make_png(120, 60, quadrants(120, 60))
    seq = render_image(base64.b64encode(png).decode(), {}, ctx("iterm"), "image/png")
    m = re.search(r"\x1b\]1337;File=([^:]*):([^\x07]*)\x07", seq)
    assert m
    args = dict(kv.split("=") for kv in m.group(1).split(";"))
    assert base64.b64decode(m.group(2)) == png
    assert args["inline"] == "1" and args["size"] == str(len(png))
    assert (args["width"], args["height"]) == ("12", "3")
    assert iterm_sequence(b"x", 1, 1).endswith("\x07\n")


# -- sixel --------------------------------------------------------------------------------


def decode_sixel(seq: str) -> tuple[int, int, dict[int, tuple[int, int, int]], list[list[int]]]:
    """A minimal sixel decoder: raster size, palette (0-255 RGB), and pixel indices."""
    m = re.search(r"\x1bP[0-9;]*q(.*)\x1b\\", seq, re.S)
    assert m
    body = m.group(1)
    ra = re.match(r'"1;1;(\d+);(\d+)', body)
    assert ra
    width, height = int(ra.group(1)), int(ra.group(2))
    body = body[ra.end() :]
    palette: dict[int, tuple[int, int, int]] = {}
    pixels = [[-1] * width for _ in range(height)]
    x = band = 0
    color = 0
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "#":
            m2 = re.match(r"#(\d+)(?:;2;(\d+);(\d+);(\d+))?", body[i:])
            assert m2
            color = int(m2.group(1))
            if m2.group(2) is not None:
                palette[color] = tuple(round(int(m2.group(k)) * 255 / 100) for k in (2, 3, 4))
            i += m2.end()
            continue
        if ch == "$":
            x = 0
        elif ch == "-":
            x = 0
            band += 1
        elif ch == "!":
            m2 = re.match(r"!(\d+)(.)", body[i:])
            assert m2
            for _ in range(int(m2.group(1))):
                _put(pixels, x, band, ord(m2.group(2)) - 63, color)
                x += 1
            i += m2.end()
            continue
        elif "?" <= ch <= "~":
            _put(pixels, x, band, ord(ch) - 63, color)
            x += 1
        i += 1
    return width, height, palette, pixels


def _put(pixels: list[list[int]], x: int, band: int, bits: int, color: int) -> None:
    for k in range(6):
        y = band * 6 + k
        if bits & (1 << k) and y < len(pixels) and x < len(pixels[0]):
            pixels[y][x] = color


def _check_quadrants(seq: str, w: int, h: int) -> None:
    width, height, palette, pixels = decode_sixel(seq)
    assert (width, height) == (w, h)

    def rgb(x: int, y: int) -> tuple[int, int, int]:
        return palette[pixels[y][x]]

    assert rgb(1, 1) == RED
    assert rgb(w - 2, 1) == GREEN
    assert rgb(1, h - 2) == BLUE
    assert rgb(w - 2, h - 2) == WHITE
    assert all(p >= 0 for row in pixels for p in row)  # every pixel drawn


def test_sixel_with_pillow_decodes_back() -> None:
    pytest.importorskip("PIL")
    png = make_png(40, 30, quadrants(40, 30))
    seq = sixel_sequence(png, 40, 30, rows=2)
    _check_quadrants(seq, 40, 30)


def test_sixel_without_pillow_decodes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL now fails
    for filt in (0, 1, 2):
        png = make_png(40, 30, quadrants(40, 30), filt=filt)
        _check_quadrants(sixel_sequence(png, 40, 30, rows=2), 40, 30)
    # Scaled down to half size, still the four colours in place.
    png = make_png(80, 60, quadrants(80, 60))
    _check_quadrants(sixel_sequence(png, 40, 30, rows=2), 40, 30)


def test_sixel_through_renderer_fits_cells() -> None:
    png = make_png(400, 100, quadrants(400, 100))
    seq = render_image(base64.b64encode(png).decode(), {}, ctx("sixel", width=21), "image/png")
    width, height, _, _ = decode_sixel(seq)
    assert width <= 200 and abs(width / height - 4) < 0.1


def test_png_decoder_matches_pixels() -> None:
    png = make_png(5, 4, lambda x, y: (x * 40, y * 50, 7), filt=2)
    w, h, rows = decode_png(png)
    assert (w, h) == (5, 4)
    assert rows[3][4 * 4 : 4 * 4 + 4] == bytes([160, 150, 7, 255])


# -- fallback -----------------------------------------------------------------------------


def _display(data: dict, **extra) -> Message:
    return Message(
        header={"msg_type": "display_data", "msg_id": "m"},
        parent_header={"msg_id": "p"},
        content={"data": data, "metadata": {}, "transient": {}, **extra},
    )


def test_no_graphics_prints_line_with_saved_file(tmp_path) -> None:
    png = make_png(64, 48, quadrants(64, 48))
    out = io.StringIO()
    printer = OutputPrinter(out, color=False, config=DisplayConfig(image_dir=str(tmp_path)))
    printer.handle(_display({"image/png": base64.b64encode(png).decode(), "text/plain": "<Fig>"}))
    line = out.getvalue()
    m = re.fullmatch(r"\[image/png 64x48, saved to (\S+)\]\n", line)
    assert m, line
    with open(m.group(1), "rb") as f:
        assert f.read() == png
    assert os.path.dirname(m.group(1)) == str(tmp_path)


def test_image_protocol_none_keeps_the_saved_file_line(tmp_path) -> None:
    # A terminal without a graphics protocol draws blocks by default; `none` asks for
    # the saved-file line instead.
    png = make_png(10, 10, quadrants(10, 10))
    c = ctx(None)
    c.config = DisplayConfig(image_dir=str(tmp_path), image_protocol="none")
    text = render_image(base64.b64encode(png).decode(), {}, c, "image/png")
    assert strip_ansi(text).startswith("[image/png 10x10, saved to ")


def test_image_viewer_is_started(tmp_path) -> None:
    png = make_png(10, 10, quadrants(10, 10))
    marker = tmp_path / "opened"
    cfg = DisplayConfig(image_dir=str(tmp_path), image_viewer=f"cp {{}} {marker}")
    c = ctx(None)
    c.config = cfg
    text = render_image(base64.b64encode(png).decode(), {}, c, "image/png")
    assert "opened in cp" in strip_ansi(text)
    import time

    for _ in range(50):
        if marker.exists() and marker.read_bytes() == png:
            break
        time.sleep(0.05)
    assert marker.read_bytes() == png


def test_svg_rasterised_when_cairosvg_present(tmp_path) -> None:
    _need_cairosvg()
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">'
        '<rect width="40" height="20" fill="red"/></svg>'
    )
    seq = render_image(svg, {}, ctx("kitty"), "image/svg+xml")
    keys, data = parse_kitty(seq)
    assert data.startswith(b"\x89PNG") and image_size(data, "image/png") == (40, 20)


def test_svg_without_library_saves_the_svg(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cairosvg", None)
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"></svg>'
    c = ctx("kitty")
    c.config = DisplayConfig(image_dir=str(tmp_path))
    text = strip_ansi(render_image(svg, {}, c, "image/svg+xml"))
    path = re.search(r"saved to (\S+)\]", text).group(1)  # type: ignore[union-attr]
    assert path.endswith(".svg") and Path(path).read_text() == svg


def _need_cairosvg() -> None:
    """Skip unless cairosvg imports: it raises OSError, not ImportError, when the cairo
    library itself is missing (a machine without Debian's libcairo2)."""
    try:
        import cairosvg  # noqa: F401
    except (ImportError, OSError) as e:
        pytest.skip(f"cairosvg is not usable here: {e}")
