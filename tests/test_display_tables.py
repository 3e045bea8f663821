"""Wide tables (issue 14, item 4): a DataFrame wider than the terminal is cut into
column blocks that each fit, as pandas' own text repr does. What a user checks:
every line fits the terminal, every header reads whole, every value is there, the
index repeats at the left of each block, and there is no rule between body rows.
"""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kconsole.display import RenderContext, TerminalCapabilities, default_registry
from kconsole.display.text import display_width, strip_ansi

pd = pytest.importorskip("pandas")

RULES = set("─┌┬┐├┼┤└┴┘")


def render_html(html: str, width: int, color: bool = False) -> list[str]:
    """``html`` as the REPL prints it in a terminal ``width`` cells wide."""
    caps = TerminalCapabilities(is_tty=True, colors=256, hyperlinks=False)
    c = RenderContext(width=width, height=40, color=color, tty=True, caps=caps)
    r = default_registry().render({"text/html": html, "text/plain": "PLAIN"}, {}, c)
    assert r.mime == "text/html", r.notes
    return r.text.split("\n")


def cells_of(line: str) -> list[str]:
    """The cell texts of one table line (boxed or bare)."""
    if "│" in line:
        return [c.strip() for c in line.strip("│").split("│")]
    return line.split()


def blocks_of(lines: list[str]) -> list[list[str]]:
    """The table's column blocks: runs of lines between blank lines."""
    out: list[list[str]] = [[]]
    for ln in lines:
        if not ln.strip():
            out.append([])
        else:
            out[-1].append(ln)
    return [b for b in out if b]


def is_rule(line: str) -> bool:
    return bool(line.strip()) and set(line.strip()) <= RULES


def wide_frame(ncols: int = 50, nrows: int = 6) -> pd.DataFrame:
    """Columns named as data people name them: short codes, long names with spaces,
    long names without; numbers of several widths, negative ones, text."""
    data = {}
    for k in range(ncols):
        name = ["temperature_celsius", "id", "mean absolute error", "flag", "x"][k % 5] + f"_{k}"
        if k % 7 == 3:
            data[name] = [f"city{r * k}" for r in range(nrows)]
        else:
            data[name] = [round((r - 2.5) * (k + 1) * 1.37, 3) for r in range(nrows)]
    return pd.DataFrame(data)


def header_words(df: pd.DataFrame) -> list[str]:
    return [str(c) for c in df.columns]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("width", [80, 140])
def test_fifty_column_dataframe_reads_whole_at_80_and_140(width: int) -> None:
    df = wide_frame()
    lines = render_html(df.to_html(), width)
    assert all(display_width(ln) <= width for ln in lines)
    blocks = blocks_of(lines)
    assert len(blocks) > 1  # 50 columns never fit side by side
    seen_headers: list[str] = []
    seen_values: list[list[str]] = [[] for _ in range(len(df))]
    for block in blocks:
        assert block[0].startswith("┌") and block[-1].startswith("└")
        inner = [ln for ln in block[1:-1]]
        rules = [i for i, ln in enumerate(inner) if is_rule(ln)]
        # One rule inside a block: between the header and the body; none between rows.
        assert len(rules) == 1 and inner[rules[0]].startswith("├")
        header, body = inner[: rules[0]], inner[rules[0] + 1 :]
        assert len(header) == 1  # no header was wrapped, let alone split
        assert len(body) == len(df)
        names = cells_of(header[0])
        assert names[0] == ""  # the index column's header
        seen_headers += names[1:]
        for r, ln in enumerate(body):
            row = cells_of(ln)
            assert row[0] == str(df.index[r])  # the index repeats in every block
            seen_values[r] += row[1:]
        # Every line of a block has its column separators at the same places.
        assert len({tuple(m.start() for m in re.finditer("[│┌┬┐├┼┤└┴┘]", ln)) for ln in block}) == 1
    assert seen_headers == header_words(df)
    for r in range(len(df)):
        expected = [
            f"{v:.3f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v)
            for v in df.iloc[r]
        ]
        got = [
            s.rstrip("0").rstrip(".") if re.fullmatch(r"-?\d+\.\d+", s) else s
            for s in seen_values[r]
        ]
        assert got == expected


