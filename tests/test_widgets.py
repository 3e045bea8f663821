"""ipywidgets models kept from comm messages and drawn as text (no kernel: in process).

What a user sees: tqdm.auto's bar, labels, boxes and Output widgets drawn as their
state says; anything a kernel sends on a comm (unknown targets, missing fields, wrong
types, huge states, boxes that contain themselves) never raises, never grows the
store past its bounds, and never puts a control sequence of its own on the screen.
"""

from __future__ import annotations

import re
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kconsole.display import DisplayConfig, RenderContext, TerminalCapabilities
from kconsole.display.text import display_width, strip_ansi
from kconsole.display.widgets import TOO_LARGE, WidgetStore, model_ref, widget_model_id


def ctx(width: int = 80, height: int = 24, color: bool = False) -> RenderContext:
    caps = TerminalCapabilities(is_tty=True, colors=256)
    return RenderContext(
        width=width, height=height, color=color, tty=True, caps=caps, config=DisplayConfig()
    )


def comm_open(store: WidgetStore, cid: str, name: str, **state: Any) -> set[str]:
    state["_model_name"] = name + "Model"
    return store.handle(
        "comm_open",
        {"comm_id": cid, "target_name": "jupyter.widget", "data": {"state": state}},
    )


def update(store: WidgetStore, cid: str, **state: Any) -> set[str]:
    return store.handle("comm_msg", {"comm_id": cid, "data": {"method": "update", "state": state}})


def draw(store: WidgetStore, cid: str, **kw: Any) -> list[str]:
    text, _ = store.render(cid, ctx(**kw))
    return text.split("\n")[:-1] if text else []


def tqdm_bar(store: WidgetStore) -> None:
    """The models tqdm.auto makes (ipywidgets 8), as ipykernel sends them."""
    comm_open(store, "lay", "Layout")
    comm_open(store, "left", "HTML", value="\u2007\u20070%", layout="IPY_MODEL_lay")
    comm_open(store, "bar", "FloatProgress", value=0.0, min=0, max=50, bar_style="")
    comm_open(store, "right", "HTML", value="\u20070/50\u2007[00:00&lt;?,\u2007?it/s]")
    comm_open(
        store,
        "box",
        "HBox",
        children=["IPY_MODEL_left", "IPY_MODEL_bar", "IPY_MODEL_right"],
        layout="IPY_MODEL_lay",
    )


def test_tqdm_bar_follows_its_updates_to_100_percent() -> None:
    store = WidgetStore()
    tqdm_bar(store)
    first = draw(store, "box")
    assert len(first) == 1 and first[0].startswith("  0% |" + " " * 40 + "|")
    # tqdm pads its numbers with figure spaces (HTML collapses spaces): kept as spaces,
    # the numbers stay aligned as they grow.
    assert first[0].endswith("|  0/50 [00:00<?, ?it/s]")
    update(store, "bar", value=25.0)
    update(store, "left", value="\u200750%")
    assert "|" + "█" * 20 + " " * 20 + "|" in draw(store, "box")[0]
    update(store, "bar", value=50.0)
    update(store, "left", value="100%")
    update(store, "right", value="\u200750/50\u2007[00:01&lt;00:00,\u200749.23it/s]")
    assert update(store, "bar", bar_style="success") == {"bar"}
    (line,) = draw(store, "box")
    assert line == "100% |" + "█" * 40 + "|  50/50 [00:01<00:00, 49.23it/s]"
    # Its colour says how it ended; the ids it was drawn from are what it follows.
    text, deps = store.render("box", ctx(color=True))
    assert "\x1b[32m" in text
    assert {"box", "left", "bar", "right", "lay"} <= deps


def test_the_bar_fits_a_narrow_terminal() -> None:
    store = WidgetStore()
    tqdm_bar(store)
    update(store, "bar", value=50.0)
    (line,) = draw(store, "box", width=40)
    assert display_width(line) <= 40 and "█" in line


def test_widgets_that_carry_no_interaction_and_the_rest_as_text() -> None:
    store = WidgetStore()
    comm_open(store, "lab", "Label", value="loading <data>", description="step")
    comm_open(store, "html", "HTML", value="<b>bold</b> &amp; plain")
    comm_open(store, "sl", "IntSlider", value=7, description="n")
    comm_open(store, "cb", "Checkbox", value=True, description="fast")
    comm_open(store, "dd", "Dropdown", _options_labels=["red", "green"], index=1, description="c")
    comm_open(store, "bt", "Button", description="Run")
    comm_open(store, "rs", "FloatRangeSlider", value=[1.5, 2.5], description="r")
    comm_open(
        store,
        "out",
        "Output",
        outputs=[
            {"output_type": "stream", "name": "stdout", "text": "captured\n"},
            {"output_type": "display_data", "data": {"text/plain": "42"}, "metadata": {}},
            {"output_type": "error", "ename": "E", "evalue": "v", "traceback": ["Trace", "E: v"]},
        ],
    )
    children = [f"IPY_MODEL_{c}" for c in ("lab", "html", "sl", "cb", "dd", "bt", "rs", "out")]
    comm_open(store, "v", "VBox", children=children)
    assert draw(store, "v") == [
        "step loading <data>",
        "bold & plain",
        "n: 7",
        "[x] fast",
        "c: green",
        "[ Run ]",
        "r: 1.5 – 2.5",
        "captured",
        "42",
        "Trace",
        "E: v",
    ]


