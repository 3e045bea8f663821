"""A history file that cannot be written (a full disk) or read: the console keeps its
history in memory, says so once, and Enter and Ctrl-D go on working.

A full disk is played by RLIMIT_FSIZE: the history file is already at the limit, so
appending to it fails with EFBIG (Python ignores SIGXFSZ), while the small files
kconsole writes otherwise (the connection file) stay under it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import ptyconsole
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ptyconsole import PtyConsole

from kconsole import paths
from kconsole.history import kernel_history_inputs

LIMIT = 8192

WRAPPER = f"""\
import resource, runpy, sys
resource.setrlimit(resource.RLIMIT_FSIZE, ({LIMIT}, {LIMIT}))
sys.argv[0] = "kconsole"
runpy.run_module("kconsole", run_name="__main__", alter_sys=True)
"""


def _history_file(language: str) -> Path:
    d = paths.user_state_dir()
    d.mkdir(parents=True, exist_ok=True)
    return d / f"history-{language}"


def _full_history(language: str) -> Path:
    """A valid history file exactly at LIMIT bytes: one more byte does not fit."""
    path = _history_file(language)
    head = "\n# 2026-01-01 00:00:00\n+old_entry = 1\n"
    pad = "\n# " + "x" * (LIMIT - len(head) - 4) + "\n"
    path.write_text(head + pad)
    assert path.stat().st_size == LIMIT
    return path


@pytest.fixture
def limited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "fsize_kconsole.py"
    script.write_text(WRAPPER)
    monkeypatch.setattr(ptyconsole, "KCONSOLE", [sys.executable, str(script)])


@pytest.mark.timeout(90)
def test_full_disk_history_falls_back_to_memory_with_one_note(limited) -> None:
    _full_history("python")
    c = PtyConsole(["start", "--kernel", "builtin"])
    try:
        c.expect_prompt(1)
        c.sendline("a = 6")
        c.expect_prompt(2)
        c.sendline("print('answer', a * 7)")
        c.expect(r"(?m)^answer 42")
        c.expect_prompt(3)
        c.send("\x1b[A")  # Up: this session's entries are still there, in memory
        c.expect_cursor_line(r"In \[3\]: print\('answer', a \* 7\)")
        c.ctrl("c")
        c.expect_empty_prompt(3)
        c.ctrl("d")
        assert c.wait_exit(30) == 0
    finally:
        c.close()
    assert "Unhandled exception" not in c.transcript
    assert "Traceback" not in c.transcript
    assert c.transcript.count("kept in memory") == 1, c.transcript  # the one note


@pytest.mark.timeout(90)
def test_unreadable_history_file_falls_back_to_memory(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root reads a mode-000 file anyway: a directory in the file's place fails for all.
        _history_file("python").mkdir()
    else:
        p = _history_file("python")
        p.write_text("")
        p.chmod(0)
    c = PtyConsole(["start", "--kernel", "builtin"])
    try:
        c.expect_prompt(1)
        c.sendline("print('still', 'fine')")
        c.expect(r"(?m)^still fine")
        c.expect_prompt(2)
        c.ctrl("d")
        assert c.wait_exit(30) == 0
    finally:
        c.close()
    assert "Traceback" not in c.transcript and "Unhandled exception" not in c.transcript
    assert c.transcript.count("kept in memory") == 1, c.transcript


def test_session_history_that_cannot_read_or_write_its_file_keeps_working(
    tmp_path: Path,
) -> None:
    from prompt_toolkit.history import FileHistory

    from kconsole.history import SessionHistory

    told: list[str] = []
    h = SessionHistory(FileHistory(str(tmp_path)))  # a directory: open() fails
    h.on_problem = told.append
    assert list(h.load_history_strings()) == []
    h.store_string("x = 1")
    h.store_string("y = 2")
    assert list(h.load_history_strings()) == ["y = 2", "x = 1"]
    assert len(told) == 1 and "kept in memory" in told[0] and str(tmp_path) in told[0]


json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(), st.text(max_size=12)
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=500)
@given(st.lists(json_value, max_size=12))
def test_any_history_reply_gives_a_list_of_inputs(items: list[Any]) -> None:
    out = kernel_history_inputs(items)
    assert all(isinstance(s, str) and s.strip() and not s.endswith("\n") for s in out)
    # Consecutive duplicates collapsed.
    assert all(out[i] != out[i + 1] for i in range(len(out) - 1))


def test_history_entries_of_both_shapes_are_read() -> None:
    items = [[0, 1, "a = 1\n"], [0, 2, ["b = 2", "out"]], [0, 3, "b = 2"], [0, 4, 7], "junk"]
    assert kernel_history_inputs(items) == ["a = 1", "b = 2"]
