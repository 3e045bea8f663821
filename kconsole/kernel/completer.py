"""Completion for the built-in kernel.

Names of the user namespace, builtins and keywords; attributes of dotted names
(resolved without calling anything); module names after ``import``/``from``; file
paths inside an unterminated string (as IPython's file matcher); and jedi, when it is
importable, for what these cannot resolve (calls, subscripts, dict keys). jedi is
imported on first need only.
"""

from __future__ import annotations

import builtins
import glob
import keyword
import os
import re
import sys
from typing import Any

_TOKEN = re.compile(r"[\w.]*$")
_IMPORT = re.compile(r"^\s*(?:import\s+(?:[\w.]+\s*,\s*)*|from\s+)([\w.]*)$")
_FROM_IMPORT = re.compile(r"^\s*from\s+([\w.]+)\s+import\s+(?:[\w]+\s*,\s*)*(\w*)$")
_MAGIC = re.compile(r"^\s*(%%?)(\w*)$")
_MISSING = object()


def resolve(expr: str, namespace: dict[str, Any]) -> Any:
    """The object a dotted name denotes in ``namespace`` (or builtins), without calls.

    Returns a sentinel that is not ``is``-equal to anything the user has when not found;
    use :func:`lookup` for a (found, obj) pair.
    """
    found, obj = lookup(expr, namespace)
    return obj if found else _MISSING


def lookup(expr: str, namespace: dict[str, Any]) -> tuple[bool, Any]:
    """``(True, obj)`` when the dotted name ``expr`` resolves, else ``(False, None)``."""
    parts = expr.split(".")
    if not parts or not all(p.isidentifier() for p in parts):
        return False, None
    head = parts[0]
    if head in namespace:
        obj = namespace[head]
    elif hasattr(builtins, head):
        obj = getattr(builtins, head)
    elif head in sys.modules and len(parts) > 1:
        obj = sys.modules[head]
    else:
        return False, None
    for p in parts[1:]:
        try:
            obj = getattr(obj, p)
        except Exception:
            return False, None
    return True, obj


def _kind(obj: Any) -> str:
    import types

    if isinstance(obj, types.ModuleType):
        return "module"
    if isinstance(obj, type):
        return "class"
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        return "function"
    if callable(obj):
        return "function"
    return "instance"


def _static_attr(obj: Any, name: str) -> Any:
    # Look an attribute up without running properties or __getattr__.
    try:
        d = object.__getattribute__(obj, "__dict__")
        if name in d:
            return d[name]
    except Exception:
        pass
    for klass in type(obj).__mro__ if not isinstance(obj, type) else obj.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    return _MISSING


def _open_string_start(line: str) -> int | None:
    """Where the text of the string still open at the end of ``line`` starts, or None
    when the line ends outside a string (strings closed, or a quote in a comment)."""
    quote = ""
    start = 0
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch == "#":
            return None
        elif ch in "'\"":
            quote, start = ch, i + 1
        i += 1
    return start if quote else None


def _path_matches(prefix: str) -> list[str]:
    """Files and directories (these with a trailing ``/``) whose path starts with
    ``prefix``, relative to the kernel's cwd; ``~`` stays as typed."""
    expanded = os.path.expanduser(prefix)
    out = []
    for path in sorted(glob.glob(glob.escape(expanded) + "*")):
        shown = prefix + path[len(expanded) :]
        out.append(shown + "/" if os.path.isdir(path) else shown)
    return out


def _module_names(prefix: str) -> list[str]:
    import pkgutil

    if "." in prefix:
        pkg_name, _, sub = prefix.rpartition(".")
        names = _submodule_names(pkg_name)
        return sorted(f"{pkg_name}.{n}" for n in names if n.startswith(sub))
    names = set(sys.builtin_module_names)
    names.update(m.name for m in pkgutil.iter_modules())
    names.update(n for n in sys.modules if "." not in n)
    return sorted(n for n in names if n.startswith(prefix) and not n.startswith("__"))


