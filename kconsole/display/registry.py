"""Which renderer shows a MIME bundle, and falling back when one fails.

Theory
------
One small renderer per MIME type: ``renderer(value, metadata, ctx) -> str | None``.
A renderer returns the terminal text (escape sequences allowed), or None when it
cannot show this value *here* (no SVG library, no lexer): the next type is tried
quietly. A renderer that raises has met a malformed bundle: the next type is tried
and a one-line note says what happened. text/plain is always the last resort, so a
bundle always shows something and a renderer can never crash the console.

Heavy modules (pygments, the HTML parser, Pillow) are imported inside renderers,
the first time a bundle needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..sanitize import plain_line, terminal_text
from .config import RenderContext

Renderer = Callable[[Any, dict[str, Any], RenderContext], "str | None"]

IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/svg+xml"]
TEXT_TYPES = [
    "text/html",
    "text/markdown",
    "text/latex",
    "application/json",
]


def default_mime_order(ctx: RenderContext) -> list[str]:
    """The types to try, best first, for what this terminal can do.

    With inline graphics an image beats HTML (a plot with an HTML table beside it is
    best seen as the plot); without, the HTML, Markdown or LaTeX text comes first
    and images show as the saved-file line. Source types (``text/x-python``...)
    come before text/plain.
    """
    if ctx.config.plain:
        return ["text/plain"]
    if ctx.config.mime_order is not None:
        return list(ctx.config.mime_order)
    if ctx.image_protocol is not None:
        return IMAGE_TYPES + TEXT_TYPES + ["text/x-*", "application/x-*"]
    return TEXT_TYPES + IMAGE_TYPES + ["text/x-*", "application/x-*"]


@dataclass
class Rendered:
    """What a bundle rendered to: the text, which type won, and notes to show."""

    text: str
    mime: str | None
    notes: list[str] = field(default_factory=list)


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def _markup(value: Any) -> str:
    """Kernel text a renderer parses (HTML, Markdown, LaTeX, source): no control
    sequence of its own survives; the renderer adds the only escapes."""
    return terminal_text(_text(value), allow_sgr=False, allow_progress=False)


def render_plain(value: Any, metadata: dict[str, Any], ctx: RenderContext) -> str:
    # What a kernel legitimately puts in text/plain: colours (reprs of coloured
    # objects, IPython's tracebacks) and \r / \b redraws. Nothing else reaches the tty.
    return terminal_text(_text(value), allow_sgr=ctx.color)


def render_html(value: Any, metadata: dict[str, Any], ctx: RenderContext) -> str:
    from .document import layout
    from .highlight import highlight_code
    from .html import parse_html

    blocks = parse_html(_markup(value))
    if not blocks:
        return ""
    lines = layout(
        blocks, ctx.width, ctx.styler, lambda c, lang: highlight_code(c, ctx, language=lang)
    )
    return "\n".join(lines)


def render_markdown(value: Any, metadata: dict[str, Any], ctx: RenderContext) -> str:
    from .document import layout
    from .highlight import highlight_code
    from .markdown import parse_markdown

    blocks = parse_markdown(_markup(value))
    lines = layout(
        blocks, ctx.width, ctx.styler, lambda c, lang: highlight_code(c, ctx, language=lang)
    )
    return "\n".join(lines)


def render_latex_bundle(value: Any, metadata: dict[str, Any], ctx: RenderContext) -> str:
    from .latex import render_latex

    return "\n".join(render_latex(_markup(value)))


def render_json(value: Any, metadata: dict[str, Any], ctx: RenderContext) -> str:
    from .highlight import render_json as _json

    return _json(value, ctx)


def _image(mime: str) -> Renderer:
    def render(value: Any, metadata: dict[str, Any], ctx: RenderContext) -> str:
        from .images import render_image

        return render_image(value, metadata, ctx, mime)

    render.__name__ = f"render_{mime.replace('/', '_').replace('+', '_')}"
    return render


def _source(mime: str) -> Renderer:
    def render(value: Any, metadata: dict[str, Any], ctx: RenderContext) -> str | None:
        from .highlight import render_source

        return render_source(value, ctx, mime)

    return render


class RendererRegistry:
    """MIME type -> renderer, with ``type/x-*`` patterns for source code types."""

    def __init__(self) -> None:
        self._renderers: dict[str, Renderer] = {}

    def register(self, mime: str, renderer: Renderer) -> None:
        """Add or replace the renderer of ``mime`` (``"text/x-*"`` style patterns too)."""
        self._renderers[mime] = renderer

    def get(self, mime: str) -> Renderer | None:
        r = self._renderers.get(mime)
        if r is None and "/" in mime:
            major, minor = mime.split("/", 1)
            if minor.startswith("x-") and f"{major}/x-*" in self._renderers:
                return _source(mime)
        return r

    def candidates(self, data: dict[str, Any], ctx: RenderContext) -> list[str]:
        """The bundle's types in the order they will be tried (text/plain last)."""
        order = default_mime_order(ctx)
        out: list[str] = []
        for want in order:
            if want.endswith("/x-*"):
                prefix = want[:-1]
                out.extend(m for m in data if m.startswith(prefix) and m not in out)
            elif want in data and want not in out:
                out.append(want)
        if "text/plain" in data and "text/plain" not in out:
            out.append("text/plain")
        return out

    def render(
        self, data: dict[str, Any], metadata: dict[str, Any], ctx: RenderContext
    ) -> Rendered:
        """Render a bundle with the best type that works; never raises."""
        notes: list[str] = []
        if not isinstance(data, dict):
            return Rendered(
                f"<{type(data).__name__}>", None, ["kconsole: output data is not a MIME bundle"]
            )
        for mime in self.candidates(data, ctx):
            renderer = self.get(mime)
            if renderer is None:
                continue
            md = metadata.get(mime) if isinstance(metadata, dict) else None
            try:
                text = renderer(data[mime], md if isinstance(md, dict) else {}, ctx)
            except Exception as e:  # a malformed bundle must never take the console down
                detail = str(e).splitlines()[0] if str(e) else ""
                detail = detail[:120]
                notes.append(
                    plain_line(
                        f"[kconsole: could not render {mime}: {type(e).__name__}"
                        + (f": {detail}" if detail else "")
                        + "]"
                    )
                )
                continue
            if text is None:
                continue
            return Rendered(text, mime, notes)
        kinds = plain_line(", ".join(sorted(str(k) for k in data))) or "nothing"
        return Rendered(f"<{kinds}>", None, notes)


def default_registry() -> RendererRegistry:
    """A registry with every built-in renderer."""
    reg = RendererRegistry()
    reg.register("text/plain", render_plain)
    reg.register("text/html", render_html)
    reg.register("text/markdown", render_markdown)
    reg.register("text/latex", render_latex_bundle)
    reg.register("application/json", render_json)
    for mime in IMAGE_TYPES:
        reg.register(mime, _image(mime))
    reg.register("text/x-*", _source("text/x-*"))
    reg.register("application/x-*", _source("application/x-*"))
    return reg
