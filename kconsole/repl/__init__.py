"""The interactive console (``kconsole start``/``attach``/...), one concern per
module: see :mod:`kconsole.repl.repl` for the map. ``from kconsole.repl import Repl``."""

from __future__ import annotations

from .layout import check_style
from .repl import Repl

__all__ = ["Repl", "check_style"]
