"""ipywidgets in a terminal: a bounded store of widget models and their text views.

Theory of the protocol
----------------------
ipywidgets (protocol version 2, ipywidgets 7 and 8) keeps each widget's state in a
*model* on the kernel side, mirrored to frontends over a comm of target
``jupyter.widget``; the comm id is the model id. On IOPub:

* ``comm_open`` carries ``data.state``, every trait of the model, and
  ``data.buffer_paths``, where binary parts go (images, arrays: sent as message
  buffers, which no widget drawn here needs: they are left out);
* ``comm_msg`` with ``data.method`` ``"update"`` (``"echo_update"``: the kernel
  repeating a frontend's change) carries part of the state, merged key by key;
  ``"custom"`` messages are the widget's own business;
* ``comm_close`` ends the model: its views disappear, as they do in a notebook.

A widget is shown by a ``display_data`` (or ``execute_result``) whose bundle has
``application/vnd.jupyter.widget-view+json`` with the ``model_id``; its text/plain is
what frontends without widgets show. Models refer to other models (a box's
``children``, every widget's ``layout`` and ``style``) as ``"IPY_MODEL_<id>"``.

kconsole is a read-only view of the widgets that carry no interaction: progress bars
(tqdm.auto's bar is an HBox of HTML, FloatProgress, HTML), HTML, Label, boxes of
them, Output widgets (their ``outputs`` state); other widgets show their description
and value as text. It sends nothing back: nothing of a model changes on its side,
and an unknown comm target is ignored without a ``comm_close``, as jupyter console
and euporie do (a frontend that closed comms it cannot show would close the kernel
side's comms of whatever library opened them).

Everything in a comm message is data from the kernel, and a kernel may send
anything: :meth:`WidgetStore.handle` never raises; messages that are not what the
protocol says are ignored. The store is bounded in models (:data:`MAX_MODELS`) and in
bytes (:data:`MAX_MODEL_BYTES` a model, :data:`MAX_TOTAL_BYTES` in all, the least
recently changed models going first); a state value over the budget is kept as a
marker that renders as "too large". Rendering follows references with a cycle
check, a depth limit and a budget of widgets per view, and every text it draws passes
:func:`~kconsole.sanitize.terminal_text`: a view holds no control sequence but the
colours kconsole adds.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..sanitize import plain_line, terminal_text
from .config import RenderContext
from .text import ANSI_RE, cell_width, display_width, get_cwidth

if TYPE_CHECKING:
    from .registry import RendererRegistry

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_TARGET = "jupyter.widget"
COMM_TYPES = frozenset({"comm_open", "comm_msg", "comm_close"})
MODEL_PREFIX = "IPY_MODEL_"

#: Most models kept (tqdm makes 10 per bar; a dashboard some hundreds).
MAX_MODELS = 2000
#: Most state one model keeps, in (estimated) bytes.
MAX_MODEL_BYTES = 512 * 1024
#: Most state all models keep together.
MAX_TOTAL_BYTES = 16 * 1024 * 1024
#: Longest comm id or state key accepted (ipywidgets' are 32 hex digits), and most
#: keys one model's state keeps.
MAX_ID = 256
MAX_KEYS = 1024
#: How deep views nest (box in box...), and how many widgets one view draws.
MAX_DEPTH = 16
MAX_NODES = 400
#: Most children of one box drawn, and most outputs of one Output widget.
MAX_CHILDREN = 100
MAX_OUTPUTS = 100
#: Longest text of one widget value drawn (a longer one is cut).
MAX_TEXT = 16 * 1024
#: Widest progress bar, in cells (the notebook's default is a few hundred pixels).
MAX_BAR = 40
MIN_BAR = 10

_EIGHTHS = " ▏▎▍▌▋▊▉"
_BAR_SGR = {"success": "32", "info": "36", "warning": "33", "danger": "31"}
_NAMED_COLOURS = {
    "black": "30",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "magenta": "35",
    "cyan": "36",
    "white": "37",
    "gray": "90",
    "grey": "90",
    "orange": "38;5;208",
}
_HEX = re.compile(r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")
#: HTML whitespace (not U+2007, the figure space tqdm pads its numbers with).
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")
_TAG = re.compile(r"<[^>]*>")


class _TooLarge:
    """Stands for a state value over the byte budget (never sent by a kernel)."""

    def __repr__(self) -> str:
        return "<too large>"


TOO_LARGE: Any = _TooLarge()


def _size(value: Any, budget: int) -> int:
    """An estimate of ``value``'s size as JSON, in bytes; stops counting once over
    ``budget`` (so a huge state costs only the budget to look at). Iterative: no
    nesting overflows it, and a structure that contains itself ends too."""
    total = 0
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            total += len(v) + 2
        elif isinstance(v, dict):
            total += 2
            for k, x in v.items():
                total += (len(k) if isinstance(k, str) else 8) + 4
                stack.append(x)
                if total > budget:
                    return total
        elif isinstance(v, (list, tuple)):
            total += 2 + len(v)
            if total > budget:
                return total
            stack.extend(v)
        else:
            total += 8
        if total > budget:
            return total
    return total


def model_ref(ref: Any) -> str | None:
    """The model id a reference names (``"IPY_MODEL_<id>"`` or a bare id), or None."""
    if not isinstance(ref, str) or not ref or len(ref) > MAX_ID + len(MODEL_PREFIX):
        return None
    return ref[len(MODEL_PREFIX) :] if ref.startswith(MODEL_PREFIX) else ref


def widget_model_id(data: Any) -> str | None:
    """The model id of a bundle that shows a widget, or None."""
    if not isinstance(data, dict):
        return None
    view = data.get(WIDGET_MIME)
    if not isinstance(view, dict):
        return None
    mid = view.get("model_id")
    return mid if isinstance(mid, str) and 0 < len(mid) <= MAX_ID else None


@dataclass
class WidgetModel:
    """One widget's state as the kernel last sent it."""

    state: dict[str, Any] = field(default_factory=dict)
    #: Estimated bytes of each state value, and in all.
    sizes: dict[str, int] = field(default_factory=dict)
    size: int = 0

    @property
    def name(self) -> str:
        """The model's class name without "Model" (``FloatProgress``, ``HBox``)."""
        n = self.state.get("_model_name")
        if not isinstance(n, str):
            return ""
        return n[:-5] if n.endswith("Model") else n


