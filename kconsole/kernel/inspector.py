"""Object inspection for the built-in kernel (``inspect_request``, ``obj?``, ``help``).

``inspect`` and ``pydoc`` are imported when an object is first inspected, never at
kernel start.
"""

from __future__ import annotations

import re
from typing import Any

from .completer import lookup

_NAME_AT_END = re.compile(r"[\w.]*$")
_NAME_AT_START = re.compile(r"^\w*")


def name_at_cursor(code: str, cursor_pos: int) -> str:
    """The dotted name under the cursor, or the callee of the enclosing open call."""
    cursor_pos = max(0, min(cursor_pos, len(code)))
    before = code[:cursor_pos]
    after = code[cursor_pos:]
    left = _NAME_AT_END.search(before)
    right = _NAME_AT_START.match(after)
    name = (left.group(0) if left else "") + (right.group(0) if right else "")
    name = name.strip(".")
    if name and not name[0].isdigit():
        return name
    # Inside a call: find the innermost unclosed "(" and take the name before it.
    depth = 0
    for i in range(len(before) - 1, -1, -1):
        ch = before[i]
        if ch in ")]}":
            depth += 1
        elif ch in "([{":
            if depth == 0:
                if ch != "(":
                    return ""
                m = _NAME_AT_END.search(before[:i])
                return (m.group(0) if m else "").strip(".")
            depth -= 1
    return ""


def _signature(obj: Any) -> str | None:
    import inspect

    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return None


def info(name: str, obj: Any, detail_level: int = 0) -> str:
    """The text IPython's ``obj?`` (``obj??`` at detail 1) shows, without colours:
    IPython's fields in IPython's order, their bodies aligned after the longest title."""
    import inspect

    fields: list[tuple[str, str]] = []
    is_class = isinstance(obj, type)
    source = None
    if detail_level > 0:
        try:
            source = inspect.getsource(obj)
        except (OSError, TypeError):
            source = _cell_class_source(obj) if is_class else None
    doc = inspect.getdoc(obj)
    if is_class or inspect.isroutine(obj):
        sig = _signature(obj)
        if sig is not None:
            fields.append(("Init signature" if is_class else "Signature", f"{name}{sig}"))
        if source is not None:
            fields.append(("Source", source))
        else:
            fields.append(("Docstring", doc or "<no docstring>"))
            if is_class:
                _append_init_doc(fields, obj)
        _append_file(fields, obj)
        fields.append(("Type", type(obj).__name__))
    else:
        if callable(obj):
            sig = _signature(obj)
            if sig is not None:
                fields.append(("Signature", f"{name}{sig}"))
        fields.append(("Type", type(obj).__name__))
        try:
            text = repr(obj)
        except Exception:
            text = "<repr failed>"
        if len(text) > 200:
            text = text[:100] + " ... " + text[-95:]
        fields.append(("String form", text))
        try:
            fields.append(("Length", str(len(obj))))
        except Exception:
            pass
        _append_file(fields, obj)
        if source is not None:
            fields.append(("Source", source))
        else:
            # An instance's docstring is its class's (IPython labels it Docstring too).
            fields.append(("Docstring", doc or "<no docstring>"))
            _append_init_doc(fields, type(obj))
    width = max(len(head) for head, _ in fields)
    lines = []
    for head, body in fields:
        body = body.strip("\n")
        delim = "\n" if "\n" in body else " "
        lines.append(f"{head}:{' ' * (width - len(head))}{delim}{body}")
    return "\n".join(lines)


def _append_init_doc(fields: list[tuple[str, str]], cls: type) -> None:
    """IPython's ``Init docstring``: that of the class's own ``__init__``, if any."""
    import inspect

    init = getattr(cls, "__init__", None)
    if init is None or init is object.__init__:
        return
    doc = inspect.getdoc(init)
    if doc and doc != inspect.getdoc(object.__init__):
        fields.append(("Init docstring", doc))


def _append_file(fields: list[tuple[str, str]], obj: Any) -> None:
    import inspect

    try:
        fields.append(("File", inspect.getsourcefile(obj) or inspect.getfile(obj)))
    except (TypeError, OSError):
        pass


def inspect_reply(
    code: str, cursor_pos: int, namespace: dict[str, Any], detail_level: int = 0
) -> dict[str, Any]:
    """An ``inspect_reply`` content."""
    name = name_at_cursor(code, cursor_pos)
    found, obj = lookup(name, namespace) if name else (False, None)
    if not found:
        return {"status": "ok", "found": False, "data": {}, "metadata": {}}
    return {
        "status": "ok",
        "found": True,
        "data": {"text/plain": info(name, obj, detail_level)},
        "metadata": {},
    }


def help_text(obj: Any) -> str:
    """What ``help(obj)`` prints, as plain text."""
    import pydoc

    renderer: Any = getattr(pydoc, "plaintext")  # noqa: B009 - missing from the stubs
    try:
        return pydoc.render_doc(obj, renderer=renderer)
    except ImportError:
        return f"No Python documentation found for {obj!r}."


def _cell_class_source(cls: type) -> str | None:
    """Source of a class defined in a cell (``inspect`` wants a module ``__file__``)."""
    import ast
    import linecache

    filename = None
    for v in vars(cls).values():
        code = getattr(getattr(v, "__func__", v), "__code__", None)
        if code is not None and code.co_filename.startswith("<cell-"):
            filename = code.co_filename
            break
    if filename is None:
        return None
    lines = linecache.getlines(filename)
    try:
        tree = ast.parse("".join(lines))
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            return "".join(lines[first - 1 : node.end_lineno])
    return None
