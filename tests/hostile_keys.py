"""A kernel whose complete and history replies are malformed (for tests/test_keys_*).

kconsole's built-in kernel with two handlers swapped: complete_reply has null cursor
positions and matches that are not strings, history_reply's ``history`` is a number.
Run as ``python hostile_keys.py -f CONNECTION_FILE``.
"""

from __future__ import annotations

import sys

from kconsole.kernel import kernel as k
from kconsole.protocol import Message


def _complete(self: k.Kernel, msg: Message) -> None:
    content = {
        "status": "ok",
        "matches": ["hostile_name", 5, None, {"x": 1}, "hostile_name"],
        "cursor_start": None,
        "cursor_end": "end",
        "metadata": {"_jupyter_types_experimental": "nope"},
    }
    self._reply("shell", msg, content)


def _history(self: k.Kernel, msg: Message) -> None:
    self._reply("shell", msg, {"status": "ok", "history": 5})


k._SHELL_HANDLERS["complete_request"] = _complete
k._SHELL_HANDLERS["history_request"] = _history

if __name__ == "__main__":
    args = sys.argv[1:]
    k.run_kernel(args[args.index("-f") + 1] if "-f" in args else None)
