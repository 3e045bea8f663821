"""Property tests of the sans-IO protocol core: whatever bytes arrive, Session.deserialize,
loads and the WebSocket decoders raise only the protocol's own error, in bounded
time, and every str they return can be encoded as UTF-8; the reply validators never
raise and leave every field a console reads with its documented type."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kconsole.protocol import (
    DELIM,
    MAX_JSON_DEPTH,
    MalformedMessage,
    Message,
    ProtocolError,
    Session,
    json_depth_exceeds,
    loads,
    pack,
    validate_reply,
)
from kconsole.remote.framing import decode_json, decode_v1

FAST = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
KEY = b"a-real-key"


def all_strings(obj: Any) -> list[str]:
    out: list[str] = []
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, str):
            out.append(o)
        elif isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, list):
            stack.extend(o)
    return out


def assert_printable(obj: Any) -> None:
    for s in all_strings(obj):
        s.encode("utf-8")  # a lone surrogate would raise here, as in a terminal write


def depth(obj: Any) -> int:
    if isinstance(obj, dict):
        return 1 + max((depth(v) for v in obj.values()), default=0)
    if isinstance(obj, list):
        return 1 + max((depth(v) for v in obj), default=0)
    return 0


# -- strategies --------------------------------------------------------------------------

#: Text with lone surrogates (what os.fsdecode makes of a non-UTF-8 name) allowed.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | any_text
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=30,
)


@st.composite
def nested(draw: st.DrawFn) -> bytes:
    """Deeply nested JSON-ish text: brackets, strings with brackets, numbers."""
    levels = draw(st.integers(0, 3000))
    opener = draw(st.sampled_from([b"[", b'{"k":', b'["[{"', b"[1,"]))
    closer = {b"[": b"]", b'{"k":': b"}", b'["[{"': b"]", b"[1,": b"]"}[opener]
    if opener == b'["[{"':
        opener = b'["[{",'
    tail = draw(st.sampled_from([b"0", b'"]]]"', b"9" * 5000, b"null", b""]))
    return opener * levels + tail + closer * draw(st.integers(0, levels))


frame_bytes = (
    st.binary(max_size=200)
    | nested()
    | st.sampled_from(
        [b"{}", b"[]", b"null", b'{"msg_type": 1}', b'{"msg_type": "x"}', b"\xff\xfe", b'"\\ud800"']
    )
)


def signed(session: Session, parts: list[bytes], buffers: list[bytes]) -> list[bytes]:
    return [DELIM, session.sign(parts), *parts, *buffers]


# -- Session.deserialize -----------------------------------------------------------------


@FAST
@given(st.lists(st.binary(max_size=64) | st.just(DELIM), max_size=10))
def test_random_frames_raise_only_protocol_errors(frames: list[bytes]) -> None:
    for key in (KEY, b""):
        try:
            Session(key).deserialize(frames)
        except ProtocolError:
            pass


@FAST
@given(
    header=frame_bytes,
    parent=frame_bytes,
    metadata=frame_bytes,
    content=frame_bytes,
    buffers=st.lists(st.binary(max_size=16), max_size=2),
)
def test_signed_adversarial_frames_parse_or_raise_a_protocol_error_quickly(
    header: bytes, parent: bytes, metadata: bytes, content: bytes, buffers: list[bytes]
) -> None:
    sender, receiver = Session(KEY), Session(KEY)
    frames = signed(sender, [header, parent, metadata, content], buffers)
    start = time.perf_counter()
    try:
        msg = receiver.deserialize(frames)
    except ProtocolError:
        msg = None
    assert time.perf_counter() - start < 1.0
    if msg is not None:
        assert isinstance(msg.content, dict) and isinstance(msg.header, dict)
        assert_printable(msg.to_dict())
        assert depth(msg.content) <= MAX_JSON_DEPTH
        receiver.serialize(msg)  # and it can be sent on again (a WebSocket relay)


@FAST
@given(content=json_values, forged=st.binary(min_size=1, max_size=80))
def test_bad_signatures_and_replays_are_refused(content: Any, forged: bytes) -> None:
    sender, receiver = Session(KEY), Session(KEY)
    msg = sender.msg("stream", {"text": content})
    frames = sender.serialize(msg)
    bad = list(frames)
    bad[1] = forged
    with pytest.raises(ProtocolError):
        receiver.deserialize(bad)
    got = receiver.deserialize(frames)
    assert got.msg_id == msg.msg_id
    with pytest.raises(ProtocolError):
        receiver.deserialize(frames)  # replayed


@FAST
@given(content=json_values)
def test_any_content_round_trips_and_what_arrives_is_printable(content: Any) -> None:
    session = Session(KEY)
    msg = session.msg("display_data", {"data": content})
    got = Session(KEY).deserialize(session.serialize(msg))
    assert_printable(got.content)
    has_surrogate = any("\ud800" <= c <= "\udfff" for s in all_strings(content) for c in s)
    finite = json.dumps(content).find("Infinity") < 0 and json.dumps(content).find("NaN") < 0
    if not has_surrogate and finite and depth(content) < MAX_JSON_DEPTH:
        assert got.content == json.loads(json.dumps({"data": content}))


# -- loads and the depth check -----------------------------------------------------------


@FAST
@given(data=frame_bytes | st.text(max_size=100))
def test_loads_raises_only_malformed_message(data: bytes | str) -> None:
    try:
        obj = loads(data)
    except MalformedMessage:
        return
    assert_printable(obj)


@FAST
@given(value=json_values, extra=st.integers(0, 150))
def test_depth_check_agrees_with_the_real_depth(value: Any, extra: int) -> None:
    wrapped: Any = value
    for _ in range(extra):
        wrapped = [wrapped]
    text = json.dumps(wrapped)
    assert json_depth_exceeds(text) == (depth(wrapped) > MAX_JSON_DEPTH)


def test_huge_and_deep_inputs_are_refused_fast() -> None:
    cases = [
        b"[" * 1_000_000 + b"]" * 1_000_000,
        b'{"a":' * 200_000 + b"1" + b"}" * 200_000,
        b"9" * 1_000_000,
        b'["' + b"[" * 1_000_000 + b'"]',  # brackets inside a string are fine
    ]
    for data in cases:
        start = time.perf_counter()
        try:
            loads(data)
        except MalformedMessage:
            pass
        assert time.perf_counter() - start < 2.0


# -- WebSocket framings ------------------------------------------------------------------


@FAST
@given(frame=st.binary(max_size=300) | st.text(max_size=100) | nested())
def test_websocket_decoders_raise_only_malformed_message(frame: bytes | str) -> None:
    for decode in (decode_v1, decode_json):
        try:
            _, msg = decode(frame)  # type: ignore[operator]
        except MalformedMessage:
            continue
        assert_printable(msg.to_dict())


# -- pack --------------------------------------------------------------------------------


@FAST
@given(text=any_text)
def test_pack_never_fails_on_text_and_shows_lone_surrogates(text: str) -> None:
    data = pack({"text": text})
    back = loads(data)["text"]
    back.encode("utf-8")
    if not any("\ud800" <= c <= "\udfff" for c in text):
        assert back == text


def test_surrogateescape_bytes_are_shown_as_the_byte() -> None:
    assert loads(pack({"t": "\udcff.txt"})) == {"t": "\\xff.txt"}
    assert loads(pack({"t": "a\ud800b"})) == {"t": "a\\ud800b"}
    assert loads(b'{"t": "\xff.txt"}') == {"t": "\\xff.txt"}


# -- reply validators --------------------------------------------------------------------

REPLY_TYPES = [
    "kernel_info_reply",
    "complete_reply",
    "inspect_reply",
    "history_reply",
    "is_complete_reply",
    "execute_reply",
    "shutdown_reply",
]
field_values = json_values | st.sampled_from([5, "x", [1], {"a": 1}, None, True, -3])
reply_keys = st.sampled_from(
    [
        "status",
        "language_info",
        "banner",
        "help_links",
        "matches",
        "cursor_start",
        "cursor_end",
        "metadata",
        "found",
        "data",
        "history",
        "indent",
        "execution_count",
        "payload",
        "user_expressions",
        "ename",
        "evalue",
        "traceback",
        "implementation",
    ]
)


@FAST
@given(
    msg_type=st.sampled_from(REPLY_TYPES),
    content=st.dictionaries(reply_keys, field_values, max_size=8) | json_values,
)
def test_validated_replies_have_the_types_consoles_read(msg_type: str, content: Any) -> None:
    c, problems = validate_reply(msg_type, content)
    assert isinstance(c, dict) and isinstance(problems, list)
    assert isinstance(c.get("status", ""), str)
    if msg_type == "kernel_info_reply":
        info = c.get("language_info", {})
        assert isinstance(info, dict)
        for key in ("name", "pygments_lexer", "version", "file_extension"):
            assert isinstance(info.get(key, ""), str)
        assert isinstance(c.get("banner", ""), str)
        assert all(isinstance(h, dict) for h in c.get("help_links", []))
    elif msg_type == "complete_reply":
        assert all(isinstance(m, str) for m in c.get("matches", []))
        for key in ("cursor_start", "cursor_end"):
            v = c.get(key, 0)
            assert v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0)
        assert isinstance(c.get("metadata", {}), dict)
    elif msg_type == "inspect_reply":
        assert isinstance(c.get("data", {}), dict)
        assert isinstance(c.get("data", {}).get("text/plain", ""), str)
        assert isinstance(c.get("found", False), bool)
    elif msg_type == "history_reply":
        for item in c.get("history", []):
            assert len(item) == 3 and isinstance(item[1], int)
    elif msg_type == "execute_reply":
        count = c.get("execution_count")
        assert count is None or (isinstance(count, int) and not isinstance(count, bool))
        assert all(isinstance(p, dict) for p in c.get("payload", []))
        assert all(isinstance(t, str) for t in c.get("traceback", []))
    if isinstance(content, dict) and not problems:
        assert c == content  # a good reply is left as it is


@FAST
@given(
    d=st.dictionaries(
        st.sampled_from(["header", "parent_header", "metadata", "content", "buffers"]),
        json_values | st.just({"msg_type": "x"}) | st.just([10**12]) | st.just([b"ok"]),
    )
)
def test_message_from_dict_raises_only_malformed_message(d: dict[str, Any]) -> None:
    try:
        msg = Message.from_dict(d)
    except MalformedMessage:
        return
    assert isinstance(msg.content, dict) and all(isinstance(b, bytes) for b in msg.buffers)
