"""Every framing a message arrives in (zmq frames, the WebSocket's v1 and JSON framings)
reads an odd message the same way: one check, protocol.message_from_parts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kconsole.protocol import MalformedMessage, Message, Session, message_from_parts
from kconsole.remote.framing import decode_json, decode_v1, encode_json, encode_v1


def _via_zmq(msg: Message) -> Message:
    session = Session(key=b"secret")
    return session.deserialize(session.serialize(msg))


def _via_v1(msg: Message) -> Message:
    return decode_v1(encode_v1("shell", msg))[1]


def _via_json(msg: Message) -> Message:
    return decode_json(encode_json("shell", msg))[1]


READERS: list[Callable[[Message], Message]] = [_via_zmq, _via_v1, _via_json]


def _odd(**fields: Any) -> Message:
    # Message's annotations say dicts; a kernel on the wire may send anything.
    return Message(**fields)


@pytest.mark.parametrize("read", READERS, ids=["zmq", "v1", "json"])
def test_parts_that_are_no_objects_read_as_empty(read: Callable[[Message], Message]) -> None:
    msg = _odd(
        header={"msg_type": "execute_reply", "msg_id": "m1"},
        parent_header=["not", "a", "dict"],
        metadata="text",
        content=7,
        buffers=[b"\x00raw"],
    )
    got = read(msg)
    assert got.msg_type == "execute_reply"
    assert (got.parent_header, got.metadata, got.content) == ({}, {}, {})
    assert got.buffers == [b"\x00raw"]
    assert all(type(b) is bytes for b in got.buffers)


@pytest.mark.parametrize("read", READERS, ids=["zmq", "v1", "json"])
@pytest.mark.parametrize("header", [{"msg_id": "m1"}, ["msg_type"], "msg_type"])
def test_a_header_without_msg_type_is_refused(
    read: Callable[[Message], Message], header: Any
) -> None:
    with pytest.raises(MalformedMessage, match="no msg_type"):
        read(_odd(header=header))


def test_message_from_parts_copies_buffers_to_bytes_and_keeps_identities() -> None:
    raw = bytearray(b"abc")
    msg = message_from_parts(
        {"msg_type": "status"},
        {},
        {},
        {"execution_state": "idle"},
        [memoryview(raw)],
        identities=[b"id"],
    )
    raw[0:1] = b"X"  # the message's buffer is its own, not a view of the frame
    assert msg.buffers == [b"abc"]
    assert msg.identities == [b"id"]
    assert message_from_parts({"msg_type": "status"}, {}, {}, {}, []).identities == []