@pytest.mark.parametrize("width", [80, 140])
def test_notebook_repr_of_a_wide_frame_keeps_headers_whole(width: int) -> None:
    # What Jupyter shows for `df`: pandas' _repr_html_ keeps 20 of the 50 columns
    # with a "..." column between them, and a "6 rows × 50 columns" line.
    df = wide_frame()
    with pd.option_context("display.max_columns", 20):
        html = df._repr_html_()
    lines = render_html(html, width)
    assert all(display_width(ln) <= width for ln in lines)
    text = "\n".join(lines)
    for h in list(df.columns[:10]) + list(df.columns[-10:]):
        assert re.search(rf"│ +{re.escape(h)} +│", text), h
    assert re.search(r"│ +\.\.\. +│", text)  # the column standing for the hidden ones
    assert lines[-1] == "6 rows × 50 columns"
    tables = [b for b in blocks_of(lines) if b[0].startswith("┌")]
    assert len(tables) > 1
    for b in tables:
        assert [ln[0] for ln in b if is_rule(ln)] == ["┌", "├", "└"]


def test_long_text_cells_wrap_at_spaces_with_no_rule_between_rows() -> None:
    sentence = "the quick brown fox jumps over the lazy dog and keeps running far away"
    df = pd.DataFrame(
        {
            "n": [1, 2, 3],
            "comment": [sentence, "short", sentence.upper()],
            "ok": [True, False, True],
        }
    )
    lines = render_html(df.to_html(), 60)
    assert all(display_width(ln) <= 60 for ln in lines)
    assert len(blocks_of(lines)) == 1  # wrapping the text lets the table fit
    rules = [ln for ln in lines if is_rule(ln)]
    assert [r[0] for r in rules] == ["┌", "├", "└"]
    # The sentence reads back whole, word by word, from its wrapped lines.
    body = lines[lines.index(rules[1]) + 1 : -1]
    col = [cells_of(ln)[2] for ln in body]
    first = " ".join(c for c in col[: col.index("short")] if c)
    assert first == sentence
    # Each row starts with its index (rows are told apart without rules).
    assert [cells_of(ln)[0] for ln in body if cells_of(ln)[0]] == ["0", "1", "2"]


def test_a_word_wider_than_the_terminal_is_broken_not_hidden() -> None:
    word = "https://example.org/a/very/long/path/that/no/terminal/column/can/hold/whole"
    df = pd.DataFrame({"url": [word, "b"], "v": [1, 2]})
    lines = render_html(df.to_html(), 40)
    assert all(display_width(ln) <= 40 for ln in lines)
    assert "…" not in "\n".join(lines)
    pieces = "".join(
        cells_of(ln)[1]
        for b in blocks_of(lines)
        for ln in b
        if "│" in ln and cells_of(ln)[1] != "url"
    )
    assert word in pieces


def test_multiindex_header_rows_and_index_repeat_in_each_block() -> None:
    cols = pd.MultiIndex.from_product([["alpha", "beta", "gamma"], ["one", "two", "three"]])
    idx = pd.MultiIndex.from_product([["x", "y"], ["p", "q"]], names=["outer", "inner"])
    df = pd.DataFrame(
        [[r * 9 + c + 0.5 for c in range(9)] for r in range(4)], index=idx, columns=cols
    )
    lines = render_html(df.to_html(), 40)
    assert all(display_width(ln) <= 40 for ln in lines)
    blocks = blocks_of(lines)
    assert len(blocks) >= 3
    tops: list[str] = []
    for block in blocks:
        rows = [cells_of(ln) for ln in block if "│" in ln]
        # Header rows: the top level, the second level, the index names.
        assert rows[2][:2] == ["outer", "inner"]
        assert [r[:2] for r in rows[3:]] == [["x", "p"], ["", "q"], ["y", "p"], ["", "q"]]
        # A block that starts inside a column group names the group again.
        assert rows[0][2] in ("alpha", "beta", "gamma")
        tops += [t for t in rows[0][2:] if t]
        assert sum(is_rule(ln) and ln.startswith("├") for ln in block) == 1
    assert list(dict.fromkeys(tops)) == ["alpha", "beta", "gamma"]
    values = [v for b in blocks for ln in b if "│" in ln for v in cells_of(ln)[2:]]
    for v in df.to_numpy().ravel():
        assert f"{v:.1f}" in values