class WidgetStore:
    """The widget models of one kernel, fed with its comm messages."""

    def __init__(
        self,
        max_models: int = MAX_MODELS,
        max_model_bytes: int = MAX_MODEL_BYTES,
        max_total_bytes: int = MAX_TOTAL_BYTES,
    ) -> None:
        self.max_models = max_models
        self.max_model_bytes = max_model_bytes
        self.max_total_bytes = max_total_bytes
        self._models: OrderedDict[str, WidgetModel] = OrderedDict()
        self.total_bytes = 0
        #: Comm messages that were not what the protocol says (ignored).
        self.ignored = 0

    def __len__(self) -> int:
        return len(self._models)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._models

    def get(self, model_id: str) -> WidgetModel | None:
        """The model of that id, or None."""
        return self._models.get(model_id)

    def clear(self) -> None:
        """Forget every model (the kernel restarted: its comms are gone)."""
        self._models.clear()
        self.total_bytes = 0

    # -- messages ----------------------------------------------------------------------

    def handle(self, msg_type: str, content: Any) -> set[str]:
        """Apply one comm message; returns the ids of the models it changed (empty when
        it changed nothing: another target, an unknown comm, a malformed message).
        Never raises."""
        try:
            return self._handle(msg_type, content)
        except Exception:  # whatever a kernel sends, the console goes on
            self.ignored += 1
            return set()

    def _handle(self, msg_type: str, content: Any) -> set[str]:
        if not isinstance(content, dict):
            self.ignored += 1
            return set()
        comm_id = content.get("comm_id")
        if not isinstance(comm_id, str) or not comm_id or len(comm_id) > MAX_ID:
            self.ignored += 1
            return set()
        data = content.get("data")
        if not isinstance(data, dict):
            data = {}
        if msg_type == "comm_open":
            if content.get("target_name") != WIDGET_TARGET:
                return set()  # not a widget: someone else's comm, left alone
            state = data.get("state")
            self._open(comm_id, state if isinstance(state, dict) else {})
            return {comm_id}
        model = self._models.get(comm_id)
        if model is None:
            return set()  # a comm of another target, or one evicted
        if msg_type == "comm_close":
            self._remove(comm_id)
            return {comm_id}
        if msg_type != "comm_msg" or data.get("method") not in ("update", "echo_update"):
            return set()
        state = data.get("state")
        if not isinstance(state, dict):
            self.ignored += 1
            return set()
        self._merge(model, state)
        self._models.move_to_end(comm_id)
        self._evict(keep=comm_id)
        return {comm_id}

    def _open(self, comm_id: str, state: dict[Any, Any]) -> None:
        if comm_id in self._models:
            self._remove(comm_id)
        model = WidgetModel()
        self._models[comm_id] = model
        self._merge(model, state)
        self._evict(keep=comm_id)

    def _remove(self, comm_id: str) -> None:
        model = self._models.pop(comm_id, None)
        if model is not None:
            self.total_bytes -= model.size

    def _merge(self, model: WidgetModel, changes: dict[Any, Any]) -> None:
        budget = self.max_model_bytes
        for key, value in changes.items():
            if not isinstance(key, str) or len(key) > MAX_ID:
                continue
            if key not in model.sizes and len(model.sizes) >= MAX_KEYS:
                continue  # real widgets have some 50 traits
            size = _size(value, budget) + len(key)
            if size > budget:
                value, size = TOO_LARGE, len(key) + 16
            self._set(model, key, value, size)
        if model.size > budget:
            # Many values, each under the budget: the biggest become markers (or go,
            # when a marker would cost as much) until the model fits.
            for key in sorted(model.sizes, key=model.sizes.__getitem__, reverse=True):
                if model.size <= budget:
                    break
                small = len(key) + 16
                if model.sizes[key] > small and model.state.get(key) is not TOO_LARGE:
                    self._set(model, key, TOO_LARGE, small)
                else:
                    self._set(model, key, None, 0)
                    del model.state[key], model.sizes[key]

    def _set(self, model: WidgetModel, key: str, value: Any, size: int) -> None:
        old = model.sizes.get(key, 0)
        model.state[key] = value
        model.sizes[key] = size
        model.size += size - old
        self.total_bytes += size - old

    def _evict(self, keep: str) -> None:
        while len(self._models) > self.max_models or (
            self.total_bytes > self.max_total_bytes and len(self._models) > 1
        ):
            oldest = next(iter(self._models))
            if oldest == keep:
                self._models.move_to_end(keep)
                oldest = next(iter(self._models))
                if oldest == keep:
                    break
            self._remove(oldest)

    # -- views -------------------------------------------------------------------------

    def render(
        self, model_id: str, ctx: RenderContext, registry: RendererRegistry | None = None
    ) -> tuple[str, set[str]]:
        """A view of model ``model_id`` as terminal text (its lines, each ending with
        a newline; empty when the widget shows nothing: hidden, closed, unknown) and
        the ids of the models it was drawn from (a change to any of them changes it).
        The bundles of Output widgets are rendered with ``registry`` (default: the
        built-in renderers). Never raises."""
        view = _View(self, ctx, registry)
        try:
            lines = view.widget(model_id, ctx.width, 0)
        except Exception:  # a state no renderer foresaw: one line rather than a crash
            lines = ["[kconsole: could not draw this widget]"]
        limit = max(1, ctx.height - 1)
        if len(lines) > limit:
            # A view taller than the screen could never be redrawn in place: its end.
            cut = len(lines) - limit + 1
            lines = [f"[... {cut} more lines above]", *lines[-(limit - 1) :]] if limit > 1 else []
        # Tabs as the spaces they would take: a view's lines are exactly as wide as
        # they are counted. A colour a kernel's text leaves on ends with its line.
        out = []
        for line in lines:
            line = _fit(line.expandtabs(), ctx.width)
            if "\x1b[" in line and not line.endswith("\x1b[0m"):
                line += "\x1b[0m"
            out.append(line + "\n")
        return "".join(out), view.deps


