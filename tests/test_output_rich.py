"""OutputPrinter with rich bundles: fallbacks, in-place updates, clear_output, streams."""

from __future__ import annotations

import base64
import io

import pyte

from kconsole.display import DisplayConfig, TerminalCapabilities
from kconsole.display.registry import default_registry
from kconsole.output import OutputPrinter
from kconsole.protocol import Message


class FakeTTY(io.StringIO):
    """A stream that says it is a terminal of a fixed size."""

    def isatty(self) -> bool:
        return True


def screen_of(text: str, cols: int = 80, rows: int = 24) -> list[str]:
    screen = pyte.Screen(cols, rows)
    screen.set_mode(pyte.modes.LNM)
    pyte.Stream(screen).feed(text)
    return [line.rstrip() for line in screen.display]


def msg(msg_type: str, content: dict, parent: str = "p1") -> Message:
    return Message(
        header={"msg_type": msg_type, "msg_id": f"m-{msg_type}"},
        parent_header={"msg_id": parent},
        content=content,
    )


def display(data: dict, display_id: str | None = None, update: bool = False) -> Message:
    content: dict = {"data": data, "metadata": {}}
    if display_id is not None:
        content["transient"] = {"display_id": display_id}
    return msg("update_display_data" if update else "display_data", content)


def stream(text: str, name: str = "stdout", parent: str = "p1") -> Message:
    return msg("stream", {"name": name, "text": text}, parent)


def tty_printer(**kw) -> tuple[OutputPrinter, FakeTTY]:
    out = FakeTTY()
    caps = TerminalCapabilities(is_tty=True, colors=256)
    return OutputPrinter(
        out, color=False, tty=True, capabilities=caps, config=DisplayConfig(width=80, **kw)
    ), out