def test_a_very_narrow_terminal_drops_the_boxes_not_the_words() -> None:
    df = pd.DataFrame({"somewhere": ["alpha beta", "gamma"], "count": [1, 22]})
    lines = render_html(df.to_html(), 14)
    assert all(display_width(ln) <= 14 for ln in lines)
    assert not any("│" in ln for ln in lines)
    words = " ".join(lines).split()
    for w in ("somewhere", "alpha", "beta", "gamma", "count", "1", "22"):
        assert w in words


def test_rules_are_dim_and_headers_bold_in_colour() -> None:
    df = pd.DataFrame({"a": [1, 2], "b": [3, 4]})
    lines = render_html(df.to_html(), 80, color=True)
    assert "\x1b[1ma\x1b[0m" in lines[1]
    assert lines[0].startswith("\x1b[2m┌")
    assert [strip_ansi(ln)[0] for ln in lines] == ["┌", "│", "├", "│", "│", "└"]


# -- any table ----------------------------------------------------------------------------

_SGR = re.compile(r"\x1b\[[0-9;]*m")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")

# Cell text: ASCII words and numbers, wide CJK, emoji (one with a skin-tone modifier),
# a combining accent, tabs and runs of spaces.
_text = st.lists(
    st.sampled_from(
        list("abcXYZ019 .-_,")
        + ["漢", "字", "表", "😀", "👍🏽", "é", "\u0301", "ß", "Ω", "\t", "   "]
    ),
    max_size=40,
).map("".join)


@st.composite
def tables(draw: st.DrawFn) -> str:
    ncols = draw(st.integers(1, 14))
    nrows = draw(st.integers(0, 6))
    index = draw(st.booleans())
    head = "".join(f"<th>{draw(_text)}</th>" for _ in range(ncols))
    body = ""
    for _ in range(nrows):
        cells = "".join(
            f"<td colspan={draw(st.integers(1, 3))}>{draw(_text)}</td>"
            if draw(st.integers(0, 9)) == 0
            else f"<td>{draw(_text)}</td>"
            for _ in range(ncols)
        )
        span = f" rowspan={draw(st.integers(1, 4))}" if draw(st.integers(0, 4)) == 0 else ""
        body += f"<tr>{f'<th{span}>' + draw(_text) + '</th>' if index else ''}{cells}</tr>"
    idx_head = "<th></th>" if index else ""
    return f"<table><thead><tr>{idx_head}{head}</tr></thead><tbody>{body}</tbody></table>"


