"""Modules the console's dependencies import at load but rarely use are deferred
(kconsole.lazy_imports): they must behave exactly as before when used, character
widths included, and stay unloaded until then."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = r"""
import json, sys, types
from kconsole import lazy_imports
lazy_imports.defer_unused()
import prompt_toolkit.shortcuts  # what the REPL loads
from prompt_toolkit.utils import get_cwidth
ascii_widths = [get_cwidth(c) for c in "In [1]: print(6*7) ~"]
def loaded(name):
    return type(sys.modules.get(name)) is types.ModuleType
untouched = [m for m in lazy_imports.UNUSED_AT_START if not loaded(m)]
wide = [get_cwidth(c) for c in "中文é\u0301"]
import wcwidth
real = [max(0, wcwidth.wcwidth(c)) for c in "中文é\u0301"]
# Used after all: each behaves as the real module.
import tempfile, shutil, os
fd, path = tempfile.mkstemp()
os.close(fd); os.unlink(path)
from prompt_toolkit.formatted_text import HTML, to_formatted_text
html = to_formatted_text(HTML("<b>bold</b>"))
print(json.dumps({
    "ascii": ascii_widths, "untouched": untouched, "wide": wide, "real": real,
    "which": bool(shutil.which("sh")), "html": [list(t) for t in html],
    "after": [m for m in ("tempfile", "shutil") if loaded(m)],
}))
"""


@pytest.mark.timeout(60)
def test_deferred_modules_stay_unloaded_until_used_then_behave_as_before() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout
    got = json.loads(out)
    assert got["ascii"] == [1] * 20  # every ASCII character of a prompt is one cell
    # Loading prompt_toolkit and drawing ASCII loaded none of them.
    assert got["untouched"] == ["tempfile", "shutil", "bz2", "lzma", "zlib", "wcwidth"]
    assert got["wide"] == got["real"] == [2, 2, 1, 0]  # CJK wide, combining mark 0
    assert got["which"]
    assert got["html"] == [["class:b", "bold"]]
    assert got["after"] == ["tempfile", "shutil"]
