"""User settings for rich output, and the per-render context renderers see."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .terminal import IMAGE_PROTOCOLS, TerminalCapabilities
from .text import Styler

#: What ``--image-protocol`` takes: a graphics protocol, ``blocks`` (coloured half
#: blocks, any terminal), ``none`` (the saved-file line), or ``auto``.
IMAGE_PROTOCOL_CHOICES = ("auto", *IMAGE_PROTOCOLS, "blocks", "none")


@dataclass
class DisplayConfig:
    """How kconsole shows rich output. Every field maps to one CLI option.

    plain:           show only text/plain (``--plain``).
    mime_order:      MIME types to try, best first (``--mime-order``); None means
                     the default for the terminal. text/plain is always tried last.
    image_protocol:  ``auto`` (detect; half blocks when the terminal has no graphics
                     protocol), ``kitty``, ``iterm``, ``sixel``, ``blocks`` or ``none``
                     (the saved-file line) (``--image-protocol``).
    image_viewer:    a command that opens images the terminal cannot draw
                     (``--image-viewer``); ``{}`` in it is replaced by the file path,
                     otherwise the path is appended. None: only save and show the path.
                     With a viewer, ``auto`` sends such images to it, not to blocks.
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
        """The protocol to draw images with here (``"blocks"`` included), or None for
        the fallback line."""
        if not self.tty:
            return None  # a pipe: text only
        forced = self.config.image_protocol
        if forced == "none":
            return None
        # Blocks are colours: a terminal (or a user, NO_COLOR) without them gets the line.
        blocks = "blocks" if self.color and self.caps.colors > 0 else None
        if forced == "blocks":
            return blocks
        if forced != "auto":
            return forced
        if self.caps.image_protocol is not None:
            return self.caps.image_protocol
        # No graphics protocol: the viewer the user named, else the picture in blocks.
        return None if self.config.image_viewer else blocks

    def image_passthrough(self, protocol: str) -> bool:
        """Whether ``protocol``'s sequences go through tmux's passthrough: tmux passes
        them on (``allow-passthrough``) and does not draw that protocol itself."""
        caps = self.caps
        return caps.passthrough and not getattr(caps, protocol, False)

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
