"""Syntax highlighting with pygments, at the colour depth the terminal has."""

from __future__ import annotations

import json
import re
from typing import Any, cast

from ..sanitize import terminal_text
from .config import RenderContext
from .registry import HIGHLIGHT_LIMIT, check_size


def _formatter(ctx: RenderContext) -> Any:
    # Imported on first use: pygments' formatter modules cost startup time.
    from .style import get_style

    if ctx.caps.colors >= 16777216:
        from pygments.formatters import TerminalTrueColorFormatter

        return TerminalTrueColorFormatter(style=get_style(ctx.config.code_style))
    if ctx.caps.colors >= 256:
        from pygments.formatters import Terminal256Formatter

        return Terminal256Formatter(style=get_style(ctx.config.code_style))
    from pygments.formatters import TerminalFormatter

    # 16 colours are the terminal's palette: kconsole's scheme uses those that read on
    # any background (another --code-style has no 16-colour form: pygments' own).
    if ctx.config.code_style == "kconsole":
        from .style import TERMINAL_16

        return TerminalFormatter(colorscheme=TERMINAL_16)
    return TerminalFormatter()


def highlight_code(
    code: str, ctx: RenderContext, *, language: str | None = None, mimetype: str | None = None
) -> str:
    """``code`` with ANSI colours (or as is when colour is off or no lexer fits).

    The result has no trailing newline.
    """
    # Callers pass kernel text: no escapes of its own may ride along with pygments'.
    code = terminal_text(code, allow_sgr=False, allow_progress=False).rstrip("\n")
    if not ctx.color or ctx.caps.colors == 0:
        return code
    from pygments import highlight
    from pygments.lexers import get_lexer_by_name, get_lexer_for_mimetype
    from pygments.util import ClassNotFound

    try:
        if mimetype:
            lexer = get_lexer_for_mimetype(mimetype, stripnl=False)
        elif language:
            lexer = get_lexer_by_name(language, stripnl=False)
        else:
            return code
    except ClassNotFound:
        return code
    # pygments is untyped; with no outfile and no encoding, highlight returns a str.
    return cast(str, highlight(code, lexer, _formatter(ctx))).rstrip("\n")


_C1 = re.compile("[\x7f-\x9f]")


def render_json(data: Any, ctx: RenderContext) -> str:
    """A JSON value (already decoded, or a JSON string) indented and highlighted."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except (ValueError, RecursionError):
            pass  # a plain string is a valid JSON value on its own
    if isinstance(data, str):
        check_size(len(data))
    text = json.dumps(data, indent=2, ensure_ascii=False, default=repr)
    check_size(len(text))
    # json.dumps escapes C0 controls but leaves C1 (U+0080-U+009F, 8-bit CSI and OSC
    # among them) and DEL raw with ensure_ascii=False: escape those too.
    text = _C1.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return highlight_code(text, ctx, language="json")


def render_source(code: Any, ctx: RenderContext, mimetype: str) -> str | None:
    """Source code of a ``text/x-<language>`` bundle, highlighted.

    Returns None when pygments knows no lexer for the type (the next type is tried).
    """
    from pygments.lexers import get_lexer_for_mimetype
    from pygments.util import ClassNotFound

    if isinstance(code, list):
        code = "".join(code)
    try:
        get_lexer_for_mimetype(mimetype)
    except ClassNotFound:
        return None
    code = str(code)
    check_size(len(code), HIGHLIGHT_LIMIT)
    return highlight_code(code, ctx, mimetype=mimetype)