@settings(max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(html=tables(), width=st.integers(10, 300), color=st.booleans())
def test_any_table_fits_any_width(html: str, width: int, color: bool) -> None:
    start = time.monotonic()
    lines = render_html(html, width, color)
    assert time.monotonic() - start < 1.0
    for ln in lines:
        assert display_width(ln) <= width, (width, ln)
        assert not _CONTROL.search(_SGR.sub("", ln)), repr(ln)
        if not color:
            assert "\x1b" not in ln


# -- the fast path for simple rows ------------------------------------------------------

_CELL_TEXT = st.lists(
    st.sampled_from(
        ["1.5", "x", " ", "  ", "\n", "\t", "a b", ">", "&amp;", "&lt;b&gt;", "&#27;[31m"]
        + ["&#x9b;2J", "\x1b]52;c;eA==\x07", "\x85", "\xa0", "é", "漢", "&nbsp;", "&"]
    ),
    max_size=4,
).map("".join)


@st.composite
def table_soup(draw: st.DrawFn) -> str:
    """Tables as pandas writes them, with rows and surroundings that are not simple."""

    def row() -> str:
        tags = draw(st.lists(st.sampled_from(["td", "th"]), max_size=5))
        cells = "".join(f"<{t}>{draw(_CELL_TEXT)}</{t}>" for t in tags)
        kind = draw(st.integers(0, 9))
        if kind == 0:
            return f'<tr style="text-align: right;">{cells}</tr>'
        if kind == 1:
            return f"<TR>{cells}</TR>"
        if kind == 2:
            return f"<tr>{cells}"  # never closed
        if kind == 3:
            return f"<tr><td>{draw(_CELL_TEXT)}<b>bold</b></td>{cells}</tr>"
        sep = draw(st.sampled_from(["", "\n", "\n      "]))
        return f"<tr>{sep}{cells.replace('><', '>' + sep + '<')}{sep}</tr>"

    head = "".join(row() for _ in range(draw(st.integers(0, 2))))
    body = "".join(row() for _ in range(draw(st.integers(0, 6))))
    inner = draw(st.sampled_from(["", "<caption>cap</caption>", "<tr><td><table>"]))
    table = f"<table>{inner}<thead>{head}</thead><tbody>{body}</tbody></table>"
    before = draw(st.sampled_from(["", "<b>", '<a href="http://x/">', "<pre>", "<script>"]))
    after = draw(st.sampled_from(["", "</b>", "</table>", "<p>after</p>"]))
    return before + table + body * draw(st.integers(0, 1)) + after


def _parse_both_ways(html: str) -> tuple[object, object]:
    from unittest import mock

    from kconsole.display import html as html_module

    fast = html_module.parse_html(html)
    with mock.patch.object(html_module, "_SIMPLE_ROW", re.compile("(?!)")):
        slow = html_module.parse_html(html)
    return fast, slow


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(html=table_soup(), width=st.integers(20, 120))
def test_simple_rows_read_at_once_give_the_screen_the_tags_would(html: str, width: int) -> None:
    # Rows of plain cells (a DataFrame's body) skip the tag-by-tag parse: whatever
    # surrounds them, the document, and so the screen, is the one the tags give.
    from unittest import mock

    from kconsole.display import html as html_module

    fast, slow = _parse_both_ways(html)
    assert fast == slow
    lines = render_html(html, width, color=True)
    with mock.patch.object(html_module, "_SIMPLE_ROW", re.compile("(?!)")):
        assert render_html(html, width, color=True) == lines


def test_a_long_dataframe_renders_as_its_tags_would_through_the_fast_path() -> None:
    from kconsole.display.html import _tokens

    df = pd.DataFrame({"name": [f"item &{i}" for i in range(300)], "x": range(300)})
    html = df.to_html()
    fast, slow = _parse_both_ways(html)
    assert fast == slow
    lines = render_html(html, 80)
    assert cells_of(lines[-2]) == ["299", "item &299", "299"]
    flat = re.sub(r">\s+<", "><", html)  # what parse_html reads (indentation gone)
    assert sum(kind == "row" for kind, _, _ in _tokens(flat)) == 300  # one per body row


def test_a_5000_row_dataframe_shows_its_text_form_whole() -> None:
    # Shown in full (display.max_rows None), its HTML is over the rendering budget:
    # the text pandas wrote is printed, every row of it, as jupyter console prints it.
    with pd.option_context("display.max_rows", None):
        df = pd.DataFrame({"a": range(5000), "b": [i / 7 for i in range(5000)]})
        data = {"text/html": df._repr_html_(), "text/plain": repr(df)}
    caps = TerminalCapabilities(is_tty=True, colors=256, hyperlinks=False)
    c = RenderContext(width=100, height=40, color=True, tty=True, caps=caps)
    r = default_registry().render(data, {}, c)
    assert r.mime == "text/plain" and r.text == data["text/plain"]
    assert r.text.splitlines()[-1].split()[0] == "4999"
    (note,) = r.notes
    assert re.fullmatch(r"\[kconsole: text/html not rendered: \d+ KB is over the 256 KB .*\]", note)
