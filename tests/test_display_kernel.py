"""Real display bundles from a real ipykernel, through OutputPrinter, onto a pyte screen."""

from __future__ import annotations

import base64
import io
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyte
import pytest

from kconsole.display import DisplayConfig, TerminalCapabilities
from kconsole.output import OutputPrinter
from kconsole.protocol import Message

jupyter_client = pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")


def tiny_png() -> bytes:
    raw = b"".join(b"\0" + bytes([255, 0, 0]) * 4 for _ in range(3))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 3, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def kernel() -> Iterator[Any]:
    km = jupyter_client.KernelManager(kernel_name="python3")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def run(kc: Any, code: str) -> list[Message]:
    """Execute ``code`` and return its IOPub output messages as kconsole Messages."""
    msg_id = kc.execute(code)
    out: list[Message] = []
    while True:
        m = kc.get_iopub_msg(timeout=60)
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
            return out
        out.append(Message.from_dict(m))


def show(
    messages: list[Message], printer: OutputPrinter | None = None, cols: int = 80
) -> list[str]:
    stream = io.StringIO()
    p = printer or OutputPrinter(stream, color=False, config=DisplayConfig(width=cols))
    for m in messages:
        p.handle(m)
    text = p.stream.getvalue()  # type: ignore[attr-defined]
    screen = pyte.Screen(cols, 200)
    screen.set_mode(pyte.modes.LNM)
    pyte.Stream(screen).feed(text)
    return [ln.rstrip() for ln in screen.display if ln.strip()]


def test_html_bundle(kernel: Any) -> None:
    lines = show(
        run(
            kernel,
            (
                "from IPython.display import HTML, display\n"
                "display(HTML('<h2>Totals</h2><table><tr><th>key</th><th>value</th></tr>"
                "<tr><td>apples</td><td>3</td></tr><tr><td>pears</td><td>12</td></tr></table>'))"
            ),
        )
    )
    assert lines[:2] == ["Totals", "──────"]
    assert "│ key    │ value │" in lines
    assert "│ apples │     3 │" in lines
    assert "│ pears  │    12 │" in lines


def test_markdown_latex_json_bundles(kernel: Any) -> None:
    lines = show(
        run(
            kernel,
            (
                "from IPython.display import Markdown, Latex, JSON, display\n"
                "display(Markdown('# Heading\\n\\n- **one**\\n- two'))\n"
                "display(Latex(r'$$\\frac{a}{b}$$'))\n"
                "display(JSON({'k': [1, 2]}))\n"
            ),
        )
    )
    assert lines[:4] == ["Heading", "═══════", "• one", "• two"]
    i = lines.index("a")
    assert lines[i : i + 3] == ["a", "─", "b"]
    j = lines.index("{")
    assert lines[j : j + 6] == ["{", '  "k": [', "    1,", "    2", "  ]", "}"]


def test_image_bundle_in_a_pipe_saves_the_file(kernel: Any, tmp_path: Any) -> None:
    png = tiny_png()
    code = (
        "import base64\nfrom IPython.display import Image, display\n"
        f"display(Image(data=base64.b64decode({base64.b64encode(png).decode()!r})))"
    )
    stream = io.StringIO()
    printer = OutputPrinter(stream, color=False, config=DisplayConfig(image_dir=str(tmp_path)))
    show(run(kernel, code), printer)
    lines = stream.getvalue().splitlines()  # raw lines: the long path would wrap on screen
    m = re.fullmatch(r"\[image/png 4x3, saved to (\S+)\]", lines[0])
    assert m, lines
    assert Path(m.group(1)).read_bytes() == png


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_image_and_svg_bundles_in_kitty(kernel: Any) -> None:
    _need_cairosvg()
    png = tiny_png()
    code = (
        "import base64\nfrom IPython.display import Image, SVG, display\n"
        f"display(Image(data=base64.b64decode({base64.b64encode(png).decode()!r})))\n"
        'display(SVG(\'<svg xmlns="http://www.w3.org/2000/svg" width="30" height="10">'
        '<rect width="30" height="10" fill="blue"/></svg>\'))'
    )
    caps = TerminalCapabilities(
        is_tty=True, colors=256, image_protocol="kitty", cell_width=10, cell_height=20
    )
    out = TTY()
    p = OutputPrinter(out, color=True, tty=True, capabilities=caps, config=DisplayConfig(width=80))
    for m in run(kernel, code):
        p.handle(m)
    payloads = re.findall(r"\x1b_Ga=T[^;]*;([^\x1b]*)\x1b\\", out.getvalue())
    assert len(payloads) == 2
    assert base64.b64decode(payloads[0]) == png
    assert base64.b64decode(payloads[1]).startswith(b"\x89PNG")


