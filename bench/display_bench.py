"""How long rendering a 2,000-row DataFrame's HTML takes (parse + table layout), and
a wide one (60 rows x 50 columns, cut into column blocks at 80 columns).

Run: python bench/display_bench.py [rows]. Uses pandas when installed, else HTML of
the same shape generated here.
"""

from __future__ import annotations

import sys
import time

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


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
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
