"""Live widgets and in-place display updates in the real console, on a real ipykernel.

Read with pyte, as a user sees them: tqdm.auto's notebook bar (ipywidgets is in the
kernel) moves and ends at 100 % on one line of the screen, in the REPL; a script
prints its final state once; a display updated after other output was printed, a
prompt included, is redrawn where it was. The kernel never hears from kconsole's comm
handling: a read-only view sends nothing (checked by counting, in the kernel).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ptyconsole import KCONSOLE, PtyConsole

pytest.importorskip("ipywidgets")
pytest.importorskip("tqdm")

#: Counts, in the kernel, the comm messages any frontend sends it.
SPY = (
    "k = get_ipython().kernel; heard = []; "
    "[k.shell_handlers.__setitem__(t, (lambda f, t: lambda *a, **kw: (heard.append(t), f(*a, **kw))[1])"
    "(k.shell_handlers[t], t)) for t in ('comm_open', 'comm_msg', 'comm_close')]; "
    "import tqdm.auto, time, ipywidgets"
)
BAR_LINE = re.compile(r"100% \|█+\| +50/50 \[")


def bar_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if re.search(r"\d+/50 \[", line)]


@pytest.mark.timeout(90)
def test_tqdm_auto_moves_and_ends_at_100_percent_in_one_place() -> None:
    c = PtyConsole(["start", "--kernel", "python3", "--no-banner"], rows=30, cols=100)
    try:
        c.expect_prompt(1, timeout=60)
        c.sendline(SPY)
        c.expect_prompt(2)
        c.sendline("for i in tqdm.auto.tqdm(range(50)): time.sleep(0.02)")
        c.expect(r"100% \|█+\|")
        c.expect_empty_prompt(3)
        c.settle()
        lines = c.display()
        assert len(bar_lines(lines)) == 1, "\n".join(lines)
        assert BAR_LINE.search(bar_lines(lines)[0]), "\n".join(lines)
        # It moved: states between 0 and 100 % were drawn on the way.
        assert re.search(r"[1-9]0% \|█", c.transcript), c.transcript[-2000:]
        # A widget changed from a thread while the prompt is up: redrawn above it, the
        # text being typed left alone.
        c.sendline("w = ipywidgets.IntProgress(value=1, max=4, description='job'); w")
        c.expect_empty_prompt(4)
        c.sendline("import threading; threading.Timer(0.3, lambda: setattr(w, 'value', 4)).start()")
        c.expect_empty_prompt(5)
        c.send("typed")
        c.expect(r"job \|█{30,}\|")
        c.expect_cursor_line(r"In \[5\]: typed")
        c.settle()
        lines = c.display()
        assert sum("job |" in line for line in lines) == 1, "\n".join(lines)
        assert any(line.startswith("Out[3]: job |███") for line in lines), "\n".join(lines)
        c.send("\x15")  # Ctrl-U: the typed text goes
        c.sendline("print('frontend comm messages:', len(heard))")
        c.expect("frontend comm messages: 0")
        c.expect_prompt(6)
        assert "Traceback" not in c.transcript and "[kconsole]" not in c.transcript
    finally:
        c.close()


@pytest.mark.timeout(90)
def test_a_display_updated_after_more_output_is_redrawn_in_its_place() -> None:
    c = PtyConsole(["start", "--kernel", "python3", "--no-banner"], rows=30, cols=60)
    try:
        c.expect_prompt(1, timeout=60)
        c.sendline("h = display('first' + 'shown', display_id=True); print('same cell')")
        c.expect_prompt(2)
        c.sendline("print('x' * 130)")  # wraps over three rows
        c.expect_prompt(3)
        c.sendline("h.update('up' + 'dated')")
        c.expect_empty_prompt(4)
        c.settle()
        lines = c.display()
        # The cell's prompt wrapped over two rows, the print wrapped over three: all
        # counted, the update lands on the display's own line.
        assert lines[1] == "   ...: nt('same cell')", "\n".join(lines)
        assert lines[2:5] == ["'updated'", "same cell", "In [2]: print('x' * 130)"]
        assert sum("'updated'" in line or "firstshown" in line for line in lines) == 1
        # (The accepted line may keep the state it had then at its right: "[kernel busy]".)
        assert lines[8].startswith("In [3]: h.update('up' + 'dated')"), "\n".join(lines)
        assert lines[9] == "In [4]:", "\n".join(lines)
        # Scrolled off: printed below instead, once.
        c.sendline("print('\\n' * 40)")
        c.expect_prompt(5)
        c.sendline("h.update('again')")
        c.expect_empty_prompt(6)
        c.settle()
        lines = c.display()
        assert lines.count("'again'") == 1 and "'updated'" not in lines, "\n".join(lines)
        assert lines.index("'again'") == lines.index("In [6]:") - 1
    finally:
        c.close()


@pytest.mark.timeout(60)
def test_a_script_prints_the_bar_once_in_its_final_state(tmp_path: Path) -> None:
    script = tmp_path / "loop.py"
    script.write_text(
        "import tqdm.auto, time\n"
        "for i in tqdm.auto.tqdm(range(50)):\n"
        "    time.sleep(0.01)\n"
        "print('done')\n"
    )
    with script.open() as stdin:
        r = subprocess.run(
            [*KCONSOLE, "start", "--kernel", "python3"],
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=50,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and BAR_LINE.match(lines[0]) and lines[1] == "done", r.stdout
    assert "\x1b" not in r.stdout
