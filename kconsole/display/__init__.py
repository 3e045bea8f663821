"""Rich output: MIME bundles rendered for the terminal.

The pieces a console wires together:

* :class:`DisplayConfig`: the user's settings (``--plain``, ``--mime-order``,
  ``--image-protocol``, ``--image-viewer``).
* :func:`detect_terminal` (once at startup, it talks to the tty) or
  :func:`capabilities_from_env` (pure): a :class:`TerminalCapabilities`.
* :class:`~kconsole.output.OutputPrinter` takes both and renders every bundle
  through the :class:`RendererRegistry`; it keeps the kernel's ipywidgets models
  (:mod:`.widgets`) and redraws displays and widget views where they are on the
  screen (:mod:`.live`).
"""

from __future__ import annotations

from .config import DisplayConfig, RenderContext
from .registry import Rendered, RendererRegistry, default_mime_order, default_registry
from .terminal import TerminalCapabilities, capabilities_from_env, detect_terminal

__all__ = [
    "DisplayConfig",
    "RenderContext",
    "Rendered",
    "RendererRegistry",
    "TerminalCapabilities",
    "capabilities_from_env",
    "default_mime_order",
    "default_registry",
    "detect_terminal",
]
