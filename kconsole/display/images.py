"""Images in the terminal: kitty, iTerm2 (also WezTerm), sixel, half blocks, or a
saved file.

Theory
------
An image is drawn so that it occupies a known number of text rows, and the cursor
ends at column 0 of the row below it: the printer counts rows to update displays in
place. kitty and iTerm2 are told the size in cells and scale the original bytes
themselves (no re-encoding); sixel is pixels, so the image is decoded (Pillow when
installed, else a small PNG decoder), scaled and quantized here.

A terminal without a graphics protocol (plain xterm, VTE, the Linux console, tmux
without passthrough, screen) gets the picture in coloured half blocks (see
:mod:`.blocks`). Inside tmux with ``allow-passthrough`` on, the outer terminal's
protocol is used, each sequence wrapped for tmux to pass on (:func:`tmux_wrap`).

Where nothing can be drawn (a pipe, no colours, ``--image-protocol none``, a format
that cannot be decoded here) the image is saved to a file and one line names it; the
bytes saved are exactly the bytes received.

Saved copies go to the folder the user named (``--image-dir``, kept), else to one
folder per session in the temp dir, made on the first image and removed at exit
(atexit: normal exit, Ctrl-D, SIGTERM/SIGHUP all pass through it). A session that
died without its exit handlers leaves its folder; the next session removes the
folders of sessions whose process is gone. When an image viewer was started, the
folder is left for it (the viewer may still be reading) and swept the same way.

Decoding has a memory budget: an image is decoded only when it has at most
:data:`MAX_DECODE_PIXELS` pixels (a JPEG bigger than that is decoded at a reduced
scale, which its format allows), and the built-in PNG decoder inflates only the
bytes the image needs. Anything else gets the one-line file note: a 400 KB PNG
claiming 12000x12000 pixels, or a zlib bomb, never takes gigabytes. Nor is an image
claiming no pixels or over :data:`MAX_TERMINAL_PIXELS` sent to a terminal that
decodes it itself: it gets the file line too.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import re
import shlex
import socket
import struct
import subprocess
import tempfile
from typing import Any

from ..pids import pid_exists
from .config import RenderContext
from .terminal import TMUX_CURSOR_SYNC, tmux_wrap
from .text import Styler

EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/svg+xml": ".svg",
    "image/webp": ".webp",
    "image/bmp": ".bmp",
}
#: Cell size assumed when the terminal did not say (a common 10x20 px font).
DEFAULT_CELL = (10, 20)
KITTY_CHUNK = 4096
#: Most pixels an image may have to be decoded here (sixel, JPEG/GIF for kitty):
#: 16 megapixels are 64 MB as RGBA.
MAX_DECODE_PIXELS = 16_000_000
#: Most pixels an image may claim to be sent to the terminal, which decodes it itself
#: (kitty, iTerm2): a 200-byte PNG claiming 100000x100000 is a decompression bomb
#: for the terminal. Photos of 100 megapixels still go through.
MAX_TERMINAL_PIXELS = 100_000_000
#: Longest sequence tmux passes through (its input buffer, INPUT_BUF_LIMIT in its
#: input.c, is 1 MiB; a longer one is dropped whole): a bigger image is drawn in blocks.
TMUX_PASSTHROUGH_LIMIT = 1_000_000


class ImageError(ValueError):
    """The bundle's image data is unusable (bad base64, not an image)."""


def decode_image_data(value: Any, mime: str) -> bytes:
    """The raw bytes of an image bundle value (base64 text, or SVG source text)."""
    if isinstance(value, list):
        value = "".join(value)
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise ImageError(f"{mime} data is a {type(value).__name__}, not text")
    if mime == "image/svg+xml":
        return value.encode("utf-8")
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as e:
        raise ImageError(f"{mime} data is not valid base64 ({e})") from None