def test_malformed_bundle_leaves_a_note_and_the_plain_text() -> None:
    out = io.StringIO()
    p = OutputPrinter(out, color=False)
    p.handle(display({"image/png": "@@not base64@@", "text/plain": "<IPython.core.display.Image>"}))
    p.handle(display({"text/html": 12345, "text/plain": "the number"}))
    p.handle(stream("still alive\n"))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[kconsole: could not render image/png: ImageError")
    assert lines[1] == "<IPython.core.display.Image>"
    assert lines[2].startswith("[kconsole: could not render text/html: TypeError")
    assert lines[3] == "the number"
    assert lines[4] == "still alive"


def test_a_raising_renderer_falls_back() -> None:
    reg = default_registry()

    def boom(value, md, ctx):
        raise RuntimeError("renderer bug\nsecond line")

    reg.register("text/markdown", boom)
    out = io.StringIO()
    p = OutputPrinter(out, color=False, registry=reg)
    p.handle(display({"text/markdown": "# hi", "text/plain": "hi"}))
    assert (
        out.getvalue()
        == "[kconsole: could not render text/markdown: RuntimeError: renderer bug]\nhi\n"
    )


def test_bundle_without_text_plain() -> None:
    out = io.StringIO()
    p = OutputPrinter(out, color=False)
    p.handle(display({"application/vnd.unknown": "x"}))
    assert out.getvalue() == "<application/vnd.unknown>\n"


def test_update_display_in_place_when_last() -> None:
    p, out = tty_printer()
    p.handle(stream("before\n"))
    p.handle(display({"text/plain": "progress 1\nline b"}, display_id="d1"))
    p.handle(display({"text/plain": "progress 2\nline b"}, display_id="d1", update=True))
    p.handle(display({"text/plain": "progress 3"}, display_id="d1", update=True))
    lines = screen_of(out.getvalue())
    assert lines[:3] == ["before", "progress 3", ""]
    assert "progress 1" not in "\n".join(lines)


def test_update_display_not_last_is_redrawn_in_place() -> None:
    # Issue 11 item 15: while the display and what came after it are on screen and only
    # the printer wrote since, the update replaces it where it is.
    p, out = tty_printer()
    p.handle(display({"text/plain": "v1"}, display_id="d1"))
    p.handle(stream("something else\n"))
    p.handle(display({"text/plain": "v2"}, display_id="d1", update=True))
    p.handle(display({"text/plain": "v3"}, display_id="d1", update=True))
    lines = screen_of(out.getvalue())
    assert lines[:3] == ["v3", "something else", ""]


def test_update_display_after_a_barrier_is_printed_anew() -> None:
    p, out = tty_printer()
    p.handle(display({"text/plain": "v1"}, display_id="d1"))
    out.write("name? bob\n")  # a prompt answered: not the printer's text
    p.barrier()
    p.handle(display({"text/plain": "v2"}, display_id="d1", update=True))
    lines = screen_of(out.getvalue())
    assert lines[:4] == ["v1", "name? bob", "v2", ""]


def test_update_display_in_a_pipe_prints_every_version() -> None:
    out = io.StringIO()
    p = OutputPrinter(out, color=False)
    p.handle(display({"text/plain": "v1"}, display_id="d1"))
    p.handle(display({"text/plain": "v2"}, display_id="d1", update=True))
    assert out.getvalue() == "v1\nv2\n"


def test_clear_output_wait_replaces_previous_output() -> None:
    p, out = tty_printer()
    p.handle(stream("In [1]: header\n", parent="p0"))
    for i in range(30):  # more iterations than the screen has rows
        p.handle(msg("clear_output", {"wait": True}))
        p.handle(stream(f"step {i}\n"))
        p.handle(stream(f"detail {i}\n"))
    lines = screen_of(out.getvalue())
    assert lines[:3] == ["In [1]: header", "step 29", "detail 29"]
    assert lines[3] == ""


def test_clear_output_now() -> None:
    p, out = tty_printer()
    p.handle(stream("old\n"))
    p.handle(msg("clear_output", {"wait": False}))
    p.handle(stream("new\n"))
    assert screen_of(out.getvalue())[:2] == ["new", ""]


def test_clear_output_does_not_erase_other_cells_or_a_barrier() -> None:
    p, out = tty_printer()
    p.handle(stream("cell one\n", parent="a"))
    p.handle(msg("clear_output", {"wait": False}, parent="b"))
    p.handle(stream("cell two\n", parent="b"))
    p.barrier()
    p.handle(msg("clear_output", {"wait": True}, parent="b"))
    p.handle(stream("after\n", parent="b"))
    assert screen_of(out.getvalue())[:3] == ["cell one", "cell two", "after"]


def test_too_much_output_to_erase_is_kept() -> None:
    p, out = tty_printer()
    p.handle(stream("".join(f"line {i}\n" for i in range(100))))
    p.handle(msg("clear_output", {"wait": True}))
    p.handle(stream("next\n"))
    text = out.getvalue()
    assert "\x1b[J" not in text  # never an erase of what is no longer on screen
    assert text.endswith("line 99\nnext\n")


def test_carriage_returns_pass_through() -> None:
    p, out = tty_printer()
    for i in range(0, 101, 25):
        p.handle(stream(f"\r{i:3d}% [{'#' * (i // 10):<10}]"))
    p.handle(stream("\n"))
    assert screen_of(out.getvalue())[0] == "100% [##########]"
    pipe = io.StringIO()
    q = OutputPrinter(pipe, color=False)
    q.handle(stream("\r 50%"))
    q.handle(stream("\r100%\n"))
    assert pipe.getvalue() == "\r 50%\r100%\n"


def test_stream_flood_arrives_complete_and_in_order() -> None:
    # Speed is measured in bench/, not here: this checks only that nothing is lost,
    # reordered or rewritten.
    p, out = tty_printer()
    for n in range(200):
        p.handle(stream("".join(f"{n}:{i}\n" for i in range(1000))))
    expected = [f"{n}:{i}" for n in range(200) for i in range(1000)]
    assert out.getvalue().split("\n") == [*expected, ""]


def test_execute_result_with_html_table() -> None:
    out = io.StringIO()
    p = OutputPrinter(out, color=False)
    html = "<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td><td>2</td></tr></tbody></table>"
    p.handle(
        msg(
            "execute_result",
            {"execution_count": 4, "data": {"text/html": html, "text/plain": "x"}, "metadata": {}},
        )
    )
    assert out.getvalue().splitlines() == [
        "Out[4]: ",
        "┌───┬───┐",
        "│ a │ b │",
        "├───┼───┤",
        "│ 1 │ 2 │",
        "└───┴───┘",
    ]


def test_plain_config_shows_text_plain_only() -> None:
    out = io.StringIO()
    p = OutputPrinter(out, color=False, config=DisplayConfig(plain=True))
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 30).decode()
    p.handle(display({"text/html": "<b>x</b>", "image/png": png, "text/plain": "plain"}))
    assert out.getvalue() == "plain\n"


def test_error_traceback_without_colour_is_stripped() -> None:
    out = io.StringIO()
    p = OutputPrinter(out, color=False)
    p.handle(msg("error", {"ename": "E", "evalue": "v", "traceback": ["\x1b[31mE\x1b[0m: v"]}))
    assert out.getvalue() == "E: v\n"
