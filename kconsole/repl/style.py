"""Input styles: a Pygments style name checked, and made prompt_toolkit's.

Light to import (nothing of prompt_toolkit or pygments until called). The check of a
name is :func:`kconsole.display.style.check_style`, which the CLI calls for ``--style``
before it knows whether a REPL will run."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prompt_toolkit.styles import Style

__all__ = ["input_style"]


def input_style(name: str | None = None) -> Style:
    """The prompt_toolkit style for input highlighting from Pygments style ``name``
    (None: kconsole's own, readable on dark and light backgrounds alike)."""
    from prompt_toolkit.styles.pygments import style_from_pygments_cls

    from ..display.style import STYLE_NAME, check_style, get_style

    name = name or STYLE_NAME
    check_style(name)
    return style_from_pygments_cls(get_style(name))
