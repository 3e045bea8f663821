"""A small pure-Python PNG decoder: the fallback of sixel and block images when Pillow
is absent.

Non-interlaced, 8 bits per channel (grey, grey+alpha, RGB, RGBA, palette with
1-8 bit indices). Anything else raises :class:`UnsupportedImage` and the caller
falls back to the text line.

Theory of the speed
-------------------
A PNG row is stored filtered: each byte is coded against the byte to its left, the
byte above, or both. Undoing that one byte at a time is a Python loop per byte
(some 0.3 s for a 1000x800 plot). Instead, whole rows are handled as big integers,
eight bits per byte lane (SWAR), so the loops run in C:

* Up (``raw + above``) is one lane-wise addition: add the low seven bits of every
  lane (no carry can leave a lane), then put the top bits back with an XOR.
* Sub (``raw + left``) is a running sum along the row, done in log2(width) steps
  (add the row shifted by 1, 2, 4... pixels: a Hillis-Steele prefix sum).
* Paeth predicts from the left pixel wherever the row above does not change from
  one pixel to the next (then its rule reduces to Sub); only the bytes where the row
  above does change are decoded one by one. Plots and screenshots change little.
* Average keeps the loop (encoders rarely choose it).

Rows that inflate to more than the image needs are never produced (a zlib bomb),
images over ``max_pixels`` are refused, and ``check`` (the renderer's clock) is
called as rows are decoded, so a hostile image costs a bounded time.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Most pixels decoded by default: 4 megapixels are 16 MB as RGBA rows (plus the
#: inflated data); a plot of 1000x800 or a retina one of 2000x1600 fits.
MAX_PIXELS = 4_000_000
_CHANGED = re.compile(rb"[^\x00]+")
#: Shorter runs of a Paeth row are decoded byte by byte (cheaper than the big ints).
_SHORT_RUN = 24


class UnsupportedImage(ValueError):
    """This decoder cannot read the image (the caller should fall back)."""


def decode_png(
    data: bytes, max_pixels: int = MAX_PIXELS, check: Callable[[], None] | None = None
) -> tuple[int, int, list[bytes]]:
    """Decode a PNG to ``(width, height, rows)``, each row RGBA bytes.

    ``check`` is called every few rows; it may raise to abandon the decoding (the
    renderers' time limit).
    """
    if not data.startswith(PNG_SIGNATURE):
        raise UnsupportedImage("not a PNG")
    pos = 8
    ihdr = None
    palette = b""
    trns = b""
    idat = []
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if ctype == b"IHDR":
            if len(chunk) != 13:
                raise UnsupportedImage("bad PNG header")
            ihdr = struct.unpack(">IIBBBBB", chunk)
        elif ctype == b"PLTE":
            palette = chunk
        elif ctype == b"tRNS":
            trns = chunk
        elif ctype == b"IDAT":
            idat.append(chunk)
        elif ctype == b"IEND":
            break
    if ihdr is None:
        raise UnsupportedImage("PNG without IHDR")
    width, height, depth, ctype_, _, _, interlace = ihdr
    if interlace:
        raise UnsupportedImage("interlaced PNG")
    if width == 0 or height == 0:
        # Invalid PNG, and no pixels: under every pixel budget, yet ``height`` rows of
        # filter bytes to inflate and unfilter (a 5 KB file, millions of rows).
        raise UnsupportedImage(f"{width}x{height} PNG has no pixels")
    if width * height > max_pixels:
        raise UnsupportedImage(f"{width}x{height} is too big to decode without Pillow")
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(ctype_)
    if channels is None or (depth != 8 and not (ctype_ == 3 and depth in (1, 2, 4))):
        raise UnsupportedImage(f"PNG colour type {ctype_} depth {depth}")
    bpp = max(1, channels * depth // 8)
    stride = (width * channels * depth + 7) // 8
    # Inflate only what the image needs: IDAT data that inflates further (a zlib
    # bomb: 1 MB that inflates to 1 GB) is never produced.
    expected = height * (1 + stride)
    try:
        raw = zlib.decompressobj().decompress(b"".join(idat), expected)
    except zlib.error as e:
        raise UnsupportedImage(f"bad PNG data ({e})") from None
    if len(raw) < expected:
        raise UnsupportedImage("truncated PNG data")
    lanes = _Lanes(stride)
    lut = _palette_lut(palette, trns) if ctype_ == 3 else []
    rows: list[bytes] = []
    prev = bytes(stride)
    p = 0
    for y in range(height):
        if check is not None and y % 32 == 0:
            check()
        ftype = raw[p]
        line = raw[p + 1 : p + 1 + stride]
        p += 1 + stride
        line = _unfilter(ftype, line, prev, bpp, lanes)
        rows.append(_to_rgba(line, width, ctype_, depth, lut))
        prev = line
    return width, height, rows


class _Lanes:
    """Byte-wise arithmetic (mod 256) on rows of ``n`` bytes held as big integers."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.high = int.from_bytes(b"\x80" * n, "big")
        self.low = self.high ^ int.from_bytes(b"\xff" * n, "big")

    def add(self, a: int, b: int, high: int, low: int) -> int:
        # The low seven bits of each lane add without leaving it; bit 7 is the XOR of
        # both top bits and the carry that arrived there.
        return ((a & low) + (b & low)) ^ ((a ^ b) & high)

    def running_sum(self, x: int, bpp: int, length: int) -> int:
        """Each byte plus every byte ``bpp``, ``2*bpp``... before it (mod 256)."""
        drop = 8 * (self.n - length)
        high, low = self.high >> drop, self.low >> drop
        shift = 8 * bpp
        while shift < 8 * length:
            x = self.add(x, x >> shift, high, low)
            shift <<= 1
        return x


def _unfilter(ftype: int, line: bytes, prev: bytes, bpp: int, lanes: _Lanes) -> bytes:
    n = len(line)
    if ftype == 0:
        return line
    if ftype == 1:
        x = lanes.running_sum(int.from_bytes(line, "big"), bpp, n)
        return x.to_bytes(n, "big")
    if ftype == 2:
        x = lanes.add(
            int.from_bytes(line, "big"), int.from_bytes(prev, "big"), lanes.high, lanes.low
        )
        return x.to_bytes(n, "big")
    if ftype == 3:
        out = bytearray(line)
        for i in range(n):
            left = out[i - bpp] if i >= bpp else 0
            out[i] = (out[i] + ((left + prev[i]) >> 1)) & 0xFF
        return bytes(out)
    if ftype == 4:
        return _unpaeth(line, prev, bpp, lanes)
    raise UnsupportedImage(f"bad PNG filter {ftype}")


def _unpaeth(line: bytes, prev: bytes, bpp: int, lanes: _Lanes) -> bytes:
    n = len(line)
    out = bytearray(line)
    for i in range(min(bpp, n)):  # nothing to the left: the prediction is the byte above
        out[i] = (out[i] + prev[i]) & 0xFF
    if n <= bpp:
        return bytes(out)
    above = int.from_bytes(prev, "big")
    # Nonzero where the row above differs from its left neighbour (b != c).
    changed = (above ^ (above >> (8 * bpp))).to_bytes(n, "big")
    pos = bpp
    for m in _CHANGED.finditer(changed, bpp):
        _sub_run(out, pos, m.start(), bpp, lanes)
        for i in range(m.start(), m.end()):
            a, b, c = out[i - bpp], prev[i], prev[i - bpp]
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
            out[i] = (out[i] + pred) & 0xFF
        pos = m.end()
    _sub_run(out, pos, n, bpp, lanes)
    return bytes(out)


def _sub_run(out: bytearray, start: int, end: int, bpp: int, lanes: _Lanes) -> None:
    """Decode ``out[start:end]`` as Sub (left-predicted) bytes, in place; the ``bpp``
    bytes before ``start`` are decoded already."""
    if end - start <= 0:
        return
    if end - start < _SHORT_RUN:
        for i in range(start, end):
            out[i] = (out[i] + out[i - bpp]) & 0xFF
        return
    seg = out[start - bpp : end]
    x = lanes.running_sum(int.from_bytes(seg, "big"), bpp, len(seg))
    out[start - bpp : end] = x.to_bytes(len(seg), "big")


def _palette_lut(palette: bytes, trns: bytes) -> list[bytes]:
    return [
        palette[3 * k : 3 * k + 3].ljust(3, b"\0") + bytes([trns[k] if k < len(trns) else 255])
        for k in range(256)
    ]


def _to_rgba(line: bytes, width: int, ctype: int, depth: int, lut: list[bytes]) -> bytes:
    if ctype == 6:
        return line[: width * 4]
    out = bytearray(width * 4)
    if ctype == 2:
        out[0::4], out[1::4], out[2::4] = line[0::3], line[1::3], line[2::3]
        out[3::4] = b"\xff" * width
    elif ctype == 0:
        out[0::4] = out[1::4] = out[2::4] = line
        out[3::4] = b"\xff" * width
    elif ctype == 4:
        out[0::4] = out[1::4] = out[2::4] = line[0::2]
        out[3::4] = line[1::2]
    else:  # palette
        if depth < 8:
            per = 8 // depth
            mask = (1 << depth) - 1
            idx = bytes(
                (line[i // per] >> (8 - depth * (i % per + 1))) & mask for i in range(width)
            )
        else:
            idx = line[:width]
        return b"".join(lut[k] for k in idx)
    return bytes(out)
