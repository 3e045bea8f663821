"""Images drawn with Unicode half blocks, for terminals without a graphics protocol.

Theory
------
A terminal cell is about twice as tall as it is wide, so it holds two square pixels:
``▀`` (upper half block) painted in the foreground colour over the background
colour. Every terminal that shows colour can draw that: plain xterm, VTE (GNOME
Terminal), the Linux console, tmux and screen, which store it like any text. The
picture is coarse (a 1000x800 plot becomes some 80x32 cells) but it is the plot.

Only half blocks are used. They are in every monospace font (CP437 has them, so the
Linux console's fonts do); quadrants are in fewer fonts and sextants (Unicode 13)
in few, and a glyph a font lacks is drawn as a box or a question mark, which would
spoil the whole picture rather than sharpen it.

Colours follow what the terminal takes: 24-bit SGR (``38;2;r;g;b``), else the
nearest of xterm's 256 colours (the 6x6x6 cube and the 24 greys, never the 16
themable ones), else the nearest of the 16 ANSI colours. A pixel with alpha below
128 shows the terminal's own background (SGR 49): a transparent PNG has no box.
A cell whose two pixels have the same colour is a space on that background: no
glyph, so fonts whose blocks do not fill the cell draw no seams in flat areas.

Shrinking keeps the ink. A plot's lines are one or two pixels wide: averaged into
a cell twelve pixels across, a blue line becomes a 10 % tint of the white around it,
and the 256-colour cube rounds it back to white: the curve is gone. So each output
pixel is 40 % the average of its area and 60 % the colour in that area farthest from
the average (per channel: the darkest on light ground, the lightest on dark), from
3x3 samples of the area (5x5 with Pillow), when it is far enough to be a line rather
than a photo's texture or noise. Flat areas and photos stay as they are; thin lines
and text stay visible. Transparent images are only averaged (the colour of their
hidden pixels would bleed in). Pillow does it in C when installed; without, the rows
from the PNG decoder are sampled and the arithmetic is done on whole rows held as
big integers, one 32-bit lane per channel (no lane can overflow into the next), as
in :mod:`.png`.

The text is lines of cells, each ending in a newline (after SGR 0 when it left a
colour set): no cursor motion,
so the printer counts its rows like any text (updates and clear_output erase it),
and only SGR sequences, the two half blocks and spaces are ever written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

UPPER = "\u2580"  # ▀
LOWER = "\u2584"  # ▄
TRUECOLOR = 16_777_216

#: xterm's colour cube levels (indices 16-231) and the 24 greys (232-255).
_CUBE = (0, 95, 135, 175, 215, 255)
_GREYS = tuple(8 + 10 * i for i in range(24))
#: The 16 ANSI colours as xterm draws them by default (themes differ: only a guide).
_ANSI16 = (
    (0, 0, 0),
    (205, 0, 0),
    (0, 205, 0),
    (205, 205, 0),
    (0, 0, 238),
    (205, 0, 205),
    (0, 205, 205),
    (229, 229, 229),
    (127, 127, 127),
    (255, 0, 0),
    (0, 255, 0),
    (255, 255, 0),
    (92, 92, 255),
    (255, 0, 255),
    (0, 255, 255),
    (255, 255, 255),
)
#: The level of _CUBE nearest to each byte value.
_NEAREST_LEVEL = bytes(min(range(6), key=lambda k: abs(_CUBE[k] - v)) for v in range(256))


def _dist(a: tuple[int, int, int], b: tuple[int, int, int]) -> int:
    # Weighted like the eye (green most, blue least): a cheap stand-in for a colour space.
    return 2 * (a[0] - b[0]) ** 2 + 4 * (a[1] - b[1]) ** 2 + 3 * (a[2] - b[2]) ** 2


def color_256(r: int, g: int, b: int) -> int:
    """The xterm colour (16-255) nearest to ``(r, g, b)``: cube or grey ramp."""
    lr, lg, lb = _NEAREST_LEVEL[r], _NEAREST_LEVEL[g], _NEAREST_LEVEL[b]
    cube = (_CUBE[lr], _CUBE[lg], _CUBE[lb])
    grey_i = min(23, max(0, round(((r + g + b) / 3 - 8) / 10)))
    grey = _GREYS[grey_i]
    if _dist((grey, grey, grey), (r, g, b)) < _dist(cube, (r, g, b)):
        return 232 + grey_i
    return 16 + 36 * lr + 6 * lg + lb


def color_16(r: int, g: int, b: int) -> int:
    """The ANSI colour (0-15) nearest to ``(r, g, b)``."""
    return min(range(16), key=lambda i: _dist(_ANSI16[i], (r, g, b)))


def _sgr_codes(colors: int) -> Callable[[bytes], tuple[str, str]]:
    """A function from an RGB(A) pixel to its (foreground, background) SGR parameters."""
    cache: dict[bytes, tuple[str, str]] = {}

    if colors >= TRUECOLOR:

        def make(px: bytes) -> tuple[str, str]:
            rgb = f"2;{px[0]};{px[1]};{px[2]}"
            return "38;" + rgb, "48;" + rgb
    elif colors >= 256:

        def make(px: bytes) -> tuple[str, str]:
            n = color_256(px[0], px[1], px[2])
            return f"38;5;{n}", f"48;5;{n}"
    else:

        def make(px: bytes) -> tuple[str, str]:
            n = color_16(px[0], px[1], px[2])
            return (str(30 + n), str(40 + n)) if n < 8 else (str(82 + n), str(92 + n))

    def codes(px: bytes) -> tuple[str, str]:
        key = px[:3]
        got = cache.get(key)
        if got is None:
            got = cache[key] = make(key)
        return got

    return codes


#: Samples per output pixel, each way, when shrinking (see the module docstring):
#: Pillow works in C and can afford more than the big-integer path.
INK_SAMPLES_PIL = 5
INK_SAMPLES = 3
#: The share of an output pixel taken by the most distinct colour of its area, in
#: 256ths; with 16 colours all of it (a tint has no colour of its own there).
INK_WEIGHT = 154
INK_WEIGHT_16 = 256
#: How far (per channel, 0-255) that colour must be from the area's average to count
#: as a line: below, it is texture or noise (a photo's), and the average is kept.
INK_THRESHOLD = 40


def shrink_pil(im: Any, size: tuple[int, int], weight: int = INK_WEIGHT) -> Any:
    """A Pillow image shrunk to ``size`` keeping thin lines (see the module docstring)."""
    from PIL import Image, ImageChops

    if im.size == size:
        return im
    k = INK_SAMPLES_PIL
    w, h = size
    mean = im.resize(size, Image.Resampling.BOX)
    alpha = im.getchannel("A").getextrema()[0] if im.mode == "RGBA" else 255
    if alpha != 255 or (im.size[0] < 2 * w and im.size[1] < 2 * h):
        return mean
    mean = mean.convert("RGB")
    # k x k point samples of each area, one image per sample position (an affine
    # pick: C speed, unlike a k x k rank filter), folded to their min and max.
    samples = im.convert("RGB").resize((w * k, h * k), Image.Resampling.NEAREST)
    half = (k - 1) / 2
    lo = hi = None
    for t in range(k):
        for s in range(k):
            one = samples.transform(size, Image.Transform.AFFINE, (k, 0, s - half, 0, k, t - half))
            lo = one if lo is None else ImageChops.darker(lo, one)
            hi = one if hi is None else ImageChops.lighter(hi, one)
    assert lo is not None and hi is not None
    bands = []
    for m, a, b in zip(mean.split(), lo.split(), hi.split(), strict=True):
        darker = ImageChops.subtract(m, a)
        lighter = ImageChops.subtract(b, m)
        pick_lo = ImageChops.subtract(darker, lighter).point(lambda v: 255 if v > 0 else 0)
        ink = Image.composite(a, b, pick_lo)
        strong = ImageChops.lighter(darker, lighter).point(
            lambda v: 255 if v > INK_THRESHOLD else 0
        )
        bands.append(Image.composite(ink, m, strong))
    ink = Image.merge("RGB", bands)
    return Image.blend(mean, ink, weight / 256).convert("RGBA")


def shrink_rows(
    rows: list[bytes], width: int, height: int, w: int, h: int, weight: int = INK_WEIGHT
) -> list[bytes]:
    """RGBA ``rows`` of ``width`` x ``height`` shrunk to ``w`` x ``h`` keeping thin
    lines, without Pillow (see the module docstring)."""
    from .sixel import scale_rows

    k = INK_SAMPLES
    ys = [
        [min(height - 1, int((y + (t + 0.5) / k) * height / h)) for t in range(k)] for y in range(h)
    ]
    opaque = all(rows[r][3::4] == b"\xff" * width for ry in ys for r in ry)
    if not opaque or (width < 2 * w and height < 2 * h):
        return scale_rows(rows, width, height, w, h, 4)
    from operator import itemgetter

    xs = [min(width - 1, int((x + (s + 0.5) / k) * width / w)) for x in range(w) for s in range(k)]
    pick = itemgetter(*[4 * x + c for x in xs for c in range(4)])
    n = len(xs) * 4  # lanes in a sampled row: one per channel of each sample
    lanes = _Lanes32(n)
    threshold = lanes.spread(INK_THRESHOLD)
    px = 4 * 32  # bits of one pixel: four 32-bit lanes
    out = []
    for ry in ys:
        samples = [lanes.widen(bytes(pick(rows[r]))) for r in ry]
        total, lo, hi = samples[0], samples[0], samples[0]
        for v in samples[1:]:
            total += v
            lo, hi = lanes.min(lo, v), lanes.max(hi, v)
        # Across: each pixel with the k - 1 pixels after it (read at every k-th pixel).
        t_sum, t_lo, t_hi = total, lo, hi
        for s in range(1, k):
            t_sum += total >> (s * px)
            t_lo, t_hi = lanes.min(t_lo, lo >> (s * px)), lanes.max(t_hi, hi >> (s * px))
        mean = lanes.low16((t_sum * (65536 // (k * k) + 1)) >> 16)
        darker, lighter = mean - t_lo, t_hi - mean
        ink = t_hi ^ ((t_hi ^ t_lo) & lanes.greater(darker, lighter))
        strong = lanes.greater(lanes.max(darker, lighter), threshold)
        ink = mean ^ ((mean ^ ink) & strong)
        mixed = lanes.low16((mean * (256 - weight) + ink * weight) >> 8)
        data = mixed.to_bytes(4 * n, "little")
        row = bytearray(b"\xff" * (4 * w))
        for c in range(3):
            row[c::4] = data[4 * c :: 16 * k][:w]
        out.append(bytes(row))
    return out


class _Lanes32:
    """Byte values in 32-bit lanes of one big integer (little-endian: lane i is bits
    32i to 32i+31), with lane-wise min, max and compare for values below 256."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.bit8 = int.from_bytes(b"\x00\x01\x00\x00" * n, "little")
        self.one = int.from_bytes(b"\x01\x00\x00\x00" * n, "little")
        self.mask16 = int.from_bytes(b"\xff\xff\x00\x00" * n, "little")

    def spread(self, value: int) -> int:
        """``value`` in every lane."""
        return self.one * value

    def widen(self, data: bytes) -> int:
        wide = bytearray(4 * len(data))
        wide[0::4] = data
        return int.from_bytes(wide, "little")

    def low16(self, x: int) -> int:
        return x & self.mask16

    def greater(self, a: int, b: int) -> int:
        """0xFF in each lane where ``a > b``, else 0."""
        # a + 256 - b - 1 is in [0, 510]: no borrow crosses a lane; bit 8 says a > b.
        d = (a | self.bit8) - b - self.one
        return ((d & self.bit8) >> 8) * 0xFF

    def min(self, a: int, b: int) -> int:
        return a ^ ((a ^ b) & self.greater(a, b))

    def max(self, a: int, b: int) -> int:
        return b ^ ((a ^ b) & self.greater(a, b))