def image_size(data: bytes, mime: str) -> tuple[int, int] | None:
    """Pixel size read from the header (PNG IHDR, GIF, JPEG SOF, SVG attributes)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return int(w), int(h)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    if mime == "image/svg+xml":
        return _svg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return int(w), int(h)
        i += 2 + length
    return None


_SVG_TAG = re.compile(rb"<svg\b[^<>]*>", re.S)  # [^<>]: an unclosed tag costs once


def _svg_size(data: bytes) -> tuple[int, int] | None:
    m = _SVG_TAG.search(data)
    if not m:
        return None
    tag = m.group(0).decode("utf-8", "replace")

    def attr(name: str) -> float | None:
        a = re.search(rf'\b{name}\s*=\s*["\']\s*([\d.]+)\s*(px|pt)?\s*["\']', tag)
        if not a:
            return None
        v = float(a.group(1))
        return v * 4 / 3 if a.group(2) == "pt" else v

    w, h = attr("width"), attr("height")
    if w and h:
        return round(w), round(h)
    vb = re.search(r'viewBox\s*=\s*["\']\s*[-\d.]+[\s,]+[-\d.]+[\s,]+([\d.]+)[\s,]+([\d.]+)', tag)
    if vb:
        return round(float(vb.group(1))), round(float(vb.group(2)))
    return None


def shown_size(px: tuple[int, int], metadata: dict[str, Any] | None = None) -> tuple[float, float]:
    """The size in pixels an image asks to be shown at: its own, or the width/height
    in the bundle's metadata (IPython's ``Image(width=...)``), aspect kept when only
    one is given."""
    w, h = float(px[0]), float(px[1])
    md = metadata or {}
    mw, mh = _num(md.get("width")), _num(md.get("height"))
    if mw and mh:
        w, h = mw, mh
    elif mw:
        w, h = mw, h * mw / w if w else h
    elif mh:
        w, h = w * mh / h if h else w, mh
    return w, h


def max_image_cells(ctx: RenderContext) -> tuple[int, int]:
    """The most columns and rows an image may take: the width less one column (no
    wrap), the screen height less two rows (or ``max_image_rows``)."""
    return max(1, ctx.width - 1), ctx.config.max_image_rows or max(1, ctx.height - 2)


def fit_cells(
    px: tuple[int, int], ctx: RenderContext, metadata: dict[str, Any] | None = None
) -> tuple[int, int, int, int]:
    """Display size: ``(columns, rows, width_px, height_px)``, aspect kept.

    Natural size (or the width/height the bundle's metadata asks for), shrunk to
    the terminal width and to the screen height (or ``max_image_rows``).
    """
    w, h = shown_size(px, metadata)
    cw = ctx.caps.cell_width or DEFAULT_CELL[0]
    ch = ctx.caps.cell_height or DEFAULT_CELL[1]
    max_cols, max_rows = max_image_cells(ctx)
    scale = min(1.0, max_cols * cw / max(w, 1), max_rows * ch / max(h, 1))
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    return max(1, math.ceil(tw / cw)), max(1, math.ceil(th / ch)), tw, th


def _num(v: Any) -> float | None:
    try:
        f = float(str(v).removesuffix("px"))
        return f if f > 0 and math.isfinite(f) else None
    except (TypeError, ValueError):
        return None


# -- protocols -------------------------------------------------------------------------


def _reserve(rows: int, body: str, passthrough: bool = False) -> str:
    # Scroll first (newlines), then come back up and draw without moving the cursor:
    # the image lands on rows that exist, and the cursor ends below it at column 0.
    # Through tmux, the outer cursor is brought to the pane's first (TMUX_CURSOR_SYNC).
    sync = TMUX_CURSOR_SYNC if passthrough else ""
    return "\n" * rows + f"\x1b[{rows}A" + sync + body + f"\r\x1b[{rows}B"


def kitty_sequence(png: bytes, cols: int, rows: int, passthrough: bool = False) -> str:
    """kitty graphics protocol: transmit PNG data and place it over cols x rows cells.

    ``passthrough``: each chunk wrapped for tmux (see :func:`tmux_wrap`)."""
    data = base64.standard_b64encode(png).decode("ascii")
    chunks = [data[i : i + KITTY_CHUNK] for i in range(0, len(data), KITTY_CHUNK)] or [""]
    out = []
    for k, chunk in enumerate(chunks):
        more = 1 if k < len(chunks) - 1 else 0
        if k == 0:
            # q=2: no replies (they would arrive as typed input); C=1: cursor stays.
            out.append(f"\x1b_Ga=T,f=100,t=d,q=2,C=1,c={cols},r={rows},m={more};{chunk}\x1b\\")
        else:
            out.append(f"\x1b_Gm={more};{chunk}\x1b\\")
    if passthrough:
        # One wrapper per chunk: each stays far below tmux's 1 MiB limit.
        out = [tmux_wrap(chunk) for chunk in out]
    return _reserve(rows, "".join(out), passthrough)


def iterm_sequence(
    data: bytes, cols: int, rows: int, name: str = "", passthrough: bool = False
) -> str:
    """iTerm2 inline image (OSC 1337 File=), understood by iTerm2 and WezTerm.

    ``passthrough``: for tmux, which cannot know the image moves the outer cursor:
    the rows are reserved first and the outer terminal's cursor saved and restored
    around the image, so tmux's idea of the cursor stays true."""
    args = f"inline=1;size={len(data)};width={cols};height={rows};preserveAspectRatio=1"
    if name:
        args = f"name={base64.b64encode(name.encode()).decode()};" + args
    body = f"\x1b]1337;File={args}:{base64.b64encode(data).decode('ascii')}\x07"
    if passthrough:
        return _reserve(rows, tmux_wrap("\x1b7" + body + "\x1b8"), passthrough)
    return "\r" + body + "\n"


def to_pixels(
    data: bytes, width: int, height: int, max_colors: int = 256
) -> tuple[bytes, list[tuple[int, int, int]], int]:
    """Decode, scale to ``width`` x ``height`` and quantize: ``(indices, palette,
    transparent_from)``. Pillow when installed, else the PNG decoder and a 5x5x5 cube."""
    try:
        from PIL import Image

        have_pil = True
    except ImportError:
        have_pil = False
    if have_pil:
        src = open_within_budget(data, (width, height))
        im = src.convert("RGBA").resize((width, height), Image.Resampling.BILINEAR)
        alpha = im.getchannel("A")
        colors = max(2, min(255, max_colors - 1))
        q = im.convert("RGB").quantize(colors=colors)
        lowest = alpha.getextrema()[0]
        if isinstance(lowest, (int, float)) and lowest < 128:
            q.paste(255, mask=alpha.point(lambda a: 255 if a < 128 else 0))
        raw = q.getpalette() or []
        palette = [(raw[i], raw[i + 1], raw[i + 2]) for i in range(0, min(len(raw), colors * 3), 3)]
        return q.tobytes(), palette, 255
    from .png import decode_png
    from .registry import check_time
    from .sixel import quantize_cube, scale_rows

    w, h, rows = decode_png(data, check=check_time)
    rows = scale_rows(rows, w, h, width, height, 4)
    indices, palette = quantize_cube(rows, width)
    return indices, palette, 125


def sixel_sequence(
    data: bytes, tw: int, th: int, rows: int, max_colors: int = 256, passthrough: bool = False
) -> str:
    """A sixel image ``tw`` x ``th`` pixels occupying ``rows`` text rows.

    ``passthrough``: wrapped for tmux, cursor save and restore included, so that the
    outer terminal puts its cursor back where tmux left it."""
    from .sixel import encode_sixel

    indices, palette, transparent = to_pixels(data, tw, th, max_colors)
    # Where a terminal leaves the cursor after sixel differs (xterm's sixel scrolling
    # moves it below the image): save and restore it (DECSC/DECRC) around the image.
    dcs = encode_sixel(indices, tw, th, palette, transparent)
    body = "\x1b7" + dcs + "\x1b8"
    return _reserve(rows, tmux_wrap(body) if passthrough else body, passthrough)


# -- fallback --------------------------------------------------------------------------

_SESSION_PREFIX = "kconsole-images-"
_session_dir: str | None = None
_viewer_started = False


def session_image_dir() -> str:
    """This session's folder for saved images, made on first use (mode 0700) and
    removed at exit by :func:`cleanup`."""
    global _session_dir
    if _session_dir is None or not os.path.isdir(_session_dir):
        import atexit

        _sweep_stale_sessions()
        _session_dir = tempfile.mkdtemp(prefix=f"{_SESSION_PREFIX}{os.getpid()}-")
        atexit.register(cleanup)
    return _session_dir


def cleanup() -> None:
    """Remove this session's image folder (not a folder the user chose), unless an
    image viewer may still be reading from it."""
    global _session_dir
    if _session_dir is None or _viewer_started:
        return
    import shutil

    shutil.rmtree(_session_dir, ignore_errors=True)
    _session_dir = None


def _sweep_stale_sessions() -> None:
    """Remove the image folders of earlier sessions whose process is gone."""
    import shutil

    if os.name == "nt":  # os.kill(pid, 0) is not a liveness test there
        return

    base = tempfile.gettempdir()
    try:
        names = os.listdir(base)
    except OSError:
        return
    uid = os.getuid() if hasattr(os, "getuid") else None
    for name in names:
        if not name.startswith(_SESSION_PREFIX):
            continue
        pid_text = name[len(_SESSION_PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or pid_exists(int(pid_text)):
            continue
        path = os.path.join(base, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if uid is not None and st.st_uid != uid:
            continue
        shutil.rmtree(path, ignore_errors=True)


def save_image(data: bytes, mime: str, ctx: RenderContext) -> str:
    """Write the image bytes to a new private file; returns its path."""
    fd, path = tempfile.mkstemp(
        prefix="kconsole-", suffix=EXTENSIONS.get(mime, ".bin"), dir=ctx.image_dir()
    )
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def open_in_viewer(command: str, path: str) -> None:
    """Start ``command`` on ``path`` in the background (never waited for)."""
    global _viewer_started
    _viewer_started = True
    argv = shlex.split(command)
    if any("{}" in a for a in argv):
        argv = [a.replace("{}", path) for a in argv]
    else:
        argv.append(path)
    subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def fallback_line(data: bytes, mime: str, ctx: RenderContext, size: tuple[int, int] | None) -> str:
    """``[image/png 640x480, saved to /tmp/kconsole-xxxx.png]`` (and maybe a viewer)."""
    path = save_image(data, mime, ctx)
    dims = f" {size[0]}x{size[1]}" if size else ""
    styler: Styler = ctx.styler
    shown = styler.link(path, "file://" + socket.gethostname() + path)
    if ctx.config.image_viewer:
        try:
            open_in_viewer(ctx.config.image_viewer, path)
            what = f"opened in {shlex.split(ctx.config.image_viewer)[0]}: {shown}"
        except (OSError, ValueError) as e:
            what = f"saved to {shown}; viewer failed: {e}"
    else:
        what = f"saved to {shown}"
    return styler(f"[{mime}{dims}, ", "dim") + what + styler("]", "dim")


def _rasterize_svg(
    data: bytes, size: tuple[int, int] | None, fit: tuple[int, int] | None = None
) -> bytes | None:
    """The SVG as PNG, at most ``fit`` pixels (the size it is shown at); None when
    that cannot be done here (no cairosvg, over the memory budget, or an SVG cairosvg
    cannot read: the saved file may still open in a browser)."""
    if size is not None and size[0] * size[1] > MAX_DECODE_PIXELS:
        return None  # the raster would be over the memory budget: the file line
    try:
        import cairosvg
    except (ImportError, OSError):  # OSError: the cairo library itself is missing
        return None
    options: dict[str, int] = {}
    if size is not None and fit is not None and size[0] > 0 and size[1] > 0:
        scale = min(1.0, fit[0] / size[0], fit[1] / size[1])
        options = {
            "output_width": max(1, round(size[0] * scale)),
            "output_height": max(1, round(size[1] * scale)),
        }
    try:
        png = cairosvg.svg2png(bytestring=data, **options)
    except Exception:  # its XML parser's errors, and whatever a drawing raises
        return None
    return bytes(png) if png else None


def render_image(value: Any, metadata: dict[str, Any], ctx: RenderContext, mime: str) -> str:
    """An image bundle drawn inline with the terminal's protocol (half blocks when it
    has none), or the fallback line."""
    data = decode_image_data(value, mime)
    size = image_size(data, mime)
    if mime != "image/svg+xml" and size is None:
        raise ImageError(f"{mime} data is not a readable image")
    protocol = ctx.image_protocol
    if protocol is None:
        return fallback_line(data, mime, ctx, size)
    if size is not None and not 0 < size[0] * size[1] <= MAX_TERMINAL_PIXELS:
        return fallback_line(data, mime, ctx, size)  # no pixels, or a bomb
    pixels = data
    if mime == "image/svg+xml":
        fit = None  # the pixels it is shown at: no bigger raster is worth its time
        if size is not None and protocol == "blocks":
            fit = _block_raster(size, ctx, metadata)
        elif size is not None:
            fit = fit_cells(size, ctx, metadata)[2:]
        png = _rasterize_svg(data, size, fit)
        if png is None:
            return fallback_line(data, mime, ctx, size)  # no SVG library, or unreadable
        pixels, size = png, image_size(png, "image/png")
        if size is None:
            return fallback_line(data, mime, ctx, None)
    assert size is not None
    from .png import UnsupportedImage

    if protocol != "blocks":
        try:
            seq = _graphics(protocol, pixels, size, ctx, metadata)
        except UnsupportedImage:
            seq = None
        if seq is not None:
            return seq
        if not ctx.image_passthrough(protocol):
            return fallback_line(data, mime, ctx, size)
        # Through tmux, a sequence over its passthrough limit is dropped: blocks.
    try:
        return blocks_image(pixels, size, ctx, metadata)
    except UnsupportedImage:  # a format or size the decoder here cannot take
        return fallback_line(data, mime, ctx, size)


def _graphics(
    protocol: str,
    pixels: bytes,
    size: tuple[int, int],
    ctx: RenderContext,
    metadata: dict[str, Any],
) -> str | None:
    """The kitty, iTerm2 or sixel sequence, or None when it cannot be made (or would
    be over tmux's passthrough limit)."""
    cols, rows, tw, th = fit_cells(size, ctx, metadata)
    wrap = ctx.image_passthrough(protocol)
    if protocol == "kitty":
        if not pixels.startswith(b"\x89PNG"):
            converted = _to_png(pixels, (tw, th))
            if converted is None:
                return None
            pixels = converted
        return kitty_sequence(pixels, cols, rows, passthrough=wrap)
    if protocol == "iterm":
        seq = iterm_sequence(pixels, cols, rows, passthrough=wrap)
    elif protocol == "sixel":
        seq = sixel_sequence(pixels, tw, th, rows, ctx.caps.sixel_colors, passthrough=wrap)
    else:
        return None
    return None if wrap and len(seq) > TMUX_PASSTHROUGH_LIMIT else seq


def blocks_image(
    data: bytes, size: tuple[int, int], ctx: RenderContext, metadata: dict[str, Any] | None = None
) -> str:
    """The image drawn in half blocks, fitted to the terminal (see :mod:`.blocks`).

    Raises :class:`~.png.UnsupportedImage` when it cannot be decoded here (no Pillow
    for a JPEG, say)."""
    from .blocks import blocks_sequence
    from .registry import check_time

    cols, pixel_rows = _block_grid(size, ctx, metadata)
    return blocks_sequence(data, cols, pixel_rows, ctx.caps.colors, check_time)


def _block_grid(
    size: tuple[int, int], ctx: RenderContext, metadata: dict[str, Any] | None
) -> tuple[int, int]:
    from .blocks import block_grid

    max_cols, max_rows = max_image_cells(ctx)
    cell = None
    if ctx.caps.cell_width and ctx.caps.cell_height:
        cell = (ctx.caps.cell_width, ctx.caps.cell_height)
    return block_grid(shown_size(size, metadata), max_cols, max_rows, cell)


def _block_raster(
    size: tuple[int, int], ctx: RenderContext, metadata: dict[str, Any] | None
) -> tuple[int, int]:
    """Pixels worth rasterizing an SVG at for blocks: as many as the shrink samples."""
    from .blocks import INK_SAMPLES_PIL

    cols, pixel_rows = _block_grid(size, ctx, metadata)
    return cols * INK_SAMPLES_PIL, pixel_rows * INK_SAMPLES_PIL


def _to_png(data: bytes, size: tuple[int, int]) -> bytes | None:
    """JPEG/GIF to PNG for kitty (which takes PNG or raw pixels), with Pillow, at
    most ``size`` pixels: the size it is shown at (encoding a 4000x4000 photo at
    full size took seconds and made 44 MB of escapes for 80 columns)."""
    import io

    from .png import UnsupportedImage

    try:
        im = open_within_budget(data, size)
    except (ImportError, UnsupportedImage):  # no Pillow, or over the budget
        return None
    if im.size[0] > size[0] or im.size[1] > size[1]:
        im = im.convert("RGBA")
        im.thumbnail((max(1, size[0]), max(1, size[1])))
    out = io.BytesIO()
    im.convert("RGBA").save(out, format="PNG")
    return out.getvalue()


def open_within_budget(data: bytes, size: tuple[int, int] | None) -> Any:
    """The first frame of ``data`` decoded with Pillow, within MAX_DECODE_PIXELS.

    ``size`` is the size it will be shown at: a JPEG is decoded at the smallest
    scale still at least that big, and a big image is reduced towards it right
    after decoding. Raises :class:`~.png.UnsupportedImage` when the image is too big
    to decode (the caller shows the file line). Pillow's decompression-bomb warning
    is never printed: the budget here is far below its limit.
    """
    import io
    import warnings

    from PIL import Image

    from .png import UnsupportedImage

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im: Any = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError:
            raise UnsupportedImage("too big to decode") from None
        im.seek(0)
        w, h = im.size
        if w * h > MAX_DECODE_PIXELS and size is not None:
            im.draft("RGB", size)  # JPEG only: decode at 1/2, 1/4 or 1/8 scale
        if im.size[0] * im.size[1] > MAX_DECODE_PIXELS:
            raise UnsupportedImage(f"{w}x{h} is too big to decode")
        im.load()
    if size is not None:
        factor = min(im.size[0] // max(1, size[0]), im.size[1] // max(1, size[1]))
        if factor >= 2:
            if im.mode not in ("L", "LA", "RGB", "RGBA"):
                im = im.convert("RGBA")
            im = im.reduce(factor)
    return im
