"""Renderers on their own: what the produced text looks like on a real screen (pyte)."""

from __future__ import annotations

import json
import re

import pyte
import pytest

from kconsole.display import DisplayConfig, RenderContext, TerminalCapabilities, default_registry
from kconsole.display.document import layout
from kconsole.display.html import parse_html
from kconsole.display.latex import inline_math, render_latex
from kconsole.display.markdown import parse_markdown
from kconsole.display.text import Styler, rows_of, strip_ansi


def screen_of(text: str, cols: int = 80, rows: int = 60) -> list[str]:
    """The screen lines after a terminal ``cols`` wide shows ``text``."""
    screen = pyte.Screen(cols, rows)
    screen.set_mode(pyte.modes.LNM)  # LF also returns the carriage, as with onlcr
    pyte.Stream(screen).feed(text)
    return [line.rstrip() for line in screen.display]


def ctx(width: int = 80, color: bool = True, **kw: object) -> RenderContext:
    caps = TerminalCapabilities(is_tty=True, colors=256, hyperlinks=False)
    return RenderContext(width=width, height=40, color=color, tty=True, caps=caps, **kw)  # type: ignore[arg-type]


def render(data: dict, width: int = 80, color: bool = True) -> str:
    return default_registry().render(data, {}, ctx(width, color)).text


def pandas_like_html(rows: int, cols: list[str]) -> str:
    """HTML in the shape pandas' DataFrame._repr_html_ produces."""
    head = "".join(f"<th>{c}</th>" for c in cols)
    body = "".join(
        f"<tr>\n      <th>{i}</th>\n"
        + "".join(
            f"      <td>{(i * 7 + k) * 1.25 if k % 2 else f'name{i}'}</td>\n"
            for k in range(len(cols))
        )
        + "    </tr>\n"
        for i in range(rows)
    )
    return (
        "<div>\n<style scoped>\n    .dataframe tbody tr th:only-of-type {\n"
        "        vertical-align: middle;\n    }\n</style>\n"
        '<table border="1" class="dataframe">\n  <thead>\n'
        f'    <tr style="text-align: right;">\n      <th></th>\n{head}\n    </tr>\n'
        f"  </thead>\n  <tbody>\n{body}  </tbody>\n</table>\n"
        f"<p>{rows} rows × {len(cols)} columns</p>\n</div>"
    )


# -- HTML ------------------------------------------------------------------------------


def test_html_table_columns_line_up_on_screen() -> None:
    html = pandas_like_html(5, ["alpha", "beta", "c"])
    lines = screen_of(render({"text/html": html}))
    body = [ln for ln in lines if ln.startswith("│")]
    assert len(body) == 6  # header + 5 rows
    # Every row has its column separators at the same screen columns.
    bars = {tuple(m.start() for m in re.finditer("│", ln)) for ln in body}
    assert len(bars) == 1
    # Header row holds the column names; index column holds 0..4; numbers right-aligned.
    assert "alpha" in body[0] and "beta" in body[0]
    assert [ln.split("│")[1].strip() for ln in body[1:]] == ["0", "1", "2", "3", "4"]
    bar_cols = next(iter(bars))
    beta_end = bar_cols[3] - 2  # the last cell of the "beta" column, before " │"
    for ln in body[1:]:
        assert ln[beta_end] != " "
    # Rules: top, under the header, bottom; the caption paragraph below the table.
    assert lines[0].startswith("┌") and any(ln.startswith("├") for ln in lines)
    assert any(ln.startswith("└") for ln in lines)
    assert any(ln == "5 rows × 3 columns" for ln in lines)
    # The <style> block is dropped.
    assert not any("vertical-align" in ln for ln in lines)


def test_html_table_fits_a_narrow_terminal() -> None:
    html = pandas_like_html(3, ["a_fairly_long_column_name", "another_long_one", "third_col_x"])
    text = render({"text/html": html}, width=40)
    lines = screen_of(text, cols=40)
    assert all(len(ln) <= 40 for ln in strip_ansi(text).split("\n"))
    # Too wide side by side: column blocks, one below the other, each with the index
    # and its headers whole; inside a block the columns line up.
    blocks = [b for b in "\n".join(lines).strip().split("\n\n") if b.startswith("┌")]
    assert len(blocks) > 1
    headers = []
    for block in blocks:
        body = [ln for ln in block.split("\n") if ln.startswith("│")]
        bars = {tuple(m.start() for m in re.finditer("│", ln)) for ln in body}
        assert len(bars) == 1
        headers += [c.strip() for c in body[0].split("│")[2:-1]]
        assert [ln.split("│")[1].strip() for ln in body[1:]] == ["0", "1", "2"]
    assert headers == ["a_fairly_long_column_name", "another_long_one", "third_col_x"]


