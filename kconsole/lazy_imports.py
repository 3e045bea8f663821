"""Modules that the console's dependencies import when they load but that a session
rarely uses, loaded on first use instead.

- prompt_toolkit's buffer imports ``tempfile`` and ``shutil`` (for "edit in
  $EDITOR"); ``shutil`` imports ``bz2``, ``lzma`` and ``zlib`` only to learn whether
  they exist, which maps their shared libraries.
- prompt_toolkit imports ``wcwidth`` for one function it calls per distinct character
  it draws; wcwidth 0.9 loads ~1.5 MB of Unicode tables and ``secrets`` (hence
  OpenSSL's libcrypto, ~4 MB resident) although a printable ASCII character is one
  cell wide in every version of the tables.

Together about 7 MB of a console's resident memory and some milliseconds of its start.
(prompt_toolkit's ``xml.dom.minidom`` cannot wait: its progress-bar formatters parse
HTML templates when the package loads.)

:func:`defer` registers a stand-in module under the name: any attribute read from it
imports the real module (which then replaces the stand-in in ``sys.modules``) and
returns the real attribute, so a module that is used behaves as before. The standard
library's ``importlib.util.LazyLoader`` cannot do this: the import system reads
``__spec__`` of a module found in ``sys.modules``, which makes a lazy module load on
the next ``import`` of it (that is, at once). The stand-in for wcwidth also answers
``wcwidth()`` for printable ASCII itself, and for the toolbar's separator.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

#: What :func:`defer_unused` defers.
UNUSED_AT_START = ("tempfile", "shutil", "bz2", "lzma", "zlib", "wcwidth")


class _StandIn(types.ModuleType):
    """Holds a module's place until an attribute of it is read."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            # The import system probes __path__, __file__...: not a reason to load.
            raise AttributeError(attr)
        return getattr(_load(self.__name__), attr)


_real: dict[str, types.ModuleType] = {}


def _load(name: str) -> types.ModuleType:
    module = _real.get(name)
    if module is None:
        if isinstance(sys.modules.get(name), _StandIn):
            del sys.modules[name]
        module = _real[name] = importlib.import_module(name)
    return module


#: Characters beyond ASCII that kconsole's own prompt draws (the bottom toolbar's
#: separator, drawn where the terminal answers cursor-position requests): one cell
#: wide in every version of wcwidth's tables, so drawing them needs none of them.
ONE_CELL = frozenset("\u2502")


def _ascii_wcwidth(wc: str, *args: Any, **kwargs: Any) -> int:
    """``wcwidth.wcwidth``, answering printable ASCII (and :data:`ONE_CELL`) without
    the tables."""
    if len(wc) == 1 and (" " <= wc <= "~" or (wc in ONE_CELL and not args and not kwargs)):
        return 1
    return int(_load("wcwidth").wcwidth(wc, *args, **kwargs))


def defer(name: str) -> None:
    """Stand in for module ``name`` until it is used; nothing if it is loaded."""
    if name in sys.modules:
        return
    stand_in = _StandIn(name)
    if name == "wcwidth":
        stand_in.wcwidth = _ascii_wcwidth  # type: ignore[attr-defined]
    parent, _, child = name.rpartition(".")
    if parent:
        # `import a.b as m` reads the attribute on the (real) parent package.
        setattr(importlib.import_module(parent), child, stand_in)
    sys.modules[name] = stand_in


def defer_unused() -> None:
    """Defer :data:`UNUSED_AT_START` (call before importing prompt_toolkit)."""
    for name in UNUSED_AT_START:
        defer(name)
