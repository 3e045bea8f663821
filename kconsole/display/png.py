"""A small pure-Python PNG decoder: the sixel path's fallback when Pillow is absent.

Non-interlaced, 8 bits per channel (grey, grey+alpha, RGB, RGBA, palette with
1-8 bit indices). Anything else raises :class:`UnsupportedImage` and the caller
falls back to the text line. Slow on big images (the filters are a Python loop per
byte), so callers cap the pixel count.
"""

from __future__ import annotations

import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class UnsupportedImage(ValueError):
    """This decoder cannot read the image (the caller should fall back)."""


def decode_png(data: bytes, max_pixels: int = 400_000) -> tuple[int, int, list[bytes]]:
    """Decode a PNG to ``(width, height, rows)``, each row RGBA bytes."""
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
    rows: list[bytes] = []
    prev = bytearray(stride)
    p = 0
    for _ in range(height):
        ftype = raw[p]
        line = bytearray(raw[p + 1 : p + 1 + stride])
        p += 1 + stride
        _unfilter(ftype, line, prev, bpp)
        rows.append(_to_rgba(bytes(line), width, ctype_, depth, palette, trns))
        prev = line
    return width, height, rows


def _unfilter(ftype: int, line: bytearray, prev: bytearray, bpp: int) -> None:
    n = len(line)
    if ftype == 0:
        return
    if ftype == 1:
        for i in range(bpp, n):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
    elif ftype == 2:
        for i in range(n):
            line[i] = (line[i] + prev[i]) & 0xFF
    elif ftype == 3:
        for i in range(n):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
    elif ftype == 4:
        for i in range(n):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
            line[i] = (line[i] + pred) & 0xFF
    else:
        raise UnsupportedImage(f"bad PNG filter {ftype}")


def _to_rgba(line: bytes, width: int, ctype: int, depth: int, palette: bytes, trns: bytes) -> bytes:
    out = bytearray(width * 4)
    if ctype == 6:
        return line
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
        lut = [
            palette[3 * k : 3 * k + 3].ljust(3, b"\0") + bytes([trns[k] if k < len(trns) else 255])
            for k in range(256)
        ]
        return b"".join(lut[k] for k in idx)
    return bytes(out)
