"""Review of issue 17 (speed): defects found by trying to break it."""

from __future__ import annotations

import io
import random
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from ptyconsole import PtyConsole

from kconsole.repl import history


class _CountingSplit:
    """history._ENTRY_END, counting the bytes it is asked to split."""

    def __init__(self) -> None:
        self.scanned = 0

    def split(self, data: bytes) -> list[bytes]:
        self.scanned += len(data)
        return re.compile(rb"\n(?!\+)").split(data)


def test_history_file_of_one_huge_entry_is_read_once(monkeypatch: Any) -> None:
    # A 4 MB entry (a pasted blob), or a binary file without newlines, put in place of
    # the history: each 64 KB chunk was joined to all that followed it and split
    # again, quadratic (a 32 MB file took some 10 s before the first prompt).
    counter = _CountingSplit()
    monkeypatch.setattr(history, "_ENTRY_END", counter)
    for data in (b"\n# d\n+" + b"x" * (4 << 20) + b"\n", b"\xff\0" * (2 << 20)):
        counter.scanned = 0
        entries, _ = history.read_tail(io.BytesIO(data), len(data), 10_000)
        assert len(entries) == (1 if data.startswith(b"\n") else 0)
        assert counter.scanned <= 2 * len(data)


def test_history_tail_is_the_same_in_any_chunk_size(monkeypatch: Any) -> None:
    rnd = random.Random(17)
    alphabet = [b"\n", b"+", b"#", b"a", b"\n+", b"\n# d\n+", b"\xff"]
    for _ in range(3000):
        data = b"".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 40)))
        n = rnd.randint(1, 6)
        monkeypatch.setattr(history, "_CHUNK", 1 << 20)
        whole, _ = history.read_tail(io.BytesIO(data), len(data), n)
        monkeypatch.setattr(history, "_CHUNK", rnd.randint(1, 9))
        got, start = history.read_tail(io.BytesIO(data), len(data), n)
        assert got == whole, data
        # What a trim would keep holds the same entries.
        kept = data[start:]
        assert history.read_tail(io.BytesIO(kept), len(kept), n)[0] == got, data


def test_a_small_history_size_loses_no_entry_of_the_file(tmp_path: Path) -> None:
    # One session with --history-size 5 trimmed the file every session of the
    # language shares to 5 entries: the next default run found its history gone.
    path = str(tmp_path / "history-python")
    writer = history.TailFileHistory(path)
    for i in range(50):
        writer.store_string(f"x = {i}")
    small = history.TailFileHistory(path, size=5)
    assert list(small.load_history_strings()) == [f"x = {i}" for i in range(49, 44, -1)]
    again = list(history.TailFileHistory(path).load_history_strings())
    assert again == [f"x = {i}" for i in range(49, -1, -1)]


@pytest.mark.timeout(60)
def test_ctrl_x_s_without_save_says_a_long_output_was_cut(tmp_path: Path) -> None:
    # Without --save a long print keeps its first and last 32 K characters: the line
    # Ctrl-X s prints said only "saved 2 cells", as if all of it were in the file.
    c = PtyConsole(["start", "--kernel", "builtin"], cwd=tmp_path, env={"PAGER": "cat"})
    try:
        c.expect_prompt(1)
        c.sendline("print('short')")
        c.expect(r"(?m)^short")
        c.expect_prompt(2)
        c.ctrl("x")
        c.send("s")
        m = c.expect(r"saved 1 cell to (\S+\.ipynb)(.*)")
        assert "long output" not in m.group(2)
        c.expect_prompt()
        c.sendline("print('x' * 200_000)")
        c.expect_prompt(3)
        c.ctrl("x")
        c.send("s")
        m = c.expect(r"saved 2 cells to (\S+\.ipynb) \(1 long output kept only its first and last")
        nb = nbformat.read(m.group(1), as_version=4)
        assert "were not kept" in "".join(o.text for o in nb.cells[1].outputs)
        c.expect_prompt()
        c.ctrl("d")
        assert c.wait_exit(30) == 0
    finally:
        c.close()


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
