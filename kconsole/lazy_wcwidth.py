"""Defer importing wcwidth until a character that needs it is measured.

prompt_toolkit imports ``wcwidth`` when it loads, for one function it calls once per
distinct character it draws. wcwidth 0.9 loads about 1.5 MB of Unicode tables and
``secrets``, which loads OpenSSL's libcrypto (another ~4 MB resident), before the
first prompt, although a prompt of ASCII text needs none of it: a printable ASCII
character is one cell wide in every version of the tables.

:func:`install` puts a stand-in module under the name ``wcwidth``. Its ``wcwidth()``
answers printable ASCII itself and imports the real module for anything else (which
then replaces the stand-in in ``sys.modules``); any other attribute also loads and
returns the real module's.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

_real: types.ModuleType | None = None


def _load() -> types.ModuleType:
    global _real
    if _real is None:
        if isinstance(sys.modules.get("wcwidth"), _LazyModule):
            del sys.modules["wcwidth"]
        _real = importlib.import_module("wcwidth")
    return _real


def wcwidth(wc: str, *args: Any, **kwargs: Any) -> int:
    """Cells taken by the character ``wc``, as ``wcwidth.wcwidth`` says."""
    if len(wc) == 1 and " " <= wc <= "~":
        return 1
    return int(_load().wcwidth(wc, *args, **kwargs))


class _LazyModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            # The import system probes __path__, __spec__...: not a reason to load.
            raise AttributeError(name)
        return getattr(_load(), name)


def install() -> None:
    """Stand in for ``wcwidth`` until it is needed; nothing if it is already loaded."""
    if "wcwidth" in sys.modules:
        return
    stand_in = _LazyModule("wcwidth", __doc__)
    stand_in.wcwidth = wcwidth  # type: ignore[attr-defined]
    sys.modules["wcwidth"] = stand_in
