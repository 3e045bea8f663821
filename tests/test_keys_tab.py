"""Tab where the text before the cursor on its line is only whitespace indents (four
spaces, as in IPython); anywhere else it asks the kernel to complete."""

from __future__ import annotations

import pytest
from ptyconsole import leave


@pytest.mark.timeout(90)
def test_tab_on_an_indented_line_indents_instead_of_completing(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.sendline("for i in range(2):")
    c.expect(r"\.\.\.: ")  # the continuation line, auto-indented by four
    c.send("\t")
    c.send("print('item', i)")
    c.expect_cursor_line(r" +\.\.\.: {9}print\('item', i\)")
    c.send("\r\r")
    c.expect(r"(?m)^item 0\s+item 1")
    c.expect_prompt(2)
    assert "abs" not in c.transcript and "Traceback" not in c.transcript
    leave(c)


@pytest.mark.timeout(90)
def test_tab_on_an_empty_line_indents_and_after_text_completes(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.send("\tx")
    c.expect_cursor_line(r"In \[1\]: {5}x")
    c.ctrl("c")
    c.expect_empty_prompt(1)
    c.send("x = 1; impor\t")
    c.expect_cursor_line(r"In \[1\]: x = 1; import")  # Tab after a word still completes
    c.ctrl("c")
    c.expect_empty_prompt(1)
    leave(c)


@pytest.mark.timeout(90)
def test_a_pasted_block_indented_with_tabs_runs(console) -> None:
    c = console("start", "--kernel", "python3")
    c.expect_prompt(1)
    c.send("if True:\r\tprint('in', 'block')\r\r")  # one write, no bracketed paste
    c.expect(r"(?m)^in block")
    c.expect_prompt(2)
    assert "Traceback" not in c.transcript and "Error" not in c.transcript
    leave(c)