def _submodule_names(pkg_name: str) -> set[str]:
    """Submodules of ``pkg_name``, found on disk (pkgutil) without running the package
    when it is not loaded yet; a loaded module adds the modules it holds (``os.path``)."""
    import pkgutil

    mod = sys.modules.get(pkg_name)
    names: set[str] = set()
    if mod is not None:
        path = getattr(mod, "__path__", None)
        # `import os.path` works because "os.path" is in sys.modules; `os.sys` is not.
        head = pkg_name + "."
        names.update(
            n[len(head) :]
            for n in list(sys.modules)
            if n.startswith(head) and "." not in n[len(head) :]
        )
    else:
        path = _search_locations(pkg_name)
    if path is not None:
        try:
            names.update(m.name for m in pkgutil.iter_modules(list(path)))
        except Exception:
            pass
    return {n for n in names if not n.startswith("__")}


def _search_locations(pkg_name: str) -> list[str] | None:
    """Where the submodules of the package ``pkg_name`` live, found without importing
    it or its parents (``importlib.util.find_spec("a.b")`` would run ``a/__init__.py``):
    each level is looked up in the search locations of the one above."""
    import importlib.machinery
    import importlib.util

    path: list[str] | None = None
    parts = pkg_name.split(".")
    for i in range(len(parts)):
        name = ".".join(parts[: i + 1])
        mod = sys.modules.get(name)
        try:
            if mod is not None:
                path = list(getattr(mod, "__path__", None) or []) or None
            elif i == 0:
                spec = importlib.util.find_spec(name)  # top level: imports nothing
                path = list(spec.submodule_search_locations or []) if spec else None
            else:
                spec = importlib.machinery.PathFinder.find_spec(name, path)
                path = list(spec.submodule_search_locations or []) if spec else None
        except Exception:
            return None
        if not path:
            return None
    return path


def _from_import_names(module: str, prefix: str) -> list[str]:
    import importlib
    import pkgutil

    try:
        mod = importlib.import_module(module)
    except Exception:
        return []
    names = {n for n in dir(mod) if n.startswith(prefix)}
    path = getattr(mod, "__path__", None)
    if path is not None:
        names.update(m.name for m in pkgutil.iter_modules(path) if m.name.startswith(prefix))
    if not prefix.startswith("_"):
        names = {n for n in names if not n.startswith("_")}
    return sorted(names)


