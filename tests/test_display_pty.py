"""Rich output through the whole console: a real kernel, kconsole in a pty, and the
screen read back with pyte, as a user would see it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ptyconsole import PtyConsole, half_block_colours

PNG_1x1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="


@pytest.fixture
def console(console):
    """``console(*options)``: `kconsole start` on ipykernel, 100x50, no banner (the
    shared fixture closes it)."""

    def make(*args: str) -> PtyConsole:
        # No graphics protocol: TERM is plain xterm, not in tmux, nothing answers queries.
        return console(
            "start",
            "--kernel",
            "python3",
            "--no-banner",
            *args,
            env={"TERM_PROGRAM": "", "KITTY_WINDOW_ID": "", "TMUX": ""},
            rows=50,
            cols=100,
        )

    return make


def screen_lines(c: PtyConsole) -> list[str]:
    c.settle()
    return c.display()


@pytest.mark.timeout(90)
def test_html_table_markdown_and_json_read_right_on_screen(console) -> None:
    c = console()
    c.expect_prompt(1)
    c.sendline(
        "from IPython.display import HTML, Markdown, JSON, display; "
        "display(HTML('<h2>Scores</h2><table><tr><th>name</th><th>score</th></tr>"
        "<tr><td>ada</td><td>10</td></tr><tr><td>grace</td><td>7</td></tr></table>'))"
    )
    c.expect_prompt(2)
    lines = screen_lines(c)
    rows = [ln for ln in lines if "│" in ln]
    assert any("name" in r and "score" in r for r in rows), lines
    # Every row of the table has its column separators at the same screen columns.
    bars = {tuple(m.start() for m in re.finditer("│", r)) for r in rows}
    assert len(bars) == 1, rows
    heading = next(i for i, ln in enumerate(lines) if ln.strip() == "Scores")
    assert set(lines[heading + 1].strip()) <= set("─━═-"), lines[heading + 1]

    c.sendline("display(Markdown('# Title\\n\\n- first\\n- second'))")
    c.expect_prompt(3)
    lines = screen_lines(c)
    items = [ln for ln in lines if ("first" in ln or "second" in ln) and "In [" not in ln]
    assert len(items) == 2 and all(re.match(r"\s*[•\-*]\s+\w+", ln) for ln in items), items
    assert any(ln.strip() == "Title" for ln in lines)

    c.sendline("display(JSON({'a': [1, 2], 'b': {'c': True}}))")
    c.expect_prompt(4)
    lines = screen_lines(c)
    idx = next(i for i, ln in enumerate(lines) if '"a"' in ln and "In [" not in ln)
    assert lines[idx].startswith("  ") and lines[idx + 1].startswith("    "), lines[idx : idx + 3]
    c.ctrl("d")
    assert c.wait_exit(20) == 0


@pytest.mark.timeout(90)
def test_image_protocol_none_prints_a_line_with_the_saved_file(console) -> None:
    import base64

    c = console("--image-protocol", "none")
    c.expect_prompt(1)
    c.sendline(
        f"import base64; from IPython.display import Image, display; "
        f"display(Image(data=base64.b64decode('{PNG_1x1}')))"
    )
    m = c.expect(r"\[image/png 1x1, saved to (\S+?\.png)\]")
    path = Path(m.group(1))
    assert path.read_bytes() == base64.b64decode(PNG_1x1)
    c.expect_prompt(2)
    c.ctrl("d")
    assert c.wait_exit(20) == 0


@pytest.mark.timeout(90)
def test_forced_kitty_protocol_draws_the_image_inline(console) -> None:
    c = console("--image-protocol", "kitty")
    c.expect_prompt(1)
    raw: list[str] = []
    c.child.logfile_read = _Collector(raw)
    c.sendline(
        f"import base64; from IPython.display import Image, display; "
        f"display(Image(data=base64.b64decode('{PNG_1x1}')))"
    )
    c.expect_prompt(2)
    data = "".join(raw)
    assert "\x1b_G" in data and "f=100" in data, data[:200]
    c.ctrl("d")
    assert c.wait_exit(20) == 0


@pytest.mark.timeout(120)
def test_matplotlib_figure_reaches_the_terminal(console) -> None:
    pytest.importorskip("matplotlib")
    c = console()
    c.expect_prompt(1)
    c.sendline("%matplotlib inline")
    c.expect_prompt(2)
    c.sendline("import matplotlib.pyplot as plt; plt.plot([1, 2, 3]); plt.show()")
    c.expect_prompt(3, timeout=60)
    # No graphics protocol: the plot is drawn in half blocks, the width of the screen.
    lines = screen_lines(c)
    assert sum(ln.count("▀") > 10 for ln in lines) >= 5, "\n".join(lines)
    coloured = [
        x
        for y in range(c.screen.lines)
        for x in range(c.screen.columns)
        if half_block_colours(c.screen.buffer[y][x]) != ("default", "default")
    ]
    assert max(coloured) == 98  # 99 columns: one short of the width, never wrapping
    c.ctrl("d")
    assert c.wait_exit(20) == 0


class _Collector:
    """A pexpect logfile that keeps the raw bytes (escape sequences included)."""

    def __init__(self, sink: list[str]) -> None:
        self.sink = sink

    def write(self, data: str) -> None:
        self.sink.append(data)

    def flush(self) -> None:
        pass


@pytest.mark.timeout(120)
def test_matplotlib_in_the_builtin_kernel_reaches_the_terminal() -> None:
    pytest.importorskip("matplotlib")
    c = PtyConsole(
        ["start", "--kernel", "builtin", "--no-banner"],
        env={"TERM_PROGRAM": "", "KITTY_WINDOW_ID": "", "TMUX": ""},
    )
    try:
        c.expect_prompt(1)
        c.sendline("import matplotlib.pyplot as plt; plt.plot([1, 2, 3])")
        c.expect_prompt(2, timeout=60)
        c.settle()
        assert sum(ln.count("▀") > 10 for ln in c.display()) >= 5, "\n".join(c.display())
        c.ctrl("d")
        assert c.wait_exit(20) == 0
    finally:
        c.close()


# -- half blocks: the colours reach the right cells ----------------------------------------

#: Four colours off xterm's 256-colour cube: only 24-bit colour shows them exactly.
TOP_LEFT, TOP_RIGHT = (200, 30, 60), (20, 160, 90)
BOTTOM_LEFT, BOTTOM_RIGHT = (40, 70, 220), (250, 250, 240)

#: Run in the kernel: png(w, h, pixel) builds an RGB PNG (zlib + struct, as a kernel
#: without Pillow would); quad is the quadrant image, grad one whose every pixel
#: differs (a display that is mostly colour codes, some 40 KB of them).
_KERNEL_PNG = f"""
import struct, zlib
from IPython.display import Image, clear_output, display
def png(w, h, px):
    raw = b''.join(b'\\0' + bytes(c for x in range(w) for c in px(x, y)) for y in range(h))
    ch = lambda k, d: struct.pack('>I', len(d)) + k + d + struct.pack('>I', zlib.crc32(k + d))
    ihdr = struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)
    return b'\\x89PNG\\r\\n\\x1a\\n' + ch(b'IHDR', ihdr) + ch(b'IDAT', zlib.compress(raw)) + ch(b'IEND', b'')
