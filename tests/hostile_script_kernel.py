"""The built-in kernel, but errors are told in the execute_reply only (no IOPub
``error`` message), as some kernels do: ``python hostile_script_kernel.py -f FILE``."""

from __future__ import annotations

import sys
from typing import Any

from kconsole.kernel import kernel as _kernel
from kconsole.kernel.__main__ import main

_publish = _kernel.Kernel.publish


def _publish_no_errors(
    self: Any, msg_type: str, content: dict[str, Any], *a: Any, **kw: Any
) -> None:
    if msg_type != "error":
        _publish(self, msg_type, content, *a, **kw)


_kernel.Kernel.publish = _publish_no_errors  # type: ignore[method-assign]

if __name__ == "__main__":
    main(sys.argv[1:])
