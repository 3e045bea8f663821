"""complete_reply content from any kernel, however odd, becomes a menu or nothing:
never an exception (one would surface as prompt_toolkit's "Unhandled exception" on
every Tab)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ptyconsole import PtyConsole

from kconsole.repl.completion import completions_from_reply

json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(), st.text(max_size=8)
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
reply_content = st.fixed_dictionaries(
    {},
    optional={
        "status": st.one_of(st.just("ok"), json_value),
        "matches": st.one_of(st.lists(st.one_of(st.text(max_size=10), json_value)), json_value),
        "cursor_start": st.one_of(st.integers(-5, 50), json_value),
        "cursor_end": st.one_of(st.integers(-5, 50), json_value),
        "metadata": st.one_of(
            st.fixed_dictionaries(
                {"_jupyter_types_experimental": st.one_of(st.lists(json_value), json_value)}
            ),
            json_value,
        ),
    },
)


@settings(max_examples=300, deadline=500)
@given(reply_content, st.integers(0, 40))
def test_any_complete_reply_gives_completions_or_none(reply: dict[str, Any], pos: int) -> None:
    out = completions_from_reply(reply, pos)
    for c in out:
        assert isinstance(c.text, str)
        assert c.start_position <= 0  # prompt_toolkit only replaces text before the cursor


def test_null_cursor_start_completes_at_the_cursor() -> None:
    # Some kernels send null for the cursor positions: the word at the cursor is kept.
    out = completions_from_reply(
        {"status": "ok", "matches": ["print"], "cursor_start": None, "cursor_end": None}, 3
    )
    assert [(c.text, c.start_position) for c in out] == [("print", 0)]


HOSTILE = Path(__file__).with_name("hostile_keys.py")


@pytest.mark.timeout(60)
def test_malformed_complete_and_history_replies_leave_the_console_working(
    kernel_script,
) -> None:
    cf = kernel_script(HOSTILE, "-f", "{connection_file}", name="kernel-hostile.json")
    c: PtyConsole | None = None
    try:
        # attach merges the kernel's history (a number here) at start.
        c = PtyConsole(["attach", "--existing", str(cf)])
        c.expect_prompt(1)
        c.send("hos\t")
        c.expect_cursor_line(r"In \[1\]: hoshostile_name")  # completed at the cursor
        c.ctrl("c")
        c.expect_empty_prompt(1)
        c.sendline("print('still', 'here')")
        c.expect(r"(?m)^still here")
        c.expect_prompt(2)
        assert "Traceback" not in c.transcript and "Unhandled exception" not in c.transcript
    finally:
        if c is not None:
            c.close()
