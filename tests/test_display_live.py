"""Displays and widget views redrawn where they are while on screen (the printer alone).

The screen is a pyte terminal fed with everything the printer wrote: what a user
would see. An update redraws the old version in its place, whatever was printed
after it (the printer's output, a prompt the console reports the rows of); once the
old version has scrolled off, the new one is printed below, once.
"""

from __future__ import annotations

import io
from typing import Any

import pyte
from hypothesis import given, settings
from hypothesis import strategies as st

from kconsole.display import DisplayConfig, TerminalCapabilities
from kconsole.output import OutputPrinter
from kconsole.protocol import Message

WIDGET = "application/vnd.jupyter.widget-view+json"


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def printer(cols: int = 40, rows: int = 24, *, live: bool = True) -> tuple[OutputPrinter, FakeTTY]:
    out = FakeTTY()
    p = OutputPrinter(
        out,
        color=False,
        tty=True,
        capabilities=TerminalCapabilities(is_tty=True, colors=256),
        config=DisplayConfig(width=cols),
    )
    p._size = lambda: (cols, rows)  # type: ignore[method-assign]  # the pyte screen's
    p.live_widgets = live
    return p, out


def screen(out: FakeTTY, cols: int = 40, rows: int = 24) -> tuple[list[str], tuple[int, int]]:
    s = pyte.Screen(cols, rows)
    s.set_mode(pyte.modes.LNM)  # a tty's ONLCR: \n is CR LF
    pyte.Stream(s).feed(out.getvalue())
    return [line.rstrip() for line in s.display], (s.cursor.y, s.cursor.x)


def msg(msg_type: str, content: dict[str, Any]) -> Message:
    return Message(
        header={"msg_type": msg_type, "msg_id": "m"},
        parent_header={"msg_id": "cell"},
        content=content,
    )


def display(text: str, did: str | None = None, update: bool = False) -> Message:
    content: dict[str, Any] = {"data": {"text/plain": text}, "metadata": {}}
    if did is not None:
        content["transient"] = {"display_id": did}
    return msg("update_display_data" if update else "display_data", content)


def stream(text: str) -> Message:
    return msg("stream", {"name": "stdout", "text": text})


def comm(msg_type: str, cid: str, **state: Any) -> Message:
    if msg_type == "comm_open":
        data = {"state": state, "buffer_paths": []}
        return msg(msg_type, {"comm_id": cid, "target_name": "jupyter.widget", "data": data})
    return msg(msg_type, {"comm_id": cid, "data": {"method": "update", "state": state}})


def show_widget(cid: str) -> Message:
    bundle = {"text/plain": "HBox()", WIDGET: {"model_id": cid, "version_major": 2}}
    return msg("display_data", {"data": bundle, "metadata": {}, "transient": {}})


def tqdm_models(p: OutputPrinter) -> None:
    p.handle(comm("comm_open", "pct", _model_name="HTMLModel", value="  0%"))
    p.handle(comm("comm_open", "bar", _model_name="FloatProgressModel", value=0, max=10))
    p.handle(
        comm(
            "comm_open", "box", _model_name="HBoxModel", children=["IPY_MODEL_pct", "IPY_MODEL_bar"]
        )
    )


def test_a_display_is_redrawn_in_place_after_output_and_a_prompt() -> None:
    p, out = printer()
    p.handle(display("v1 top\nv1 end", "d"))
    p.handle(stream("printed after\n"))
    out.write("In [2]: h.update(x)\n")  # an accepted prompt, one row: the REPL says so
    p.barrier(at_line_start=True, rows=1)
    p.handle(display("v2 top\nv2 middle\nv2 end", "d", update=True))  # one row more
    lines, cursor = screen(out)
    assert lines[:6] == [
        "v2 top",
        "v2 middle",
        "v2 end",
        "printed after",
        "In [2]: h.update(x)",
        "",
    ]
    assert cursor == (5, 0)
    p.handle(display("v3", "d", update=True))  # two rows fewer
    p.handle(stream("next\n"))
    lines, cursor = screen(out)
    assert lines[:5] == ["v3", "printed after", "In [2]: h.update(x)", "next", ""]
    assert cursor == (4, 0)


def test_a_display_redrawn_under_a_line_left_open_puts_the_cursor_back() -> None:
    p, out = printer()
    p.handle(display("old", "d"))
    p.handle(stream("typing..."))
    p.handle(display("new", "d", update=True))
    p.handle(stream(" done\n"))
    assert screen(out)[0][:3] == ["new", "typing... done", ""]


