"""LaTeX and sympy layout (issue 14, item 6), read as a user reads the screen.

The sympy strings are what ``sympy.latex()`` (1.14) returns for the expression in the
comment beside each, copied here so the tests need no sympy.
"""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kconsole.display import RenderContext, TerminalCapabilities, default_registry
from kconsole.display.latex import inline_math, render_latex

# sympy.latex(log(x + 1)), sin(x), sin(x)**2 + cos(x)**2, Max(x, y), re(x), asin(x)
LOG = r"\log{\left(x + 1 \right)}"
SIN = r"\sin{\left(x \right)}"
SIN2_COS2 = r"\sin^{2}{\left(x \right)} + \cos^{2}{\left(x \right)}"
MAX = r"\max\left(x, y\right)"
RE = r"\operatorname{re}{\left(x\right)}"
ASIN = r"\operatorname{asin}{\left(x \right)}"
# (a + b)/(2*a), Rational(1, 2), Derivative(sin(x), x), Limit(sin(x)/x, x, 0)
FRAC = r"\frac{a + b}{2 a}"
HALF = r"\frac{1}{2}"
DERIV = r"\frac{d}{d x} \sin{\left(x \right)}"
LIMIT = r"\lim_{x \to 0^+}\left(\frac{\sin{\left(x \right)}}{x}\right)"
# exp(-x**2/2)/sqrt(2*pi)
GAUSS = r"\frac{\sqrt{2} e^{- \frac{x^{2}}{2}}}{2 \sqrt{\pi}}"
# Matrix([[1, 2], [3, 4]]), Matrix([[x**2, Rational(1, 2)], [sin(x), 10]])
MATRIX = r"\left[\begin{matrix}1 & 2\\3 & 4\end{matrix}\right]"
MATRIX2 = r"\left[\begin{matrix}x^{2} & \frac{1}{2}\\\sin{\left(x \right)} & 10\end{matrix}\right]"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def screen(src: str) -> list[str]:
    """A text/latex bundle as the REPL prints it (sympy's _repr_latex_ wraps its
    LaTeX in ``$\\displaystyle ...$``)."""
    caps = TerminalCapabilities(is_tty=True, colors=256)
    c = RenderContext(width=80, color=False, tty=True, caps=caps)
    r = default_registry().render({"text/latex": src, "text/plain": "PLAIN"}, {}, c)
    assert r.mime == "text/latex"
    return r.text.split("\n")


def sympy_repr(src: str) -> list[str]:
    return screen(f"$\\displaystyle {src}$")


# -- function names ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "shown"),
    [
        (LOG, "log(x + 1)"),
        (SIN, "sin(x)"),
        (SIN2_COS2, "sin²(x) + cos²(x)"),
        (MAX, "max(x, y)"),
        (RE, "re(x)"),
        (ASIN, "asin(x)"),
        (r"\sin x", "sin x"),
        (r"2 \sin{\left(x \right)}", "2 sin(x)"),
        (r"\exp{\left(- x \right)}", "exp(−x)"),
    ],
)
def test_function_names_carry_no_stray_space(src: str, shown: str) -> None:
    assert sympy_repr(src) == [shown]
    assert inline_math(src) == shown


# -- fractions inline --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "shown"),
    [
        (FRAC, "(a + b)/(2a)"),
        (HALF, "1/2"),
        (r"\frac{\pi}{4}", "π/4"),
        (r"\frac{1}{x^{2}}", "1/x²"),
        (r"\frac{1}{\sqrt{2}}", "1/√2"),
        (r"\frac{1}{2 \pi}", "1/(2π)"),
        (r"\frac{\frac{1}{2}}{3}", "(1/2)/3"),
        (r"\frac{\sin{\left(x \right)}}{x}", "sin(x)/x"),
        (r"\frac{12.5}{n_{i}}", "12.5/nᵢ"),
        (DERIV, "d/(dx) sin(x)"),
        (LIMIT, "lim_(x→0⁺) (sin(x)/x)"),
        (GAUSS, "(√2 e^(−x²/2))/(2√π)"),
        (r"\sqrt{2} x", "√2 x"),
        (r"2 \sqrt{x}", "2√x"),
    ],
)
def test_inline_fractions_keep_their_parentheses_unambiguous(src: str, shown: str) -> None:
    assert inline_math(src) == shown


def test_inline_fraction_in_markdown_text() -> None:
    caps = TerminalCapabilities(is_tty=True, colors=256)
    c = RenderContext(width=80, color=False, tty=True, caps=caps)
    md = f"The mean is ${FRAC}$ and half is ${HALF}$."
    text = default_registry().render({"text/markdown": md}, {}, c).text
    assert text == "The mean is (a + b)/(2a) and half is 1/2."


def test_display_fraction_and_derivative() -> None:
    assert sympy_repr(FRAC) == ["a + b", "─────", " 2a"]
    # The operator and its argument one space apart.
    assert sympy_repr(DERIV) == ["d", "── sin(x)", "dx"]


# -- align -------------------------------------------------------------------------------


