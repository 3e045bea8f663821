"""The interactive console's features, in a real pseudo-terminal, against ipykernel
and (where it applies) kconsole's built-in kernel. Every wait is for text on the
screen with a timeout; keys are sent only once the prompt that reads them is up."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ptyconsole import PtyConsole, screen_text, wait_gone, wait_screen

from kconsole import paths

UP = "\x1b[A"
F1 = "\x1bOP"
SHIFT_TAB = "\x1b[Z"
PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"


KERNELS = ["python3", "builtin"]


# The pager is less, with none of the user's options.
pytestmark = pytest.mark.console_env(PAGER="less -R", LESS="", LESSSECURE="1")


def quit_console(c: PtyConsole) -> None:
    # Ctrl-C ends the prompt and starts a new one; a ^D typed between the two meets a
    # cooked terminal (and arrives as NUL), so wait until the new prompt is drawn.
    c.ctrl("c")
    c.expect_prompt()
    c.settle()
    leaving = len(c.transcript)
    c.ctrl("d")
    assert c.wait_exit(20) == 0
    # The kernel stopping because we left is not news (it once read "the kernel died").
    assert "died" not in c.transcript[leaving:]


# -- completion -------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_completion_menu_shows_type_and_signature(console, patient_jedi) -> None:
    # The types and signatures are jedi's: with its time budget out of play
    # (patient_jedi) each match has them, and the menu must show them.
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.sendline("import os")
    c.expect_prompt(2)
    c.send("os.pa\t")
    screen = wait_screen(c, r"(?m)^ +pathconf +function")  # the menu, with the types
    line = next(ln for ln in screen.splitlines() if " path " in ln or ln.rstrip().endswith("path"))
    assert "module" in line, screen  # _jupyter_types_experimental type in the menu
    sig = [ln for ln in screen.splitlines() if "pathconf " in ln]
    assert sig and "function" in sig[0] and "(path, name)" in sig[0], screen
    quit_console(c)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kernel", KERNELS)
def test_tab_completes_import(console, kernel) -> None:
    c = console("start", "--kernel", kernel)
    c.expect_prompt(1)
    c.send("import o")
    c.send("\t")
    # Menu rows (below the prompt, at the word's column), whatever the types say.
    wait_screen(c, r"(?m)^ +os\b")
    wait_screen(c, r"(?m)^ +operator\b")  # the other matches are listed
    quit_console(c)


@pytest.mark.timeout(60)
def test_tab_while_the_kernel_is_busy_never_blocks_typing(console, shared_kernel, gate) -> None:
    km, kc = shared_kernel
    c = console("attach", "--existing", km.connection_file)
    c.expect_prompt()
    kc.execute(gate.cell())  # another client keeps the kernel busy until released
    c.expect(r"\[kernel busy\]", timeout=10)  # the state marker at the right
    c.send("import o\t")
    c.send("\t")  # a second Tab must not queue another request behind the first
    c.send("s_typed_after_tab")
    # Echoed while the kernel is still busy (it cannot answer the Tab before release).
    wait_screen(c, r"import os_typed_after_tab")
    gate.release()
    # Idle again (the marker gone), the Tab's late answer is not let in over the text.
    c.expect_cursor_line(r"In \[\d+\]: import os_typed_after_tab")
    screen = screen_text(c)
    assert "import os_typed_after_tab" in screen, screen
    quit_console(c)


# -- inspection and the pager ---------------------------------------------------------


@pytest.mark.timeout(60)
def test_question_mark_pages_the_docstring_and_q_returns(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.sendline("len?")
    c.expect("Return the number of items in a container")
    c.send("q")
    c.expect_prompt(2)
    c.sendline("print('back')")
    c.expect(r"(?m)^back")
    c.expect_prompt(3)
    quit_console(c)


@pytest.mark.timeout(60)
def test_f1_pages_help_and_shift_tab_prints_it_without_running(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.send("len(")
    c.send(F1)
    c.expect("Return the number of items in a container")
    c.send("q")
    wait_screen(c, r"(?m)^In \[1\]: len\($")  # back at the same prompt, text intact
    c.send(SHIFT_TAB)
    c.expect(r"Signature:\s+len\(obj, /\)")
    c.send("'abc')")
    c.sendline("")
    c.expect(r"Out\[1\]: 3")  # nothing ran before: this is cell 1
    c.expect_prompt(2)
    quit_console(c)


# -- multi-line input -------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kernel", KERNELS)
def test_multiline_function_then_call(console, kernel) -> None:
    c = console("start", "--kernel", kernel)
    c.expect_prompt(1)
    c.sendline("def f(x):")
    c.expect(r"\.\.\.: ")
    c.sendline("return x + 1")
    c.sendline("")
    c.expect_prompt(2)
    c.sendline("f(1)")
    c.expect(r"Out\[2\]: 2")
    c.expect_prompt(3)
    quit_console(c)


@pytest.mark.timeout(60)
def test_bracketed_paste_is_one_cell(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    block = "for i in range(3):\n    print('row', i)\nprint('pasted', 'done')\n"
    c.send(PASTE_START + block + PASTE_END)
    c.send("\r")
    c.expect(r"(?m)^row 0\s+row 1\s+row 2\s+pasted done")
    c.expect_prompt(2)  # one cell, not three
    quit_console(c)


@pytest.mark.timeout(60)
def test_escape_enter_always_inserts_a_newline(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.send("a = 1")
    c.send("\x1b\r")
    c.expect(r"\.\.\.: ")
    c.sendline("b = a + 1")  # complete now: Enter runs both lines
    c.expect_prompt(2)
    c.sendline("b")
    c.expect(r"Out\[2\]: 2")
    c.expect_prompt(3)
    quit_console(c)


# -- stdin ------------------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kernel", KERNELS)
def test_input_then_print(console, kernel) -> None:
    c = console("start", "--kernel", kernel)
    c.expect_prompt(1)
    c.sendline('name = input("name? ")')
    c.expect(r"(?m)^name\?")  # the kernel's prompt, not the echo of the cell
    c.sendline("Ada")
    c.expect_prompt(2)
    c.sendline("print(name)")
    c.expect(r"(?m)^Ada")
    c.expect_prompt(3)
    quit_console(c)


@pytest.mark.timeout(60)
def test_getpass_echoes_nothing_and_input_in_a_loop(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.sendline("import getpass; pw = getpass.getpass('pw: ')")
    c.expect(r"(?m)^pw:")  # the kernel's prompt, not the echo of the cell
    c.send("hunter2")
    screen = screen_text(c)
    assert "hunter2" not in screen and "*******" not in screen, screen
    c.sendline("")
    c.expect_prompt(2)
    c.sendline("print(len(pw))")  # what was typed reached the kernel, unseen
    c.expect(r"(?m)^7\b")
    c.expect_prompt(3)
    c.sendline("for i in range(2): print('got', input(f'q{i}? ') * 2)")
    c.expect(r"q0\?")
    c.sendline("ab")
    c.expect("got abab")
    c.expect(r"q1\?")
    c.sendline("cd")
    c.expect("got cdcd")
    c.expect_prompt(4)
    assert "hunter2" not in c.transcript
    quit_console(c)


@pytest.mark.timeout(60)
def test_pdb_prompt_has_line_editing_and_history(console) -> None:
    # ipykernel's pdb.set_trace() is IPython's debugger: its prompt is `ipdb>`.
    pdb_prompt = r"(\(Pdb\)|ipdb>)"
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.sendline("import pdb; pdb.set_trace(); print('after', 'pdb')")
    c.expect(pdb_prompt)
    c.settle()
    c.sendline("p 1+1")
    c.expect(r"(?m)^2\s*$")
    c.expect(pdb_prompt)
    c.settle()
    c.send(UP)
    wait_screen(c, pdb_prompt + r" p 1\+1")
    c.sendline("")
    c.expect(r"(?m)^2\s*$")
    c.expect(pdb_prompt)
    c.settle()
    c.sendline("c")
    c.expect("after pdb")
    c.expect_prompt(2)
    quit_console(c)


@pytest.mark.timeout(60)
def test_ctrl_d_at_input_sends_eof(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    block = "try:\n    input('eof? ')\nexcept EOFError:\n    print('got', 'EOF')\n"
    c.send(PASTE_START + block + PASTE_END + "\r")
    c.expect(r"eof\?")
    c.settle()
    c.ctrl("d")
    c.expect("got EOF")
    c.expect_prompt(2)
    quit_console(c)


# -- payloads ---------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_set_next_input_prefills_the_prompt(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.sendline("get_ipython().set_next_input(\"print('pre' + 'filled')\")")
    c.expect(r"In \[2\]: print\('pre' \+ 'filled'\)")
    c.sendline("")
    c.expect("prefilled")
    c.expect_prompt(3)
    quit_console(c)


@pytest.mark.timeout(60)
def test_exit_keep_kernel_without_keep_kernel_says_why_and_stops_it(console) -> None:
    # A kernel started without --keep-kernel watches kconsole's pid and would die with
    # it: kconsole says so and shuts it down cleanly instead of pretending to keep it.
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.sendline("import os; print('pid', os.getpid())")
    pid = int(c.expect(r"pid (\d+)").group(1))
    c.expect_prompt(2)
    c.sendline("exit(keep_kernel=True)")
    c.expect("--keep-kernel")
    assert c.wait_exit(20) == 0
    assert wait_gone(pid, 10), "the kernel outlived the console"


@pytest.mark.timeout(60)
def test_exit_keep_kernel_with_keep_kernel_leaves_it_running(console) -> None:
    c = console("start", "--kernel", "python3", "--keep-kernel")
    c.expect_prompt(1)
    c.sendline("import os; print('pid', os.getpid())")
    pid = int(c.expect(r"pid (\d+)").group(1))
    c.expect_prompt(2)
    c.sendline("exit(keep_kernel=True)")
    assert c.wait_exit(20) == 0
    try:
        os.kill(pid, 0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)


# -- history ----------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_history_persists_and_up_is_a_prefix_search(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.sendline("persist_a = 'first'")
    c.expect_prompt(2)
    c.sendline("other = 2")
    c.expect_prompt(3)
    c.ctrl("d")
    assert c.wait_exit(20) == 0
    files = list((paths.user_state_dir()).glob("history-*"))
    assert files and "persist_a = 'first'" in files[0].read_text()

    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.send("persist")
    c.send(UP)  # skips `other = 2`: only entries starting with what is typed
    wait_screen(c, r"In \[1\]: persist_a = 'first'")
    quit_console(c)


@pytest.mark.timeout(60)
def test_ctrl_r_reverse_search(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.sendline("print('needle', 1)")
    c.expect_prompt(2)
    c.sendline("x = 5")
    c.expect_prompt(3)
    c.ctrl("r")
    c.send("needle")
    c.expect(r"needle")
    c.send("\r")  # accept the search: the entry is back in the prompt
    wait_screen(c, r"In \[3\]: print\('needle', 1\)")
    c.send("\r")
    c.expect(r"(?m)^needle 1")
    c.expect_prompt(4)
    quit_console(c)


@pytest.mark.timeout(60)
def test_kernel_history_is_merged_when_attaching(console, shared_kernel) -> None:
    km, kc = shared_kernel
    kc.execute_interactive("typed_in_a_notebook = 7", timeout=20)
    c = console("attach", "--existing", km.connection_file)
    c.expect_prompt()
    c.send(UP)
    wait_screen(c, r"In \[\d+\]: typed_in_a_notebook = 7")
    quit_console(c)
    # In memory only: the file history did not get it.
    for f in paths.user_state_dir().glob("history-*"):
        assert "typed_in_a_notebook" not in f.read_text()


# -- other clients ----------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_other_output_marked_with_its_count_and_can_be_turned_off(console, shared_kernel) -> None:
    km, kc = shared_kernel
    c = console("attach", "--existing", km.connection_file)
    c.expect_prompt()
    c.send("half_typed")
    kc.execute_interactive("6 * 7", timeout=20)
    c.expect(r"\[remote\] In \[\d+\]: 6 \* 7")
    c.expect(r"Out\[\d+\]: 42")
    # The prompt is redrawn below the other client's output with the typed text intact.
    wait_screen(c, r"(?m)^In \[\d+\]: half_typed$")
    lines = c.display()
    out_row = max(i for i, ln in enumerate(lines) if re.search(r"Out\[\d+\]: 42", ln))
    prompt_row = max(i for i, ln in enumerate(lines) if ln.startswith("In ["))
    assert prompt_row > out_row and lines[prompt_row].endswith("]: half_typed"), lines
    quit_console(c)

    c = console("attach", "--existing", km.connection_file, "--no-other-output")
    c.expect_prompt()
    kc.execute_interactive("print('hidden' + '_output')", timeout=20)
    c.sendline("print('mine')")
    c.expect(r"(?m)^mine")
    c.expect_prompt()
    assert "hidden_output" not in c.transcript
    quit_console(c)


# -- script mode and --save -------------------------------------------------------------


@pytest.mark.timeout(60)
def test_script_mode_groups_cells_and_answers_input_from_stdin(tmp_path: Path) -> None:
    script = "for i in range(3):\n    print(i)\n\nx = input()\nab\nprint(x*2)\n"
    out = subprocess.run(
        [sys.executable, "-m", "kconsole", "start", "--kernel", "python3"],
        input=script,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "1", "2", "abab"], out.stdout
