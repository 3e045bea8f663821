"""``IPython.display`` in the built-in kernel: IPython's display functions, our publisher.

IPython's ``display()``/``clear_output()`` print plain text unless an IPython shell
is running, and the built-in kernel never starts one (IPython is not imported unless
user code imports it). So when ``IPython.core.display_functions`` is first imported,
an import hook replaces its ``display``, ``publish_display_data``, ``clear_output``,
``update_display`` and ``DisplayHandle`` with the kernel's own: every importer of
``IPython.display`` (and IPython's own ``display_html``, ``Image``, ... which look
the functions up in that module) then publishes ``display_data`` as under ipykernel.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence
from typing import Any

from . import displays as _display

TARGET = "IPython.core.display_functions"


def _update_display(obj: Any, *, display_id: str, **kwargs: Any) -> None:
    """IPython's ``update_display``: replace what ``display_id`` shows."""
    kwargs["update"] = True
    _display.display(obj, display_id=display_id, **kwargs)


def patch(module: types.ModuleType) -> None:
    """Point IPython's display functions at the kernel's display system."""
    ours: dict[str, Any] = {
        "display": _display.display,
        "publish_display_data": _display.publish_display_data,
        "clear_output": _display.clear_output,
        "update_display": _update_display,
        "DisplayHandle": _display.DisplayHandle,
    }
    theirs = {name: getattr(module, name, None) for name in ours}
    for name, value in ours.items():
        setattr(module, name, value)
    # Modules imported before (IPython imported before the kernel started, by a
    # sitecustomize say) hold IPython's own by name: IPython.display did `import *`.
    for mod_name, mod in list(sys.modules.items()):
        if mod is module or not mod_name.startswith("IPython") or mod is None:
            continue
        for name, original in theirs.items():
            if original is not None and getattr(mod, name, None) is original:
                setattr(mod, name, ours[name])


class _PatchingLoader(importlib.abc.Loader):
    """Runs the real loader, then :func:`patch` on the module."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> Any:
        # get_source, get_filename, is_package...: the real loader's (inspect, pkgutil).
        if name == "_loader":
            raise AttributeError(name)
        return getattr(self._loader, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self._loader.exec_module(module)
        patch(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds :data:`TARGET` with the other finders and wraps its loader."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


def install() -> None:
    """Patch IPython's display functions now if imported, else when they are."""
    if TARGET in sys.modules:
        patch(sys.modules[TARGET])
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