def test_long_lines_are_counted_in_rows_of_the_terminal() -> None:
    p, out = printer(cols=20)
    p.handle(display("v" * 50, "d"))  # three rows
    p.handle(stream("w" * 45 + "\n"))  # three rows
    p.handle(display("x" * 30, "d", update=True))
    lines, cursor = screen(out, cols=20)
    assert lines[:6] == ["x" * 20, "x" * 10, "w" * 20, "w" * 20, "w" * 5, ""]
    assert cursor == (5, 0)


def test_an_update_of_a_display_scrolled_off_is_printed_below_once() -> None:
    p, out = printer(rows=8)
    p.handle(display("old version", "d"))
    p.handle(stream("".join(f"line {i}\n" for i in range(10))))
    p.handle(display("new version", "d", update=True))
    p.handle(display("newer version", "d", update=True))  # the copy below is redrawn
    lines, _ = screen(out, rows=8)
    text = "\n".join(lines)
    assert "newer version" in lines and "new version" not in lines, text
    assert text.count("version") == 1


def test_an_update_after_what_nobody_counted_is_printed_below() -> None:
    p, out = printer()
    p.handle(display("v1", "d"))
    out.write("a pager was here\n")
    p.barrier()  # rows unknown
    p.handle(display("v2", "d", update=True))
    assert screen(out)[0][:4] == ["v1", "a pager was here", "v2", ""]


def test_a_widget_view_follows_its_models_in_place() -> None:
    p, out = printer()
    tqdm_models(p)
    p.handle(show_widget("box"))
    p.handle(stream("the loop prints\n"))
    for i in range(1, 11):
        p.handle(comm("comm_msg", "bar", value=i))
        p.handle(comm("comm_msg", "pct", value=f"{i * 10:3d}%"))
    lines, cursor = screen(out)
    assert lines[:3] == ["100% |" + "█" * 33 + "|", "the loop prints", ""]
    assert cursor == (2, 0)


def test_view_redraws_wait_for_whoever_owns_the_terminal() -> None:
    p, out = printer()
    calls: list[int] = []
    p.on_views_changed = lambda: calls.append(1)
    tqdm_models(p)
    p.handle(show_widget("box"))
    written = out.getvalue()
    p.handle(comm("comm_msg", "bar", value=5))
    p.handle(comm("comm_msg", "pct", value=" 50%"))
    assert out.getvalue() == written and calls  # asked, nothing drawn yet
    assert p.prepare_views()
    p.redraw_views()
    assert "50%" in screen(out)[0][0]
    assert not p.prepare_views()  # drawn: nothing left to do


def test_a_closed_or_cleared_widget_disappears_and_stays_gone() -> None:
    p, out = printer()
    tqdm_models(p)
    p.handle(stream("above\n"))
    p.handle(show_widget("box"))
    p.handle(stream("below\n"))
    p.handle(msg("comm_close", {"comm_id": "box", "data": {}}))  # tqdm(leave=False)
    assert screen(out)[0][:3] == ["above", "below", ""]
    tqdm_models(p)
    p.handle(show_widget("box"))
    p.handle(msg("clear_output", {"wait": False}))
    p.handle(comm("comm_msg", "bar", value=7))
    assert screen(out)[0][:1] == [""]


def test_script_mode_prints_each_widget_once_as_its_cell_left_it() -> None:
    p, out = printer(live=False)
    tqdm_models(p)
    p.handle(show_widget("box"))
    for i in range(1, 11):
        p.handle(comm("comm_msg", "bar", value=i))
    p.handle(comm("comm_msg", "pct", value="100%"))
    p.handle(stream("done\n"))
    assert out.getvalue() == "done\n"
    p.finish_cell()
    assert out.getvalue() == "done\n100% |" + "█" * 33 + "|\n"
    p.finish_cell()
    assert out.getvalue().count("100%") == 1


def test_a_widget_as_the_value_of_a_cell_is_live_behind_its_prompt() -> None:
    p, out = printer()
    tqdm_models(p)
    bundle = {"text/plain": "HBox()", WIDGET: {"model_id": "box"}}
    p.handle(msg("execute_result", {"execution_count": 3, "data": bundle, "metadata": {}}))
    p.handle(comm("comm_msg", "pct", value=" 50%"))
    assert screen(out)[0][0].startswith("Out[3]: 50% |")


# -- any mix of output, updates and what the console writes itself ----------------------

OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("display"), st.sampled_from("abc"), st.integers(1, 3), st.integers(1, 45)
        ),
        st.tuples(st.just("update"), st.sampled_from("abc"), st.integers(0, 3), st.integers(1, 45)),
        st.tuples(st.just("stream"), st.just(""), st.integers(0, 2), st.integers(1, 45)),
        st.tuples(st.just("prompt"), st.just(""), st.integers(1, 2), st.integers(1, 45)),
        st.tuples(st.just("typed"), st.just(""), st.integers(0, 1), st.integers(1, 3)),
    ),
    max_size=12,
)


