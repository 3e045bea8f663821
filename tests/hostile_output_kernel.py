"""The built-in kernel with hostile kernel_info: escape sequences in its banner,
implementation name and language name (what a malicious kernel could send).

Run as ``python hostile_output_kernel.py -f CONNECTION_FILE`` from a kernelspec.
"""

from __future__ import annotations

import sys
from typing import Any

import kconsole.kernel.kernel as kernel_module
from kconsole.kernel.__main__ import main

#: Every sequence here must never reach the terminal raw.
HOSTILE = "\x1b]52;c;aGFja2Vk\x07\x1b]0;pwned\x1b\\\x1bP1$qm\x1b\\\x1b[?1049h\x9d2;pwned\x9c"

_original = kernel_module.kernel_info_content


def hostile_kernel_info() -> dict[str, Any]:
    info = _original()
    info["banner"] = "HOSTILE BANNER " + HOSTILE + "\n"
    info["implementation"] = "evil" + HOSTILE
    info["language_info"] = {**info["language_info"], "name": "py" + HOSTILE}
    return info


kernel_module.kernel_info_content = hostile_kernel_info  # type: ignore[assignment]

if __name__ == "__main__":
    main(sys.argv[1:])
