"""How long rich rendering takes, in process.

python bench/display_bench.py [rows]
    a 1,000-row DataFrame's HTML (parse + table layout; pandas when installed,
    else HTML of the same shape generated here) and a wide one (60 rows x 50
    columns, cut into column blocks at 80 columns)
python bench/display_bench.py blocks [--json] [--builtin] [--reps N]
    a 1000x800 plot drawn in half blocks for an 80x40 terminal (decode, shrink
    keeping the lines, 24-bit and 256 colours): the best of N renders, in ms.
    A matplotlib figure when matplotlib imports, else a plot drawn here.
    --builtin hides Pillow (the built-in PNG decoder and shrink).
"""

from __future__ import annotations

import json
import math
import struct
import sys
import time
import zlib

from kconsole.display import DisplayConfig, RenderContext, TerminalCapabilities, default_registry


def dataframe_html(rows: int) -> str:
    try:
        import numpy as np
        import pandas as pd
    except ImportError:
        return _html_like_pandas(rows)
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "name": [f"item-{i}" for i in range(rows)],
            "count": rng.integers(0, 10_000, rows),
            "price": rng.random(rows) * 100,
            "ratio": rng.standard_normal(rows),
            "flag": rng.random(rows) > 0.5,
        }
    )
    return df.to_html()


def _html_like_pandas(rows: int) -> str:
    cols = ["name", "count", "price", "ratio", "flag"]
    head = "".join(f"      <th>{c}</th>\n" for c in cols)
    body = []
    for i in range(rows):
        cells = [
            f"item-{i}",
            str(i * 37 % 10_000),
            f"{i * 1.37 % 100:.6f}",
            f"{(i % 7) - 3.1:.6f}",
            str(i % 2 == 0),
        ]
        tds = "".join(f"      <td>{c}</td>\n" for c in cells)
        body.append(f"    <tr>\n      <th>{i}</th>\n{tds}    </tr>\n")
    return (
        '<table border="1" class="dataframe">\n  <thead>\n    <tr style="text-align: right;">\n'
        f"      <th></th>\n{head}    </tr>\n  </thead>\n  <tbody>\n{''.join(body)}  </tbody>\n"
        "</table>"
    )


def wide_html(rows: int = 60, cols: int = 50) -> str:
    """A DataFrame's HTML as wide as people make them: 50 named columns of numbers."""
    head = "".join(f"      <th>measurement_{k}</th>\n" for k in range(cols))
    body = "".join(
        f"    <tr>\n      <th>{i}</th>\n"
        + "".join(f"      <td>{(i * 31 + k * 7) % 1000 / 7:.4f}</td>\n" for k in range(cols))
        + "    </tr>\n"
        for i in range(rows)
    )
    return (
        '<table border="1" class="dataframe">\n  <thead>\n    <tr style="text-align: right;">\n'
        f"      <th></th>\n{head}    </tr>\n  </thead>\n  <tbody>\n{body}  </tbody>\n</table>"
    )


def plot_png(width: int = 1000, height: int = 800) -> bytes:
    """A plot of ``width`` x ``height`` pixels as PNG: matplotlib's (what a kernel
    sends), else two curves, axes and a fill drawn here (zlib + struct)."""
    try:
        import io

        import matplotlib

        matplotlib.use("agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return _drawn_plot(width, height)
    fig = plt.figure(figsize=(width / 100, height / 100), dpi=100)
    xs = [i / 50 for i in range(501)]
    plt.plot(xs, [math.sin(x) for x in xs], label="sin")
    plt.plot(xs, [math.cos(x) for x in xs], label="cos")
    plt.fill_between(xs, [math.sin(x) / 2 for x in xs], alpha=0.3)
    plt.legend()
    plt.title("A plot")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _drawn_plot(width: int, height: int) -> bytes:
    img = [bytearray(b"\xff" * (3 * width)) for _ in range(height)]

    def dot(x: int, y: int, rgb: tuple[int, int, int]) -> None:
        if 0 <= x < width and 0 <= y < height:
            img[y][3 * x : 3 * x + 3] = bytes(rgb)

    left, right, top, bottom = width // 8, width * 7 // 8, height // 8, height * 7 // 8
    for x in range(left, right):
        dot(x, bottom, (0, 0, 0))
        dot(x, top, (0, 0, 0))
        for f, rgb in ((math.sin, (31, 119, 180)), (math.cos, (255, 127, 14))):
            y = (top + bottom) // 2 - int(f((x - left) / 40) * (bottom - top) / 2.5)
            for d in (-1, 0, 1):
                dot(x, y + d, rgb)
    for y in range(top, bottom):
        dot(left, y, (0, 0, 0))
        dot(right, y, (0, 0, 0))
    raw = b"".join(b"\0" + bytes(row) for row in img)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def blocks_bench(argv: list[str]) -> None:
    """Time the half-block rendering of a 1000x800 plot (see the module docstring)."""
    reps = int(argv[argv.index("--reps") + 1]) if "--reps" in argv else 10
    import base64

    png = base64.b64encode(plot_png()).decode()
    if "--builtin" in argv:
        sys.modules["PIL"] = None  # type: ignore[assignment]  # import PIL now fails
    reg = default_registry()
    results = {}
    for colors in (16_777_216, 256):
        caps = TerminalCapabilities(is_tty=True, colors=colors)
        ctx = RenderContext(width=80, height=40, tty=True, caps=caps, config=DisplayConfig())
        out = reg.render({"image/png": png}, {}, ctx)  # warm up (imports)
        assert out.mime == "image/png" and "saved to" not in out.text, out.text[:200]
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            reg.render({"image/png": png}, {}, ctx)
            times.append(time.perf_counter() - t0)
        times.sort()
        depth = "24-bit" if colors > 256 else "256"
        results[depth] = times[len(times) // 2] * 1000
        results[depth + " best"] = times[0] * 1000
    if "--json" in argv:
        print(json.dumps(results))
    else:
        decoder = "built-in decoder" if "--builtin" in argv else "Pillow"
        for k in ("24-bit", "256"):
            print(
                f"1000x800 plot in half blocks, {k} colour, {decoder}: "
                f"{results[k]:.1f} ms (best {results[k + ' best']:.1f})"
            )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "blocks":
        blocks_bench(sys.argv[2:])
        return
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    for label, html, width in (
        (f"{rows}-row DataFrame HTML", dataframe_html(rows), 100),
        ("60x50 DataFrame HTML at 80 columns", wide_html(), 80),
    ):
        _measure(label, html, width)


def _measure(label: str, html: str, width: int) -> None:
    reg = default_registry()
    caps = TerminalCapabilities(is_tty=True, colors=256)
    for color in (False, True):
        ctx = RenderContext(
            width=width, height=40, color=color, tty=True, caps=caps, config=DisplayConfig()
        )
        reg.render({"text/html": html}, {}, ctx)  # warm up (imports)
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            out = reg.render({"text/html": html}, {}, ctx)
            best = min(best, time.perf_counter() - t0)
        lines = out.text.count("\n") + 1
        print(
            f"{label} ({len(html) / 1024:.0f} KiB) -> {lines} lines, "
            f"colour={'on' if color else 'off'}: {best * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
