"""Input and code colours readable on dark and light backgrounds (issue 14, item 7).

kconsole cannot know the terminal's background: every colour of its default style
must stand out on black and on white. The measure is WCAG 2's contrast ratio (3 is
the least it asks of large text and interface parts; kconsole's style keeps 3.5).
"""

from __future__ import annotations

import re

import pytest
from prompt_toolkit.styles import Attrs
from pygments import token as T
from pygments.lexers import PythonLexer
from pygments.style import Style

from kconsole.display import DisplayConfig, RenderContext, TerminalCapabilities, default_registry
from kconsole.display.style import KconsoleStyle, contrast, get_style
from kconsole.repl import check_style
from kconsole.repl.style import input_style

MIN_CONTRAST = 3.5
CODE = (
    "import os.path as osp\n"
    "from collections import OrderedDict\n"
    "@decorator\n"
    "class Point(Base):\n"
    '    """Doc."""\n'
    "    def norm(self, x=0x1F, *args):  # comment\n"
    "        raise ValueError(f'bad {x!r}\\n') from None\n"
    "        return len(args) is not None and True or 3.5e-2\n"
)


def readable(color: str) -> bool:
    return min(contrast(color, "#000000"), contrast(color, "#ffffff")) >= MIN_CONTRAST


def all_token_types() -> list[T._TokenType]:
    """Every token type pygments' lexers emit: the standard ones and their parents."""
    return sorted({t for tok in T.STANDARD_TYPES for t in (tok, *_parents(tok))}, key=str)


def _parents(tok: T._TokenType) -> list[T._TokenType]:
    out = []
    while tok.parent is not None:
        tok = tok.parent
        out.append(tok)
    return out


def test_contrast_ratio_is_wcag() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777", "#fff") == pytest.approx(4.48, abs=0.01)
    assert contrast("#0000ff", "#000000") == pytest.approx(2.44, abs=0.01)


def test_every_colour_of_the_default_style_reads_on_black_and_on_white() -> None:
    seen = set()
    for tok in all_token_types():
        s = KconsoleStyle.style_for_token(tok)
        assert not s["bgcolor"], tok  # the terminal's own background, always
        if s["color"]:
            seen.add(s["color"])
            assert readable("#" + s["color"]), (tok, s["color"])
    assert len(seen) >= 8  # still a highlighting, not a monochrome


def test_pygments_default_style_fails_the_same_check() -> None:
    # What kconsole used before: pure blue module names, 2.4:1 on a black terminal.
    default = get_style("default")
    assert default.style_for_token(T.Name.Namespace)["color"].lower() == "0000ff"
    assert not readable("#0000ff")


def test_the_input_style_colours_every_python_token_readably() -> None:
    """What prompt_toolkit draws: the style the REPL's prompt gets, asked for the class
    of every token the Python lexer produces for real code."""
    style = input_style()
    tokens = {tok for tok, _ in PythonLexer().get_tokens(CODE)}
    colours = {}
    for tok in tokens:
        cls = "class:pygments." + ".".join(tok).lower() if tok is not T.Token else ""
        attrs: Attrs = style.get_attrs_for_style_str(cls)
        if attrs.color:
            colours[tok] = attrs.color
            assert readable("#" + attrs.color), (tok, attrs.color)
    # Module names, keywords, strings, numbers, comments and builtins are coloured.
    for tok in (T.Name.Namespace, T.Keyword.Namespace, T.String.Single, T.Number.Hex):
        assert tok in colours, tok
    assert any(t in T.Comment for t in colours) and any(t in T.Name.Builtin for t in colours)


def test_style_names_still_work_and_kconsole_is_one() -> None:
    check_style("kconsole")
    check_style("monokai")
    with pytest.raises(ValueError, match=r"available: .*kconsole.*monokai"):
        check_style("nosuch")
    monokai = input_style("monokai").get_attrs_for_style_str("class:pygments.keyword")
    assert monokai.color == get_style("monokai").style_for_token(T.Keyword)["color"]
    assert issubclass(get_style("kconsole"), Style)


_SGR_256 = re.compile(r"\x1b\[(?:[0-9;]*;)?38;5;(\d+)")
_SGR_RGB = re.compile(r"\x1b\[(?:[0-9;]*;)?38;2;(\d+);(\d+);(\d+)")


def xterm_256(n: int) -> str:
    """The RGB of xterm colour ``n`` (16-255: the cube and the grey ramp)."""
    if n >= 232:
        v = 8 + 10 * (n - 232)
        return f"#{v:02x}{v:02x}{v:02x}"
    n -= 16
    levels = [0, 95, 135, 175, 215, 255]
    return "#" + "".join(f"{levels[d]:02x}" for d in (n // 36, n // 6 % 6, n % 6))


@pytest.mark.parametrize("colors", [256, 16777216])
def test_highlighted_code_output_is_readable_by_default(colors: int) -> None:
    caps = TerminalCapabilities(is_tty=True, colors=colors)
    ctx = RenderContext(width=80, color=True, tty=True, caps=caps)
    text = default_registry().render({"text/x-python": CODE}, {}, ctx).text
    if colors == 256:
        used = {xterm_256(int(n)) for n in _SGR_256.findall(text)}
        assert all(int(n) >= 16 for n in _SGR_256.findall(text))
    else:
        used = {"#" + "".join(f"{int(v):02x}" for v in m) for m in _SGR_RGB.findall(text)}
    assert len(used) >= 5
    assert all(readable(c) for c in used), sorted(c for c in used if not readable(c))
    # --code-style still picks another style.
    ctx.config = DisplayConfig(code_style="monokai")
    other = default_registry().render({"text/x-python": CODE}, {}, ctx).text
    assert other != text


# -- on a real screen ---------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_default_input_colours_on_screen_read_on_black_and_white() -> None:
    from ptyconsole import PtyConsole

    line = "import os.path, json; x = len('s') + 0x1F  # note"
    c = PtyConsole(["start", "--kernel", "builtin"], env={"PAGER": "cat"})
    try:
        c.expect_prompt(1)
        c.send(line)
        c.expect_cursor_line(r"In \[1\]: " + re.escape(line), timeout=15)
        c.settle(quiet=0.2)
        row = next(i for i, ln in enumerate(c.display()) if ln.startswith("In [1]: import"))
        start = len("In [1]: ")
        cells = [c.screen.buffer[row][start + k] for k in range(len(line))]
        assert "".join(ch.data for ch in cells) == line
        coloured = {}
        for k, ch in enumerate(cells):
            if ch.data.strip() and ch.fg != "default":
                coloured[k] = ch.fg.lower()
        # The module names are highlighted, and not in pure blue.
        mod = line.index("os.path")
        assert mod in coloured and coloured[mod] not in ("0000ff", "blue")
        assert line.index("0x1F") in coloured and line.index("# note") in coloured
        for k, fg in coloured.items():
            assert re.fullmatch(r"[0-9a-f]{6}", fg), (line[k], fg)
            assert readable("#" + fg), (line[k], fg)
        c.ctrl("c")
        c.expect_empty_prompt(1)
        c.ctrl("d")
        assert c.wait_exit(30) == 0
    finally:
        c.close()
