"""The banner is wrapped on words to the terminal's width (no word split at the edge)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ptyconsole import PtyConsole

from kconsole.display.text import cell_width
from kconsole.repl.layout import wrap_words

HELP_START = "Ctrl-D exits"
HELP_END = "saves the session as a notebook."
QUERY_END = "a=q,t=d,f=24;AAAA"


@pytest.mark.timeout(90)
@pytest.mark.parametrize("cols", [80, 120])
@pytest.mark.parametrize("kernel", ["python3", "builtin"])
def test_banner_wraps_on_words(kernel: str, cols: int) -> None:
    c = PtyConsole(["start", "--kernel", kernel], cols=cols)
    try:
        c.expect(HELP_END)
        c.expect_prompt(1)
        c.settle()
        lines = c.display()
        prompt = next(i for i, ln in enumerate(lines) if ln.startswith("In [1]:"))
        # pyte prints the kitty graphics query of kconsole's terminal detection (an APC
        # string a terminal would swallow) as text: not part of the banner.
        banner = [ln.split(QUERY_END, 1)[-1] for ln in lines[:prompt]]
        first = next(i for i, ln in enumerate(banner) if ln.startswith(HELP_START))
        last = next(i for i, ln in enumerate(banner) if ln.endswith(HELP_END))
        help_words = " ".join(banner[first : last + 1]).split()
        # Every word whole: each starts a line or follows a space, none cut at the edge.
        for word in ("Ctrl-D", "interrupts", "completes,", "Shift-Tab/F1", "cursor,"):
            assert word in help_words, (word, banner[first : last + 1])
        # A line as wide as the terminal was wrapped by the terminal, mid-word or not.
        assert all(len(ln) < cols for ln in banner), "\n".join(banner)
        c.ctrl("d")
        assert c.wait_exit(30) == 0
    finally:
        c.close()


# -- wrap_words, the kernel's banner included: any text, never raises, words kept ------


@settings(max_examples=200, deadline=500)
@given(
    st.text(alphabet=st.sampled_from("ab \n\t-\x1b[m\u00e9\u4e2d\u0301"), max_size=400),
    st.integers(0, 300),
)
def test_wrap_words_keeps_every_word_and_fits_where_it_can(text: str, width: int) -> None:
    out = wrap_words(text, width)
    assert out.split() == text.split()  # no word cut, lost or joined
    limit = max(20, width - 1)
    for line in out.split("\n"):
        if cell_width(line) > limit:  # only what cannot be broken between words
            assert "\x1b" in line or "\t" in line or len(line.split()) <= 1