def test_hidden_and_closed_widgets_show_nothing() -> None:
    store = WidgetStore()
    comm_open(store, "lay", "Layout", visibility="hidden")
    comm_open(store, "a", "Label", value="secret", layout="IPY_MODEL_lay")
    assert draw(store, "a") == []
    update(store, "lay", visibility=None, display="none")
    assert draw(store, "a") == []
    update(store, "lay", display=None)
    assert draw(store, "a") == ["secret"]
    assert store.handle("comm_close", {"comm_id": "a", "data": {}}) == {"a"}
    assert "a" not in store and draw(store, "a") == []


def test_a_box_that_contains_itself_is_drawn_once() -> None:
    store = WidgetStore()
    comm_open(store, "x", "VBox", children=["IPY_MODEL_y", "IPY_MODEL_l"])
    comm_open(store, "y", "HBox", children=["IPY_MODEL_x", "IPY_MODEL_l", "IPY_MODEL_y"])
    comm_open(store, "l", "Label", value="leaf")
    assert draw(store, "x") == ["leaf", "leaf"]


def test_a_wide_tree_of_shared_children_stays_within_its_budget() -> None:
    # Each box holds the next twice: 2**15 widgets if drawn naively.
    store = WidgetStore()
    for i in range(15):
        comm_open(store, f"b{i}", "VBox", children=[f"IPY_MODEL_b{i + 1}"] * 2)
    comm_open(store, "b15", "Label", value="leaf")
    t0 = time.perf_counter()
    text, _ = store.render("b0", ctx(height=1000))
    assert time.perf_counter() - t0 < 1.0
    assert 0 < text.count("leaf") <= 400


def test_messages_the_protocol_does_not_know_change_nothing() -> None:
    store = WidgetStore()
    other = {"comm_id": "p", "target_name": "plotly", "data": {"state": {"_model_name": "X"}}}
    assert store.handle("comm_open", other) == set()
    assert store.handle("comm_msg", {"comm_id": "p", "data": {"method": "update"}}) == set()
    assert store.handle("comm_close", {"comm_id": "nope"}) == set()
    for bad in (None, [], {"comm_id": 5}, {"comm_id": "x" * 1000}, {"data": {}}):
        assert store.handle("comm_open", bad) == set()
    comm_open(store, "w", "Label", value="v")
    assert store.handle("comm_msg", {"comm_id": "w", "data": {"method": "custom"}}) == set()
    assert (
        store.handle("comm_msg", {"comm_id": "w", "data": {"method": "update", "state": 3}})
        == set()
    )
    assert draw(store, "w") == ["v"]
    assert widget_model_id({"application/vnd.jupyter.widget-view+json": {"model_id": 3}}) is None
    assert model_ref("IPY_MODEL_abc") == "abc" and model_ref(None) is None


def test_the_store_is_bounded_in_models_and_bytes() -> None:
    store = WidgetStore(max_models=50, max_model_bytes=10_000, max_total_bytes=100_000)
    for i in range(200):
        comm_open(store, f"m{i}", "Label", value="x" * 3000)
    assert len(store) <= 50 and store.total_bytes <= 100_000
    assert "m199" in store and "m0" not in store  # the oldest went first
    comm_open(store, "huge", "Label", value="y" * 1_000_000)
    assert store.get("huge").state["value"] is TOO_LARGE  # type: ignore[union-attr]
    assert draw(store, "huge") == ["[too large]"]
    update(store, "huge", **{f"k{i}": "z" * 900 for i in range(100)})
    model = store.get("huge")
    assert model is not None and model.size <= 10_000
    assert sum(m.size for m in store._models.values()) == store.total_bytes


def test_an_output_widget_draws_its_outputs_without_their_controls() -> None:
    store = WidgetStore()
    outputs = [
        {"output_type": "stream", "text": "a\tb\bc\x1b[31mred\x1b]0;title\x07"},
        {"output_type": "error", "traceback": ["x\by\tz\r"]},
    ]
    comm_open(store, "o", "Output", outputs=outputs)
    text, _ = store.render("o", ctx(color=True))
    assert text == "a       bc\x1b[31mred\x1b[0m\nxy      z\n"


def test_an_output_widget_taller_than_the_screen_shows_its_end() -> None:
    store = WidgetStore()
    lines = "".join(f"line {i}\n" for i in range(100))
    comm_open(store, "o", "Output", outputs=[{"output_type": "stream", "text": lines}])
    shown = draw(store, "o", height=10)
    assert len(shown) == 9 and shown[0].startswith("[...") and shown[-1] == "line 99"