def test_html_headings_paragraphs_lists_and_links() -> None:
    html = (
        "<h1>Report</h1><p>Some <b>bold</b> and <em>italic</em> text, and a "
        '<a href="https://example.org/x">link</a>.</p>'
        "<ul><li>first</li><li>second<ol><li>inner one</li><li>inner two</li></ol></li></ul>"
        "<pre>def f():\n    return 1</pre><script>alert('x')</script>"
    )
    lines = screen_of(render({"text/html": html}, color=False))
    assert lines[0] == "Report"
    assert lines[1] == "══════"
    para = next(ln for ln in lines if ln.startswith("Some"))
    assert para == "Some bold and italic text, and a link <https://example.org/x>."
    assert "• first" in lines
    assert "• second" in lines
    i = lines.index("• second")
    assert lines[i + 1] == "  1. inner one"
    assert lines[i + 2] == "  2. inner two"
    assert "  def f():" in lines and "      return 1" in lines
    assert not any("alert" in ln for ln in lines)


def test_html_osc8_hyperlinks_when_supported() -> None:
    c = ctx()
    c.caps = TerminalCapabilities(is_tty=True, colors=256, hyperlinks=True)
    text = default_registry().render({"text/html": '<a href="https://x.org">here</a>'}, {}, c).text
    assert "\x1b]8;;https://x.org\x1b\\" in text
    assert "https://x.org" not in strip_ansi(text)  # the URL is in the link, not the text


def test_html_colour_and_bold_and_no_colour() -> None:
    colored = render({"text/html": "<b>hi</b>"})
    assert "\x1b[1m" in colored
    assert render({"text/html": "<b>hi</b>"}, color=False) == "hi"


def test_broken_html_still_renders_text() -> None:
    text = render({"text/html": "<div><p>unclosed <b>bold <table><tr><td>1<td>2</div"}, color=False)
    assert "unclosed" in text and "bold" in text and "1" in text and "2" in text


def test_html_multiindex_rowspan() -> None:
    html = (
        "<table><thead><tr><th></th><th></th><th>x</th></tr></thead><tbody>"
        '<tr><th rowspan="2">A</th><th>1</th><td>10</td></tr>'
        "<tr><th>2</th><td>20</td></tr></tbody></table>"
    )
    lines = [ln for ln in screen_of(render({"text/html": html}, color=False)) if ln.startswith("│")]
    assert lines[1].split("│")[1:4] == [" A ", " 1 ", " 10 "]
    assert lines[2].split("│")[1:4] == ["   ", " 2 ", " 20 "]


# -- JSON and source ----------------------------------------------------------------------


def test_json_indented_and_highlighted() -> None:
    data = {"a": [1, 2], "b": {"c": None, "d": "é"}}
    plain = render({"application/json": data}, color=False)
    assert plain == json.dumps(data, indent=2, ensure_ascii=False)
    colored = render({"application/json": data})
    assert "\x1b[" in colored and strip_ansi(colored) == plain


def test_truecolor_formatter_when_the_terminal_has_it() -> None:
    c = ctx()
    c.caps = TerminalCapabilities(is_tty=True, colors=16777216)
    text = default_registry().render({"application/json": {"a": 1}}, {}, c).text
    assert "\x1b[38;2;" in text


def test_source_types_highlighted() -> None:
    text = render({"text/x-python": "def f(x):\n    return x\n", "text/plain": "?"})
    assert strip_ansi(text) == "def f(x):\n    return x"
    assert "\x1b[" in text


def test_text_plain_keeps_ansi_colours() -> None:
    assert render({"text/plain": "\x1b[31mred\x1b[0m"}) == "\x1b[31mred\x1b[0m"
    assert render({"text/plain": "\x1b[31mred\x1b[0m"}, color=False) == "red"


# -- Markdown -------------------------------------------------------------------------------


