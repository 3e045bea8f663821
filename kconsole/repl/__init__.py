"""The interactive console (``kconsole start``/``attach``/...), one concern per
module: see :mod:`kconsole.repl.repl` for the map. ``from kconsole.repl import Repl``.

Importing a part (``kconsole.repl.style``, ``kconsole.repl.history``) does not import
the REPL: :class:`Repl` (prompt_toolkit and all) is loaded when first asked for."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..display.style import check_style
    from .repl import Repl

__all__ = ["Repl", "check_style"]


def __getattr__(name: str) -> Any:
    if name == "Repl":
        from .repl import Repl

        return Repl
    if name == "check_style":
        from ..display.style import check_style

        return check_style
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