class Completer:
    """Completes code at a cursor position against a namespace."""

    def __init__(self, namespace: dict[str, Any], use_jedi: bool = True) -> None:
        self.namespace = namespace
        self.use_jedi = use_jedi

    def complete(self, code: str, cursor_pos: int | None = None) -> dict[str, Any]:
        """A ``complete_reply`` content for ``code`` with the cursor at ``cursor_pos``."""
        if cursor_pos is None:
            cursor_pos = len(code)
        cursor_pos = max(0, min(cursor_pos, len(code)))
        line_start = code.rfind("\n", 0, cursor_pos) + 1
        line = code[line_start:cursor_pos]
        matches: list[str] = []
        types: list[str] = []
        start = cursor_pos

        m = _FROM_IMPORT.match(line)
        magic = _MAGIC.match(line)
        if magic:
            from .magics import CELL_MAGICS, LINE_MAGICS

            sign, word = magic.groups()
            # As IPython: after one %, line magics and then cell magics of each name.
            for n in sorted({*CELL_MAGICS, *LINE_MAGICS}):
                if n.startswith(word):
                    if sign == "%" and n in LINE_MAGICS:
                        matches.append("%" + n)
                    if n in CELL_MAGICS:
                        matches.append("%%" + n)
            types = ["magic"] * len(matches)
            start = cursor_pos - len(sign + word)
        elif m:
            word = m.group(2)
            matches = _from_import_names(m.group(1), word)
            types = ["name"] * len(matches)
            start = cursor_pos - len(word)
        elif (m := _IMPORT.match(line)) is not None:
            word = m.group(1)
            matches = _module_names(word)
            types = ["module"] * len(matches)
            start = cursor_pos - len(word)
        else:
            string_start = _open_string_start(line)
            if string_start is not None:
                matches, types, start = self._string_matches(code, cursor_pos, line, string_start)
            if not matches and (string_start is None or "{" in line[string_start:]):
                # Code, or an f-string's {field} (no file of that name): names.
                matches, types, start = self._code_matches(code, cursor_pos, line)
        # Stable, de-duplicated.
        seen: set[str] = set()
        out: list[str] = []
        out_types: list[str] = []
        for mt, ty in zip(matches, types, strict=False):
            if mt not in seen:
                seen.add(mt)
                out.append(mt)
                out_types.append(ty)
        exp = [
            {"start": start, "end": cursor_pos, "text": mt, "type": ty, "signature": ""}
            for mt, ty in zip(out, out_types, strict=False)
        ]
        return {
            "status": "ok",
            "matches": out,
            "cursor_start": start,
            "cursor_end": cursor_pos,
            "metadata": {"_jupyter_types_experimental": exp},
        }

    def _string_matches(
        self, code: str, cursor_pos: int, line: str, string_start: int
    ) -> tuple[list[str], list[str], int]:
        """In an open string: a subscript's key (d['ke) from jedi first, else a path
        being typed (read_csv('data/...), as IPython's file matcher."""
        if self.use_jedi and line[: string_start - 1].rstrip().endswith("["):
            jm = self._jedi(code, cursor_pos)
            if jm is not None and jm[0]:
                return jm
        matches = _path_matches(line[string_start:])
        return matches, ["path"] * len(matches), cursor_pos - len(line) + string_start

    def _code_matches(
        self, code: str, cursor_pos: int, line: str
    ) -> tuple[list[str], list[str], int]:
        """Names, attributes, then jedi for the word before the cursor."""
        token = _TOKEN.search(line)
        word = token.group(0) if token else ""
        start = cursor_pos - len(word)
        matches: list[str]
        types: list[str]
        before_word = line[: len(line) - len(word)].rstrip()
        if word.startswith(".") or before_word.endswith((")", "]", '"', "'")):
            matches, types = [], []
        elif "." in word:
            matches, types = self._attr_matches(word)
        else:
            matches, types = self._global_matches(word)
        if not matches and self.use_jedi:
            jm = self._jedi(code, cursor_pos)
            if jm is not None:
                matches, types, start = jm
        return matches, types, start

    def _global_matches(self, word: str) -> tuple[list[str], list[str]]:
        matches: list[str] = []
        types: list[str] = []
        if not word:
            return matches, types
        for kw in [*keyword.kwlist, *getattr(keyword, "softkwlist", [])]:
            if kw.startswith(word):
                matches.append(kw)
                types.append("keyword")
        seen = set(matches)
        for src in (self.namespace, builtins.__dict__):
            for name in sorted(src):
                if name.startswith(word) and name not in seen:
                    if name.startswith("__") and not word.startswith("__"):
                        continue
                    seen.add(name)
                    matches.append(name)
                    types.append(_kind(src[name]))
        return matches, types

    def _attr_matches(self, word: str) -> tuple[list[str], list[str]]:
        expr, _, attr = word.rpartition(".")
        found, obj = lookup(expr, self.namespace)
        if not found and expr in sys.modules:
            # `import os` typed in the same cell, not run yet: the module is loaded.
            found, obj = True, sys.modules[expr]
        if not found:
            return [], []
        try:
            names = set(dir(obj))
        except Exception:
            names = set()
        if hasattr(obj, "__class__"):
            names.add("__class__")
        if not attr.startswith("_"):
            names = {n for n in names if not n.startswith("_")}
        elif not attr.startswith("__"):
            names = {n for n in names if not n.startswith("__")}
        matches = sorted(n for n in names if n.startswith(attr))
        types = []
        for n in matches:
            v = _static_attr(obj, n)
            types.append("instance" if v is _MISSING else _kind(v))
        return [f"{expr}.{n}" for n in matches], types

    def _jedi(self, code: str, cursor_pos: int) -> tuple[list[str], list[str], int] | None:
        try:
            import jedi
        except ImportError:
            self.use_jedi = False
            return None
        before = code[:cursor_pos]
        line = before.count("\n") + 1
        column = cursor_pos - (before.rfind("\n") + 1)
        try:
            interp = jedi.Interpreter(code, [self.namespace])
            comps = interp.complete(line=line, column=column)
        except Exception:
            return None
        matches: list[str] = []
        types: list[str] = []
        start = cursor_pos
        for c in comps[:500]:
            typed = len(c.name) - len(c.complete or "")
            start = cursor_pos - typed
            matches.append(c.name)
            types.append(c.type)
        return matches, types, start
