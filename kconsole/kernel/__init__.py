"""kconsole's built-in Python kernel (``python -m kconsole.kernel -f FILE``).

Importing this package is cheap: the kernel machinery (zmq and the rest) loads only
when a kernel runs. User code inside the kernel can ``from kconsole.kernel import
display, clear_output``; both are also builtins there.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DisplayHandle",
    "builtin_kernel_spec_dict",
    "clear_output",
    "display",
    "install_kernelspec",
]


def __getattr__(name: str) -> Any:
    if name in ("display", "clear_output", "DisplayHandle"):
        from . import displays as _display

        return getattr(_display, name)
    if name in ("install_kernelspec", "builtin_kernel_spec_dict"):
        from . import install

        return getattr(install, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