# -- drawing -----------------------------------------------------------------------------


def _num(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    v = float(value)
    return v if math.isfinite(v) else default


def _text(value: Any) -> str:
    """A state value as text to draw: strings as they are, others as JSON would
    write them, cut to MAX_TEXT; never a control sequence."""
    if value is TOO_LARGE:
        return "[too large]"
    if isinstance(value, bool):
        s = "true" if value else "false"
    elif isinstance(value, str):
        s = value
    elif isinstance(value, (int, float)) or value is None:
        s = "" if value is None else repr(value)
    else:
        s = "…"
    return terminal_text(s[:MAX_TEXT], allow_sgr=False, allow_progress=False)


def _fit(line: str, width: int) -> str:
    """``line`` (SGR allowed) cut to ``width`` cells, with an ellipsis if cut."""
    if display_width(line) <= width:
        return line
    out: list[str] = []
    used = 0
    pos = 0
    coloured = False
    for m in [*ANSI_RE.finditer(line), None]:
        seg = line[pos : m.start() if m is not None else len(line)]
        for ch in seg:
            w = get_cwidth(ch)
            if used + w > width - 1:
                out.append("…" + ("\x1b[0m" if coloured else ""))
                return "".join(out)
            out.append(ch)
            used += w
        if m is None:
            break
        out.append(m.group())
        coloured = True
        pos = m.end()
    return "".join(out)


def _side_by_side(columns: list[list[str]], gap: int = 1) -> list[str]:
    """Blocks of lines next to each other, each padded to its widest line."""
    widths = [max((display_width(x) for x in col), default=0) for col in columns]
    height = max((len(c) for c in columns), default=0)
    lines = []
    for i in range(height):
        parts = []
        for col, w in zip(columns, widths, strict=True):
            cell = col[i] if i < len(col) else ""
            parts.append(cell + " " * (w - display_width(cell)))
        lines.append((" " * gap).join(parts).rstrip())
    return lines


class _View:
    """Draws one view: follows references, records them, keeps to the budgets."""

    def __init__(
        self, store: WidgetStore, ctx: RenderContext, registry: RendererRegistry | None
    ) -> None:
        self.store = store
        self.ctx = ctx
        self.registry = registry
        self.deps: set[str] = set()
        self._visiting: set[str] = set()
        self._nodes = 0

    def _model(self, ref: Any) -> tuple[str, WidgetModel] | None:
        mid = model_ref(ref)
        if mid is None:
            return None
        self.deps.add(mid)
        model = self.store.get(mid)
        return (mid, model) if model is not None else None

    def _style(self, text: str, sgr: str | None) -> str:
        return f"\x1b[{sgr}m{text}\x1b[0m" if sgr and self.ctx.color and text else text

    def _hidden(self, state: dict[str, Any]) -> bool:
        if state.get("visible") is False:  # ipywidgets 6
            return True
        found = self._model(state.get("layout"))
        if found is None:
            return False
        layout = found[1].state
        return layout.get("display") == "none" or layout.get("visibility") == "hidden"

    def _description(self, state: dict[str, Any]) -> str:
        d = state.get("description")
        if not isinstance(d, str) or not d:
            return ""
        if state.get("description_allow_html") is True or "<" in d:
            d = _unescape(_TAG.sub("", d[:MAX_TEXT]))
        return plain_line(d[:200]).strip()

    def widget(self, ref: Any, width: int, depth: int) -> list[str]:
        """The lines of one widget at most ``width`` cells wide."""
        found = self._model(ref)
        if found is None or depth > MAX_DEPTH or self._nodes >= MAX_NODES:
            return []
        mid, model = found
        if mid in self._visiting:
            return []  # a box that contains itself: drawn once
        self._nodes += 1
        state = model.state
        if self._hidden(state):
            return []
        self._visiting.add(mid)
        try:
            return self._draw(model.name, state, max(1, width), depth)
        finally:
            self._visiting.discard(mid)

    def _draw(self, kind: str, state: dict[str, Any], width: int, depth: int) -> list[str]:
        if kind in ("FloatProgress", "IntProgress"):
            return [self._progress(state, min(width, MAX_BAR + 30), standalone=True)]
        if kind in ("HTML", "HTMLMath"):
            return self._labelled(state, self._html(state.get("value"), width), width)
        if kind == "Label":
            text = _HTML_SPACE.sub(" ", _text(state.get("value"))).strip()
            return self._labelled(state, [text] if text else [], width)
        if kind == "Output":
            return self._outputs(state.get("outputs"), width, depth)
        children = state.get("children")
        if isinstance(children, list):
            kids = children[:MAX_CHILDREN]
            if kind in ("HBox", "Box"):
                return self._hbox(kids, width, depth)
            if kind in ("Tab", "Stack", "Accordion"):
                return self._selection_box(kind, state, kids, width, depth)
            lines: list[str] = []
            for child in kids:  # VBox, GridBox, and any other container
                lines.extend(self.widget(child, width, depth + 1))
            return lines
        return self._generic(kind, state)

    def _labelled(self, state: dict[str, Any], lines: list[str], width: int) -> list[str]:
        desc = self._description(state)
        if not desc:
            return lines
        if not lines:
            return [desc]
        return _side_by_side([[desc], lines])

    def _html(self, value: Any, width: int) -> list[str]:
        text = _text(value)
        if not text:
            return []
        if "<" not in text:
            # The common case (tqdm's counters, a status line): no markup to lay out.
            # The figure spaces that keep tqdm's numbers aligned (HTML would collapse
            # spaces) stay as wide, as plain spaces: text a user can copy.
            plain = _HTML_SPACE.sub(" ", _unescape(text)).strip(" ").replace("\u2007", " ")
            return [terminal_text(plain, allow_sgr=False, allow_progress=False)] if plain else []
        from .registry import render_html

        try:
            out = render_html(text, {}, replace(self.ctx, width=max(10, width)))
        except Exception:  # over a budget, or markup the parser refused: its text
            flat = _unescape(_TAG.sub(" ", text))
            plain = terminal_text(flat, allow_sgr=False, allow_progress=False)
            out = _HTML_SPACE.sub(" ", plain).strip()
        return [line.rstrip() for line in out.split("\n")] if out.strip() else []

    def _progress(self, state: dict[str, Any], width: int, standalone: bool = False) -> str:
        lo, hi = _num(state.get("min"), 0.0), _num(state.get("max"), 100.0)
        value = _num(state.get("value"), lo)
        frac = 0.0 if hi <= lo else min(1.0, max(0.0, (value - lo) / (hi - lo)))
        desc = self._description(state)
        room = width - (cell_width(desc) + 1 if desc else 0) - 2
        cells = max(MIN_BAR, min(MAX_BAR, room)) if standalone else max(1, room)
        filled = frac * cells
        full = int(filled)
        eighth = int((filled - full) * 8) if full < cells else 0
        bar = "█" * full + (_EIGHTHS[eighth] if eighth else "")
        bar = self._style(bar, self._bar_colour(state)) + " " * (
            cells - full - (1 if eighth else 0)
        )
        return (desc + " " if desc else "") + "|" + bar + "|"

    def _bar_colour(self, state: dict[str, Any]) -> str | None:
        style = state.get("bar_style")
        sgr = _BAR_SGR.get(style) if isinstance(style, str) else None
        found = self._model(state.get("style"))
        colour = found[1].state.get("bar_color") if found is not None else None
        if isinstance(colour, str) and colour and style != "danger":
            colour = colour.strip().lower()
            m = _HEX.fullmatch(colour)
            if m and self.ctx.caps.colors >= 256:
                h = m.group(1)
                if len(h) == 3:
                    h = "".join(c * 2 for c in h)
                r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
                return f"38;2;{r};{g};{b}"
            sgr = _NAMED_COLOURS.get(colour, sgr)
        return sgr

    def _hbox(self, children: list[Any], width: int, depth: int) -> list[str]:
        columns: list[list[str] | None] = []
        bars: list[tuple[int, dict[str, Any]]] = []
        used = 0
        for child in children:
            found = self._model(child)
            if found is not None and found[1].name in ("FloatProgress", "IntProgress"):
                mid, model = found
                if mid in self._visiting or self._hidden(model.state):
                    continue
                self._nodes += 1
                bars.append((len(columns), model.state))
                columns.append(None)  # drawn once the others' width is known
                continue
            lines = self.widget(child, width, depth + 1)
            if lines:
                columns.append(lines)
                used += max(display_width(x) for x in lines)
        if not columns:
            return []
        room = width - used - (len(columns) - 1)
        each = max(MIN_BAR + 2, min(MAX_BAR + 2, room // max(1, len(bars)))) if bars else 0
        for i, state in bars:
            desc = self._description(state)
            columns[i] = [self._progress(state, each + (cell_width(desc) + 1 if desc else 0))]
        return _side_by_side([c for c in columns if c is not None])

    def _selection_box(
        self, kind: str, state: dict[str, Any], children: list[Any], width: int, depth: int
    ) -> list[str]:
        titles = state.get("titles")
        titles = titles if isinstance(titles, list) else []
        selected = state.get("selected_index")
        selected = selected if isinstance(selected, int) else (0 if kind != "Accordion" else None)

        def title(i: int) -> str:
            t = _text(titles[i]) if i < len(titles) else ""
            return plain_line(t) or f"{i + 1}"

        lines: list[str] = []
        if kind == "Tab":
            tabs = [
                f"[{title(i)}]" if i == selected else f" {title(i)} " for i in range(len(children))
            ]
            lines.append(" ".join(tabs))
        for i, child in enumerate(children):
            if kind == "Accordion":
                lines.append(("▾ " if i == selected else "▸ ") + title(i))
            if i == selected:
                lines.extend(self.widget(child, width, depth + 1))
        return lines

    def _outputs(self, outputs: Any, width: int, depth: int) -> list[str]:
        if outputs is TOO_LARGE:
            return ["[kconsole: this Output widget holds too much to draw]"]
        if not isinstance(outputs, list):
            return []
        ctx = replace(self.ctx, width=max(10, width))
        text = ""
        for out in outputs[-MAX_OUTPUTS:]:
            if not isinstance(out, dict):
                continue
            kind = out.get("output_type")
            if kind == "stream":
                t = out.get("text")
                t = "".join(str(x) for x in t) if isinstance(t, list) else _as_str(t)
                text += terminal_text(t[-MAX_TEXT:], allow_sgr=ctx.color, allow_progress=False)
            elif kind in ("display_data", "execute_result"):
                data = out.get("data")
                mid = widget_model_id(data)
                if mid is not None and mid in self.store:
                    lines = self.widget(mid, width, depth + 1)
                    body = "\n".join(lines)
                else:
                    body = self._bundle(data, out.get("metadata"), ctx)
                if text and not text.endswith("\n"):
                    text += "\n"
                text += body + ("\n" if body and not body.endswith("\n") else "")
            elif kind == "error":
                tb = out.get("traceback")
                lines = [_as_str(x) for x in tb] if isinstance(tb, list) else []
                if not lines:
                    lines = [f"{_as_str(out.get('ename'))}: {_as_str(out.get('evalue'))}"]
                if text and not text.endswith("\n"):
                    text += "\n"
                tb_text = "\n".join(lines)[-MAX_TEXT:]
                text += terminal_text(tb_text, allow_sgr=ctx.color, allow_progress=False) + "\n"
        text = text.replace("\r\n", "\n")
        # A stream's \r redraws are the terminal's business; here only their last state.
        return [ln.rsplit("\r", 1)[-1] for ln in text.rstrip("\n").split("\n")] if text else []

    def _bundle(self, data: Any, metadata: Any, ctx: RenderContext) -> str:
        """A bundle of an Output widget as the console would print it."""
        if self.registry is None:
            from .registry import default_registry

            self.registry = default_registry()
        md = metadata if isinstance(metadata, dict) else {}
        return self.registry.render(data if isinstance(data, dict) else {}, md, ctx).text

    def _generic(self, kind: str, state: dict[str, Any]) -> list[str]:
        desc = self._description(state)
        if kind in ("Button", "ToggleButton"):
            label = desc or _text(state.get("icon")) or kind.lower()
            mark = ("[x] " if state.get("value") is True else "") if kind == "ToggleButton" else ""
            return [f"[ {mark}{label} ]"]
        if kind in ("Image", "Video", "Audio", "Play", "Controller", "ColorsInput"):
            return [f"[{kind.lower()}{': ' + desc if desc else ''}]"]
        value = state.get("value")
        labels = state.get("_options_labels")
        index = state.get("index")
        if isinstance(labels, list) and not isinstance(index, bool):
            if isinstance(index, int) and 0 <= index < len(labels):
                value_text = _text(labels[index])
            elif isinstance(index, list):
                picked = [
                    labels[i] for i in index[:50] if isinstance(i, int) and 0 <= i < len(labels)
                ]
                value_text = ", ".join(_text(x) for x in picked)
            else:
                value_text = ""
        elif isinstance(value, bool):
            return [("[x] " if value else "[ ] ") + (desc or kind)]
        elif isinstance(value, list) and len(value) == 2:
            value_text = f"{_text(value[0])} – {_text(value[1])}"
        elif isinstance(value, list):
            value_text = ", ".join(_text(x) for x in value[:50])
        elif isinstance(value, dict):
            value_text = " ".join(_text(x) for x in list(value.values())[:6])
        else:
            value_text = _text(value)
        value_text = _HTML_SPACE.sub(" ", value_text).strip() if kind != "Textarea" else value_text
        if desc and value_text:
            text = f"{desc}: {value_text}"
        else:
            text = desc or value_text
        if not text:
            return [f"[{plain_line(kind) or 'widget'}]"] if kind else []
        return text.split("\n")[:20]


def _as_str(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value)[:200])


__all__ = [
    "COMM_TYPES",
    "MAX_MODELS",
    "MAX_MODEL_BYTES",
    "MAX_TOTAL_BYTES",
    "WIDGET_MIME",
    "WIDGET_TARGET",
    "WidgetModel",
    "WidgetStore",
    "model_ref",
    "widget_model_id",
    "TOO_LARGE",
]


def _unescape(text: str) -> str:
    """``html.unescape``, imported when a widget first needs it: the module loads
    HTML5's table of entities (~0.3 MB) that most sessions never use."""
    from html import unescape

    return unescape(text)
