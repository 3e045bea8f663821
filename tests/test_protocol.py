"""The sans-IO protocol core, tested with bytes alone and against jupyter_client's Session."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from jupyter_client.session import Session as JCSession

from kconsole.protocol import (
    DELIM,
    PROTOCOL_VERSION,
    DigestHistory,
    InvalidSignature,
    MalformedMessage,
    Message,
    ReplayedMessage,
    Session,
    UnknownSignatureScheme,
    UnsignedMessage,
    pack,
)

KEY = b"a0436f6c-1916-498b-8eb9-e81ab9368e84"


def test_header_fields_and_version() -> None:
    s = Session(KEY, username="ada")
    m = s.msg("execute_request", {"code": "1"})
    h = m.header
    assert set(h) >= {"msg_id", "msg_type", "username", "session", "date", "version"}
    assert h["version"] == PROTOCOL_VERSION == "5.4"
    assert h["session"] == s.session_id and h["username"] == "ada"
    assert h["date"].endswith("Z") and "T" in h["date"]
    assert s.msg("x").msg_id != m.msg_id


def test_frames_layout_and_signature_by_hand() -> None:
    s = Session(KEY)
    m = s.msg("stream", {"name": "stdout", "text": "héllo ✓"}, buffers=[b"\x00\x01"])
    frames = s.serialize(m, identities=[b"id1"])
    assert frames[0] == b"id1" and frames[1] == DELIM
    parts = frames[3:7]
    expected = hmac.new(KEY, b"".join(parts), hashlib.sha256).hexdigest().encode()
    assert frames[2] == expected
    assert frames[7] == b"\x00\x01"
    # Non-ASCII travels as UTF-8, not \u escapes.
    assert "héllo ✓".encode() in frames[6]


def test_round_trip() -> None:
    a, b = Session(KEY), Session(KEY)
    m = a.msg("display_data", {"data": {"text/plain": "π"}}, metadata={"k": 1}, buffers=[b"xyz"])
    got = b.deserialize(a.serialize(m))
    assert got.content == m.content and got.metadata == {"k": 1}
    assert got.buffers == [b"xyz"] and got.msg_type == "display_data"


def test_parent_header_links_reply_to_request() -> None:
    a = Session(KEY)
    req = a.msg("kernel_info_request")
    rep = a.msg("kernel_info_reply", {}, parent=req)
    assert rep.parent_id == req.msg_id


@pytest.mark.parametrize("scheme", ["hmac-sha256", "hmac-sha512", "hmac-md5", "hmac-sha3_256"])
def test_any_hashlib_scheme(scheme: str) -> None:
    a, b = Session(KEY, scheme), Session(KEY, scheme)
    assert b.deserialize(a.serialize(a.msg("x", {"v": 1}))).content == {"v": 1}


@pytest.mark.parametrize(
    "scheme",
    [
        "hmac-sha256",
        "hmac-sha224",
        "hmac-sha384",
        "hmac-sha512",
        "hmac-sha1",
        "hmac-md5",
        "hmac-sha3_256",
        "hmac-blake2b",
    ],
)
@pytest.mark.parametrize("key", [b"k", b"x" * 64, b"y" * 128, b"z" * 200])
def test_signatures_are_the_standard_library_hmac(scheme: str, key: bytes) -> None:
    # Keys shorter than, equal to and longer than every block size (64 and 128 bytes).
    parts = [b'{"msg_id":"1"}', b"{}", b"{}", "π ✓".encode()]
    expected = hmac.new(key, b"".join(parts), scheme[len("hmac-") :]).hexdigest().encode()
    assert Session(key, scheme).sign(parts) == expected


def test_frames_handed_over_as_buffers_verify_and_parse_like_bytes() -> None:
    # The zmq transport hands large frames over as memoryviews (no copy).
    a, b = Session(KEY), Session(KEY)
    text = "é✓ line\n" * 20000
    frames = [memoryview(f) for f in a.serialize(a.msg("stream", {"name": "stdout", "text": text}))]
    assert b.deserialize(frames).content["text"] == text
    frames[5] = memoryview(pack({"name": "stdout", "text": "forged"}))
    with pytest.raises(InvalidSignature):
        Session(KEY).deserialize(frames)


_HASHLIB_PROBE = """
import json, sys
from kconsole.protocol import LARGE_MESSAGE_BYTES, Session
key = b"k" * 40
a, b = Session(key), Session(key)
b.deserialize(a.serialize(a.msg("stream", {"name": "stdout", "text": "small " * 1000})))
small = sorted(m for m in ("hashlib", "_hashlib") if m in sys.modules)
text = "x" * LARGE_MESSAGE_BYTES
frames = a.serialize(a.msg("stream", {"name": "stdout", "text": text}))
ok = b.deserialize(frames).content["text"] == text
print(json.dumps({"small": small, "ok": ok, "large": "_hashlib" in sys.modules}))
"""


@pytest.mark.timeout(60)
def test_openssl_is_loaded_only_once_a_large_message_is_signed() -> None:
    # An ordinary session keeps OpenSSL's libcrypto (~4 MB) unmapped; a 2 MB message
    # is hashed by it (seven times faster than the interpreter's own SHA-256).
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _HASHLIB_PROBE], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == {"small": [], "ok": True, "large": True}


@pytest.mark.parametrize("scheme", ["hmac-sha256", "hmac-sha512", "hmac-md5"])
def test_large_messages_are_signed_as_jupyter_client_signs_them(scheme: str) -> None:
    from kconsole.protocol import LARGE_MESSAGE_BYTES

    ours, jc = Session(KEY, scheme), _jc(scheme=scheme)
    for size in (LARGE_MESSAGE_BYTES - 100, LARGE_MESSAGE_BYTES + 100, 3 * LARGE_MESSAGE_BYTES):
        m = ours.msg("stream", {"name": "stdout", "text": "é" * (size // 2)})
        frames = ours.serialize(m)
        parts = frames[2:6]
        assert frames[1] == jc.sign(parts)  # the one jupyter_client's Session computes
        name = scheme[len("hmac-") :]
        assert frames[1] == hmac.new(KEY, b"".join(parts), name).hexdigest().encode()
        assert Session(KEY, scheme).deserialize([memoryview(f) for f in frames]).content
        frames[5] = frames[5][:-3] + b'x"}'
        with pytest.raises(InvalidSignature):
            Session(KEY, scheme).deserialize(frames)


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(UnknownSignatureScheme):
        Session(KEY, "hmac-nosuchhash")
    with pytest.raises(UnknownSignatureScheme):
        Session(KEY, "hmac-__name__")  # not a hash, though an attribute of every module
    with pytest.raises(UnknownSignatureScheme):
        Session(KEY, "rsa-sha256")


def test_wrong_key_is_rejected() -> None:
    frames = Session(KEY).serialize(Session(KEY).msg("x"))
    with pytest.raises(InvalidSignature):
        Session(b"other-key").deserialize(frames)


def test_tampered_content_is_rejected() -> None:
    a = Session(KEY)
    frames = a.serialize(a.msg("x", {"v": 1}))
    frames[5] = pack({"v": 2})
    with pytest.raises(InvalidSignature):
        Session(KEY).deserialize(frames)


def test_unsigned_is_rejected_when_a_key_is_set() -> None:
    frames = Session(b"").serialize(Session(b"").msg("x"))
    assert frames[1] == b""
    with pytest.raises(UnsignedMessage):
        Session(KEY).deserialize(frames)


def test_no_key_means_no_checks() -> None:
    frames = Session(b"").serialize(Session(b"").msg("x", {"a": 1}))
    assert Session(b"").deserialize(frames).content == {"a": 1}


def test_replay_is_rejected_but_a_forgery_does_not_poison_history() -> None:
    a, b = Session(KEY), Session(KEY)
    frames = a.serialize(a.msg("x"))
    b.deserialize(frames)
    with pytest.raises(ReplayedMessage):
        b.deserialize(frames)
    # A forged message carrying a future genuine signature must not block the genuine one.
    genuine = a.serialize(a.msg("y"))
    forged = list(genuine)
    forged[5] = pack({"evil": True})
    with pytest.raises(InvalidSignature):
        b.deserialize(forged)
    assert b.deserialize(genuine).msg_type == "y"


def test_each_session_has_its_own_history() -> None:
    a = Session(KEY)
    frames = a.serialize(a.msg("x"))
    Session(KEY).deserialize(frames)
    Session(KEY).deserialize(frames)  # a second consumer is not a replay


def test_digest_history_is_bounded() -> None:
    h = DigestHistory(maxsize=100)
    for i in range(1000):
        h.add(str(i).encode())
    assert len(h) <= 100
    assert b"999" in h


@pytest.mark.parametrize(
    "frames",
    [
        [b"a", b"b"],
        [DELIM, b"sig", b"{}", b"{}"],
        [DELIM, b"", b"not json", b"{}", b"{}", b"{}"],
        [DELIM, b"", b"{}", b"{}", b"{}", b"{}"],  # header without msg_type
    ],
)
def test_malformed_frames(frames: list[bytes]) -> None:
    with pytest.raises(MalformedMessage):
        Session(b"").deserialize(frames)


def test_nan_never_reaches_the_wire() -> None:
    # JSON has no NaN: sent as its repr (jupyter_client's json_clean), not as invalid
    # JSON, and not as an exception that would cost a kernel its reply.
    data = pack({"x": float("nan"), "y": [float("-inf")]})
    assert json.loads(data, parse_constant=lambda c: pytest.fail(c)) == {"x": "nan", "y": ["-inf"]}


def test_message_dict_shape_round_trip() -> None:
    m = Session(KEY).msg("x", {"a": [1, 2]})
    d = json.loads(json.dumps(m.to_dict()))
    assert Message.from_dict(d).content == {"a": [1, 2]}
    with pytest.raises(MalformedMessage):
        Message.from_dict({"content": {}})


# -- interoperability with jupyter_client's Session -------------------------------------


def _jc(key: bytes = KEY, scheme: str = "hmac-sha256") -> JCSession:
    return JCSession(key=key, signature_scheme=scheme)


@pytest.mark.parametrize("scheme", ["hmac-sha256", "hmac-sha512"])
def test_kconsole_message_verifies_in_jupyter_client(scheme: str) -> None:
    ours = Session(KEY, scheme)
    m = ours.msg(
        "display_data",
        {"data": {"text/plain": "日本語 ✓"}, "metadata": {}},
        buffers=[b"\xff\x00binary"],
    )
    frames = ours.serialize(m, identities=[b"route"])
    jc = _jc(scheme=scheme)
    idents, rest = jc.feed_identities(frames)
    got = jc.deserialize(rest)
    assert idents == [b"route"]
    assert got["content"]["data"]["text/plain"] == "日本語 ✓"
    assert got["header"]["msg_type"] == "display_data"
    assert bytes(got["buffers"][0]) == b"\xff\x00binary"


@pytest.mark.parametrize("scheme", ["hmac-sha256", "hmac-sha512"])
def test_jupyter_client_message_verifies_in_kconsole(scheme: str) -> None:
    jc = _jc(scheme=scheme)
    msg = jc.msg("execute_request", {"code": "print('ünï')", "silent": False})
    frames = jc.serialize(msg, ident=[b"id"])
    frames.extend([b"buf1", b"\x00"])  # buffers follow the content frame
    ours = Session(KEY, scheme)
    got = ours.deserialize(frames)
    assert got.content["code"] == "print('ünï')"
    assert got.identities == [b"id"]
    assert got.buffers == [b"buf1", b"\x00"]
    assert got.msg_id == msg["header"]["msg_id"]


def test_jupyter_client_rejects_a_wrong_key_from_us() -> None:
    ours = Session(b"not-the-key")
    frames = ours.serialize(ours.msg("x"))
    with pytest.raises(ValueError):
        _jc().deserialize(frames[1:])