colours = {[TOP_LEFT, TOP_RIGHT, BOTTOM_LEFT, BOTTOM_RIGHT]!r}
quad = Image(data=png(40, 20, lambda x, y: colours[2 * (y >= 10) + (x >= 20)]))
grad = Image(data=png(60, 40, lambda x, y: (4 * x, 6 * y, 77)))
"""


def _hex(rgb: tuple[int, int, int]) -> str:
    return "".join(f"{v:02x}" for v in rgb)


def _block_rows(c: PtyConsole, below: str) -> list[list[tuple[str, str]]]:
    """The (top, bottom) colours of each screen row drawn in half blocks below the last
    line starting with ``below`` (cells of the terminal's own background left out)."""
    c.settle()
    lines = c.display()
    start = max(i for i, ln in enumerate(lines) if ln.startswith(below))
    rows = []
    for y in range(start + 1, c.screen.lines):
        line = c.screen.buffer[y]
        cells = [half_block_colours(line[x]) for x in range(c.screen.columns)]
        cells = [cell for cell in cells if cell != ("default", "default")]
        if cells:
            rows.append(cells)
    return rows


@pytest.mark.timeout(90)
def test_a_png_drawn_in_half_blocks_has_its_colours_in_the_right_cells() -> None:
    import base64

    c = PtyConsole(
        ["start", "--kernel", "python3", "--no-banner"],
        env={"TERM_PROGRAM": "", "KITTY_WINDOW_ID": "", "COLORTERM": "truecolor", "TMUX": ""},
        rows=50,
        cols=100,
    )
    try:
        c.expect_prompt(1)
        c.sendline(
            f"exec(__import__('base64').b64decode('{base64.b64encode(_KERNEL_PNG.encode()).decode()}'))"
        )
        c.expect_prompt(2)
        c.sendline("display(quad)")
        c.expect_prompt(3)
        rows = _block_rows(c, "In [2]")
        # 40x20 pixels: 40 columns, 10 rows of two pixels each, at column 0.
        assert [len(r) for r in rows] == [40] * 10, rows
        for y, row in enumerate(rows):
            for x, (top, bottom) in enumerate(row):
                left = x < 20
                want_top = (TOP_LEFT if left else TOP_RIGHT) if 2 * y < 10 else None
                want_top = want_top or (BOTTOM_LEFT if left else BOTTOM_RIGHT)
                want_bottom = (TOP_LEFT if left else TOP_RIGHT) if 2 * y + 1 < 10 else None
                want_bottom = want_bottom or (BOTTOM_LEFT if left else BOTTOM_RIGHT)
                assert (top, bottom) == (_hex(want_top), _hex(want_bottom)), (x, y)

        # An image updated in place: only the new one is on screen, where the old one
        # was, though the old one was mostly escapes (once taken for more text than the
        # screen holds, and the new one was printed below it).
        c.sendline("h = display(grad, display_id=True); h.update(quad)")
        c.expect_prompt(4)
        assert _block_rows(c, "In [3]") == rows

        # clear_output(wait=True), then a new image: the old one is erased first.
        c.sendline("display(grad); clear_output(wait=True); display(quad)")
        c.expect_prompt(5)
        assert _block_rows(c, "In [4]") == rows
        c.ctrl("d")
        assert c.wait_exit(20) == 0
    finally:
        c.close()
