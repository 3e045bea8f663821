"""Review of issue 14's wide tables, LaTeX layout and default colours (REVIEW.md):
each test is one finding, read the way a user reads the screen."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kconsole.display import RenderContext, TerminalCapabilities, default_registry
from kconsole.display.text import display_width

pd = pytest.importorskip("pandas")


def screen(bundle: dict[str, str], width: int, *, color: bool = False) -> list[str]:
    """A bundle as the REPL prints it in a terminal ``width`` cells wide."""
    caps = TerminalCapabilities(is_tty=True, colors=256, hyperlinks=False)
    c = RenderContext(width=width, height=40, color=color, tty=True, caps=caps)
    r = default_registry().render({**bundle, "text/plain": "PLAIN"}, {}, c)
    assert r.mime != "text/plain", r.notes
    return r.text.split("\n")


def blocks_of(lines: list[str]) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for ln in lines:
        if ln.strip():
            out[-1].append(ln)
        else:
            out.append([])
    return [b for b in out if b]


# -- T1: column groups (a MultiIndex's top level) ---------------------------------------


def agg_frame() -> pd.DataFrame:
    """What ``df.groupby(...).agg(["min", "mean", "max", "std"])`` looks like."""
    cols = pd.MultiIndex.from_product(
        [["temperature_celsius", "pressure"], ["min", "mean", "max", "std"]]
    )
    rows = [[(r * 8 + c) * 37.123457 + 100 for c in range(8)] for r in range(3)]
    return pd.DataFrame(rows, columns=cols)


@pytest.mark.parametrize("width", [40, 50, 60, 80])
def test_a_column_group_label_reads_whole_in_every_block(width: int) -> None:
    lines = screen({"text/html": agg_frame().to_html()}, width)
    assert all(display_width(ln) <= width for ln in lines)
    blocks = blocks_of(lines)
    for block in blocks:
        text = "\n".join(block)
        top = block[1]  # the group row, under the box's top rule
        # A block showing a group's column names the group whole, on one line.
        for group, first in (("temperature_celsius", 0), ("pressure", 4)):
            if any(
                f"{(r * 8 + first + k) * 37.123457 + 100:.6f}" in text
                for r in range(3)
                for k in range(4)
            ):
                assert group in top, (group, block)
        assert "temperatur\n" not in text and "e_celsius" not in text.replace(
            "temperature_celsius", ""
        )


def test_a_column_group_does_not_widen_its_first_column() -> None:
    # pandas' text fits the four temperature columns in 60 cells: so must the table.
    lines = screen({"text/html": agg_frame().to_html()}, 60)
    first = blocks_of(lines)[0]
    names = [c.strip() for c in first[2].strip("│").split("│")]
    assert names[1:] == ["min", "mean", "max", "std"]
    widths = {len(c) for c in first[-2].strip("│").split("│")[1:]}
    assert len(widths) == 1  # the values' columns are all as wide


@pytest.mark.parametrize("width", [8, 9, 12, 20, 40])
def test_a_spanned_header_never_makes_a_line_wider_than_the_terminal(width: int) -> None:
    for html in (
        "<table><tr><th colspan=10>東京</th></tr><tr>" + "<td>1</td>" * 10 + "</tr></table>",
        "<table><tr><th colspan=1000000000>h</th></tr><tr><td>1</td></tr></table>",
        "<table><thead><tr><th></th><th colspan=3>a group label</th></tr></thead>"
        "<tbody><tr><th>0</th><td>1</td><td>2</td><td>3</td></tr></tbody></table>",
    ):
        lines = screen({"text/html": html}, width)
        assert all(display_width(ln) <= max(width, 8) for ln in lines), (html, lines)


_word = st.sampled_from(
    ["a", "bb", "1.5", "NaN", "-123456.789", "東京都", "long_header_name", "two words"]
)


@st.composite
def grouped_tables(draw: st.DrawFn) -> tuple[str, set[str]]:
    """A header row of column groups over a row of names, with or without an index."""
    ncols = draw(st.integers(1, 9))
    top: list[tuple[str, int]] = []
    while sum(k for _, k in top) < ncols:
        top.append((draw(_word), draw(st.integers(1, ncols - sum(k for _, k in top)))))
    names = [draw(_word) for _ in range(ncols)]
    body = [[draw(_word) for _ in range(ncols)] for _ in range(draw(st.integers(1, 3)))]
    index = draw(st.booleans())
    th = "<th></th>" if index else ""
    html = (
        f"<table><thead><tr>{th}"
        + "".join(f'<th colspan="{k}">{t}</th>' for t, k in top)
        + f"</tr><tr>{th}"
        + "".join(f"<th>{t}</th>" for t in names)
        + "</tr></thead><tbody>"
        + "".join(
            f"<tr>{f'<th>{r}</th>' if index else ''}"
            + "".join(f"<td>{t}</td>" for t in row)
            + "</tr>"
            for r, row in enumerate(body)
        )
        + "</tbody></table>"
    )
    texts = {t for t, _ in top} | set(names) | {t for row in body for t in row}
    texts |= {str(r) for r in range(len(body))} if index else set()
    return html, {w for t in texts for w in t.split()}


@settings(max_examples=50, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(table=grouped_tables(), width=st.integers(8, 60))
def test_any_grouped_header_fits_and_keeps_its_words(
    table: tuple[str, set[str]], width: int
) -> None:
    html, words = table
    lines = screen({"text/html": html}, width)
    assert all(display_width(ln) <= max(width, 8) for ln in lines), lines
    if all(display_width(w) <= width - 8 for w in words):  # each fits beside the index
        # Every word on the screen is one of the table's, whole.
        shown = {t for ln in lines for t in re.split(r"[\s│─┌┬┐├┼┤└┴┘]+", ln) if t}
        assert shown <= words, (shown - words, lines)


# -- L1: a text/latex bundle with more than one formula ---------------------------------


def latex(src: str, width: int = 80) -> list[str]:
    return screen({"text/latex": src}, width)


def test_two_inline_formulas_are_two_formulas_and_the_text_between_them() -> None:
    # IPython's Latex(r"$x$ and $y$"): what a notebook shows as "x and y".
    assert latex(r"$x$ and $y^2$") == ["x and y²"]
    assert latex(r"$$a^2$$ where $$b_1$$") == ["  a²", "where", "  b₁"]
    assert latex(r"\[x\] and \[y\]") == ["  x", "and", "  y"]
    # One formula is still laid out in two dimensions.
    assert latex(r"$\displaystyle \frac{1}{2}$") == ["1", "─", "2"]
    assert latex(r"$$\frac{1}{2}$$") == ["1", "─", "2"]


# -- L2: an inline fraction next to a term -----------------------------------------------


@pytest.mark.parametrize(
    ("src", "shown"),
    [
        (r"\frac{1}{2}mv^2", "(1/2)mv²"),
        (r"\frac{a}{b}c", "(a/b)c"),
        (r"\frac{a}{b}\frac{c}{d}", "(a/b)(c/d)"),
        (r"\frac{a}{b}^2", "(a/b)²"),
        (r"\frac{1}{2}(x+1)", "(1/2)(x + 1)"),
        (r"(x+1)\frac{1}{2}", "(x + 1)(1/2)"),
        (r"2\frac{a}{b}", "2(a/b)"),
        # Alone, or set apart by an operator, a fraction needs no parentheses.
        (r"x = \frac{1}{2}", "x = 1/2"),
        (r"\frac{a}{b} + c", "a/b + c"),
        (r"f(\frac{a}{b})", "f(a/b)"),
        (r"\frac{a+b}{2a}", "(a + b)/(2a)"),
        (r"e^{\frac{1}{2}}", "e^(1/2)"),
    ],
)
def test_an_inline_fraction_reads_one_way_only(src: str, shown: str) -> None:
    assert latex(f"The value ${src}$ here") == [f"The value {shown} here"]


def test_a_function_name_takes_an_inline_fraction_as_its_argument() -> None:
    assert latex(r"so $\sin\frac{a}{b}$ and $\frac{1}{2} \sin x$") == ["so sin(a/b) and 1/2 sin x"]


# -- L3: a display formula wider than the terminal ---------------------------------------

# sympy.latex(series(exp(x)/(1 - x), x, 0, 14)): 180 cells wide in two dimensions.
SERIES = (
    r"1 + 2 x + \frac{5 x^{2}}{2} + \frac{8 x^{3}}{3} + \frac{65 x^{4}}{24} + "
    r"\frac{163 x^{5}}{60} + \frac{1957 x^{6}}{720} + \frac{685 x^{7}}{252} + "
    r"\frac{109601 x^{8}}{40320} + \frac{98641 x^{9}}{36288} + "
    r"\frac{9864101 x^{10}}{3628800} + \frac{13563139 x^{11}}{4989600} + "
    r"\frac{260412269 x^{12}}{95800320} + \frac{8463398743 x^{13}}{3113510400} + "
    r"O\left(x^{14}\right)"
)


@pytest.mark.parametrize("width", [40, 80])
def test_a_formula_wider_than_the_terminal_is_broken_between_terms(width: int) -> None:
    lines = latex(f"$\\displaystyle {SERIES}$", width)
    assert all(display_width(ln) <= width for ln in lines), lines
    text = "\n".join(lines)
    # Every term is there, each whole: its numerator over its bar over its denominator.
    for num, den in [("5x²", "2"), ("109601x⁸", "40320"), ("8463398743x¹³", "3113510400")]:
        row = next(i for i, ln in enumerate(lines) if num in ln)
        col = lines[row].index(num)
        assert lines[row + 1][col : col + len(num)].strip("─") == ""
        assert den in lines[row + 2][col - 2 : col + len(num) + 2]
    assert "O(x¹⁴)" in text and text.count("+") == 14
    # A formula that fits is left alone.
    assert latex(r"$\displaystyle 1 + \frac{x}{2}$", width) == ["    x", "1 + ─", "    2"]


# -- L4, L5: sympy's lists and Mod ------------------------------------------------------


def test_sympy_lists_and_tuples_have_one_space_after_a_comma() -> None:
    # sympy.latex(solve(x**2 - 2)), latex((1, x)): ",\ " between the items.
    assert latex(r"$\displaystyle \left[ - \sqrt{2}, \  \sqrt{2}\right]$") == ["[−√2, √2]"]
    assert latex(r"$\displaystyle \left( 1, \  x\right)$") == ["(1, x)"]
    # A space asked for on its own stays: "a\quad b", "f(x)\,dx".
    assert latex(r"$a \quad b$") == ["a  b"]
    assert latex(r"$f(x)\,dx$") == ["f(x) dx"]


def test_mod_hline_and_mathbin_are_laid_out_not_shown_as_source() -> None:
    assert latex(r"$\displaystyle x \bmod 3$") == ["x mod 3"]  # sympy.latex(Mod(x, 3))
    assert latex(r"$a \equiv b \pmod{n}$") == ["a ≡ b (mod n)"]
    assert latex(r"$x \mathbin{\#} y \mathrel{:=} 2$") == ["x # y := 2"]
    assert latex(r"$$\begin{array}{c|c} 1 & 2 \\ \hline 3 & 4 \end{array}$$") == ["1  2", "3  4"]


# -- S1: code on a 16-colour terminal ----------------------------------------------------

# The 16 colours that read on black and on white in xterm's, the Linux console's,
# GNOME's (Tango) and Windows Terminal's palettes (contrast >= 2.6 in all four):
# red, magenta, bright red, bright black, bright blue, bright magenta. Not blue (2.2:1
# on xterm's black, 1.6 on the console's), green, yellow and cyan (1.7-2.2 on white).
READABLE_16 = {"31", "35", "90", "91", "94", "95"}
PY = "import os\n@cache\ndef f(x=0x1F):  # note\n    return len('s') + 3.5 if x else None\n"


@pytest.mark.parametrize("term", ["xterm", "screen", "linux"])
def test_highlighted_code_on_a_16_colour_terminal_reads_on_black_and_white(term: str) -> None:
    from kconsole.display.terminal import capabilities_from_env

    caps = capabilities_from_env({"TERM": term})
    assert caps.colors == 16
    ctx = RenderContext(width=80, color=True, tty=True, caps=caps)
    for bundle in ({"text/x-python": PY}, {"application/json": {"key": [1, "s", None]}}):
        text = default_registry().render(bundle, {}, ctx).text
        codes = {c for sgr in re.findall(r"\x1b\[([0-9;]*)m", text) for c in sgr.split(";")}
        colours = {c for c in codes if c and (30 <= int(c) <= 37 or 90 <= int(c) <= 97)}
        assert colours <= READABLE_16, (bundle, colours - READABLE_16)
        assert len(colours) >= 2  # still highlighted


# -- T3, T2: what takes a column's width ------------------------------------------------


def test_a_link_in_a_cell_shows_its_url_whole() -> None:
    # df.to_html(render_links=True) or escape=False, in a terminal without OSC 8 links:
    # the URL is printed after the text, and the column is as wide as both.
    df = pd.DataFrame({"site": ['<a href="https://example.org/a">docs</a>', "x"], "n": [1, 2]})
    lines = screen({"text/html": df.to_html(escape=False)}, 80)
    assert any("│ docs <https://example.org/a> │" in ln for ln in lines), lines


def test_a_long_index_label_leaves_the_data_columns_room_for_their_headers() -> None:
    df = pd.DataFrame(
        [[1.5, 2.5, 3.5], [4.5, 5.5, 6.5]],
        columns=["x" * 50, "measurement_of_the_day", "z"],
        index=["i" * 70, "j"],
    )
    lines = screen({"text/html": df.to_html()}, 80)
    assert all(display_width(ln) <= 80 for ln in lines)
    text = "\n".join(lines)
    # Both fit beside an index of half the width: neither is cut for the index.
    assert "measurement_of_the_day" in text
    assert sum("x" in ln for ln in lines) <= 2  # 50 x's: at most two pieces
    for v in ("1.5", "2.5", "3.5", "4.5", "5.5", "6.5"):
        assert v in text