MARKDOWN = """\
# Title

Intro with *emphasis*, **strong**, `code` and [a link](https://example.org).

## Section

- one
- two
    - nested
- three

1. first
2. second

| name | value |
|:-----|------:|
| a    | 1.5   |
| bbb  | 22    |

```python
print("hi")
```

> quoted

Math: $x^2 + \\alpha$
"""


def test_markdown_blocks() -> None:
    lines = screen_of(render({"text/markdown": MARKDOWN}, color=False))
    assert lines[:2] == ["Title", "═════"]
    assert "Intro with emphasis, strong, code and a link <https://example.org>." in lines
    assert "Section" in lines and lines[lines.index("Section") + 1] == "───────"
    assert "• one" in lines and "  ◦ nested" in lines and "• three" in lines
    assert "1. first" in lines and "2. second" in lines
    table = [ln for ln in lines if ln.startswith("│ ") and ln.endswith(" │")]
    assert table == ["│ name │ value │", "│ a    │   1.5 │", "│ bbb  │    22 │"]
    assert '  print("hi")' in lines
    assert "│ quoted" in lines
    assert "Math: x² + α" in lines


def test_markdown_code_block_highlighted() -> None:
    text = render({"text/markdown": "```python\nimport os\n```"})
    assert "\x1b[" in text and strip_ansi(text) == "  import os"


def test_markdown_parser_structure() -> None:
    blocks = parse_markdown("Setext\n======\n\npara  \nbreak\n\n---\n")
    lines = layout(blocks, 40, Styler(False))
    assert lines == ["Setext", "══════", "", "para", "break", "", "─" * 40]


# -- LaTeX ----------------------------------------------------------------------------------


def latex_screen(src: str) -> list[str]:
    return [ln for ln in screen_of("\n".join(render_latex(src))) if ln]


def test_latex_fraction() -> None:
    assert latex_screen(r"$$\frac{a}{b}$$") == ["a", "─", "b"]


def test_latex_powers_subscripts_greek() -> None:
    assert latex_screen(r"$x^2 + y_1 = \alpha\beta$") == ["x² + y₁ = αβ"]
    assert inline_math(r"e^{i\pi}") == "e^(iπ)"
    assert inline_math(r"\frac{a+b}{c}") == "(a + b)/c"


def test_latex_sum_with_limits() -> None:
    lines = latex_screen(r"\sum_{i=1}^n i")
    assert lines[1].strip().startswith("∑")
    col = lines[1].index("∑")
    assert lines[0][col] == "n"  # upper limit above the sign
    assert "i=1" in lines[2]


def test_latex_integral() -> None:
    assert latex_screen(r"\int_0^1 x\,dx") == ["∫₀¹ x dx"]


def test_latex_matrix_rows() -> None:
    lines = latex_screen(r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}")
    assert lines == ["⎛1  2⎞", "⎝3  4⎠"]
    lines = latex_screen(r"\begin{bmatrix} a & b & c \\ d & e & f \\ g & h & i \end{bmatrix}")
    assert lines == ["⎡a  b  c⎤", "⎢d  e  f⎥", "⎣g  h  i⎦"]


def test_latex_unknown_shows_source() -> None:
    assert render_latex(r"\weird{x}") == [r"\weird{x}"]


def test_latex_bundle_through_registry() -> None:
    text = render({"text/latex": r"$$\frac{1}{2}$$", "text/plain": "1/2"}, color=False)
    assert text == "1\n─\n2"


# -- text helpers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cols", "rows"),
    [
        ("abc\n", 80, 1),
        ("a" * 80 + "\n", 80, 1),
        ("a" * 81 + "\n", 80, 2),
        ("x", 80, 0),
        ("\x1b[31m" + "a" * 10 + "\x1b[0m\n", 5, 2),
        ("12345\r1\n", 5, 1),
        ("漢字\n", 3, 2),
    ],
)
def test_rows_of(text: str, cols: int, rows: int) -> None:
    assert rows_of(text, cols) == rows


def test_mime_order_and_plain() -> None:
    reg = default_registry()
    data = {"text/html": "<b>x</b>", "text/plain": "plain x"}
    assert reg.render(data, {}, ctx(config=DisplayConfig(plain=True))).text == "plain x"
    c = ctx(config=DisplayConfig(mime_order=["text/plain", "text/html"]))
    assert reg.render(data, {}, c).text == "plain x"
    assert reg.render(data, {}, ctx(color=False)).text == "x"


def test_parse_html_returns_blocks() -> None:
    assert parse_html("") == []
