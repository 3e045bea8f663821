"""A history file that cannot be written (a full disk) or read: the console keeps its
history in memory, says so once, and Enter and Ctrl-D go on working.

A full disk is played by RLIMIT_FSIZE: the history file is already at the limit, so
appending to it fails with EFBIG (Python ignores SIGXFSZ), while the small files
kconsole writes otherwise (the connection file) stay under it.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

import ptyconsole
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from prompt_toolkit.history import InMemoryHistory
from ptyconsole import PtyConsole

from kconsole import paths
from kconsole.repl.history import kernel_history_inputs

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

    from kconsole.repl.history import SessionHistory

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


# -- a long history: loaded as a bounded tail, suggested from an index, trimmed ----------


def _write_history(path: Path, n: int, first: int = 0) -> None:
    """``n`` entries in prompt_toolkit's FileHistory format: ``entry_<i> = <i>``, every
    tenth a two-line ``def``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        for i in range(first, first + n):
            f.write(f"\n# 2026-01-01 00:00:00.{i:06d}\n")
            f.write(f"+def f_{i}():\n+    return {i}\n" if i % 10 == 0 else f"+entry_{i} = {i}\n")


def _entry(i: int) -> str:
    return f"def f_{i}():\n    return {i}" if i % 10 == 0 else f"entry_{i} = {i}"


def _prompt(history: Any, keys: str, then: str = "") -> str:
    """What a PromptSession as the REPL's (Up by prefix, suggestions, the buffer
    filled at once) returns for ``keys``, and ``then`` once the suggestion for what
    ``keys`` typed is made (it is made after the keys that arrived together)."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from kconsole.repl.history import (
        IndexedAutoSuggest,
        load_history_at_once,
        search_history_quickly,
    )

    async def run() -> str:
        with create_pipe_input() as inp:
            session: Any = PromptSession(
                history=history,
                input=inp,
                output=DummyOutput(),
                enable_history_search=True,
                auto_suggest=IndexedAutoSuggest(),
            )
            buffer = session.default_buffer
            load_history_at_once(buffer)
            search_history_quickly(buffer)
            suggested = asyncio.Event()
            buffer.on_suggestion_set += lambda b: b.text == keys and suggested.set()
            prompt = asyncio.ensure_future(session.prompt_async())
            inp.send_text(keys)
            if then:
                await asyncio.wait_for(suggested.wait(), 10)
                inp.send_text(then)
            return await asyncio.wait_for(prompt, 10)

    return asyncio.run(run())


def test_a_100000_entry_history_loads_only_its_newest_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    from kconsole.repl import history
    from kconsole.repl.history import SessionHistory, TailFileHistory

    path = tmp_path / "history-python"
    _write_history(path, 100_000)
    read = [0]

    class Counting(io.BufferedReader):
        def read(self, n: int | None = -1) -> bytes:
            data = super().read(n)
            read[0] += len(data)
            return data

    def counting_open(name: str, mode: str) -> io.BufferedReader:
        assert mode == "rb"
        return Counting(builtins.open(name, "rb", buffering=0))

    monkeypatch.setattr(history, "open", counting_open, raising=False)
    size = path.stat().st_size
    h = SessionHistory(TailFileHistory(str(path), size=1000), size=1000)
    assert _prompt(h, "\x1b[A\r") == _entry(99_999)  # Up: the newest entry
    loaded = h.get_strings()  # oldest first
    assert len(loaded) == 1000
    assert loaded[0] == _entry(99_000) and loaded[-1] == _entry(99_999)
    assert _prompt(h, "\x1b[A" * 3 + "\r") == _entry(99_997)
    # Read from the end, about as far back as 1,000 entries reach: 52 kB of 2.6 MB
    # (read twice: the file is trimmed to them too).
    assert 0 < read[0] < size // 10


def test_the_suggestion_is_the_newest_line_starting_with_the_text(tmp_path: Path) -> None:
    from kconsole.repl.history import SessionHistory, TailFileHistory

    path = tmp_path / "history-python"
    _write_history(path, 5000)
    with open(path, "a") as f:
        f.write("\n# 2026-01-02\n+print('older')\n\n# 2026-01-02\n+print('newer')\n")
        f.write("\n# 2026-01-02\n+for x in y:\n+    print('inside')\n")
    h = SessionHistory(TailFileHistory(str(path)))
    # Right accepts the grey rest of the newest line starting with what is typed, of
    # any line of an entry.
    right = "\x1b[C\r"  # Right, Enter
    assert _prompt(h, "print('n", right) == "print('newer')"
    assert _prompt(h, "    pr", right) == "    print('inside')"
    assert _prompt(h, "entry_12", right) == "entry_1299 = 1299"
    assert _prompt(h, "nothing_like_it", right) == "nothing_like_it"
    # What was typed this session is the newest.
    assert _prompt(h, "print('o", right) == "print('older')"
    assert _prompt(h, "print(", right) == "print('older')"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text("ab \n\r+#é", max_size=8), max_size=12),
    st.lists(st.text("ab \n+", max_size=6), max_size=4),
    st.lists(st.text("ab \r+é", min_size=1, max_size=3), min_size=1, max_size=5),
)
def test_suggestions_are_prompt_toolkits(
    loaded: list[str], typed: list[str], texts: list[str]
) -> None:
    """The index gives what AutoSuggestFromHistory's scan gives, entries typed in the
    session included."""
    from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
    from prompt_toolkit.buffer import Buffer
    from prompt_toolkit.document import Document

    from kconsole.repl.history import IndexedAutoSuggest, SessionHistory

    h = SessionHistory(InMemoryHistory(loaded))
    h.loaded_strings()
    buffer = Buffer(history=h)
    ours, theirs = IndexedAutoSuggest(), AutoSuggestFromHistory()
    for i in range(len(typed) + 1):
        for text in texts:
            doc = Document("x = 1\n" + text)
            a, b = ours.get_suggestion(buffer, doc), theirs.get_suggestion(buffer, doc)
            assert (a and a.text) == (b and b.text), (text, h.get_strings())
        if i < len(typed):
            h.append_string(typed[i])


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.text("ab\nA\0", max_size=5), min_size=1, max_size=8),
    st.integers(0, 7),
    st.integers(0, 5),
    st.text("abA\0", max_size=2),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.integers(1, 3),
)
# Wrapping around: forward from the last entry to the first, backward from the first
# to the last.
@example(["a", "b", ""], 2, 0, "a", True, False, False, 1)
@example(["", "b", "a"], 0, 0, "a", False, False, False, 1)
def test_search_finds_what_prompt_toolkits_finds(
    lines: list[str],
    index: int,
    cursor: int,
    text: str,
    forward: bool,
    ignore_case: bool,
    include_current: bool,
    count: int,
) -> None:
    """Ctrl-R / Ctrl-S through the history entries: the same entry and position as
    prompt_toolkit's own search, from any entry and cursor position."""
    from collections import deque

    from prompt_toolkit.buffer import Buffer
    from prompt_toolkit.search import SearchDirection, SearchState

    from kconsole.repl.history import search_history_quickly

    index %= len(lines)
    cursor %= len(lines[index]) + 1
    buffers = []
    for quick in (False, True):
        buffer = Buffer()
        buffer._working_lines = deque(lines)
        buffer.working_index = index
        buffer.cursor_position = cursor
        if quick:
            search_history_quickly(buffer)
        buffers.append(buffer)
    state = SearchState(
        text,
        SearchDirection.FORWARD if forward else SearchDirection.BACKWARD,
        ignore_case=ignore_case,
    )
    theirs, ours = (b._search(state, include_current, count) for b in buffers)
    assert ours == theirs


