"""The display system of the built-in kernel: ``display()``, ``clear_output()``.

Objects are turned into MIME bundles with the ``_repr_*_`` protocol IPython defined
(``_repr_mimebundle_`` first, then one method per type); binary types are base64
text in the bundle, as the protocol wants. Outside a running kernel, ``display()``
prints the plain-text form, so code using it still runs in a plain interpreter.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable
from typing import Any, cast

#: The running kernel's IOPub publisher: ``(msg_type, content, metadata)``.
_publish: Callable[[str, dict[str, Any], dict[str, Any] | None], None] | None = None

#: ``_repr_*_`` methods in the order a frontend prefers them.
REPR_METHODS: tuple[tuple[str, str], ...] = (
    ("text/html", "_repr_html_"),
    ("text/markdown", "_repr_markdown_"),
    ("text/latex", "_repr_latex_"),
    ("image/svg+xml", "_repr_svg_"),
    ("image/png", "_repr_png_"),
    ("image/jpeg", "_repr_jpeg_"),
    ("application/json", "_repr_json_"),
    ("application/javascript", "_repr_javascript_"),
    ("application/pdf", "_repr_pdf_"),
)
BINARY_MIMES = frozenset({"image/png", "image/jpeg", "image/gif", "application/pdf"})


def _valid(mime: str, value: Any) -> bool:
    """Whether a ``_repr_*_`` result has a type the MIME type can carry (IPython's
    formatters check the same): text for text types, bytes or base64 text for binary
    ones, a dict or list (or JSON text) for JSON."""
    if mime == "application/json":
        return isinstance(value, (dict, list, str, bytes))
    if mime in BINARY_MIMES:
        return isinstance(value, (bytes, bytearray, memoryview, str))
    return isinstance(value, (str, bytes))


def set_publisher(
    publish: Callable[[str, dict[str, Any], dict[str, Any] | None], None] | None,
) -> None:
    """Route display output to a kernel (None: print plain text instead)."""
    global _publish
    _publish = publish


def _new_display_id() -> str:
    import uuid

    return uuid.uuid4().hex


def method(obj: Any, name: str) -> Callable[..., Any] | None:
    """``obj.name`` when it is a real repr method (not a class, not a catch-all)."""
    if isinstance(obj, type):
        return None
    try:
        m = getattr(obj, name, None)
        if m is None or not callable(m):
            return None
        # Objects answering every attribute (mocks, proxies) would claim every type.
        if getattr(obj, "_ipython_canary_method_should_not_exist_", None) is not None:
            return None
    except Exception:
        return None
    return cast("Callable[..., Any]", m)


def _encode(mime: str, value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        if mime in BINARY_MIMES or not mime.startswith("text/"):
            return base64.b64encode(raw).decode("ascii")
        return raw.decode("utf-8", "replace")
    if mime == "application/json" and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def safe_repr(obj: Any) -> str:
    """``repr(obj)``, or a note that repr failed (a broken repr must not kill output)."""
    try:
        return repr(obj)
    except Exception as e:
        return f"<{type(obj).__name__} object (repr failed: {type(e).__name__}: {e})>"


def _figure_png(obj: Any) -> bytes | None:
    # A matplotlib Figure shows as its PNG (IPython registers the same formatter).
    if not is_figure(obj):
        return None
    import io

    buf = io.BytesIO()
    obj.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def format_object(
    obj: Any, include: Any = None, exclude: Any = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The MIME bundle ``(data, metadata)`` for ``obj``; it has ``text/plain`` unless
    ``include`` or ``exclude`` leave it out."""
    data: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    mb = method(obj, "_repr_mimebundle_")
    if mb is not None:
        try:
            r = mb(include=include, exclude=exclude)
        except TypeError:
            r = mb()
        except Exception:
            r = None
        if isinstance(r, tuple) and len(r) == 2:
            d, m = r
            if isinstance(m, dict):
                metadata.update(m)
        else:
            d = r
        if isinstance(d, dict):
            for mime, value in d.items():
                data[mime] = _encode(mime, value)
    for mime, name in REPR_METHODS:
        if mime in data:
            continue
        m = method(obj, name)
        if m is None:
            continue
        try:
            r = m()
        except Exception:
            continue
        if r is None:
            continue
        md = None
        if isinstance(r, tuple) and len(r) == 2 and isinstance(r[1], dict):
            r, md = r
        if not _valid(mime, r):
            # Sent as is it would make an invalid message and notebook output; one
            # line on stderr says so, as IPython's FormatterWarning (but without our
            # source line).
            print(
                f"FormatterWarning: {mime} formatter returned invalid type "
                f"{type(r).__name__} for object: {safe_repr(obj)}",
                file=sys.stderr,
            )
            continue
        if md is not None:
            metadata[mime] = md
        data[mime] = _encode(mime, r)
    if "image/png" not in data:
        try:
            png = _figure_png(obj)
        except Exception:
            png = None
        if png:
            data["image/png"] = _encode("image/png", png)
    if include:
        data = {k: v for k, v in data.items() if k in include}
    if exclude:
        data = {k: v for k, v in data.items() if k not in exclude}
    # As IPython's formatter: text/plain unless include or exclude leave it out.
    wanted = (not include or "text/plain" in include) and not (exclude and "text/plain" in exclude)
    if "text/plain" not in data and wanted:
        data["text/plain"] = plain_text(obj)
    return data, metadata


