"""Sixel encoding: palette images to a DCS string xterm, foot, mlterm, WezTerm draw.

Theory
------
A sixel image is drawn in bands six pixel rows tall. For each band and each colour
used in it, one line of characters says which of the six pixels have that colour
(bit k = row k, character = 63 + bits). Building those lines one pixel at a time in
Python would be slow, so each row of palette indices is mapped with
``bytes.translate`` to ``1 << k`` where the colour matches and 0 elsewhere; the six
rows are OR-ed together as big integers (no carries: each row owns one bit), and
the result is shifted into the printable range with another ``translate``. Runs of
4+ equal characters are run-length encoded (``!<n><char>``).

Pixels whose index is ``>= transparent`` are never drawn (the DCS asks for
transparent background, P2=1), so alpha shows the terminal background.
"""

from __future__ import annotations

import re
from functools import lru_cache

_PLUS63 = bytes(min(255, v + 63) for v in range(256))
_RUN = re.compile(r"(.)\1{3,}")


@lru_cache(maxsize=4096)
def _bit_table(color: int, bit: int) -> bytes:
    return bytes((1 << bit) if v == color else 0 for v in range(256))


def encode_sixel(
    indices: bytes,
    width: int,
    height: int,
    palette: list[tuple[int, int, int]],
    transparent: int = 256,
) -> str:
    """A complete sixel DCS sequence for an image of palette ``indices``.

    ``indices`` holds one byte per pixel, row after row; ``palette`` gives RGB
    (0-255) for each index in use.
    """
    out = [f'\x1bP0;1;0q"1;1;{width};{height}']
    for i, (r, g, b) in enumerate(palette[: min(len(palette), transparent)]):
        out.append(f"#{i};2;{round(r * 100 / 255)};{round(g * 100 / 255)};{round(b * 100 / 255)}")
    for top in range(0, height, 6):
        rows = [indices[y * width : (y + 1) * width] for y in range(top, min(top + 6, height))]
        used: set[int] = set()
        for row in rows:
            used.update(row)
        first = True
        for color in sorted(c for c in used if c < transparent):
            acc = 0
            for bit, row in enumerate(rows):
                acc |= int.from_bytes(row.translate(_bit_table(color, bit)), "big")
            line = acc.to_bytes(width, "big").translate(_PLUS63).decode("ascii").rstrip("?")
            if not line:
                continue
            line = _RUN.sub(lambda m: f"!{len(m.group(0))}{m.group(1)}", line)
            out.append(("" if first else "$") + f"#{color}{line}")
            first = False
        out.append("-")
    out.append("\x1b\\")
    return "".join(out)


def quantize_cube(rgba_rows: list[bytes], width: int) -> tuple[bytes, list[tuple[int, int, int]]]:
    """RGBA rows to indices in a 5x5x5 colour cube (index 128 = transparent).

    The no-Pillow path: crude but fast, since it works on whole rows with
    ``translate`` and big-integer sums instead of per-pixel Python.
    """
    levels = 5
    tr = bytes(min(levels - 1, (v * levels) // 256) * levels * levels for v in range(256))
    tg = bytes(min(levels - 1, (v * levels) // 256) * levels for v in range(256))
    tb = bytes(min(levels - 1, (v * levels) // 256) for v in range(256))
    ta = bytes(128 if v < 128 else 0 for v in range(256))
    out = []
    for row in rgba_rows:
        # Each term's bytes stay below 256 when summed (max 124 + 128), so adding
        # the rows as big integers adds them byte by byte.
        total = (
            int.from_bytes(row[0::4].translate(tr), "big")
            + int.from_bytes(row[1::4].translate(tg), "big")
            + int.from_bytes(row[2::4].translate(tb), "big")
            + int.from_bytes(row[3::4].translate(ta), "big")
        )
        out.append(total.to_bytes(width, "big"))
    step = 255 / (levels - 1)
    palette = [
        (round(r * step), round(g * step), round(b * step))
        for r in range(levels)
        for g in range(levels)
        for b in range(levels)
    ]
    return b"".join(out), palette


def scale_rows(
    rows: list[bytes], width: int, height: int, new_w: int, new_h: int, bpp: int
) -> list[bytes]:
    """Nearest-neighbour scaling of pixel rows (``bpp`` bytes per pixel)."""
    if (new_w, new_h) == (width, height):
        return rows
    from operator import itemgetter

    xs = [min(width - 1, (x * width) // new_w) for x in range(new_w)]
    cols = [x * bpp + k for x in xs for k in range(bpp)]
    pick = itemgetter(*cols) if len(cols) > 1 else (lambda r: (r[cols[0]],))
    out = []
    for y in range(new_h):
        src = rows[min(height - 1, (y * height) // new_h)]
        out.append(bytes(pick(src)))
    return out
