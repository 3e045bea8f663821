"""The stand-in for wcwidth that keeps its tables (and OpenSSL) out of a console whose
prompt is ASCII: character widths must be exactly wcwidth's, wide ones included."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = r"""
import sys
from kconsole import lazy_wcwidth
lazy_wcwidth.install()
from prompt_toolkit.utils import get_cwidth
ascii_widths = [get_cwidth(c) for c in "In [1]: print(6*7) ~"]
loaded_for_ascii = "wcwidth.table_wide" in sys.modules
wide = [get_cwidth(c) for c in "中文é\u0301"]
import wcwidth
real = [max(0, wcwidth.wcwidth(c)) for c in "中文é\u0301"]
print(ascii_widths == [1] * 20, loaded_for_ascii, wide, real, "hmac" in sys.modules)
"""


@pytest.mark.timeout(60)
def test_prompt_widths_are_wcwidths_and_ascii_loads_no_tables() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout.split(" ", 2)
    assert out[0] == "True"  # every ASCII character of a prompt is one cell
    assert out[1] == "False"  # and measuring them loaded none of wcwidth's tables
    assert out[2].startswith("[2, 2, 1, 0] [2, 2, 1, 0]")  # CJK wide, combining mark 0