def plain_text(obj: Any) -> str:
    """The ``text/plain`` form: ``repr``, but IPython's ``<mod.Class at 0x...>`` for
    objects with object's default repr, so outputs read (and compare) as ipykernel's."""
    cls = type(obj)
    if callable(getattr(cls, "_repr_pretty_", None)) and not isinstance(obj, type):
        # IPython's pretty-printing protocol: such objects come with IPython.
        try:
            from IPython.lib.pretty import pretty as _pretty

            # IPython's pretty is unannotated: typed here so calling it is checked.
            pretty: Callable[[Any], object] = _pretty
            return str(pretty(obj))
        except Exception:
            pass
    if getattr(cls, "__repr__", None) is object.__repr__:
        mod = getattr(cls, "__module__", None)
        name = getattr(cls, "__qualname__", cls.__name__)
        name = name if mod in (None, "builtins") else f"{mod}.{name}"
        return f"<{name} at 0x{id(obj):x}>"
    return safe_repr(obj)


class DisplayHandle:
    """A handle on one display area, updated in place by its ``display_id``."""

    def __init__(self, display_id: str | None = None) -> None:
        self.display_id = display_id or _new_display_id()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} display_id={self.display_id}>"

    def display(self, obj: Any, **kwargs: Any) -> None:
        """Show ``obj`` in a new area with this handle's id."""
        display(obj, display_id=self.display_id, **kwargs)

    def update(self, obj: Any, **kwargs: Any) -> None:
        """Replace what every area with this handle's id shows."""
        display(obj, display_id=self.display_id, update=True, **kwargs)


def publish_display_data(
    data: dict[str, Any],
    metadata: dict[str, Any] | None = None,
    *,
    transient: dict[str, Any] | None = None,
    update: bool = False,
    **kwargs: Any,
) -> None:
    """Publish one ``display_data`` (or ``update_display_data``) message.

    The content always has ``transient`` (``{}`` when none), as ipykernel's; other
    keyword arguments (IPython's ``source``) are accepted and ignored.
    """
    content: dict[str, Any] = {
        "data": data,
        "metadata": metadata or {},
        "transient": transient or {},
    }
    if _publish is None:
        print(data.get("text/plain", ""))
        return
    _publish("update_display_data" if update else "display_data", content, None)


def display(
    *objs: Any,
    include: Any = None,
    exclude: Any = None,
    metadata: dict[str, Any] | None = None,
    transient: dict[str, Any] | None = None,
    display_id: str | bool | None = None,
    raw: bool = False,
    clear: bool = False,
    update: bool = False,
    **kwargs: Any,
) -> DisplayHandle | None:
    """Display each object with its richest representations.

    ``raw=True``: the objects are MIME bundles already. ``display_id``: an id (or
    True for a new one) to update the output later; a :class:`DisplayHandle` is then
    returned. ``update=True`` replaces the output shown under ``display_id``.
    """
    if update and not display_id:
        raise TypeError("display(update=True) needs a display_id")
    if display_id is True:
        display_id = _new_display_id()
    if clear:
        clear_output(wait=True)
    transient = dict(transient or {})
    if display_id:
        transient["display_id"] = display_id
    if not objs and display_id:
        objs, raw = ({},), True  # an empty area to update later, as IPython makes
    for obj in objs:
        hook = None if raw else method(obj, "_ipython_display_")
        if hook is not None:  # the object displays itself (widgets do)
            hook()
            continue
        if raw:
            if not isinstance(obj, dict):
                raise TypeError("display(raw=True) takes MIME bundles (dicts)")
            data = {k: _encode(k, v) for k, v in obj.items()}
            md: dict[str, Any] = {}
        else:
            data, md = format_object(obj, include=include, exclude=exclude)
            if not data:
                continue  # include/exclude left nothing: IPython publishes nothing
        if metadata:
            md = {**md, **metadata}
        publish_display_data(data, md, transient=transient, update=update)
    if display_id:
        return DisplayHandle(str(display_id))
    return None


def clear_output(wait: bool = False) -> None:
    """Clear the output of the current cell (``wait``: when new output arrives)."""
    if _publish is None:
        print("\033[2K\r", end="", flush=True)
        return
    _publish("clear_output", {"wait": bool(wait)}, None)


def is_figure(obj: Any) -> bool:
    """Whether ``obj`` is a matplotlib Figure (without importing matplotlib)."""
    cls = type(obj)
    return cls.__module__.startswith("matplotlib.") and cls.__name__ == "Figure"


def show_figures(shown: frozenset[int] = frozenset()) -> None:
    """Display every open pyplot figure as a PNG, then close them (inline backend).

    ``shown``: ids of figures the cell's result displayed already (not shown again).
    """
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    try:
        nums = plt.get_fignums()
    except Exception:
        return
    for num in nums:
        fig = plt.figure(num)
        if id(fig) in shown:
            continue
        try:
            display(fig)
        except Exception:
            pass
    if nums:
        plt.close("all")
