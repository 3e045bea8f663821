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

Rendering runs on the event loop (it is called from the IOPub handler), so every
renderer is bounded: linear in its input, nesting capped, and its input capped at
:data:`MARKUP_LIMIT` characters (:data:`LATEX_LIMIT` for LaTeX, whose layout is
two-dimensional). On top of the sizes, the parsers and the layout call
:func:`check_time` as they go: a renderer still at work :data:`RENDER_TIME_LIMIT`
seconds after the bundle's rendering began stops. A renderer over a budget raises
:class:`RenderLimitExceeded`: the next type (text/plain at the end) is shown, with a
one-line note saying why. Ctrl-C and the heartbeat are then never held up for more
than a fraction of a second by one bundle; a burst of bundles may take
:data:`RENDER_BURST_LIMIT` seconds of rich rendering in all, then the next ones show
as text/plain (with a note) until the allowance has come back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..sanitize import plain_line, terminal_text
from .config import RenderContext

Renderer = Callable[[Any, dict[str, Any], RenderContext], "str | None"]

#: Longest HTML, Markdown or JSON (as indented text) rendered, in characters (some
#: 0.3 s of work at worst); longer shows as text/plain. pandas' default 60-row
#: DataFrame is some 50 KB of HTML.
MARKUP_LIMIT = 256 * 1024
#: Most source code highlighted by one bundle (pygments does some 200 KB/s): a
#: text/x-* bundle over it shows as text/plain, code blocks of a document beyond it
#: are shown without colours.
HIGHLIGHT_LIMIT = 48 * 1024
#: Longest LaTeX laid out in 2-D (sympy's biggest formulas are a few KB).
LATEX_LIMIT = 32 * 1024


#: Seconds one bundle's renderers may work before they give up (text/plain is shown).
RENDER_TIME_LIMIT = 0.5
#: Seconds of rich rendering a burst of bundles may take (a loop displaying plots or
#: tables) before the next bundles show as text/plain: each bundle is bounded, but 20
#: hostile ones at 0.5 s each would hold the event loop (and Ctrl-C) for 10 s.
RENDER_BURST_LIMIT = 2.0
#: How fast the burst allowance comes back: seconds of rendering per second of time
#: (rich output may take half of the console's time in the long run).
RENDER_REFILL_RATE = 0.5

_deadline = float("inf")


class RenderLimitExceeded(Exception):
    """A bundle is over a renderer's size or time budget (the next type is used)."""


def check_time() -> None:
    """Raise :class:`RenderLimitExceeded` when the bundle being rendered has used up
    its time (called from the renderers' loops; cheap)."""
    if time.monotonic() > _deadline:
        raise RenderLimitExceeded(f"it took over {RENDER_TIME_LIMIT:g} s to lay out")


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
    and images show as the saved-file line, or in half blocks: a preview, which a
    bundle's text (sympy's LaTeX beside its PNG) beats. Source types
    (``text/x-python``...) come before text/plain.
    """
    if ctx.config.plain:
        return ["text/plain"]
    if ctx.config.mime_order is not None:
        return list(ctx.config.mime_order)
    if ctx.image_protocol not in (None, "blocks"):
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


def _markup(value: Any, limit: int = MARKUP_LIMIT) -> str:
    """Kernel text a renderer parses (HTML, Markdown, LaTeX, source): no control
    sequence of its own survives; the renderer adds the only escapes. Over ``limit``
    characters it is not parsed at all."""
    text = _text(value)
    check_size(len(text), limit)
    return terminal_text(text, allow_sgr=False, allow_progress=False)


def check_size(size: int, limit: int = MARKUP_LIMIT) -> None:
    """Raise :class:`RenderLimitExceeded` when ``size`` characters are over ``limit``."""
    if size > limit:
        raise RenderLimitExceeded(f"{_kb(size)} is over the {_kb(limit)} rendering limit")


def _kb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{max(1, round(n / 1024))} KB"


def render_plain(value: Any, metadata: dict[str, Any], ctx: RenderContext) -> str:
    # What a kernel legitimately puts in text/plain: colours (reprs of coloured
    # objects, IPython's tracebacks) and \r / \b redraws. Nothing else reaches the tty.
    return terminal_text(_text(value), allow_sgr=ctx.color)


def render_html(value: Any, metadata: dict[str, Any], ctx: RenderContext) -> str:
    from .document import layout
    from .html import parse_html

    blocks = parse_html(_markup(value))
    if not blocks:
        return ""
    return "\n".join(layout(blocks, ctx.width, ctx.styler, _highlighter(ctx)))


def render_markdown(value: Any, metadata: dict[str, Any], ctx: RenderContext) -> str:
    from .document import layout
    from .markdown import parse_markdown

    blocks = parse_markdown(_markup(value))
    return "\n".join(layout(blocks, ctx.width, ctx.styler, _highlighter(ctx)))


def _highlighter(ctx: RenderContext) -> Callable[[str, str | None], str]:
    """Highlights a document's code blocks until HIGHLIGHT_LIMIT characters are
    used up; later blocks are shown as they are (bounded time per document)."""
    from .highlight import highlight_code

    left = HIGHLIGHT_LIMIT

    def highlight(code: str, lang: str | None) -> str:
        nonlocal left
        left -= len(code)
        if left < 0:
            return terminal_text(code, allow_sgr=False, allow_progress=False)
        return highlight_code(code, ctx, language=lang)

    return highlight


def render_latex_bundle(value: Any, metadata: dict[str, Any], ctx: RenderContext) -> str:
    from .latex import render_latex

    return "\n".join(render_latex(_markup(value, LATEX_LIMIT), ctx.width))


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
        # The burst allowance (see RENDER_BURST_LIMIT): seconds left, as of when.
        self._allowance = RENDER_BURST_LIMIT
        self._allowance_at = time.monotonic()

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
        global _deadline
        start = time.monotonic()
        self._allowance = min(
            RENDER_BURST_LIMIT,
            self._allowance + (start - self._allowance_at) * RENDER_REFILL_RATE,
        )
        if self._allowance <= 0:
            return self._render_plain(data, ctx)
        _deadline = start + RENDER_TIME_LIMIT
        try:
            return self._render(data, metadata, ctx)
        finally:
            _deadline = float("inf")
            self._allowance_at = time.monotonic()
            self._allowance -= self._allowance_at - start

    def _render_plain(self, data: dict[str, Any], ctx: RenderContext) -> Rendered:
        """The bundle as text/plain only: rich output used up its time for now."""
        if not isinstance(data, dict):
            return self._render(data, {}, ctx)  # the "not a MIME bundle" line
        rich = sorted(str(m) for m in data if m != "text/plain")
        notes = [
            plain_line(f"[kconsole: {m} not rendered: rich output took too much time]")
            for m in rich[:1]
        ]
        if "text/plain" in data:
            try:
                return Rendered(render_plain(data["text/plain"], {}, ctx), "text/plain", notes)
            except TypeError:
                notes = [plain_line("[kconsole: could not render text/plain]")]
        kinds = plain_line(", ".join(sorted(str(k) for k in data))) or "nothing"
        return Rendered(f"<{kinds}>", None, notes)

    def _render(
        self, data: dict[str, Any], metadata: dict[str, Any], ctx: RenderContext
    ) -> Rendered:
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
            except RenderLimitExceeded as e:
                notes.append(plain_line(f"[kconsole: {mime} not rendered: {e}]"))
                continue
            except RecursionError:
                notes.append(plain_line(f"[kconsole: {mime} not rendered: nested too deeply]"))
                continue
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