# -- whatever a kernel sends ---------------------------------------------------------------

IDS = ["a", "b", "c", "d"]
NAMES = [
    "Output",
    "Output",
    "VBox",
    "FloatProgress",
    "IntProgress",
    "HTML",
    "HTMLMath",
    "Label",
    "HBox",
    "VBox",
    "Box",
    "Tab",
    "Accordion",
    "Output",
    "Layout",
    "ProgressStyle",
    "IntSlider",
    "Dropdown",
    "Button",
    "Checkbox",
    "Nope",
]
HOSTILE_TEXT = st.lists(
    st.sampled_from(
        [
            "a",
            "é",
            "漢",
            " ",
            "\u2007",
            "\n",
            "\r",
            "\t",
            "\x07",
            "\x1b",
            "[",
            "]",
            "31m",
            "2J",
            "\x9b",
            "\x9d",
            "<",
            ">",
            "b",
            "&lt;",
            "&",
            ";",
            "\x00",
            "\b",
            "\x1b[31m",
            "\x1b]0;title\x07",
            "&#27;",
        ]
    ),
    max_size=20,
).map("".join)
REFS = st.sampled_from(IDS).map(lambda i: "IPY_MODEL_" + i)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    HOSTILE_TEXT,
    REFS,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(HOSTILE_TEXT, inner, max_size=4),
    max_leaves=10,
)
OUTPUT = st.fixed_dictionaries(
    {"output_type": st.sampled_from(["stream", "display_data", "execute_result", "error", 7])},
    optional={
        "text": VALUES,
        "data": st.dictionaries(st.sampled_from(["text/plain", "text/html"]), VALUES, max_size=2),
        "traceback": VALUES,
        "ename": VALUES,
    },
)
STATE = st.fixed_dictionaries(
    {"_model_name": st.sampled_from([n + "Model" for n in NAMES] + [None, 3])},
    optional={
        "value": VALUES,
        "min": VALUES,
        "max": VALUES,
        "description": VALUES,
        "children": st.lists(REFS | VALUES, max_size=5),
        "layout": REFS | VALUES,
        "style": REFS | VALUES,
        "bar_style": st.sampled_from(["success", "danger", "", None, 3]),
        "bar_color": st.sampled_from(["#00ff00", "red", "#zzz", None, ""]),
        "visibility": st.sampled_from(["hidden", "visible", None]),
        "outputs": st.lists(OUTPUT, max_size=3) | VALUES,
        "_options_labels": VALUES,
        "index": VALUES,
        "titles": VALUES,
        "selected_index": VALUES,
    },
)
MESSAGES = st.lists(
    st.one_of(
        st.tuples(
            st.just("comm_open"),
            st.fixed_dictionaries(
                {
                    "comm_id": st.sampled_from(IDS),
                    "target_name": st.sampled_from(["jupyter.widget", "jupyter.widget", "x"]),
                    "data": st.fixed_dictionaries(
                        {"state": STATE}, optional={"buffer_paths": VALUES}
                    ),
                }
            ),
        ),
        st.tuples(
            st.just("comm_msg"),
            st.fixed_dictionaries(
                {
                    "comm_id": st.sampled_from(IDS),
                    "data": st.fixed_dictionaries(
                        {"method": st.sampled_from(["update", "echo_update", "custom", None])},
                        optional={"state": STATE | VALUES},
                    ),
                }
            ),
        ),
        st.tuples(st.just("comm_close"), st.fixed_dictionaries({"comm_id": st.sampled_from(IDS)})),
        st.tuples(st.sampled_from(["comm_open", "comm_msg", "comm_close"]), VALUES),
    ),
    max_size=25,
)
#: Everything but SGR colours and line ends.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(MESSAGES, st.integers(8, 100), st.booleans())
def test_hostile_comm_messages_never_raise_stay_bounded_and_draw_no_controls(
    messages: list[tuple[str, Any]], width: int, color: bool
) -> None:
    store = WidgetStore(max_models=3, max_model_bytes=3000, max_total_bytes=6000)
    c = ctx(width=width, height=12, color=color)
    for msg_type, content in messages:
        store.handle(msg_type, content)
        assert len(store) <= 3
        assert all(m.size <= 3000 for m in store._models.values())
        assert store.total_bytes <= 6000 or len(store) == 1
        for cid in IDS:
            t0 = time.perf_counter()
            text, deps = store.render(cid, c)
            assert time.perf_counter() - t0 < 0.5
            assert isinstance(deps, set)
            if not text:
                continue
            assert text.endswith("\n")
            plain = strip_ansi(text)
            assert not _CONTROL.search(plain), repr(text)
            # The only escapes are the SGR colours kconsole adds.
            assert re.sub(r"\x1b\[[0-9;]*m", "", text) == plain, repr(text)
            lines = text.split("\n")[:-1]
            assert len(lines) <= 11
            assert all(display_width(line) <= width for line in lines), (width, lines)
