"""Payloads a kernel sends in execute_reply are checked, never obeyed blindly: a kernel
that sends garbage there gets no traceback out of the console, and only a real
``ask_exit`` ends it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ptyconsole import PtyConsole

from kconsole.cell_runner import AskExit, EditMagic, Page, SetNextInput, parse_payloads

KCONSOLE = [sys.executable, "-m", "kconsole"]
HOSTILE = Path(__file__).parent / "hostile_lifecycle.py"

GARBAGE: list[Any] = [
    "not a list",
    {"source": "ask_exit"},
    [1, "x", None, []],
    [{"source": 5}, {"source": None}],
    [{"source": "page", "data": 7}, {"source": "page", "data": {"text/plain": 5}}],
    [{"source": "set_next_input", "text": None}, {"source": "set_next_input", "text": 3}],
    [{"source": "edit_magic", "filename": 3, "line_number": "x"}],
    [{"source": "ask_exit", "keepkernel": "no"}],
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("payload", GARBAGE, ids=range(len(GARBAGE)))
def test_script_mode_survives_any_payload(kernel_script, payload: Any) -> None:
    cf = kernel_script(HOSTILE, "payload", json.dumps(payload), name="hostile.json")
    p = subprocess.run(
        [*KCONSOLE, "attach", "--existing", str(cf)],
        input="1\n2\n",
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == 0, p.stderr
    exits = isinstance(payload, list) and any(
        isinstance(x, dict) and x.get("source") == "ask_exit" for x in payload
    )
    assert p.stdout.count("ran") == (1 if exits else 2)


@pytest.mark.timeout(60)
def test_repl_survives_garbage_payloads(kernel_script) -> None:
    mixed = [x for g in GARBAGE[2:7] for x in g]
    cf = kernel_script(HOSTILE, "payload", json.dumps(mixed), name="hostile.json")
    c = PtyConsole(["attach", "--existing", str(cf)])
    try:
        c.expect_prompt()
        c.sendline("1")
        c.expect(r"(?m)^ran")
        c.expect_prompt()
        c.sendline("2")
        c.expect(r"(?m)^ran")
        c.expect_prompt()
        assert "Traceback" not in c.transcript
        c.ctrl("d")
        assert c.wait_exit(20) == 0
    finally:
        c.close()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=1000)
@given(st.dictionaries(st.sampled_from(["payload", "status", "other"]), JSON, max_size=3))
def test_payloads_never_raise_and_come_back_typed(content: dict[str, Any]) -> None:
    got = parse_payloads(content)
    assert all(isinstance(p, (Page, SetNextInput, AskExit, EditMagic)) for p in got)
    payload = content.get("payload")
    assert len(got) <= (len(payload) if isinstance(payload, list) else 0)
