"""The options a console session runs with, as one frozen value.

The CLI builds a :class:`ConsoleOptions` once, from click's parameters
(:meth:`ConsoleOptions.from_params`), and the session code reads typed fields instead
of looking keys up in a ``dict[str, Any]``. Its field names are those of the REPL's
keywords (``show_other_output``, ``banner``, ``vi_mode``...), not the flags' negated
names, so what the session passes on reads as what it means.

Light on purpose: ``kconsole start`` builds it before it spawns the kernel, so it
imports nothing the start does not already load (the display config is imported only
by :meth:`ConsoleOptions.display_config`, once the kernel is on its way).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .paths import DEFAULT_HISTORY_SIZE

if TYPE_CHECKING:
    from .display import DisplayConfig

#: Seconds to wait for the kernel (or a Jupyter Server) to answer (``--timeout``).
DEFAULT_TIMEOUT = 60.0
#: The style kconsole's own highlighting uses (``--style``, ``--code-style``).
DEFAULT_STYLE = "kconsole"


@dataclass(frozen=True, kw_only=True)
class ConsoleOptions:
    """How a console (REPL or script mode) runs, whatever the kernel it runs on."""

    #: Seconds to wait for the kernel to answer before giving up (``--timeout``).
    timeout: float = DEFAULT_TIMEOUT
    #: Show output caused by other clients of the kernel (not ``--no-other-output``).
    show_other_output: bool = True
    #: Print the kernel's banner (not ``--no-banner``).
    banner: bool = True
    #: vi key bindings (``--vi``).
    vi_mode: bool = False
    #: Ask before Ctrl-D leaves (``--confirm-exit``).
    confirm_exit: bool = True
    #: Pygments style of the input's highlighting (``--style``).
    style: str | None = DEFAULT_STYLE
    #: The status toolbar (not ``--no-toolbar``).
    toolbar: bool = True
    #: History entries loaded (``--history-size``).
    history_size: int = DEFAULT_HISTORY_SIZE
    #: Where the session's notebook is saved on exit (``--save``), or None.
    save: str | None = None
    #: Only text/plain of rich output (``--plain``); also: no terminal queries.
    plain: bool = False
    #: MIME types to render, best first (``--mime-order``), or None for the default.
    mime_order: tuple[str, ...] | None = None
    #: How images are drawn (``--image-protocol``).
    image_protocol: str = "auto"
    #: A command that opens images (``--image-viewer``), or None.
    image_viewer: str | None = None
    #: Where undrawable images are kept (``--image-dir``), or None for a temp folder.
    image_dir: str | None = None
    #: Pygments style of highlighted JSON and source (``--code-style``).
    code_style: str = DEFAULT_STYLE
    #: The kernel was started by this command (``kconsole start``): on exit, say how to
    #: attach to it again if it is left running.
    started_here: bool = False

    @classmethod
    def from_params(
        cls, params: Mapping[str, Any], *, started_here: bool = False
    ) -> ConsoleOptions:
        """The options from click's parameters of ``start``/``attach`` (their names are
        the options' without dashes; missing ones keep their defaults)."""
        order = params.get("mime_order")
        return cls(
            timeout=float(params.get("timeout", DEFAULT_TIMEOUT)),
            show_other_output=not params.get("no_other_output"),
            banner=not params.get("no_banner"),
            vi_mode=bool(params.get("vi")),
            confirm_exit=bool(params.get("confirm_exit", True)),
            style=params.get("style"),
            toolbar=not params.get("no_toolbar"),
            history_size=int(params.get("history_size") or DEFAULT_HISTORY_SIZE),
            save=params.get("save") or None,
            plain=bool(params.get("plain")),
            mime_order=tuple(t.strip() for t in order.split(",") if t.strip()) if order else None,
            image_protocol=params.get("image_protocol") or "auto",
            image_viewer=params.get("image_viewer") or None,
            image_dir=params.get("image_dir") or None,
            code_style=params.get("code_style") or DEFAULT_STYLE,
            started_here=started_here,
        )

    def display_config(self) -> DisplayConfig:
        """The output renderer's configuration (imports kconsole.display)."""
        from .display import DisplayConfig

        return DisplayConfig(
            plain=self.plain,
            mime_order=list(self.mime_order) if self.mime_order is not None else None,
            image_protocol=self.image_protocol,
            image_viewer=self.image_viewer,
            image_dir=self.image_dir,
            code_style=self.code_style,
        )