def test_pandas_dataframe(kernel: Any) -> None:
    pytest.importorskip("pandas")
    lines = show(
        run(
            kernel,
            (
                "import pandas as pd\n"
                "pd.DataFrame({'city': ['Oslo', 'Lima', 'Pune'], 'pop_k': [709, 10092, 7276],"
                " 'ratio': [0.5, 1.25, -2.0]})"
            ),
        )
    )
    assert lines[0] == "Out[1]:" or lines[0].startswith("Out[")
    table = [ln for ln in lines if ln.startswith("│")]
    assert re.fullmatch(r"│\s+│\s+city\s+│\s+pop_k\s+│\s+ratio\s+│", table[0])
    assert table[1:] == [
        "│ 0 │ Oslo │   709 │  0.50 │",
        "│ 1 │ Lima │ 10092 │  1.25 │",
        "│ 2 │ Pune │  7276 │ -2.00 │",
    ]


def test_fifty_column_dataframe_at_80_columns(kernel: Any) -> None:
    # Issue 14: every header whole, every value visible, no rule between body rows.
    pytest.importorskip("pandas")
    code = (
        "import pandas as pd\n"
        "pd.set_option('display.max_columns', None)\n"
        "names = ['price_usd', 'qty', 'mean error']\n"
        "df = pd.DataFrame({f'{names[k % 3]}_{k}': [round((r - 1.5) * (k + 1) * 1.1, 2)"
        " for r in range(4)] for k in range(50)})\n"
        "df"
    )
    lines = show(run(kernel, code))
    assert lines[0].startswith("Out[")
    table = [ln for ln in lines[1:] if ln[:1] in "┌│├└"]
    assert all(len(ln) <= 80 for ln in table)
    headers: list[str] = []
    values: dict[str, list[str]] = {}
    for ln in table:
        cells = [c.strip() for c in ln.strip("│").split("│")]
        if ln.startswith("│   │"):
            headers += cells[1:]
        elif ln.startswith("│"):
            values.setdefault(cells[0], []).extend(cells[1:])
    names = [f"{['price_usd', 'qty', 'mean error'][k % 3]}_{k}" for k in range(50)]
    assert headers == names
    for r in range(4):
        want = [round((r - 1.5) * (k + 1) * 1.1, 2) for k in range(50)]
        assert [float(v) for v in values[str(r)]] == want
    # Rules: each block's top, the one under its header, its bottom; none between rows.
    rules = [ln[0] for ln in table if ln[0] in "┌├└"]
    assert rules == ["┌", "├", "└"] * (len(rules) // 3) and len(rules) > 3


def test_matplotlib_inline_figure(kernel: Any, tmp_path: Any) -> None:
    pytest.importorskip("matplotlib")
    code = "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([1, 3, 2]); plt.show()"
    stream = io.StringIO()
    printer = OutputPrinter(stream, color=False, config=DisplayConfig(image_dir=str(tmp_path)))
    show(run(kernel, code), printer)
    lines = stream.getvalue().splitlines()
    m = next(
        re.fullmatch(r"\[image/png (\d+)x(\d+), saved to (\S+)\]", ln)
        for ln in lines
        if ln.startswith("[image/png")
    )
    assert m and int(m.group(1)) > 100
    assert Path(m.group(3)).read_bytes().startswith(b"\x89PNG")


def _need_cairosvg() -> None:
    """Skip unless cairosvg imports: it raises OSError, not ImportError, when the cairo
    library itself is missing (a machine without Debian's libcairo2)."""
    try:
        import cairosvg  # noqa: F401
    except (ImportError, OSError) as e:
        pytest.skip(f"cairosvg is not usable here: {e}")
