"""The console's own keys and chrome in a real pseudo-terminal: the bottom toolbar,
restarting (double Ctrl-C while a cell runs, Ctrl-X r at the prompt), saving a
notebook (Ctrl-X s), vi mode, autosuggestion, the exit question, --style, and the
exit status when an attached kernel dies.

prompt_toolkit draws the toolbar only in a terminal that answers cursor position
requests: tests that look at it (``cpr=True``) let the pyte screen answer them.
Every wait is for text with a timeout; keys are sent once the prompt reading them is up.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import nbformat
import pytest
from ptyconsole import KERNELS, PtyConsole, leave, wait_screen

from kconsole.errors import ExitStatus
from kconsole.repl import check_style

RIGHT = "\x1b[C"
ESC = "\x1b"


pytestmark = pytest.mark.console_env(PAGER="cat")


def toolbar(c: PtyConsole) -> str:
    lines = [ln for ln in c.display() if " │ " in ln]
    return lines[-1] if lines else ""


# -- the toolbar ------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_toolbar_shows_kernel_state_count_and_local(console) -> None:
    c = console("start", "--kernel", "python3", cpr=True)
    c.expect_prompt(1)
    wait_screen(c, r"\(Python 3 \(ipykernel\)\) │ idle │ count 0 │ local")
    assert [ln for ln in c.display() if ln][-1] == toolbar(c)  # one line, at the bottom
    c.sendline("x = 1")
    c.expect_prompt(2)
    wait_screen(c, r"│ idle │ count 1 │ local")
    leave(c)


@pytest.mark.timeout(60)
def test_no_toolbar_flag_hides_it(console) -> None:
    c = console("start", "--kernel", "python3", "--no-toolbar", cpr=True)
    c.expect_prompt(1)
    c.sendline("y = 2")
    c.expect_prompt(2)
    c.settle()
    assert toolbar(c) == "" and "count" not in c.transcript
    leave(c)


@pytest.mark.timeout(60)
def test_toolbar_attached_follows_another_clients_busy_and_ctrl_x_r_refuses(
    console, shared_kernel, gate
) -> None:
    km, kc = shared_kernel
    c = console("attach", "--existing", km.connection_file, cpr=True)
    c.expect_prompt()
    wait_screen(c, r"│ idle │ count \d+ │ attached")
    kc.execute(gate.cell())  # another client keeps the kernel busy until released
    wait_screen(c, r"│ busy │ count \d+ │ attached")
    gate.release()
    wait_screen(c, r"│ idle │ count \d+ │ attached")
    c.send("typed")
    c.ctrl("x")
    c.send("r")
    c.expect(r"\[kconsole\] this kernel cannot be restarted")
    wait_screen(c, r"In \[\d+\]: typed$")
    c.ctrl("c")
    c.expect_empty_prompt()
    leave(c)
    assert km.is_alive()


# -- restarting -------------------------------------------------------------------------

# A cell Ctrl-C cannot stop: the kernel ignores SIGINT, then ticks. A tick printed
# after an answer to the restart question shows that question's prompt has given the
# terminal back (cooked again: the next Ctrl-C is a signal, not a key lost in raw mode).
STUCK_CELL = (
    "import itertools, signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "print('stuck', 'now', flush=True); "
    "[print('tick', i, flush=True) or time.sleep(0.3) for i in itertools.count()]"
)


def double_ctrl_c(c: PtyConsole) -> None:
    c.ctrl("c")
    c.expect(r"\^C: ")  # the interrupt was sent (and ignored)
    c.ctrl("c")
    c.expect(r"Restart the kernel\? \[y/N\]")


@pytest.mark.timeout(90)
def test_double_ctrl_c_offers_a_restart_n_keeps_waiting_y_restarts(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.sendline("fresh = 1")
    c.expect_prompt(2)
    c.sendline(STUCK_CELL)
    c.expect(r"(?m)^stuck now")
    double_ctrl_c(c)
    c.send("n\r")
    c.expect(r"\[y/N\] n")
    c.expect(r"tick \d+")
    double_ctrl_c(c)  # the cell is still running: asked again
    c.send("y\r")
    c.expect("kernel restarted", timeout=30)
    c.expect_prompt(1)
    # No prompt came between the two questions, and only one restart happened.
    assert not re.search(r"In \[3\]: ", c.transcript)
    assert c.transcript.count("kernel restarted") == 1
    c.sendline("'fresh' in globals()")
    c.expect(r"Out\[1\]: False")
    c.expect_prompt(2)
    leave(c)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("kernel", KERNELS)
def test_ctrl_x_r_restarts_at_the_prompt_and_keeps_the_text(console, kernel) -> None:
    c = console("start", "--kernel", kernel)
    c.expect_prompt(1)
    c.sendline("fresh = 1")
    c.expect_prompt(2)
    c.send("print('kept', 'fresh' in globals())")
    c.ctrl("x")
    c.send("r")
    c.expect(r"Restart the kernel\? \[y/N\]")
    c.send("y\r")
    c.expect("kernel restarted", timeout=30)
    wait_screen(c, r"^In \[1\]: print\('kept', 'fresh' in globals\(\)\)$")
    c.sendline("")
    c.expect(r"(?m)^kept False")
    c.expect_prompt(2)
    leave(c)


@pytest.mark.timeout(60)
def test_ctrl_x_r_answered_no_changes_nothing(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.sendline("kept = 5")
    c.expect_prompt(2)
    c.ctrl("x")
    c.send("r")
    c.expect(r"Restart the kernel\? \[y/N\]")
    c.send("\r")  # Enter takes the default: no
    wait_screen(c, r"^In \[2\]:$")
    c.sendline("kept")
    c.expect(r"Out\[2\]: 5")
    c.expect_prompt(3)
    assert "restarting" not in c.transcript
    leave(c)


# -- saving -----------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_ctrl_x_s_saves_a_valid_notebook_without_save(console, tmp_path: Path) -> None:
    c = console("start", "--kernel", "python3", cwd=tmp_path)
    c.expect_prompt(1)
    c.sendline("print('saved', 'cell')")
    c.expect(r"(?m)^saved cell")
    c.expect_prompt(2)
    c.sendline("6 * 7")
    c.expect(r"Out\[2\]: 42")
    c.expect_prompt(3)
    long = "print(*(f'line {i}' for i in range(20000)), sep='\\n')"
    c.sendline(long)
    c.expect(r"line 19999")
    c.expect_prompt(4)
    c.ctrl("x")
    c.send("s")
    m = c.expect(r"\[kconsole\] saved 3 cells to (\S+\.ipynb)")
    path = Path(m.group(1))
    assert path.parent == tmp_path and re.fullmatch(r"kconsole-\d{8}-\d{6}\.ipynb", path.name)
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    assert [cell.source for cell in nb.cells] == ["print('saved', 'cell')", "6 * 7", long]
    assert nb.cells[0].outputs[0].text == "saved cell\n"
    assert nb.cells[1].outputs[0].data["text/plain"] == "42"
    # Without --save a long output keeps its start and end (no copy of all of it).
    text = "".join(o.text for o in nb.cells[2].outputs)
    assert text.startswith("line 0\nline 1\n") and text.endswith("\nline 19999\n")
    assert "characters of this output were not kept" in text and len(text) < 70_000
    # The prompt is back and usable; a later save goes to the same file.
    c.sendline("z = 3")
    c.expect_prompt(5)
    c.ctrl("x")
    c.send("s")
    c.expect(r"saved 4 cells to " + re.escape(str(path)))
    c.expect_prompt()  # redrawn below the note: Ctrl-D sent before would meet a cooked tty
    leave(c)
    assert [p.name for p in tmp_path.glob("*.ipynb")] == [path.name]  # none at exit


@pytest.mark.timeout(60)
def test_ctrl_x_s_with_save_writes_that_file(console, tmp_path: Path) -> None:
    target = tmp_path / "session.ipynb"
    c = console("start", "--kernel", "python3", "--save", str(target), cwd=tmp_path)
    c.expect_prompt(1)
    c.sendline("a = 1")
    c.expect_prompt(2)
    c.ctrl("x")
    c.send("s")
    c.expect(r"saved 1 cell to " + re.escape(str(target)))
    nbformat.validate(nbformat.read(str(target), as_version=4))
    c.expect_prompt()  # redrawn below the note: Ctrl-D sent before would meet a cooked tty
    leave(c)
    assert list(tmp_path.glob("kconsole-*.ipynb")) == []


# -- editing ----------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_vi_mode_escape_0_x_edits_the_line_and_toolbar_shows_the_mode(console) -> None:
    c = console("start", "--kernel", "python3", "--vi", cpr=True)
    c.expect_prompt(1)
    wait_screen(c, r"│ vi: insert")
    c.send("Xprint('vi', 'edit')")
    wait_screen(c, r"^In \[1\]: Xprint\('vi', 'edit'\)$")
    c.send(ESC)
    wait_screen(c, r"│ vi: nav")
    c.send("0")
    c.send("x")
    wait_screen(c, r"^In \[1\]: print\('vi', 'edit'\)$")
    c.sendline("")
    c.expect(r"(?m)^vi edit")
    c.expect_prompt(2)
    leave(c)


@pytest.mark.timeout(60)
def test_autosuggestion_from_history_right_accepts(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.sendline("print('suggested', 6 * 7)")
    c.expect(r"(?m)^suggested 42")
    c.expect_prompt(2)
    c.send("print('sugg")
    wait_screen(c, r"^In \[2\]: print\('suggested', 6 \* 7\)$")  # the rest, suggested
    c.send(RIGHT)
    c.sendline("")
    c.expect(r"(?m)^suggested 42")  # the whole entry ran, not an unfinished string
    c.expect_prompt(3)
    leave(c)


@pytest.mark.timeout(60)
def test_matching_bracket_is_highlighted(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.send("f(1, 2)")
    c.send("\x1b[D")  # Left: the cursor on the closing bracket
    c.settle()
    line = next(i for i, ln in enumerate(c.display()) if ln.startswith("In [1]: f(1, 2)"))
    col = len("In [1]: f")
    # The opening bracket gets the matching-bracket background.
    assert c.screen.buffer[line][col].bg != "default", c.screen.buffer[line][col]
    c.ctrl("c")
    c.expect_empty_prompt(1)
    leave(c)


# -- leaving ----------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_confirm_exit_n_stays_y_leaves(console) -> None:
    c = console("start", "--kernel", "python3", "--confirm-exit")
    c.expect_prompt(1)
    c.ctrl("d")
    c.expect(r"Do you really want to exit \(\[y\]/n\)\?")
    c.send("n\r")
    c.expect_prompt(1)
    c.sendline("print('still', 'here')")
    c.expect(r"(?m)^still here")
    c.expect_prompt(2)
    c.ctrl("d")
    c.expect(r"Do you really want to exit")
    c.send("y\r")
    assert c.wait_exit(30) == 0


@pytest.mark.timeout(60)
def test_exit_typed_never_asks_and_no_confirm_exit_leaves_at_once(console) -> None:
    c = console("start", "--kernel", "python3", "--confirm-exit")
    c.expect_prompt(1)
    c.sendline("exit")
    assert c.wait_exit(30) == 0
    assert "Do you really" not in c.transcript

    c = console("start", "--kernel", "python3", "--no-confirm-exit")
    c.expect_prompt(1)
    c.ctrl("d")
    assert c.wait_exit(30) == 0
    assert "Do you really" not in c.transcript


@pytest.mark.timeout(60)
def test_attached_kernel_death_exits_with_kernel_died_status(console, shared_kernel) -> None:
    km, _ = shared_kernel
    c = console("attach", "--existing", km.connection_file)
    c.expect_prompt()
    c.sendline("import os; print('pid', os.getpid())")
    pid = int(c.expect(r"pid (\d+)").group(1))
    c.expect_prompt()
    os.kill(pid, signal.SIGKILL)
    c.expect("kernel died", timeout=15)
    c.sendline("")
    c.expect("the kernel is dead; leaving")
    assert c.wait_exit(30) == ExitStatus.KERNEL_DIED == 3


# -- styles -----------------------------------------------------------------------------


def test_check_style_names_the_unknown_style_and_lists_the_known() -> None:
    check_style("monokai")
    with pytest.raises(ValueError, match=r"unknown style 'nosuch' \(available: .*monokai"):
        check_style("nosuch")


@pytest.mark.timeout(60)
def test_style_option_highlights_input_with_that_style(console) -> None:
    c = console("start", "--kernel", "python3", "--style", "monokai")
    c.expect_prompt(1)
    c.send("import os")
    c.settle()
    row = next(i for i, ln in enumerate(c.display()) if ln.startswith("In [1]: import"))
    keyword = c.screen.buffer[row][len("In [1]: ")]
    # monokai's keywords are #66d9ef; pyte reports the nearest colour as hex.
    assert keyword.fg.lower() not in ("default", "008000"), keyword
    c.ctrl("c")
    c.expect_empty_prompt(1)
    leave(c)


def test_toolbar_line_and_connection_kind() -> None:
    from types import SimpleNamespace

    from prompt_toolkit.formatted_text import fragment_list_to_text

    from kconsole.repl.status import connection_kind, kernel_label, toolbar_fragments

    text = fragment_list_to_text(toolbar_fragments("ipykernel 7 (python3)", "busy", 4, "local"))
    assert text == " ipykernel 7 (python3) │ busy │ count 4 │ local "
    assert "\n" not in text
    vi = fragment_list_to_text(toolbar_fragments("k", "idle", 0, "attached", "nav"))
    assert vi.endswith("│ attached │ vi: nav ")

    def conn(process: object = None, transport: object = None, label: str = "") -> object:
        info = {"implementation": "ir", "language_info": {"name": "R"}}
        client = SimpleNamespace(transport=transport or object(), kernel_info=info)
        return SimpleNamespace(process=process, client=client, label=label)

    # The connection's kind is the kernel control's (tests/test_kernel_control.py
    # checks it for each kind against real kernels); the toolbar shows it as it is.
    assert connection_kind(SimpleNamespace(kind="server")) == "server"  # type: ignore[arg-type]
    assert kernel_label(conn()) == "ir (R)"  # type: ignore[arg-type]
    assert kernel_label(conn(label="IRkernel 1.3 (R)")) == "IRkernel 1.3 (R)"  # type: ignore[arg-type]