def decode_scaled(
    data: bytes,
    width: int,
    height: int,
    check: Callable[[], None] | None = None,
    weight: int = INK_WEIGHT,
) -> list[bytes]:
    """The image shrunk to ``width`` x ``height`` (see :func:`shrink_pil`): one bytes
    object of RGBA per row. Pillow reads any format it knows; without it, PNG only
    (the built-in decoder, calling ``check`` as it goes). Raises
    :class:`~.png.UnsupportedImage` when the image cannot be decoded here."""
    try:
        from PIL import Image  # noqa: F401
    except ImportError:
        from .png import decode_png

        w, h, rows = decode_png(data, check=check)
        return shrink_rows(rows, w, h, width, height, weight)
    from .images import open_within_budget

    # Decoded at least as big as the samples taken (a JPEG may be decoded smaller).
    k = INK_SAMPLES_PIL
    im = open_within_budget(data, (width * k, height * k)).convert("RGBA")
    raw = shrink_pil(im, (width, height), weight).tobytes()
    stride = 4 * width
    return [raw[i : i + stride] for i in range(0, len(raw), stride)]


def block_grid(
    size: tuple[float, float],
    max_cols: int,
    max_rows: int,
    cell: tuple[int, int] | None = None,
) -> tuple[int, int]:
    """``(columns, pixel_rows)`` an image of ``size`` pixels is drawn at: at most one
    image pixel per half block (no blowing up of icons), aspect ratio kept, within
    ``max_cols`` columns and ``max_rows`` text rows (two pixel rows each).

    ``cell`` is the terminal's cell size in pixels when known (a half block is then
    ``cell[1] / 2`` tall for ``cell[0]`` wide, not always square).
    """
    w, h = max(1.0, float(size[0])), max(1.0, float(size[1]))
    cw, ch = cell if cell and cell[0] > 0 and cell[1] > 0 else (1, 2)
    aspect = (ch / 2) / cw  # height of a half block over its width
    scale = min(1.0, max(1, max_cols) / w, 2 * max(1, max_rows) * aspect / h)
    cols = max(1, min(max(1, max_cols), round(w * scale)))
    pixel_rows = max(1, min(2 * max(1, max_rows), round(h * scale / aspect)))
    return cols, pixel_rows


