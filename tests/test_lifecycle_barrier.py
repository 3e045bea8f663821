"""Displays updated in place must never erase what the console itself wrote.

A prompt answered (``input()``), a note, help text, a question or the banner written
by the console after a display end the printer's region (``OutputPrinter.barrier``):
clear_output never erases them. An update of the display is redrawn where it is when
the console said how many rows it wrote (see tests/test_display_live.py), else printed
below; either way what the console wrote stays.
"""

from __future__ import annotations

import io
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import pexpect
import pyte
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ptyconsole import screen_text

from kconsole.display import DisplayConfig, TerminalCapabilities
from kconsole.output import OutputPrinter
from kconsole.protocol import Message


@pytest.mark.timeout(60)
def test_display_update_after_input_keeps_the_typed_answer(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.sendline(
        "h = display('first' + 'shown', display_id=True); x = input('name? '); "
        "h.update('up' + 'dated'); print('got', x)"
    )
    c.expect(r"(?m)^name\?")  # the prompt itself, not the echo of the typed cell
    c.sendline("bob")
    c.expect(r"(?m)^got bob")
    c.expect_prompt(2)
    screen = screen_text(c)
    assert "name? bob" in screen, screen
    assert "'updated'" in screen, screen


@pytest.mark.timeout(60)
def test_display_update_after_a_note_keeps_the_note(console) -> None:
    # A note of kconsole's own (here: ^C's answer) between a display and its update.
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    # The handle exists and the display is inside the try before anything is shown: a
    # Ctrl-C that lands while display() is still sending (its output already on screen)
    # is caught too, not a traceback instead of the update.
    c.sendline(
        'exec("import time\\nfrom IPython.display import DisplayHandle\\nh = DisplayHandle()\\n'
        "try:\\n    h.display('first' + 'shown')\\n    time.sleep(30)\\n"
        "except KeyboardInterrupt:\\n    pass\\nh.update('up' + 'dated')\")"
    )
    c.expect("'firstshown'")
    c.ctrl("c")
    c.expect(r"\^C: ")
    c.expect_prompt(2)
    screen = screen_text(c)
    assert "^C: " in screen, screen
    assert "'updated'" in screen, screen


@pytest.mark.timeout(60)
def test_update_of_a_display_that_is_not_the_last_output_is_redrawn_in_place(console) -> None:
    # Only the printer's own output came after it: redrawn where it is, still on screen.
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.sendline(
        "h = display('first' + 'shown', display_id=True); print('after' + 'wards'); "
        "h.update('up' + 'dated')"
    )
    c.expect("afterwards")
    c.expect_prompt(2)
    lines = c.display()
    c.settle()
    lines = c.display()
    assert not any("firstshown" in line for line in lines), lines
    i = next(i for i, line in enumerate(lines) if "'updated'" in line)
    assert "afterwards" in lines[i + 1], lines


# -- the printer alone: what it may erase ----------------------------------------------

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("display"), st.sampled_from("abc"), st.integers(1, 2)),
        st.tuples(st.just("update"), st.sampled_from("abc"), st.integers(1, 3)),
        st.tuples(st.just("stream"), st.just(""), st.integers(1, 2)),
        st.tuples(st.just("foreign"), st.just(""), st.integers(1, 1)),
        st.tuples(st.just("clear"), st.sampled_from(["wait", "now"]), st.integers(0, 0)),
    ),
    max_size=12,
)


class _FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def _msg(msg_type: str, content: dict[str, Any]) -> Message:
    return Message(
        header={"msg_type": msg_type, "msg_id": f"m-{msg_type}"},
        parent_header={"msg_id": "cell"},
        content=content,
    )


@settings(max_examples=150, deadline=2000)
@given(OPS)
def test_printer_never_erases_what_it_did_not_write(ops: list[tuple[str, str, int]]) -> None:
    out = _FakeTTY()
    printer = OutputPrinter(
        out,
        color=False,
        tty=True,
        capabilities=TerminalCapabilities(is_tty=True, colors=256),
        config=DisplayConfig(width=40),
    )
    foreign: list[str] = []
    latest: dict[str, str] = {}
    cleared = False
    for n, (op, did, lines) in enumerate(ops):
        text = "\n".join(f"{op}{did}{n}x{i}" for i in range(lines))
        if op in ("display", "update"):
            content = {"data": {"text/plain": text}, "metadata": {}}
            content["transient"] = {"display_id": did}
            printer.handle(
                _msg("update_display_data" if op == "update" else "display_data", content)
            )
            latest[did] = text
        elif op == "stream":
            printer.handle(_msg("stream", {"name": "stdout", "text": text + "\n"}))
        elif op == "foreign":
            # What the console writes itself: an input() prompt and its answer.
            # (Everything the printer writes here ends with a newline.)
            out.write(f"name? {text}\n")
            printer.barrier()
            foreign.append(f"name? {text}")
        else:
            printer.handle(_msg("clear_output", {"wait": did == "wait"}))
            cleared = True
    screen = pyte.Screen(40, 400)  # tall: nothing scrolls away, every erase shows
    screen.set_mode(pyte.modes.LNM)
    pyte.Stream(screen).feed(out.getvalue())
    shown = [line.rstrip() for line in screen.display]
    for line in foreign:
        assert line in shown, (line, shown)
    if not cleared:
        for text in latest.values():
            for part in text.split("\n"):
                assert part in shown, (part, shown)


@pytest.mark.timeout(60)
def test_script_mode_on_a_terminal_keeps_the_input_prompt(tmp_path: Path) -> None:
    # stdin piped, stdout a terminal: the printer tracks the screen, the prompt is not its.
    script = tmp_path / "cells.txt"
    script.write_text(
        "h = display('first' + 'shown', display_id=True); x = input('name? '); "
        "h.update('up' + 'dated')\nbob\nprint('do' + 'ne')\n"
    )
    cmd = f"{shlex.quote(sys.executable)} -m kconsole start --kernel python3 < {script}"
    child = pexpect.spawn(
        "/bin/sh", ["-c", cmd], env=dict(os.environ), dimensions=(30, 100), encoding="utf-8"
    )
    screen = pyte.Screen(100, 30)
    stream = pyte.Stream(screen)
    out = ""
    while True:
        try:
            chunk = child.read_nonblocking(65536, timeout=50)
        except pexpect.EOF:
            break
        out += chunk
        stream.feed(chunk)
    child.close()
    lines = [line.rstrip() for line in screen.display]
    assert "done" in lines, lines
    assert "name?" in lines, lines
    assert "'updated'" in lines, lines
