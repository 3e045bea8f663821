"""Every renderer is linear or capped: a hostile bundle never freezes the console.

Rendering runs on the event loop: a bundle that takes seconds to lay out holds up
Ctrl-C and the heartbeat for as long. Time bounds here are generous (several times
what the renderers take) so a busy machine does not fail them; the old code took
tens of seconds on the same inputs.
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kconsole.display.config import RenderContext
from kconsole.display.html import MAX_CELLS
from kconsole.display.registry import HIGHLIGHT_LIMIT, MARKUP_LIMIT, default_registry
from kconsole.display.terminal import TerminalCapabilities
from kconsole.output import OutputPrinter
from kconsole.protocol import Message

BOUND = 2.0  # seconds; each case takes well under 0.5 s


def ctx() -> RenderContext:
    caps = TerminalCapabilities(is_tty=True, colors=256, hyperlinks=True)
    return RenderContext(width=100, height=40, color=True, tty=True, caps=caps)


def render(data: dict[str, Any]) -> tuple[float, Any]:
    reg = default_registry()
    t0 = time.perf_counter()
    r = reg.render(data, {}, ctx())
    return time.perf_counter() - t0, r


PATHOLOGICAL: dict[str, dict[str, Any]] = {
    "md 80 KB of **a": {"text/markdown": "**a " * 20_000},
    "md 80 KB of ~~a": {"text/markdown": "~~a " * 20_000},
    "md 80 KB of __a": {"text/markdown": "__a " * 20_000},
    "md unclosed links": {"text/markdown": "[a![b" * 16_000},
    "md unclosed autolinks": {"text/markdown": "<http://x" * 9_000},
    "md runs of urls": {"text/markdown": "http://x." * 9_000},
    "md backtick runs": {"text/markdown": "".join("`" * k + "a" for k in range(300, 0, -1))},
    "md list 5000 deep": {"text/markdown": "- " * 5_000 + "deepest"},
    "md list 400 deep by indentation": {
        "text/markdown": "".join("  " * i + "- x\n" for i in range(400))
    },
    "md quote 5000 deep": {"text/markdown": ">" * 5_000 + " deepest"},
    "md table delimiter with a long run of spaces": {
        "text/markdown": "a|b\n-" + " " * 50_000 + "x"
    },
    "md heading with a long run of spaces": {"text/markdown": "# a" + " " * 50_000 + "b"},
    "md unclosed display math": {"text/markdown": "$$\n" + "\\begin{a} x\n" * 20_000},
    "md quotes growing": {"text/markdown": "".join(">" * i + " x\n" for i in range(400))},
    "html 10k cells in a row": {"text/html": "<table><tr>" + "<td>x</td>" * 10_000},
    "html 10k rows": {"text/html": "<table>" + "<tr><td>x</td><td>y</td></tr>" * 5_000},
    "html simple rows never closed": {"text/html": "<table>" + "<tr><td>x</td>" * 15_000},
    "html a simple row with a cell left open": {
        "text/html": "<table>" + "<tr><td>x</td><td>" + "a" * 200_000 + "<b>x"
    },
    "html huge spans": {
        "text/html": "<table>" + "<tr><td rowspan=1000 colspan=1000>x</td></tr>" * 2_000
    },
    "html lists 5000 deep": {"text/html": "<ul><li>" * 5_000 + "deepest"},
    "html quotes 5000 deep": {"text/html": "<blockquote>" * 5_000 + "deepest"},
    "html bold 20000 deep": {"text/html": "<b>x" * 20_000},
    "html unclosed tags": {"text/html": "<a " * 30_000},
    "html unclosed attributes": {"text/html": '<a b="' * 15_000},
    "html unclosed comments": {"text/html": "<!--" * 20_000},
    "html unclosed table tags": {"text/html": "<td" * 50_000},
    "svg unclosed tags": {"image/svg+xml": "<svg" * 50_000},
    "html bad declarations": {"text/html": "<![" * 20_000},
    "latex 10k braces": {"text/latex": "$$" + "{" * 10_000 + "x" + "}" * 10_000 + "$$"},
    "latex 10k open braces": {"text/latex": "{" * 10_000},
    "latex nested fractions": {"text/latex": "$$" + "\\frac{1}{" * 3_000 + "}" * 3_000 + "$$"},
    "latex unclosed environments": {"text/latex": "\\begin{a}" * 3_000},
    "json huge": {"application/json": {f"k{i}": [i, "v"] for i in range(50_000)}},
    "json deep": {"application/json": "[" * 100_000 + "]" * 100_000},
    "python source": {"text/x-python": "x = f(1, 'a')\n" * 20_000},
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_bundles_render_in_bounded_time(name: str) -> None:
    data = {**PATHOLOGICAL[name], "text/plain": "plain fallback"}
    elapsed, r = render(data)
    assert elapsed < BOUND, f"{name}: {elapsed:.2f}s"
    assert isinstance(r.text, str) and not any("could not render" in n for n in r.notes)


@pytest.mark.parametrize(
    "data",
    [
        {"text/markdown": "- " * 5_000 + "deepest"},
        {"text/markdown": ">" * 5_000 + " deepest"},
        {"text/html": "<ul><li>" * 5_000 + "deepest"},
        {"text/html": "<blockquote>" * 5_000 + "deepest"},
    ],
)
def test_deep_nesting_is_capped_but_its_text_still_shows(data: dict[str, Any]) -> None:
    _, r = render(data)
    assert r.mime in data and not r.notes
    assert "deepest" in r.text


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ({"text/html": "<table><tr>" + "<td>" * (MAX_CELLS + 1)}, "cells"),
        ({"text/html": "<table>" + "<tr><td colspan=1000 rowspan=1000>x" * 100}, "cells"),
        ({"text/html": "<p>" + "x" * MARKUP_LIMIT + "</p>"}, "rendering limit"),
        ({"text/markdown": "x" * (MARKUP_LIMIT + 1)}, "rendering limit"),
        ({"text/latex": "x" * (MARKUP_LIMIT + 1)}, "rendering limit"),
        ({"text/x-python": "x = 1\n" * HIGHLIGHT_LIMIT}, "rendering limit"),
        ({"application/json": {"k": "v" * MARKUP_LIMIT}}, "rendering limit"),
    ],
)
def test_over_budget_bundles_fall_back_to_text_plain_with_a_note(
    data: dict[str, Any], why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kconsole.display import registry

    # The size and cell caps themselves, not the time budget a busy machine may hit first.
    monkeypatch.setattr(registry, "RENDER_TIME_LIMIT", 60.0)
    elapsed, r = render({**data, "text/plain": "the plain form"})
    assert elapsed < BOUND
    assert r.mime == "text/plain" and r.text == "the plain form"
    assert len(r.notes) == 1 and "not rendered" in r.notes[0] and why in r.notes[0]


def test_the_fallback_note_is_printed_above_the_plain_text() -> None:
    out = io.StringIO()
    printer = OutputPrinter(out, color=False, tty=False)
    big = "<table>" + "<tr><td>x</td></tr>" * 60_000 + "</table>"
    printer.handle(
        Message(
            header={"msg_type": "display_data", "msg_id": "m"},
            parent_header={"msg_id": "p"},
            metadata={},
            content={"data": {"text/html": big, "text/plain": "DataFrame 60000x1"}},
        )
    )
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[kconsole: text/html not rendered: ")
    assert lines[1] == "DataFrame 60000x1"


def test_code_blocks_beyond_the_highlight_budget_are_shown_without_colour(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kconsole.display import registry

    monkeypatch.setattr(registry, "RENDER_TIME_LIMIT", 60.0)
    block = "```python\n" + "x = 1\n" * 2_000 + "```\n\n"
    elapsed, r = render({"text/markdown": block * 12})  # 12 x 12 KB, budget 48 KB
    assert elapsed < BOUND
    assert r.mime == "text/markdown"
    lines = r.text.splitlines()
    assert "\x1b[" in lines[0]  # the first block is highlighted
    assert lines[-1] == "  x = 1"  # the last is past the budget: as it is


_TOKENS = {
    "text/markdown": [
        *"*_~`[]()!<>$\\#|-\n ",
        "**",
        "__",
        "~~",
        "```",
        "](",
        "![",
        "http://",
        "- ",
        "> ",
        "1. ",
        "    ",
        "$$",
        "a",
        "<b>",
        "&#27;",
    ],
    "text/html": [
        "<b>",
        "</b>",
        "<ul>",
        "<li>",
        "</ul>",
        "<table>",
        "<tr>",
        "<td>",
        "<td rowspan=99 colspan=99>",
        "</td>",
        "<pre>",
        "</pre>",
        "<a href='x'>",
        "</a>",
        "<blockquote>",
        "<!--",
        "-->",
        "<",
        ">",
        '"',
        "'",
        "a",
        " ",
        "<script>",
        "</script>",
        "&#",
        "<![",
        "<?",
    ],
    "text/latex": [
        *"{}^_&$ a+=",
        "\\frac",
        "\\sqrt",
        "\\left(",
        "\\right)",
        "\\begin{matrix}",
        "\\end{matrix}",
        "\\\\",
        "$$",
        "\\[",
        "\\]",
        "\\text{",
        "\\begin{a}",
    ],
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_token_soup_never_raises_and_renders_quickly(data: st.DataObject) -> None:
    mime = data.draw(st.sampled_from(sorted(_TOKENS)))
    alphabet = data.draw(st.lists(st.sampled_from(_TOKENS[mime]), min_size=1, max_size=5))
    count = data.draw(st.integers(1, 8_000))
    pick = data.draw(st.randoms(use_true_random=False))
    text = "".join(pick.choice(alphabet) for _ in range(count))
    elapsed, r = render({mime: text, "text/plain": "p"})
    assert elapsed < BOUND, (alphabet, count)
    assert isinstance(r.text, str)


def test_json_with_deep_nesting_or_many_keys_is_never_an_error() -> None:
    _, r = render({"application/json": json.dumps({"a": [[[[1]]]]})})
    assert r.mime == "application/json" and not r.notes


def test_image_metadata_sizes_that_are_not_finite_are_ignored() -> None:
    import base64

    from kconsole.display.images import render_image

    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEklEQVR4nGP4z8DAwMDAxMDAAAAHAAL7vH9OAAAAAElFTkSuQmCC"
    )
    caps = TerminalCapabilities(is_tty=True, kitty=True, image_protocol="kitty")
    c = RenderContext(width=80, height=24, tty=True, caps=caps)
    for bad in ("inf", "nan", "-1", "1e999", "x"):
        out = render_image(base64.b64encode(png).decode(), {"width": bad}, c, "image/png")
        assert out.count("\x1b_G") == 1


@pytest.mark.parametrize(
    "data",
    [
        {"text/markdown": "# title\n\nsome *text*\n\n- a list"},
        {"text/html": "<p>some <b>text</b></p><table><tr><td>1</td></tr></table>"},
        {"text/latex": "$$\\frac{a}{b}$$"},
    ],
)
def test_a_renderer_out_of_time_gives_way_to_text_plain(
    data: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a slow machine meeting a big bundle would see: the time budget is used up.
    from kconsole.display import registry

    monkeypatch.setattr(registry, "RENDER_TIME_LIMIT", -1.0)
    _, r = render({**data, "text/plain": "the plain form"})
    assert r.mime == "text/plain" and r.text == "the plain form"
    assert r.notes and "took over" in r.notes[0]
    monkeypatch.undo()
    _, r = render({**data, "text/plain": "the plain form"})
    assert r.mime in data and not r.notes
