"""Output of a real ipykernel that is not UTF-8: jupyter_client packs a
``surrogateescape``'d file name as its raw bytes, which no UTF-8 decoder takes."""

from __future__ import annotations

import subprocess

import pytest
from ptyconsole import KCONSOLE

pytest.importorskip("ipykernel")


@pytest.mark.timeout(90)
def test_a_non_utf8_file_name_printed_by_ipykernel_is_shown_not_lost() -> None:
    p = subprocess.run(
        [*KCONSOLE, "start", "--kernel", "python3"],
        input="import os\nprint(os.fsdecode(b'\\xff.txt'))\nprint('next')\n",
        capture_output=True,
        text=True,
        timeout=80,
    )
    assert p.stdout.splitlines() == ["\\xff.txt", "next"], p.stdout + p.stderr
    assert p.returncode == 0
