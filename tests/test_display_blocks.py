"""Images in half blocks (terminals without a graphics protocol) and through tmux's
passthrough: what reaches the screen, read back with pyte, and what never does."""

from __future__ import annotations

import base64
import io
import re
import struct
import sys
import time
import zlib
from dataclasses import replace
from pathlib import Path

import pyte
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ptyconsole import half_block_colours
from test_display_images import BLUE, GREEN, RED, WHITE, make_png, quadrants

from kconsole.display import DisplayConfig, RenderContext, TerminalCapabilities
from kconsole.display.blocks import block_grid, render_blocks
from kconsole.display.images import (
    iterm_sequence,
    kitty_sequence,
    render_image,
    sixel_sequence,
)
from kconsole.display.png import decode_png
from kconsole.display.registry import default_mime_order, default_registry
from kconsole.display.text import rows_of, strip_ansi

TRUECOLOR = 16_777_216


def ctx(colors: int = TRUECOLOR, width: int = 80, height: int = 40, **config) -> RenderContext:
    caps = TerminalCapabilities(is_tty=True, colors=colors)
    return RenderContext(
        width=width, height=height, tty=True, caps=caps, config=DisplayConfig(**config)
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def screen(text: str, cols: int = 80, rows: int = 40) -> pyte.Screen:
    s = pyte.Screen(cols, rows)
    pyte.Stream(s).feed(text.replace("\n", "\r\n"))
    return s


def pixels(s: pyte.Screen) -> list[list[str]]:
    """The screen as rows of pixel colours (two per cell), blank rows dropped."""
    out = []
    for y in range(s.lines):
        cells = [half_block_colours(s.buffer[y][x]) for x in range(s.columns)]
        if any(c != ("default", "default") for c in cells):
            out.append([top for top, _ in cells])
            out.append([bottom for _, bottom in cells])
    return out


def png_of_rows(width: int, rows: list[bytes]) -> bytes:
    """An RGB PNG of ready-made rows (``width`` * 3 bytes each): big images, fast."""
    raw = b"".join(b"\0" + row for row in rows)
    ihdr = struct.pack(">IIBBBBB", width, len(rows), 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


def big_quadrants(w: int, h: int) -> bytes:
    top = bytes(RED) * (w // 2) + bytes(GREEN) * (w - w // 2)
    bottom = bytes(BLUE) * (w // 2) + bytes(WHITE) * (w - w // 2)
    return png_of_rows(w, [top] * (h // 2) + [bottom] * (h - h // 2))


def no_pil(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL now fails


# -- what the user sees --------------------------------------------------------------------


@pytest.mark.parametrize("pil", [True, False], ids=["pillow", "builtin"])
@pytest.mark.parametrize(
    "colors, names",
    [
        (TRUECOLOR, ("ff0000", "00ff00", "0000ff", "ffffff")),
        (256, ("ff0000", "00ff00", "0000ff", "ffffff")),  # cube 196, 46, 21, 231
        (16, ("brightred", "brightgreen", "blue", "brightwhite")),
    ],
    ids=["truecolor", "256", "16"],
)
def test_quadrants_land_in_their_cells_in_each_colour_depth(
    colors: int, names: tuple[str, ...], pil: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if pil:
        pytest.importorskip("PIL")
    else:
        no_pil(monkeypatch)
    png = make_png(40, 20, quadrants(40, 20))
    text = render_image(b64(png), {}, ctx(colors), "image/png")
    red, green, blue, white = names
    px = pixels(screen(text))
    assert len(px) == 20 and all(row[40:] == ["default"] * 40 for row in px)
    assert all(row[:40] == [red] * 20 + [green] * 20 for row in px[:10])
    assert all(row[:40] == [blue] * 20 + [white] * 20 for row in px[10:])
    # Nothing but colour codes, the two half blocks, spaces and line ends.
    assert re.fullmatch(r"(?:\x1b\[[0-9;]*m|[▀▄ \n])*", text)


def test_the_picture_fits_the_width_and_the_screen_keeping_its_aspect() -> None:
    png = big_quadrants(1000, 400)
    text = render_image(b64(png), {}, ctx(width=81, height=50), "image/png")
    lines = strip_ansi(text).split("\n")[:-1]
    assert {len(ln) for ln in lines} == {80} and len(lines) == 16  # 80x32 pixels
    # Taller than the screen: the height rules (38 rows: the screen less two).
    tall = render_image(b64(big_quadrants(100, 400)), {}, ctx(), "image/png")
    assert rows_of(tall, 80) == 38 and len(strip_ansi(tall).split("\n")[0]) == 19
    # A small image is not blown up: one pixel per half block at most.
    assert block_grid((16, 16), 79, 38) == (16, 16)
    # IPython's Image(width=...) is the size asked for.
    md = render_image(b64(png), {"width": 50}, ctx(), "image/png")
    assert len(strip_ansi(md).split("\n")[0]) == 50
    # A known cell shape: 8x24 pixels make a half block 12 tall for 8 wide.
    assert block_grid((60, 90), 79, 38, (8, 24)) == (60, 60)


def test_transparent_pixels_show_the_terminal_background() -> None:
    def pixel(x: int, y: int) -> tuple[int, ...]:
        return (255, 0, 0, 255) if y < 1 else (0, 0, 255, 0)

    raw = b"".join(b"\0" + b"".join(bytes(pixel(x, y)) for x in range(4)) for y in range(3))
    ihdr = struct.pack(">IIBBBBB", 4, 3, 8, 6, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw))
    text = render_image(b64(png + _chunk(b"IEND", b"")), {}, ctx(), "image/png")
    s = screen(text)
    assert [half_block_colours(s.buffer[0][x]) for x in range(4)] == [("ff0000", "default")] * 4
    assert s.buffer[0][0].data == "▀"
    # Row 2 transparent, and below it (an odd number of rows) nothing: the background.
    assert [half_block_colours(s.buffer[1][x]) for x in range(4)] == [("default",) * 2] * 4
    assert rows_of(text, 80) == 2


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.mark.parametrize("pil", [True, False], ids=["pillow", "builtin"])
def test_a_thin_line_of_a_plot_stays_visible_when_shrunk(
    pil: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 1000x600 white "plot" with one 2-pixel blue line: shrunk 12 times, an average
    # alone makes it a 15 % tint, which 256 colours round back to white.
    if pil:
        pytest.importorskip("PIL")
    else:
        no_pil(monkeypatch)

    row = b"\xff" * 1500 + bytes((31, 119, 180)) * 2 + b"\xff" * 1494
    png = png_of_rows(1000, [row] * 600)
    px = pixels(screen(render_image(b64(png), {}, ctx(256), "image/png")))
    columns = {x for row in px for x, c in enumerate(row) if c not in ("ffffff", "default")}
    assert len(columns) in (1, 2) and all(37 <= x <= 42 for x in columns), columns


def test_jpeg_is_drawn_with_pillow_and_named_in_a_line_without(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pil = pytest.importorskip("PIL.Image")
    buf = io.BytesIO()
    pil.new("RGB", (64, 32), (0, 0, 255)).save(buf, format="JPEG", quality=95)
    text = render_image(b64(buf.getvalue()), {}, ctx(256), "image/jpeg")
    assert set(pixels(screen(text))[0][:64]) == {"0000ff"}
    no_pil(monkeypatch)
    line = render_image(b64(buf.getvalue()), {}, ctx(256, image_dir=str(tmp_path)), "image/jpeg")
    assert strip_ansi(line).startswith("[image/jpeg 64x32, saved to ")


def test_svg_is_drawn_in_blocks_when_cairosvg_is_there() -> None:
    try:
        import cairosvg  # noqa: F401
    except (ImportError, OSError) as e:
        pytest.skip(f"cairosvg is not usable here: {e}")
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="40" height="20" fill="#00ff00"/></svg>'
    px = pixels(screen(render_image(svg, {}, ctx(), "image/svg+xml")))
    assert len(px) == 20 and set(px[5][:40]) == {"00ff00"}


def test_no_colour_a_pipe_or_a_viewer_get_the_saved_file_line(tmp_path: Path) -> None:
    png = b64(make_png(8, 8, quadrants(8, 8)))
    c = ctx(image_dir=str(tmp_path))
    c.color = False  # NO_COLOR: blocks are colours
    c2 = ctx(image_dir=str(tmp_path))
    c2.tty = False  # a pipe: text only
    c3 = ctx(image_dir=str(tmp_path), image_viewer="true")  # the user's viewer, not blocks
    for c_ in (c, c2, c3):
        text = strip_ansi(render_image(png, {}, c_, "image/png"))
        assert re.match(r"\[image/png 8x8, (saved to |opened in true: )/", text), text
    assert ctx(image_protocol="blocks").image_protocol == "blocks"
    assert ctx(image_protocol="none").image_protocol is None


def test_a_bundles_text_beats_its_block_picture_but_not_text_plain() -> None:
    # sympy sends LaTeX and a PNG of it: the LaTeX reads better than a block preview.
    assert default_mime_order(ctx()).index("text/latex") < default_mime_order(ctx()).index(
        "image/png"
    )
    r = default_registry().render(
        {"image/png": b64(make_png(8, 8, quadrants(8, 8))), "text/plain": "<Figure>"}, {}, ctx()
    )
    assert r.mime == "image/png" and "\x1b[48;2;255;0;0m" in r.text


# -- tmux ----------------------------------------------------------------------------------


def test_sequences_for_tmux_are_wrapped_and_still_reserve_their_rows() -> None:
    png = make_png(40, 30, quadrants(40, 30))
    seq = sixel_sequence(png, 40, 30, rows=2, passthrough=True)
    # Rows reserved outside the wrapper (tmux must see them), then an ECH that makes tmux
    # bring the outer cursor there; the image and the cursor save/restore inside it,
    # every ESC doubled, for the outer terminal.
    head = "\n\n\x1b[2A\x1b[X\x1bPtmux;"
    assert seq.startswith(head + "\x1b\x1b7\x1b\x1bP") and seq.endswith("\x1b\x1b8\x1b\\\r\x1b[2B")
    inner = seq[len(head) : -len("\x1b\\\r\x1b[2B")]
    assert "\x1b" not in inner.replace("\x1b\x1b", "")
    assert strip_ansi(seq) == "\n\n\r" and rows_of(seq, 80) == 2
    # kitty: each 4096-byte chunk wrapped alone, far below tmux's 1 MiB limit.
    kitty = kitty_sequence(png + bytes(9000), 4, 2, passthrough=True)
    wrapped = re.findall(r"\x1bPtmux;((?:[^\x1b]|\x1b\x1b)*)\x1b\\", kitty)
    assert len(wrapped) == 3 and all(w.startswith("\x1b\x1b_G") for w in wrapped)
    assert kitty.startswith("\n\n\x1b[2A\x1b[X\x1bPtmux;")
    iterm = iterm_sequence(png, 4, 2, passthrough=True)
    assert iterm.startswith("\n\n\x1b[2A\x1b[X\x1bPtmux;\x1b\x1b7\x1b\x1b]1337;File=")


def tmux_ctx(**caps_fields) -> RenderContext:
    caps = TerminalCapabilities(
        is_tty=True, colors=TRUECOLOR, multiplexer="tmux", cell_width=10, cell_height=20
    )
    return RenderContext(width=80, height=40, tty=True, caps=replace(caps, **caps_fields))


def test_inside_tmux_the_outer_protocol_is_wrapped_unless_tmux_draws_it_itself() -> None:
    png = b64(make_png(40, 30, quadrants(40, 30)))
    # allow-passthrough on, outer sixel: wrapped.
    c = tmux_ctx(passthrough=True, image_protocol="sixel")
    assert "\x1bPtmux;\x1b\x1b7\x1b\x1bP0;1;0q" in render_image(png, {}, c, "image/png")
    # tmux draws sixel itself (its DA1 said so): sent as is.
    c = tmux_ctx(passthrough=True, image_protocol="sixel", sixel=True)
    text = render_image(png, {}, c, "image/png")
    assert "tmux;" not in text and "\x1bP0;1;0q" in text
    # No passthrough: blocks, which tmux stores like any text.
    c = tmux_ctx()
    assert c.image_protocol == "blocks" and "▀" in render_image(png, {}, c, "image/png")


def test_an_image_over_tmuxs_passthrough_limit_is_drawn_in_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kconsole.display import images

    monkeypatch.setattr(images, "TMUX_PASSTHROUGH_LIMIT", 100)
    c = tmux_ctx(passthrough=True, image_protocol="iterm")
    text = render_image(b64(make_png(40, 30, quadrants(40, 30))), {}, c, "image/png")
    assert "tmux;" not in text and "\x1b]1337" not in text and "\x1b[48;2;255;0;0m" in text


# -- the PNG decoder -----------------------------------------------------------------------


def _paeth(a: int, b: int, c: int) -> int:
    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def _encode(rows: list[bytes], bpp: int, filters: list[int]) -> bytes:
    """PNG rows filtered as told (the decoder's reference: the spec, byte by byte)."""
    out, prev = b"", bytes(len(rows[0]))
    for row, f in zip(rows, filters, strict=True):
        enc = bytearray()
        for i, v in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            enc.append((v - (0, a, b, (a + b) >> 1, _paeth(a, b, c))[f]) & 0xFF)
        out += bytes([f]) + enc
        prev = row
    return out


@settings(max_examples=60, deadline=3000, suppress_health_check=[HealthCheck.too_slow])
@given(
    w=st.integers(1, 40),
    h=st.integers(1, 8),
    ctype=st.sampled_from([0, 2, 4, 6]),
    data=st.data(),
)
def test_the_png_decoder_undoes_every_filter(w: int, h: int, ctype: int, data) -> None:
    bpp = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    # Runs of equal bytes (flat areas, where the whole-row paths apply) and noise.
    byte = st.one_of(st.sampled_from([0, 255, 37]), st.integers(0, 255))
    rows = [bytes(data.draw(st.lists(byte, min_size=w * bpp, max_size=w * bpp))) for _ in range(h)]
    filters = data.draw(st.lists(st.integers(0, 4), min_size=h, max_size=h))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(_encode(rows, bpp, filters)))
        + _chunk(b"IEND", b"")
    )
    got_w, got_h, got = decode_png(png)
    assert (got_w, got_h) == (w, h)
    for row, want in zip(got, rows, strict=True):
        if ctype == 6:
            assert row == want
        elif ctype == 2:
            assert row[0::4] == want[0::3] and row[2::4] == want[2::3]
        elif ctype == 0:
            assert row[1::4] == want
        else:
            assert row[0::4] == want[0::2] and row[3::4] == want[1::2]


# -- hostile input -------------------------------------------------------------------------

SGR = re.compile(r"\x1b\[([0-9;]*)m")


def assert_only_colours_and_blocks(text: str) -> None:
    """Only SGR colour codes, the two half blocks, spaces and newlines."""
    assert set(SGR.sub("", text)) <= set("▀▄ \n"), repr(SGR.sub("", text)[:80])
    for params in SGR.findall(text):
        p = params.split(";")
        while p:
            head = p.pop(0)
            if head in ("38", "48"):
                kind = p.pop(0)
                values = [p.pop(0) for _ in range(3 if kind == "2" else 1)]
                assert kind in ("2", "5") and all(0 <= int(v) <= 255 for v in values)
            else:
                assert head in ("0", "39", "49") or 30 <= int(head) <= 107, params


@settings(max_examples=80, deadline=3000, suppress_health_check=[HealthCheck.too_slow])
@given(
    width=st.integers(1, 60),
    height=st.integers(1, 30),
    colors=st.sampled_from([16, 256, TRUECOLOR]),
    data=st.data(),
)
def test_any_pixels_make_only_colour_codes_and_blocks(width, height, colors, data) -> None:
    raw = data.draw(st.binary(min_size=4 * width * height, max_size=4 * width * height))
    rows = [raw[i : i + 4 * width] for i in range(0, len(raw), 4 * width)]
    text = render_blocks(rows, width, colors)
    assert_only_colours_and_blocks(text)
    lines = text.split("\n")
    assert lines[-1] == "" and len(lines) - 1 == (height + 1) // 2
    assert all(len(strip_ansi(ln)) == width for ln in lines[:-1])
    # At most two colour codes a cell and a reset a line: bounded by the picture's size.
    assert len(text) <= ((height + 1) // 2) * (width * 42 + 6)


def _png_from(w: int, h: int, ctype: int, depth: int, body: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", body)


@st.composite
def valid_pngs(draw) -> bytes:
    """Well-formed PNGs of any shape (a line 1 pixel high, 3000 wide) and pixels."""
    w, h = draw(st.integers(1, 3000)), draw(st.integers(1, 300))
    w = min(w, 40_000 // h)
    seed = draw(st.binary(min_size=1, max_size=64))
    rows = [bytes([draw(st.integers(0, 4))]) + (seed * (3 * w))[: 3 * w] for _ in range(h)]
    return _png_from(w, h, 2, 8, zlib.compress(b"".join(rows))) + _chunk(b"IEND", b"")


hostile_pngs = st.builds(
    _png_from,
    st.one_of(st.integers(0, 80), st.sampled_from([2**31 - 1, 100_000, 70_000])),
    st.one_of(st.integers(0, 80), st.sampled_from([2**31 - 1, 100_000, 1])),
    st.sampled_from([0, 2, 3, 4, 6, 7]),
    st.sampled_from([1, 2, 4, 8, 16]),
    st.one_of(st.binary(max_size=300), st.builds(zlib.compress, st.binary(max_size=3000))),
)


@settings(max_examples=80, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.one_of(hostile_pngs, valid_pngs()),
    cols=st.integers(10, 200),
    lines=st.integers(3, 80),
    colors=st.sampled_from([16, 256, TRUECOLOR]),
    pil=st.booleans(),
)
def test_hostile_images_never_raise_and_draw_only_blocks(
    tmp_path_factory, data, cols, lines, colors, pil
) -> None:
    saved = tmp_path_factory.mktemp("saved")
    c = ctx(colors, width=cols, height=lines, image_dir=str(saved), image_protocol="blocks")
    blocked = {} if pil else {"PIL": None}
    before = {k: sys.modules.get(k) for k in blocked}
    sys.modules.update(blocked)  # type: ignore[arg-type]
    try:
        t0 = time.monotonic()
        r = default_registry().render({"image/png": b64(data), "text/plain": "plain"}, {}, c)
        elapsed = time.monotonic() - t0
    finally:
        for k, v in before.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    assert elapsed < 2.0
    if r.mime == "image/png" and "saved to" not in r.text:
        assert_only_colours_and_blocks(r.text)
        drawn = strip_ansi(r.text).split("\n")[:-1]
        assert len(drawn) <= lines - 2 and all(len(ln) <= cols - 1 for ln in drawn)