def render_blocks(rows: list[bytes], width: int, colors: int) -> str:
    """Half-block text for RGBA ``rows`` (``width`` pixels each, 4 bytes a pixel):
    one line per two rows, each ending in SGR 0 and a newline."""
    codes = _sgr_codes(colors)
    out: list[str] = []
    blank = bytes(4 * width)  # below an odd last row: transparent
    for y in range(0, len(rows), 2):
        top = rows[y]
        bottom = rows[y + 1] if y + 1 < len(rows) else blank
        fg = bg = ""  # the SGR state of the line so far ("": the terminal's default)
        line: list[str] = []
        for x in range(0, 4 * width, 4):
            t = top[x : x + 4]
            b = bottom[x : x + 4]
            tc = codes(t) if len(t) == 4 and t[3] >= 128 else None
            bc = codes(b) if len(b) == 4 and b[3] >= 128 else None
            want_fg = fg
            if tc == bc:
                glyph, want_bg = " ", tc[1] if tc else ""
            elif tc is None:
                assert bc is not None
                glyph, want_fg, want_bg = LOWER, bc[0], ""
            else:
                glyph, want_fg, want_bg = UPPER, tc[0], bc[1] if bc else ""
            change = []
            if want_fg != fg:
                change.append(want_fg or "39")
                fg = want_fg
            if want_bg != bg:
                change.append(want_bg or "49")
                bg = want_bg
            if change:
                line.append("\x1b[" + ";".join(change) + "m")
            line.append(glyph)
        if fg or bg:
            line.append("\x1b[0m")
        line.append("\n")
        out.append("".join(line))
    return "".join(out)


def blocks_sequence(
    data: bytes,
    cols: int,
    pixel_rows: int,
    colors: int,
    check: Callable[[], None] | None = None,
) -> str:
    """The image ``data`` (PNG, or anything Pillow opens when installed) drawn in
    ``cols`` columns and ``pixel_rows / 2`` (rounded up) rows of half blocks.

    Raises :class:`~.png.UnsupportedImage` when the image cannot be decoded here.
    """
    weight = INK_WEIGHT if colors >= 256 else INK_WEIGHT_16
    rows = decode_scaled(data, cols, pixel_rows, check, weight)
    return render_blocks(rows, cols, colors)
