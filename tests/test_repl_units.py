"""The REPL's pieces without a terminal: completion replies, history merging, the
notebook recorder (and --save through ScriptRunner against ipykernel)."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prompt_toolkit.history import InMemoryHistory

from kconsole.notebook import NotebookRecorder
from kconsole.protocol import Message, Session
from kconsole.repl.completion import completions_from_reply
from kconsole.repl.history import SessionHistory, kernel_history_inputs


def test_completions_carry_type_and_signature_and_count_code_points() -> None:
    code = "é = 1; os.pa"  # a non-ASCII character before the cursor
    pos = len(code)
    reply = {
        "status": "ok",
        "matches": ["pardir", "path", "pathconf", "path"],
        "cursor_start": pos - 2,
        "cursor_end": pos,
        "metadata": {
            "_jupyter_types_experimental": [
                {"start": pos - 2, "end": pos, "text": "pardir", "type": "instance"},
                {"text": "path", "type": "module", "signature": ""},
                {"text": "pathconf", "type": "function", "signature": "(path, name)"},
            ]
        },
    }
    comps = completions_from_reply(reply, pos)
    assert [c.text for c in comps] == ["pardir", "path", "pathconf"]  # duplicates dropped
    assert all(c.start_position == -2 for c in comps)
    assert [c.display_meta_text for c in comps] == ["instance", "module", "function (path, name)"]
    assert completions_from_reply({"status": "error"}, pos) == []


def test_kernel_history_is_merged_in_memory_after_the_file() -> None:
    backend = InMemoryHistory(["a = 1", "b = 2"])
    h = SessionHistory(backend)
    items = [[1, 1, "b = 2"], [1, 2, "k = 3"], [1, 3, "k = 3"], [2, 1, ""], [2, 2, ("z", "out")]]
    assert kernel_history_inputs(items) == ["b = 2", "k = 3", "z"]
    assert h.merge(kernel_history_inputs(items)) == 2
    assert list(h.load_history_strings()) == ["z", "k = 3", "b = 2", "a = 1"]  # newest first
    h.append_string("new")
    assert list(backend.load_history_strings())[0] == "new"
    assert "k = 3" not in list(backend.load_history_strings())  # never written back


def _msg(session: Session, msg_type: str, content: dict) -> Message:
    return session.msg(msg_type, content)


def test_recorder_keeps_long_interleaved_streams_whole_and_in_order(tmp_path: Path) -> None:
    # Several outputs past the in-memory limit (they spill to the spool), stdout and
    # stderr interleaved, non-ASCII text and a lone surrogate a kernel may send.
    from kconsole.notebook import STREAM_SPOOL_CHARS

    s = Session(key=b"")
    rec = NotebookRecorder(tmp_path / "long.ipynb")
    rec.set_kernel({"language_info": {"name": "python"}}, name="python3", display_name="P")
    expected: list[tuple[str, str]] = []
    for cell in range(3):
        rec.start_cell(f"flood {cell}")
        for name in ("stdout", "stderr", "stdout"):
            chunks = [f"{cell} {name} {i} é✓\n" for i in range(STREAM_SPOOL_CHARS // 8)]
            if cell == 1 and name == "stderr":
                chunks.insert(3, "lone \ud800 surrogate\n")
            for c in chunks:
                rec.add_output(_msg(s, "stream", {"name": name, "text": c}))
            expected.append((name, "".join(chunks)))
        rec.finish_cell(_msg(s, "execute_reply", {"status": "ok", "execution_count": cell}))
    path = rec.save()
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    got = [(o.name, o.text) for c in nb.cells for o in c.outputs]
    assert got == expected


@pytest.mark.parametrize("slice_chars", [1, 2, 3, 1 << 20])
def test_the_spool_gives_back_what_it_was_given_whatever_its_slices(
    slice_chars: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --save spills long stream text to a file, encoded a slice at a time: a slice
    # boundary between a surrogate pair or inside multi-byte characters changes nothing.
    from kconsole import notebook

    monkeypatch.setattr(notebook, "_SPOOL_SLICE", slice_chars)
    spool = notebook.Spool()
    texts = ["é✓ a\ud83d\ude00b\ud800", "x" * 10, "漢字\udc80\n"]
    places = [spool.write(t) for t in texts]
    assert [spool.read(o, n) for o, n in places] == texts


def test_without_save_long_streams_keep_their_start_and_end_and_nothing_is_spooled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What Ctrl-X s saves without --save: no temporary file is ever made, a long
    # output keeps whole lines of its start and end, and says how much it left out.
    import tempfile

    from kconsole.notebook import STREAM_KEPT_CHARS

    def no_spool(*args: object, **kwargs: object) -> None:
        raise AssertionError("a spool file was made without --save")

    monkeypatch.setattr(tempfile, "TemporaryFile", no_spool)
    s = Session(key=b"")
    rec = NotebookRecorder(tmp_path / "kept.ipynb", keep_all=False)
    rec.start_cell("flood")
    lines = [f"line {i} é✓\n" for i in range(100_000)]
    for i in range(0, len(lines), 700):  # a flood: messages of some 10 KB
        rec.add_output(_msg(s, "stream", {"name": "stdout", "text": "".join(lines[i : i + 700])}))
    rec.add_output(_msg(s, "stream", {"name": "stderr", "text": "short\n"}))
    rec.start_cell("one big print")
    rec.add_output(_msg(s, "stream", {"name": "stdout", "text": "x" * 3_000_000}))
    rec.finish_cell(_msg(s, "execute_reply", {"status": "ok", "execution_count": 2}))
    nb = nbformat.read(str(rec.save()), as_version=4)
    nbformat.validate(nb)
    flood, err = nb.cells[0].outputs
    whole = "".join(lines)
    head, rest = flood.text.split("[kconsole: ", 1)
    note, tail = rest.split("\n", 1)
    assert whole.startswith(head) and head.endswith("\n")
    assert whole.endswith(tail) and tail.startswith("line ")
    left_out = len(whole) - len(head) - len(tail)
    assert note == (
        f"{left_out:,} characters of this output were not kept; "
        "kconsole --save FILE.ipynb keeps all of it]"
    )
    assert len(head) <= STREAM_KEPT_CHARS and len(tail) <= STREAM_KEPT_CHARS
    assert len(head) + len(tail) > STREAM_KEPT_CHARS  # both ends, not a line of each
    assert err.text == "short\n"
    (big,) = nb.cells[1].outputs
    big_note = (
        f"[kconsole: {3_000_000 - 2 * STREAM_KEPT_CHARS:,} characters of this output were "
        "not kept; kconsole --save FILE.ipynb keeps all of it]\n"
    )
    end = "x" * STREAM_KEPT_CHARS
    assert big.text == end + "\n" + big_note + end  # one line: cut where it may be


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet="ab\n", max_size=40), max_size=40), st.integers(2, 12))
def test_kept_start_and_end_are_the_output_s_own(chunks: list[str], kept: int) -> None:
    from unittest import mock

    from kconsole import notebook
    from kconsole.notebook import StreamText

    with (
        mock.patch.object(notebook, "STREAM_SPOOL_CHARS", 2 * kept),
        mock.patch.object(notebook, "STREAM_KEPT_CHARS", kept),
    ):
        st_text = StreamText(None)
        for c in chunks:
            st_text.append(c)
        got = st_text.getvalue()
    whole = "".join(chunks)
    if "[kconsole: " not in got:
        assert got == whole
        return
    shown, rest = got.split("[kconsole: ", 1)
    note, tail = rest.split("\n", 1)
    left_out = int(note.split(" ", 1)[0].replace(",", ""))
    assert left_out > 0 and whole.endswith(tail) and len(tail) <= kept
    # The start shown, a newline added when it does not end a line.
    starts = [shown, shown[:-1]] if shown.endswith("\n") else [shown]
    assert any(
        whole.startswith(h) and len(h) <= kept and len(h) + left_out + len(tail) == len(whole)
        for h in starts
    )


def test_recorder_merges_streams_clears_and_updates_displays(tmp_path: Path) -> None:
    s = Session(key=b"")
    rec = NotebookRecorder(tmp_path / "n.ipynb")
    rec.set_kernel(
        {"language_info": {"name": "python", "version": "3.11", "file_extension": ".py"}},
        name="python3",
        display_name="Python 3",
    )
    rec.start_cell("print(1); print(2)")
    rec.add_output(_msg(s, "stream", {"name": "stdout", "text": "1\n"}))
    rec.add_output(_msg(s, "stream", {"name": "stdout", "text": "2\n"}))
    rec.add_output(
        _msg(
            s,
            "display_data",
            {"data": {"text/plain": "v1"}, "metadata": {}, "transient": {"display_id": "d"}},
        )
    )
    rec.finish_cell(_msg(s, "execute_reply", {"status": "ok", "execution_count": 1}))
    rec.start_cell("clear")
    rec.add_output(_msg(s, "stream", {"name": "stdout", "text": "gone\n"}))
    rec.add_output(_msg(s, "clear_output", {"wait": True}))
    rec.add_output(_msg(s, "stream", {"name": "stdout", "text": "kept\n"}))
    rec.add_output(
        _msg(
            s,
            "update_display_data",
            {"data": {"text/plain": "v2"}, "metadata": {}, "transient": {"display_id": "d"}},
        )
    )
    rec.finish_cell(_msg(s, "execute_reply", {"status": "ok", "execution_count": 2}))
    rec.start_cell("exit")
    rec.finish_cell(None)
    rec.discard_last()
    nb = nbformat.reads(json.dumps(rec.to_json()), as_version=4)
    nbformat.validate(nb)
    assert [c.source for c in nb.cells] == ["print(1); print(2)", "clear"]
    first, second = nb.cells
    assert first.outputs[0].text == "1\n2\n"
    assert first.outputs[1].data["text/plain"] == "v2"
    assert [o.text for o in second.outputs] == ["kept\n"]
    assert nb.metadata.kernelspec.name == "python3"
    assert len({c.id for c in nb.cells}) == 2


@pytest.mark.timeout(90)
def test_save_through_script_runner_against_ipykernel(tmp_path: Path) -> None:
    from kconsole.kernel_connection import start_local
    from kconsole.kernelspec import resolve_kernel
    from kconsole.output import OutputPrinter
    from kconsole.script import ScriptRunner

    code = (
        "print('hello')\n"
        "from IPython.display import display, HTML\n"
        "display(HTML('<b>hi</b>'))\n"
        "1 / 0\n"
    )
    path = tmp_path / "s.ipynb"

    async def main() -> int:
        conn = await start_local(
            resolve_kernel("python3"),
            ip="127.0.0.1",
            transport="tcp",
            timeout=60,
            keep_kernel=False,
        )
        try:
            out = io.StringIO()
            runner = ScriptRunner(
                conn,
                OutputPrinter(out, color=False),
                stdin=io.StringIO(code),
                recorder=NotebookRecorder(path),
            )
            return await runner.run()
        finally:
            await conn.close()

    status = asyncio.run(main())
    assert status == 1  # the last cell raised
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4 and nb.nbformat_minor == 5
    assert nb.metadata.kernelspec.name == "python3"
    assert nb.metadata.language_info.name == "python"
    outputs = [o for c in nb.cells for o in c.outputs]
    types = [o.output_type for o in outputs]
    assert types == ["stream", "display_data", "error"], types
    assert outputs[0].text == "hello\n"
    assert "text/html" in outputs[1].data
    assert outputs[2].ename == "ZeroDivisionError"
    assert [c.execution_count for c in nb.cells] == [1, 2, 3, 4]  # one cell per statement


@pytest.mark.timeout(60)
def test_script_mode_prints_page_payloads_without_a_pager() -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "kconsole", "start", "--kernel", "python3"],
        input="len?\nprint('after')\n",
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert out.returncode == 0, out.stderr
    assert "Return the number of items in a container" in out.stdout
    assert "\x1b[" not in out.stdout  # a pipe gets no colour codes
    assert out.stdout.rstrip().endswith("after")
