"""The built-in kernel as a kernelspec: its ``kernel.json``, and installing it.

The launcher can start the built-in kernel from :func:`builtin_kernel_spec_dict`
with no kernelspec installed; :func:`install_kernelspec` makes it visible to every
Jupyter tool (``jupyter console --kernel kconsole-python``, notebooks, ...).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from ..atomic import replace_file, umask_mode

DEFAULT_NAME = "kconsole-python"
DISPLAY_NAME = "Python 3 (kconsole built-in)"
_NAME_RE = re.compile(r"^[a-z0-9._-]+$")


def builtin_kernel_spec_dict(python: str | None = None) -> dict[str, Any]:
    """The ``kernel.json`` content of the built-in kernel.

    ``python``: the interpreter in argv[0] (default: ``sys.executable``, the one
    kconsole runs in, so the spec works without activating its environment).
    """
    return {
        "argv": [
            python or sys.executable or "python",
            "-m",
            "kconsole.kernel",
            "-f",
            "{connection_file}",
        ],
        "display_name": DISPLAY_NAME,
        "language": "python",
        "interrupt_mode": "signal",
        "env": {},
        # As ipykernel 7.4 declares it: jupyter_client's transport_encryption="auto"
        # then provisions Curve keys, which the kernel uses on every socket.
        "metadata": {
            "debugger": False,
            "supported_encryption": ["curve"],
            "kconsole": {"builtin": True},
        },
        "kernel_protocol_version": "5.4",
    }


def kernels_dir(dest: str | os.PathLike[str]) -> Path:
    """``<data dir>/kernels`` for ``dest``: ``"user"``, ``"sys-prefix"`` or a prefix path."""
    if dest == "user":
        from .. import paths

        return paths.data_dir() / "kernels"
    if dest == "sys-prefix":
        return Path(sys.prefix) / "share" / "jupyter" / "kernels"
    return Path(dest).expanduser() / "share" / "jupyter" / "kernels"


def install_kernelspec(
    dest: str | os.PathLike[str] = "user",
    name: str = DEFAULT_NAME,
    *,
    python: str | None = None,
    display_name: str | None = None,
) -> Path:
    """Write the built-in kernel's kernelspec; returns its directory.

    ``dest``: ``"user"`` (kconsole.paths.data_dir()), ``"sys-prefix"``
    (``sys.prefix/share/jupyter``) or a prefix path P (``P/share/jupyter``).
    ``name`` must match ``[a-z0-9._-]+`` (ValueError otherwise). An existing spec of
    the same name is replaced.
    """
    name = name.lower()
    if not _NAME_RE.match(name):
        raise ValueError(
            f"invalid kernel name {name!r}: use lowercase letters, digits, '.', '_' and '-'"
        )
    spec = builtin_kernel_spec_dict(python)
    if display_name:
        spec["display_name"] = display_name
    kdir = kernels_dir(dest) / name
    kdir.mkdir(parents=True, exist_ok=True)
    # Atomically: a kernel started while this runs reads the old spec or the new one.
    data = (json.dumps(spec, indent=1) + "\n").encode("utf-8")
    replace_file(kdir / "kernel.json", data, umask_mode())
    return kdir
