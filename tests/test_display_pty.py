"""Rich output through the whole console: a real kernel, kconsole in a pty, and the
screen read back with pyte, as a user would see it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ptyconsole import PtyConsole

PNG_1x1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="


@pytest.fixture
def console():
    made: list[PtyConsole] = []

    def make(*args: str) -> PtyConsole:
        # No graphics protocol: TERM is plain xterm and nothing answers the queries.
        c = PtyConsole(
            ["start", "--kernel", "python3", "--no-banner", *args],
            env={"TERM_PROGRAM": "", "KITTY_WINDOW_ID": ""},
            rows=50,
            cols=100,
        )
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


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
def test_image_without_graphics_prints_a_line_with_the_saved_file(console) -> None:
    import base64

    c = console()
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
    c.expect(r"\[image/png \d+x\d+, saved to \S+\.png\]", timeout=60)
    c.expect_prompt(3)
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
        env={"TERM_PROGRAM": "", "KITTY_WINDOW_ID": ""},
    )
    try:
        c.expect_prompt(1)
        c.sendline("import matplotlib.pyplot as plt; plt.plot([1, 2, 3])")
        c.expect(r"\[image/png \d+x\d+, saved to \S+\.png\]", timeout=60)
        c.expect_prompt(2)
        c.ctrl("d")
        assert c.wait_exit(20) == 0
    finally:
        c.close()