def test_align_lines_up_on_the_ampersand() -> None:
    lines = screen(
        "\\begin{align}\nf(x) &= x^2 + 1 \\\\\ng(x) &= \\frac{1}{x} \\\\\nh &= 3\n\\end{align}"
    )
    assert lines == [
        "f(x) = x² + 1",
        "       1",
        "g(x) = ─",
        "       x",
        "   h = 3",
    ]


def test_align_with_several_column_pairs() -> None:
    lines = screen(
        r"\begin{align*} a &= b + c & d &= e \\ total_{n} &= 1 & x &\leq y + 2 \end{align*}"
    )
    assert lines == [
        "     a = b + c    d = e",
        "totalₙ = 1        x ≤ y + 2",
    ]


def test_aligned_inside_display_math_and_eqnarray() -> None:
    assert screen(r"$$\begin{aligned} x + y &= 3 \\ 2x &\leq 10 \end{aligned}$$") == [
        "x + y = 3",
        "   2x ≤ 10",
    ]
    assert screen(r"\begin{eqnarray} a & = & b \\ cc & = & d + e \end{eqnarray}") == [
        " a = b",
        "cc = d + e",
    ]


# -- matrices ----------------------------------------------------------------------------


def test_sympy_matrices_have_no_empty_row() -> None:
    assert sympy_repr(MATRIX) == ["⎡1  2⎤", "⎣3  4⎦"]
    assert sympy_repr(MATRIX2) == [
        "⎡        1 ⎤",
        "⎢  x²    ─ ⎥",
        "⎢        2 ⎥",
        "⎣sin(x)  10⎦",
    ]


def test_matrix_rows_with_fractions_stack_without_blank_rows() -> None:
    lines = screen(r"\begin{bmatrix} \frac{1}{2} & x \\ y & \frac{1}{3} \end{bmatrix}")
    assert lines == ["⎡1   ⎤", "⎢─  x⎥", "⎢2   ⎥", "⎢   1⎥", "⎢y  ─⎥", "⎣   3⎦"]


def test_matrix_numbers_line_up_with_even_gaps() -> None:
    # Numbers right-aligned (units under units), two cells between columns.
    assert screen(r"\begin{pmatrix} 1 & -2 \\ -3 & 4 \end{pmatrix}") == [
        "⎛ 1  −2⎞",
        "⎝−3   4⎠",
    ]
    assert screen(r"\begin{bmatrix} 10 & 200 & 3 \\ 4 & 5 & 6000 \end{bmatrix}") == [
        "⎡10  200     3⎤",
        "⎣ 4    5  6000⎦",
    ]


def test_array_follows_its_column_spec_and_parenthesised_arrays_render() -> None:
    assert screen(r"\left(\begin{array}{lr} a & 10 \\ bbb & 2 \end{array}\right)") == [
        "⎛a    10⎞",
        "⎝bbb   2⎠",
    ]
    assert screen(r"\begin{array}{c|c} x & y \\ zzz & w \end{array}") == [
        " x   y",
        "zzz  w",
    ]


def test_inline_matrix_stays_on_one_line() -> None:
    assert inline_math(MATRIX) == "[1, 2; 3, 4]"
    assert render_latex(r"$\begin{pmatrix} 1 & 2 \end{pmatrix}$ and text") == ["(1, 2) and text"]


# -- any matrix --------------------------------------------------------------------------

_ENTRY = st.sampled_from(
    ["1", "-2", "10", "x", r"x^{2}", HALF, r"\frac{a + b}{2 a}", SIN, LOG, r"\sqrt{2}", "", "0.5"]
)


@settings(max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(
    env=st.sampled_from(["pmatrix", "bmatrix", "matrix", "vmatrix", "array"]),
    rows=st.lists(st.lists(_ENTRY, min_size=1, max_size=4), min_size=1, max_size=4),
)
def test_any_matrix_has_no_empty_row_and_straight_columns(env: str, rows: list[list[str]]) -> None:
    ncols = max(len(r) for r in rows)
    spec = "{" + "c" * ncols + "}" if env == "array" else ""
    body = r" \\ ".join(" & ".join(r) for r in rows)
    start = time.monotonic()
    lines = render_latex(f"\\begin{{{env}}}{spec} {body} \\end{{{env}}}")
    assert time.monotonic() - start < 1.0
    assert not any(_CONTROL.search(ln) for ln in lines)
    if all(not any(c for c in r) for r in rows):
        return  # nothing to show
    if len(rows) > 1 and not any(rows[-1]):
        rows = rows[:-1]  # "\\" before \end ends the last row: it starts none
    # Each row is as tall as its tallest entry (a fraction takes 3): no blank row.
    tall = {HALF, r"\frac{a + b}{2 a}"}
    assert len(lines) == sum(3 if tall & set(r) else 1 for r in rows)
    inner = [ln.strip("⎛⎜⎝⎞⎟⎠⎡⎢⎣⎤⎥⎦│|()[] ") for ln in lines]
    heights = [3 if tall & set(r) else 1 for r in rows]
    k = 0
    for r, h in zip(rows, heights, strict=True):
        if any(r):
            assert any(inner[k : k + h]), lines
        k += h