def test_search_through_a_long_history() -> None:
    from kconsole.repl.history import SessionHistory

    entries = [_entry(i) for i in range(10_000)]
    ctrl_r = "\x12"

    def search(keys: str) -> str:
        return _prompt(SessionHistory(InMemoryHistory(entries)), ctrl_r + keys)

    # Ctrl-R, a text, Enter (the entry found is in the prompt), Enter.
    assert search("y_5001 =\r\r") == _entry(5001)
    # Each Ctrl-R more: the next older entry holding the text.
    assert search("_500" + ctrl_r * 3 + "\r\r") == _entry(5006)
    assert search("in none\r\r") == ""


def test_a_long_session_keeps_a_bounded_history_in_memory() -> None:
    from kconsole.repl.history import SessionHistory

    h = SessionHistory(InMemoryHistory([f"old_{i}" for i in range(100)]), size=100)
    h.loaded_strings()
    for i in range(1000):
        h.append_string(f"new_{i}")
        assert len(h.get_strings()) <= 100 + 100
    assert h.get_strings()[-1] == "new_999"
    assert h.suggest("new_99") == "new_999" and h.suggest("old_") is None


@pytest.mark.parametrize("mode", [0o600, 0o640])
def test_a_file_twice_the_size_is_trimmed_to_its_newest_entries(
    tmp_path: Path, mode: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prompt_toolkit.history import FileHistory

    from kconsole.repl import history
    from kconsole.repl.history import TailFileHistory

    monkeypatch.setattr(history, "TRIM_MIN_SIZE", 1000)  # the default's 10,000: slower
    path = tmp_path / "history-python"
    _write_history(path, 2500)
    path.chmod(mode)
    h = TailFileHistory(str(path), size=1000)
    assert len(h.load_history_strings()) == 1000
    kept = list(FileHistory(str(path)).load_history_strings())  # newest first
    assert kept == [_entry(i) for i in range(2499, 1499, -1)]
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert [p.name for p in tmp_path.iterdir()] == ["history-python"]  # no temp file left
    # Appends go on; the trim is tried once per session.
    h.store_string("after = 1")
    _write_history(path, 2000, first=3000)
    h.load_history_strings()
    kept = list(FileHistory(str(path)).load_history_strings())
    assert len(kept) == 3001 and kept[-1] == _entry(1500) and "after = 1" in kept


def test_a_file_under_twice_the_size_is_left_as_it_is(tmp_path: Path) -> None:
    from kconsole.repl.history import TailFileHistory

    path = tmp_path / "history-python"
    _write_history(path, 1900)
    before = path.read_bytes()
    assert len(TailFileHistory(str(path), size=1000).load_history_strings()) == 1000
    assert path.read_bytes() == before


def test_an_append_waiting_for_a_trim_goes_to_the_new_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another kconsole trims the file while this one waits for the lock to append:
    the entry lands in the file that is now there, not in the one replaced."""
    import fcntl

    from prompt_toolkit.history import FileHistory

    from kconsole.repl import history
    from kconsole.repl.history import TailFileHistory

    path = tmp_path / "history-python"
    _write_history(path, 3)
    real_flock = fcntl.flock
    trimmed = []

    def flock(fd: int, op: int) -> None:
        if op == fcntl.LOCK_EX and not trimmed:  # the other session's trim, meanwhile
            trimmed.append(1)
            new = tmp_path / "new"
            new.write_text("\n# 2026\n+kept_by_the_trim\n")
            os.replace(new, path)
        real_flock(fd, op)

    monkeypatch.setattr(history.fcntl, "flock", flock)
    TailFileHistory(str(path)).store_string("typed = 'here'")
    assert trimmed
    assert list(FileHistory(str(path)).load_history_strings()) == [
        "typed = 'here'",
        "kept_by_the_trim",
    ]


@pytest.mark.parametrize(
    "tail",
    [
        b"+half a lin",  # a write cut short
        b"\n# 2026-01-0",
        b"+\xff\xfe\xc3\n+\x00\n",  # not UTF-8, a NUL
        b"\n\n\n",
        b"+" + b"x" * 200_000,  # one line longer than a read
    ],
)
def test_a_damaged_tail_loads_without_error(tmp_path: Path, tail: bytes) -> None:
    from kconsole.repl.history import SessionHistory, TailFileHistory

    path = tmp_path / "history-python"
    _write_history(path, 50)
    with open(path, "ab") as f:
        f.write(tail)
    h = SessionHistory(TailFileHistory(str(path), size=10), size=10)
    h.on_problem = pytest.fail
    loaded = h.loaded_strings()
    assert len(loaded) == 10 and loaded[1:3] == [_entry(48), _entry(47)]
    if tail.startswith(b"+"):  # more lines of the last entry, as FileHistory reads them
        assert loaded[0].startswith(_entry(49) + "\n" + tail[1:3].decode(errors="replace"))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300).map(lambda b: b + b"\n"), st.integers(1, 8))
def test_the_tail_is_what_file_history_reads(tmp_path_factory: Any, data: bytes, n: int) -> None:
    """Any file (ending with a newline: FileHistory drops the last character of an
    unfinished one): the newest n entries are FileHistory's, read back in small steps,
    and the file from the offset given on holds them too."""
    from prompt_toolkit.history import FileHistory

    from kconsole.repl import history

    path = tmp_path_factory.mktemp("h") / "history"
    path.write_bytes(data)
    with open(path, "rb") as f:
        for chunk in (3, 1 << 16):
            history._CHUNK = chunk
            try:
                got, start = history.read_tail(f, len(data), n)
            finally:
                history._CHUNK = 1 << 16
            assert got == list(FileHistory(str(path)).load_history_strings())[:n]
            # What a trim keeps from there on holds the same newest entries.
            kept = io.BytesIO(data[start:])
            assert history.read_tail(kept, len(data) - start, n)[0] == got  # type: ignore[arg-type]


@pytest.mark.timeout(90)
def test_history_size_caps_what_a_session_loads_and_trims_the_file() -> None:
    # A --history-size below the default caps what is loaded but trims nothing (the
    # file is every session's): the default's 10,000 entries are kept.
    path = _history_file("python")
    _write_history(path, 100_000)
    path.chmod(0o600)
    c = PtyConsole(["start", "--kernel", "builtin", "--history-size", "1000"])
    try:
        c.expect_prompt(1)
        c.send("\x1b[A")  # Up: the newest entry
        c.expect_cursor_line(r"In \[1\]: entry_99999 = 99999")
        c.ctrl("c")
        c.expect_empty_prompt(1)
        c.send("entry_9900")  # ... whose suggestion comes from the newest 1,000
        c.expect_cursor_line(r"In \[1\]: entry_99009 = 99009")
        c.ctrl("c")
        c.expect_empty_prompt(1)
        c.sendline("typed = 1")
        c.expect_prompt(2)
        c.ctrl("d")
        assert c.wait_exit(30) == 0
    finally:
        c.close()
    kept = path.read_text()
    assert len(re.findall(r"(?m)^# ", kept)) == 100_001  # all, and the one typed
    assert "+typed = 1\n" in kept
    c = PtyConsole(["start", "--kernel", "builtin"])  # the default: trims to 10,000
    try:
        c.expect_prompt(1)
        c.ctrl("d")
        assert c.wait_exit(30) == 0
    finally:
        c.close()
    kept = path.read_text()
    assert len(re.findall(r"(?m)^# ", kept)) == 10_000
    assert "+entry_90000 = " not in kept and "+entry_90001 = " in kept and "+typed = 1\n" in kept
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
