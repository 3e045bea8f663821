"""kconsole's own pygments style: readable on a dark and on a light background.

Theory
------
kconsole cannot know the terminal's background, so every colour this style sets
has a WCAG contrast ratio of at least 3.5 against black *and* against white (both
are possible only for mid-luminance colours: relative luminance between 0.125 and
0.25). pygments' ``default`` style, which prompt_toolkit falls back on, is made for
white paper: its pure blue (#0000ff, module and function names) and dark reds have
a contrast of 1.5-2.5 on a black terminal. Tokens left uncoloured here (plain names,
operators, punctuation) take the terminal's own foreground, readable by definition.

Every colour is one of the xterm 256-colour cube's, so a 256-colour terminal shows
exactly the colour that was checked (prompt_toolkit and pygments map other colours
to the nearest one). It is the default for ``--style`` (the input) and
``--code-style`` (highlighted output); any pygments style name still works.
"""

# pygments ships no type information, so its Style is Any to mypy; subclassing it
# is the way pygments styles are made.
# mypy: disallow-subclassing-any=False

from __future__ import annotations

from typing import cast

from pygments.style import Style
from pygments.token import (
    Comment,
    Error,
    Generic,
    Keyword,
    Name,
    Number,
    Operator,
    String,
    Token,
    Whitespace,
    _TokenType,
)

#: The name kconsole's own style goes by in ``--style`` and ``--code-style``.
STYLE_NAME = "kconsole"

# The hues of pygments' default style, each moved to the cube colour of the same hue
# that has enough contrast on black and on white (its contrast in the comment).
_GREEN = "#008700"  # 4.5
_BLUE = "#0087d7"  # 3.9: what #0000ff (2.4 on black) was for names
_VIOLET = "#875fd7"  # 4.5
_INDIGO = "#5f5fd7"  # 4.1
_RED = "#af5f5f"  # 4.5
_BRIGHT_RED = "#d70000"  # 3.9
_ORANGE = "#af5f00"  # 4.5
_ROSE = "#af5f87"  # 4.4
_CRIMSON = "#d7005f"  # 4.1
_TEAL = "#008787"  # 4.4
_SLATE = "#5f8787"  # 4.0
_OLIVE = "#878700"  # 3.8
_MOSS = "#5f8700"  # 4.2
_GREY = "#878787"  # 3.6
_PLUM = "#af5faf"  # 4.1


class KconsoleStyle(Style):
    """Pygments' default style with every colour readable on black and on white."""

    name = STYLE_NAME
    background_color = ""  # the terminal's own
    highlight_color = ""
    styles: dict[_TokenType, str] = {
        Token: "",
        Whitespace: "",
        Error: "",  # not red: input being typed is often "wrong" for a moment (obj?)
        Comment: f"italic {_SLATE}",
        Comment.Preproc: f"noitalic {_ORANGE}",
        Keyword: f"bold {_GREEN}",
        Keyword.Pseudo: "nobold",
        Keyword.Type: f"nobold {_CRIMSON}",
        Operator: "",
        Operator.Word: f"bold {_VIOLET}",
        Name.Builtin: _GREEN,
        Name.Function: _BLUE,
        Name.Class: f"bold {_BLUE}",
        Name.Namespace: f"bold {_BLUE}",
        Name.Exception: f"bold {_RED}",
        Name.Variable: _INDIGO,
        Name.Constant: _RED,
        Name.Label: _OLIVE,
        Name.Entity: f"bold {_GREY}",
        Name.Attribute: _MOSS,
        Name.Tag: f"bold {_GREEN}",
        Name.Decorator: _VIOLET,
        String: _RED,
        String.Doc: "italic",
        String.Interpol: f"bold {_ROSE}",
        String.Escape: f"bold {_ORANGE}",
        String.Regex: _ROSE,
        String.Symbol: _INDIGO,
        String.Other: _GREEN,
        Number: _TEAL,
        Generic.Heading: f"bold {_INDIGO}",
        Generic.Subheading: f"bold {_PLUM}",
        Generic.Deleted: _BRIGHT_RED,
        Generic.Inserted: _GREEN,
        Generic.Error: _BRIGHT_RED,
        Generic.Emph: "italic",
        Generic.Strong: "bold",
        Generic.Prompt: f"bold {_INDIGO}",
        Generic.Output: _GREY,
        Generic.Traceback: _INDIGO,
    }


#: The same for a 16-colour terminal (pygments' TerminalFormatter colour scheme, one
#: entry for light and dark backgrounds alike). Those 16 colours are the terminal's
#: palette, so only the ones readable on black and on white in xterm's, the Linux
#: console's, GNOME's and Windows Terminal's palettes are used (contrast >= 2.6 in
#: all four): red, magenta, bright red, bright black, bright blue, bright magenta,
#: and bold. pygments' own scheme, the 16-colour fallback before, had blue keywords
#: and numbers (2.2:1 on xterm's black, 1.6:1 on the console's) and yellow strings.
TERMINAL_16: dict[_TokenType, tuple[str, str]] = {
    tok: (c, c)
    for tok, c in {
        Token: "",
        Whitespace: "",
        Error: "",
        Comment: "brightblack",
        Comment.Preproc: "magenta",
        Keyword: "**",
        Keyword.Type: "magenta",
        Keyword.Constant: "brightmagenta",
        Operator.Word: "**",
        Name.Builtin: "magenta",
        Name.Function: "brightblue",
        Name.Class: "*brightblue*",
        Name.Namespace: "*brightblue*",
        Name.Exception: "*red*",
        Name.Decorator: "magenta",
        Name.Constant: "red",
        Name.Tag: "*brightblue*",
        Name.Attribute: "brightblue",
        String: "red",
        String.Escape: "*red*",
        String.Interpol: "*red*",
        Number: "brightmagenta",
        Generic.Heading: "**",
        Generic.Subheading: "*magenta*",
        Generic.Deleted: "red",
        Generic.Inserted: "brightblue",
        Generic.Error: "brightred",
        Generic.Prompt: "**",
        Generic.Output: "brightblack",
        Generic.Traceback: "magenta",
    }.items()
}


def get_style(name: str) -> type[Style]:
    """The pygments style class called ``name`` (``kconsole``: :class:`KconsoleStyle`);
    pygments' ClassNotFound when there is none."""
    if name == STYLE_NAME:
        return KconsoleStyle
    from pygments.styles import get_style_by_name

    return cast("type[Style]", get_style_by_name(name))  # pygments is untyped


def style_names() -> list[str]:
    """Every style name ``--style`` and ``--code-style`` take, sorted."""
    from pygments.styles import get_all_styles

    return sorted({*get_all_styles(), STYLE_NAME})


def check_style(name: str) -> None:
    """Raise ValueError if ``name`` is not a Pygments style (or ``kconsole``); the
    message names it and lists the styles there are (``--style``, ``--code-style``)."""
    from pygments.util import ClassNotFound

    try:
        get_style(name)
    except ClassNotFound:
        available = ", ".join(style_names())
        raise ValueError(f"unknown style {name!r} (available: {available})") from None


def contrast(color: str, background: str) -> float:
    """The WCAG 2 contrast ratio of two ``#rrggbb`` (or ``#rgb``) colours, 1 to 21."""
    a, b = luminance(color), luminance(background)
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


def luminance(color: str) -> float:
    """WCAG 2 relative luminance of a ``#rrggbb`` (or ``#rgb``) colour, 0 to 1."""
    h = color.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)

    def channel(v: int) -> float:
        c = v / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
