"""User settings for rich output, and the per-render context renderers see."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .terminal import IMAGE_PROTOCOLS, TerminalCapabilities
from .text import Styler

IMAGE_PROTOCOL_CHOICES = ("auto", "none", *IMAGE_PROTOCOLS)


@dataclass
class DisplayConfig:
    """How kconsole shows rich output. Every field maps to one CLI option.

    plain:           show only text/plain (``--plain``).
    mime_order:      MIME types to try, best first (``--mime-order``); None means
                     the default for the terminal. text/plain is always tried last.
    image_protocol:  ``auto`` (detect), ``kitty``, ``iterm``, ``sixel`` or ``none``
                     (``--image-protocol``).
    image_viewer:    a command that opens images the terminal cannot draw
                     (``--image-viewer``); ``{}`` in it is replaced by the file path,
                     otherwise the path is appended. None: only save and show the path.
    code_style:      the pygments style for highlighted JSON and source (``kconsole``:
                     kconsole's own, readable on dark and light backgrounds).
    max_image_rows:  images never take more rows than this (None: the screen height).
    width:           layout width in cells (None: the terminal's, or 80 in a pipe).
    image_dir:       where images are saved for the fallback line, and kept
                     (``--image-dir``). None: a folder of this session in the temp
                     dir, removed at exit (see :mod:`.images`).
    """

    plain: bool = False
    mime_order: list[str] | None = None
    image_protocol: str = "auto"
    image_viewer: str | None = None
    code_style: str = "kconsole"
    max_image_rows: int | None = None
    width: int | None = None
    image_dir: str | None = None

    def __post_init__(self) -> None:
        if self.image_protocol not in IMAGE_PROTOCOL_CHOICES:
            raise ValueError(
                f"image_protocol must be one of {', '.join(IMAGE_PROTOCOL_CHOICES)}, "
                f"not {self.image_protocol!r}"
            )


@dataclass
class RenderContext:
    """Everything a renderer may look at: sizes, capabilities, settings.

    Built by the printer for each bundle (the terminal may have been resized).
    """

    width: int = 80
    height: int = 24
    color: bool = True
    tty: bool = False
    caps: TerminalCapabilities = field(default_factory=TerminalCapabilities)
    config: DisplayConfig = field(default_factory=DisplayConfig)

    @property
    def hyperlinks(self) -> bool:
        return self.tty and self.color and self.caps.hyperlinks

    @property
    def image_protocol(self) -> str | None:
        """The protocol to draw images with here, or None for the fallback line."""
        if not self.tty:
            return None
        forced = self.config.image_protocol
        if forced == "none":
            return None
        if forced != "auto":
            return forced
        return self.caps.image_protocol

    @property
    def styler(self) -> Styler:
        return Styler(self.color, self.hyperlinks)

    def image_dir(self) -> str:
        """The folder fallback images are saved in (created on first use)."""
        d = self.config.image_dir
        if d is None:
            from .images import session_image_dir

            return session_image_dir()
        os.makedirs(d, mode=0o700, exist_ok=True)
        return d