def _wrap_pending(doc: list[list[str]], cols: int) -> bool:
    """Whether the output ends with a line exactly filling its row: the terminal wraps
    at the next character, a state no cursor move restores (such an update is printed
    below)."""
    s = pyte.Screen(cols, 300)
    s.set_mode(pyte.modes.LNM)
    pyte.Stream(s).feed("".join(e[1] for e in doc))
    return s.cursor.x >= cols


@settings(max_examples=120, deadline=2000)
@given(OPS)
def test_every_update_lands_on_its_display_and_nothing_else_moves(
    ops: list[tuple[str, str, int, int]],
) -> None:
    """On a screen tall enough that nothing scrolls, every update is drawn in place:
    the screen reads as if each display had been printed in its last version, with
    everything printed after it (the printer's output and the console's own, long
    lines wrapping) where it was; the cursor is where the output ends."""
    cols, rows = 20, 300
    p, out = printer(cols, rows)
    doc: list[list[str]] = []  # [key, text] as the screen should read, in order
    at_start = True
    for n, (op, key, count, width) in enumerate(ops):
        words = [(f"{op}{key}{n}.{i}-" * 12)[:width] for i in range(count)]
        if op in ("display", "update"):
            text = "\n".join(words)
            p.handle(display(text, key, update=op == "update"))
            body = text + "\n"
            latest = next((e for e in reversed(doc) if e[0] == key), None)
            if op == "update" and latest is not None and not _wrap_pending(doc, cols):
                latest[1] = body
                continue
            if not at_start:
                doc.append(["", "\n"])
            doc.append([key, body])
            at_start = True
        elif op == "stream":
            text = "".join(w + "\n" for w in words) if count else "x" * width
            p.handle(stream(text))
            doc.append(["", text])
            at_start = text.endswith("\n")
        elif op == "prompt":
            # What the REPL does around a prompt: end the line, draw it, report its rows.
            p.end_line()
            if not at_start:
                doc.append(["", "\n"])
            text = "".join(f"In [{n}]: " + w + "\n" for w in words)
            out.write(text)
            p.barrier(
                at_line_start=True, rows=sum(-(-len(f"In [{n}]: " + w) // cols) for w in words)
            )
            doc.append(["", text])
            at_start = True
        else:  # an input() prompt written by the console, its text known
            text = "abc"[:width] + ("\n" if count else "")
            out.write(text)
            p.barrier(text=text)
            doc.append(["", text])
            at_start = at_start if not text else text.endswith("\n")
    expected = pyte.Screen(cols, rows)
    expected.set_mode(pyte.modes.LNM)
    pyte.Stream(expected).feed("".join(e[1] for e in doc))
    lines, cursor = screen(out, cols, rows)
    assert lines == [line.rstrip() for line in expected.display]
    assert cursor == (expected.cursor.y, expected.cursor.x)


def _rows_and_col(text: str, cols: int) -> tuple[int, int]:
    s = pyte.Screen(cols, 1000)
    s.set_mode(pyte.modes.LNM)
    pyte.Stream(s).feed(text)
    return s.cursor.y, s.cursor.x


@settings(max_examples=120, deadline=3000)
@given(OPS, st.integers(3, 9))
def test_on_a_short_screen_what_scrolled_off_is_printed_below(
    ops: list[tuple[str, str, int, int]], rows: int
) -> None:
    """The same mix on a screen that scrolls: an update whose display (grown as it
    is) still fits on screen with what follows is drawn in place, else printed below.
    The screen then shows that document's rows from the highest row scrolled to so
    far (what scrolled off never comes back: a display that shrinks pulls up what
    follows it, and leaves empty rows at the bottom)."""
    cols = 20
    p, out = printer(cols, rows)
    doc: list[list[str]] = []
    at_start = True
    window = 0  # the document row at the top of the screen
    for n, (op, key, count, width) in enumerate(ops):
        words = [(f"{op}{key}{n}.{i}-" * 12)[:width] for i in range(count)]
        if op in ("display", "update"):
            text = "\n".join(words)
            p.handle(display(text, key, update=op == "update"))
            body = text + "\n"
            at = next((i for i in range(len(doc) - 1, -1, -1) if doc[i][0] == key), None)
            placed = False
            if op == "update" and at is not None:
                end_row, end_col = _rows_and_col("".join(e[1] for e in doc), cols)
                top = _rows_and_col("".join(e[1] for e in doc[:at]), cols)[0]
                delta = _rows_and_col(body, cols)[0] - _rows_and_col(doc[at][1], cols)[0]
                on_screen = top >= window and end_row - top + max(0, delta) < rows
                if on_screen and end_col < cols:
                    doc[at][1] = body
                    placed = True
                else:
                    doc[at][0] = ""  # the old copy stays as it was; the new one is below
            if not placed:
                if not at_start:
                    doc.append(["", "\n"])
                doc.append([key, body])
                at_start = True
        elif op == "stream":
            text = "".join(w + "\n" for w in words) if count else "x" * width
            p.handle(stream(text))
            doc.append(["", text])
            at_start = text.endswith("\n")
        elif op == "prompt":
            p.end_line()
            if not at_start:
                doc.append(["", "\n"])
            text = "".join(f"In [{n}]: " + w + "\n" for w in words)
            out.write(text)
            p.barrier(
                at_line_start=True, rows=sum(-(-len(f"In [{n}]: " + w) // cols) for w in words)
            )
            doc.append(["", text])
            at_start = True
        else:
            text = "abc"[:width] + ("\n" if count else "")
            out.write(text)
            p.barrier(text=text)
            doc.append(["", text])
            at_start = at_start if not text else text.endswith("\n")
        window = max(window, _rows_and_col("".join(e[1] for e in doc), cols)[0] - (rows - 1))
    tall = pyte.Screen(cols, 1000)
    tall.set_mode(pyte.modes.LNM)
    pyte.Stream(tall).feed("".join(e[1] for e in doc))
    expected = [line.rstrip() for line in tall.display[window : window + rows]]
    lines, cursor = screen(out, cols, rows)
    assert lines == expected
    assert cursor == (tall.cursor.y - window, tall.cursor.x)


WIDE_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("display"), st.sampled_from("abc"), st.integers(1, 3)),
        st.tuples(st.just("update"), st.sampled_from("abc"), st.integers(0, 3)),
        st.tuples(st.just("stream"), st.just(""), st.integers(1, 2)),
        st.tuples(st.just("prompt"), st.just(""), st.integers(1, 1)),
        st.tuples(st.just("widget"), st.sampled_from("xy"), st.integers(0, 3)),
        st.tuples(st.just("show"), st.sampled_from("xy"), st.integers(0, 0)),
        st.tuples(st.just("clear"), st.sampled_from(["wait", "now"]), st.integers(0, 0)),
    ),
    max_size=14,
)


@settings(max_examples=120, deadline=3000)
@given(WIDE_OPS, st.integers(4, 12))
def test_redraws_never_touch_what_the_console_wrote(
    ops: list[tuple[str, str, int]], rows: int
) -> None:
    """Displays, widget views changing, clear_output and prompts the console reports,
    on a screen that scrolls: no line the console wrote itself is ever overwritten
    or erased while it is on screen, and the cursor ends where the output ends."""
    cols = 30
    p, out = printer(cols, rows)
    prompts: list[str] = []
    for n, (op, key, count) in enumerate(ops):
        if op in ("display", "update"):
            text = "\n".join(f"{op}{key}{n}x{i}" for i in range(count))
            p.handle(display(text, key, update=op == "update"))
        elif op == "stream":
            p.handle(stream("".join(f"s{n}x{i}\n" for i in range(count))))
        elif op == "prompt":
            p.end_line()
            line = f"In [{n}]: typed"
            out.write(line + "\n")
            p.barrier(at_line_start=True, rows=1)
            prompts.append(line)
        elif op == "widget":
            value = "\n".join(f"w{key}{n}x{i}" for i in range(count))
            kind = "comm_open" if key not in p.widgets else "comm_msg"
            state = {"_model_name": "LabelModel", "value": value} if kind == "comm_open" else {}
            p.handle(comm(kind, key, **(state or {"value": f"<p>{value}</p>"})))
        elif op == "show" and key in p.widgets:
            p.handle(show_widget(key))
        else:
            p.handle(msg("clear_output", {"wait": key == "wait"}))
    p.end_line()
    s = pyte.Screen(cols, rows)
    s.set_mode(pyte.modes.LNM)
    # A tall history: every line that ever reached the screen, scrolled off or not.
    history = pyte.HistoryScreen(cols, rows, history=10_000)
    history.set_mode(pyte.modes.LNM)
    pyte.Stream(history).feed(out.getvalue())
    seen = ["".join(history.buffer[y][x].data for x in range(cols)).rstrip() for y in range(rows)]
    above = [
        "".join(ch.data for ch in (line[x] for x in range(cols))).rstrip()
        for line in history.history.top
    ]
    everything = above + seen
    for line in prompts:
        assert line in everything, (line, everything)
    assert history.cursor.x == 0
