"""The Jupyter messaging protocol (5.x), with no IO.

Theory of this module
---------------------
Everything here is bytes in, objects out (and back): no sockets, no event loop, no
threads. A :class:`Session` is one peer's view of the wire: it builds messages with
headers stamped with its session id, serializes them to the multipart frame list
``[ident..., DELIM, signature, header, parent_header, metadata, content, buffer...]``,
and parses frame lists back, verifying the HMAC signature of the four dict frames.

The rules it keeps:

* Every message sent is signed when a key is set; every message received is checked
  with a constant-time compare_digest, and an unsigned or replayed one is refused.
* A signature is remembered only *after* it verified, so forged frames cannot push
  genuine digests out of the replay history.
* Each Session has its own digest history: two consumers sharing one would see each
  other's messages as replays.
* Buffers travel after the content frame and are not signed (as in jupyter_client).

The same core serves the console client, the built-in kernel and the WebSocket
transport (which frames messages differently but builds them here).
"""

from __future__ import annotations

import codecs
import datetime as _dt
import getpass
import json
import math
import os
import random
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

PROTOCOL_VERSION = "5.4"
DELIM = b"<IDS|MSG>"
DEFAULT_SIGNATURE_SCHEME = "hmac-sha256"
#: How many verified signatures are remembered for replay detection (jupyter_client's).
DIGEST_HISTORY_SIZE = 2**16


class ProtocolError(Exception):
    """Base class of every error raised while reading or writing messages."""


class MalformedMessage(ProtocolError):
    """The frames do not form a Jupyter message (no delimiter, too few frames, bad JSON)."""


class UnsignedMessage(ProtocolError):
    """A key is set but the message carries no signature."""


class InvalidSignature(ProtocolError):
    """The signature does not match the message: a wrong key, or a forged message."""


class ReplayedMessage(ProtocolError):
    """The signature was already seen: the message is a replay."""


class UnknownSignatureScheme(ProtocolError):
    """The signature scheme is not ``hmac-<hashlib algorithm>``."""


def utcnow_iso() -> str:
    """The current time as ISO 8601 UTC with a ``Z`` suffix, as headers carry it."""
    now = _dt.datetime.now(_dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_id() -> str:
    """A fresh message or session id (a uuid4 in hex)."""
    return uuid.uuid4().hex


def _json_default(obj: Any) -> Any:
    # Headers that came from jupyter_client may hold datetimes; bytes are never valid
    # JSON content, so fail loudly for anything else.
    if isinstance(obj, (_dt.datetime, _dt.date)):
        if isinstance(obj, _dt.datetime) and obj.tzinfo is None:
            obj = obj.replace(tzinfo=_dt.timezone.utc)
        return obj.isoformat().replace("+00:00", "Z")
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_encoder = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_json_default
)

#: How deeply a received frame may nest arrays and objects. Real messages nest a few
#: levels (a widget state a dozen); a thousand levels is an attack on every recursive
#: reader downstream (the JSON decoder itself raises RecursionError near 1000).
MAX_JSON_DEPTH = 100

#: A JSON escape (a backslash and the character after it): removed first by the depth
#: check, so that string literals are then simply ``"[^"]*"``. A literal pattern that
#: also matched escapes retried at every quote of an unterminated string and rescanned
#: to the end each time: 400 KB of escaped quotes took minutes. Both passes are linear.
_JSON_ESCAPE = re.compile(r"\\.", re.DOTALL)
#: A JSON string literal once escapes are gone: cut out so that brackets inside
#: strings do not count.
_JSON_STRING = re.compile(r'"[^"]*"')
#: Everything but the four brackets, deleted by the depth check.
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
#: A JSON escape of a UTF-16 surrogate (``\ud800``): the only way a decoded frame can
#: hold a lone surrogate, which no UTF-8 encoder accepts.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _show_surrogate(match: re.Match[str]) -> str:
    return _surrogate_text(match.group())


def _surrogate_text(ch: str) -> str:
    """How a lone surrogate is shown: ``\\xff`` for a byte that ``surrogateescape``
    smuggled into a str (a non-UTF-8 file name), ``\\ud800`` for any other."""
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def _json_escaped_errors(error: UnicodeError) -> tuple[str, int]:
    """Codec error handler for JSON text: what cannot be encoded or decoded becomes
    visible escape text (``\\xff``), itself JSON-escaped (the backslash doubled) since
    it lands inside a JSON string literal, the only place such characters occur."""
    if isinstance(error, UnicodeEncodeError):
        bad = error.object[error.start : error.end]
        return "".join("\\" + _surrogate_text(c) for c in bad), error.end
    if isinstance(error, UnicodeDecodeError):
        bad_bytes = error.object[error.start : error.end]
        return "".join(f"\\\\x{b:02x}" for b in bad_bytes), error.end
    raise error


codecs.register_error("kconsole-json-escape", _json_escaped_errors)


def pack(obj: Any) -> bytes:
    """Encode one dict frame: UTF-8 JSON, non-ASCII kept, NaN sent as the text "nan".

    Text with lone surrogates (output naming a file whose name is not UTF-8, decoded
    with ``surrogateescape``) cannot be UTF-8: each is sent as visible escape text
    (``\\xff``) rather than failing the message, and with it a reply.
    """
    try:
        text = _encoder.encode(obj)
    except ValueError:  # NaN or infinity, which JSON has no spelling for
        text = _encoder.encode(_finite(obj))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "kconsole-json-escape")


def _finite(obj: Any) -> Any:
    """``obj`` with NaN and infinities as their repr, as jupyter_client's json_clean
    does: a kernel's reply must not fail because a user's data holds one."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    return obj


def clean_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by visible escape text, so that it
    can be encoded as UTF-8 (written to a terminal, a file, a frame)."""
    return _LONE_SURROGATE.sub(_show_surrogate, text)


#: The frames are UTF-8 by the protocol: decoding them to str first skips json.loads's
#: encoding sniffing and type checks, half its cost on small frames.
_decode = json.JSONDecoder().decode


def json_depth_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text ``text`` nests arrays/objects deeper than ``limit``.

    At C speed, without parsing: string literals are cut out, everything but the
    brackets deleted, then innermost pairs removed once per level. A frame with fewer
    brackets than the limit (most of them) is answered by looking for them.
    """
    if not _brackets_exceed(text, limit):
        return False
    brackets = _NOT_BRACKETS.sub("", _JSON_STRING.sub("", _JSON_ESCAPE.sub("", text)))
    for _ in range(limit):
        if not brackets:
            return False
        # The pairs innermost now, and only those: each first becomes a NUL, so the
        # `{}` that taking a `[]` out of `{[]}` makes is not taken in the same pass (two
        # levels at once would let arrays and objects mixed nest twice as deep).
        marked = brackets.replace("[]", "\0").replace("{}", "\0")
        shorter = marked.replace("\0", "")
        if len(shorter) == len(brackets):
            return False  # unbalanced: not JSON, the decoder will say so
        brackets = shorter
    return bool(brackets)


def _brackets_exceed(text: str, limit: int) -> bool:
    """Whether ``text`` holds more than ``limit`` of ``[`` and ``{`` together: found one
    by one (``str.find`` runs at memchr's speed, ``str.count`` at a third of it on a
    50 MB frame), stopping at the limit."""
    n = 0
    for bracket in "[{":
        pos = text.find(bracket)
        while pos >= 0:
            n += 1
            if n > limit:
                return True
            pos = text.find(bracket, pos + 1)
    return False


def loads(data: bytes | memoryview | str) -> Any:
    """Decode JSON received from the network, whatever it holds.

    Raises only :class:`MalformedMessage`: for text that is not JSON, nests deeper than
    :data:`MAX_JSON_DEPTH`, or holds an integer too long to convert. Bytes that are
    not UTF-8 (ipykernel sends a ``surrogateescape``'d file name as its raw bytes) and
    lone surrogates (a ``\\ud800`` escape) become visible escape text (``\\xff``),
    never a str that cannot be printed.
    """
    if isinstance(data, str):
        text = data
    else:
        try:
            text = str(data, "utf-8")
        except UnicodeDecodeError:
            text = str(data, "utf-8", "kconsole-json-escape")
    # Nesting past the limit takes more than twice as many characters: short frames
    # (headers, replies) skip the check.
    if len(text) > 2 * MAX_JSON_DEPTH and json_depth_exceeds(text):
        raise MalformedMessage(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        obj = _decode(text)
    except (ValueError, RecursionError) as e:  # int too long to convert is a ValueError
        raise MalformedMessage(f"not JSON: {e}") from None
    if _SURROGATE_ESCAPE.search(text):
        obj = _clean_surrogates(obj)
    return obj


def _clean_surrogates(obj: Any) -> Any:
    """``obj`` with lone surrogates in its strings (keys included) made visible."""
    if isinstance(obj, str):
        return clean_text(obj) if _LONE_SURROGATE.search(obj) else obj
    if isinstance(obj, list):
        return [_clean_surrogates(v) for v in obj]
    if isinstance(obj, dict):
        return {_clean_surrogates(k): _clean_surrogates(v) for k, v in obj.items()}
    return obj


def unpack(data: bytes | memoryview) -> Any:
    """Decode one dict frame (UTF-8 JSON); raises only :class:`MalformedMessage`."""
    if data == b"{}":
        return {}  # most metadata and many parent headers and contents: skip the parser
    return loads(data)


@dataclass
class Message:
    """One Jupyter message, as both sides see it."""

    header: dict[str, Any]
    parent_header: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    content: dict[str, Any] = field(default_factory=dict)
    buffers: list[bytes] = field(default_factory=list)
    #: zmq routing identities that preceded the delimiter (ROUTER side only).
    identities: list[bytes] = field(default_factory=list)

    @property
    def msg_type(self) -> str:
        return str(self.header.get("msg_type", ""))

    @property
    def msg_id(self) -> str:
        return str(self.header.get("msg_id", ""))

    @property
    def parent_id(self) -> str | None:
        """The msg_id of the request this message answers, or None."""
        pid = self.parent_header.get("msg_id") if self.parent_header else None
        return str(pid) if pid else None

    def to_dict(self) -> dict[str, Any]:
        """The message as the dict shape jupyter_client and the WebSocket JSON use."""
        return {
            "header": self.header,
            "msg_id": self.msg_id,
            "msg_type": self.msg_type,
            "parent_header": self.parent_header,
            "metadata": self.metadata,
            "content": self.content,
            "buffers": list(self.buffers),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Message:
        """Build a message from the dict shape (missing parts become empty)."""
        header = d.get("header")
        if not isinstance(header, dict) or "msg_type" not in header:
            raise MalformedMessage("message has no header with a msg_type")
        buffers = d.get("buffers") or []
        # bytes(5) would be five zero bytes, bytes(10**12) a MemoryError: only buffers.
        if not isinstance(buffers, list) or not all(
            isinstance(b, (bytes, bytearray, memoryview)) for b in buffers
        ):
            raise MalformedMessage("message buffers are not a list of bytes")
        parts = [d.get(k) for k in ("parent_header", "metadata", "content")]
        parent_header, metadata, content = (p if isinstance(p, dict) else {} for p in parts)
        return cls(
            header=header,
            parent_header=parent_header,
            metadata=metadata,
            content=content,
            buffers=[bytes(b) for b in buffers],
        )


class DigestHistory:
    """A bounded set of seen signatures; when full, a random tenth is forgotten."""

    def __init__(self, maxsize: int = DIGEST_HISTORY_SIZE) -> None:
        self.maxsize = maxsize
        self._seen: set[bytes] = set()

    def __contains__(self, digest: object) -> bool:
        return digest in self._seen

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, digest: bytes) -> None:
        self._seen.add(digest)
        if len(self._seen) > self.maxsize:
            # Culling at random (as jupyter_client does) keeps the cost amortised O(1)
            # and makes it impossible for a sender to predict which digests survive.
            n = max(1, self.maxsize // 10)
            for d in random.sample(sorted(self._seen), n):
                self._seen.discard(d)


try:
    # Constant-time comparison; the same function hmac.compare_digest falls back to.
    from _operator import _compare_digest as compare_digest
except ImportError:  # not CPython
    from hmac import compare_digest  # type: ignore[no-redef]

#: Where the interpreter keeps its own hash implementations (3.12+ merged the SHA-2s).
_BUILTIN_HASH_MODULES = ("_sha2", "_sha256", "_sha512", "_sha1", "_md5")
#: The hashes looked up there; any other name goes to hashlib.
_BUILTIN_HASHES = frozenset({"md5", "sha1", "sha224", "sha256", "sha384", "sha512"})
_TRANS_36 = bytes(x ^ 0x36 for x in range(256))
_TRANS_5C = bytes(x ^ 0x5C for x in range(256))


def _builtin_hash(name: str) -> Any:
    """The interpreter's built-in constructor for hash ``name``, or None.

    Why not hashlib: it loads OpenSSL's libcrypto, ~4 MB of a console's resident
    memory, for one SHA-256 (the standard library's ``random`` avoids hashlib for the
    same reason).
    """
    if name not in _BUILTIN_HASHES:
        return None
    for module in _BUILTIN_HASH_MODULES:
        try:
            mod = __import__(module)
        except ImportError:
            continue
        ctor = getattr(mod, name, None)
        if ctor is not None:
            return ctor
    return None


#: Messages of at least this many bytes (the four signed frames) are signed with
#: OpenSSL's HMAC, through :mod:`hmac` and :mod:`hashlib`, imported then: the
#: interpreter's own SHA-256 does some 200 MB/s against OpenSSL's 1,400 (a 50 MB print
#: took 0.2-0.3 s to verify). Smaller ones, all of an ordinary session's, keep the
#: built-in hash and the 4 MB of libcrypto unmapped: importing it takes some 8 ms, what
#: hashing 2 MB saves. The signatures are the same either way.
LARGE_MESSAGE_BYTES = 2 << 20


class _HMAC:
    """HMAC (RFC 2104) over a hash constructor: the keyed inner and outer states are
    computed once, and each message copies them (what :mod:`hmac` does). Messages of
    :data:`LARGE_MESSAGE_BYTES` or more go to OpenSSL's HMAC of the same hash."""

    def __init__(self, key: bytes, ctor: Any, name: str) -> None:
        self._key = key
        self._name = name
        #: OpenSSL's HMAC, made for the first large message (None: not made yet).
        self._large: _HashlibHMAC | None = None
        self._no_openssl = False
        block = ctor().block_size
        if len(key) > block:
            key = ctor(key).digest()
        key = key.ljust(block, b"\0")
        self._inner = ctor(key.translate(_TRANS_36))
        self._outer = ctor(key.translate(_TRANS_5C))

    def _openssl(self) -> _HashlibHMAC | None:
        if self._large is None and not self._no_openssl:
            try:
                import _hashlib  # noqa: F401 - hmac uses OpenSSL only when this exists

                self._large = _HashlibHMAC(self._key, self._name)
            except (ImportError, ValueError):  # no OpenSSL, or it lacks the hash
                self._no_openssl = True
        return self._large

    def hexdigest(self, parts: Sequence[bytes | memoryview]) -> str:
        if sum(map(len, parts)) >= LARGE_MESSAGE_BYTES:
            large = self._openssl()
            if large is not None:
                return large.hexdigest(parts)
        inner = self._inner.copy()
        for p in parts:
            inner.update(p)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return str(outer.hexdigest())


class _HashlibHMAC:
    """HMAC with a hash only hashlib has (a rare signature scheme)."""

    def __init__(self, key: bytes, name: str) -> None:
        import hmac

        self._hmac = hmac.new(key, digestmod=name)

    def hexdigest(self, parts: Sequence[bytes | memoryview]) -> str:
        h = self._hmac.copy()
        for p in parts:
            h.update(p)
        return h.hexdigest()


def _signer(signature_scheme: str, key: bytes) -> _HMAC | _HashlibHMAC | None:
    """The HMAC for ``signature_scheme`` (None without a key); raises
    UnknownSignatureScheme for a scheme that is not hmac-<hash algorithm>."""
    if not signature_scheme.startswith("hmac-"):
        raise UnknownSignatureScheme(
            f"signature scheme {signature_scheme!r} is not hmac-<algorithm>"
        )
    name = signature_scheme[len("hmac-") :]
    ctor = _builtin_hash(name)
    if ctor is None:
        import hashlib

        shown = repr(signature_scheme if len(signature_scheme) <= 60 else signature_scheme[:60])
        try:
            hashlib.new(name)
        except (ValueError, TypeError):  # TypeError: a NUL or a lone surrogate in it
            raise UnknownSignatureScheme(
                f"signature scheme {shown}: not hmac-<a hashlib algorithm>"
            ) from None
        try:
            # What hashlib has is not always usable in an HMAC: the SHAKEs have no
            # fixed digest size, and hmac refuses them (ValueError) or fails to digest.
            _HashlibHMAC(b"k", name).hexdigest([b""])
        except (ValueError, TypeError):
            raise UnknownSignatureScheme(
                f"signature scheme {shown}: {name!r} cannot be used in an HMAC"
            ) from None
    if not key:
        return None
    return _HMAC(key, ctor, name) if ctor is not None else _HashlibHMAC(key, name)


class Session:
    """One peer's signing identity: builds, serializes and verifies messages.

    ``key`` empty means messages are neither signed nor checked (the protocol allows
    it; kconsole never writes such a connection file).
    """

    def __init__(
        self,
        key: bytes | str = b"",
        signature_scheme: str = DEFAULT_SIGNATURE_SCHEME,
        session_id: str | None = None,
        username: str | None = None,
    ) -> None:
        self.key = key.encode("ascii") if isinstance(key, str) else bytes(key)
        self.signature_scheme = signature_scheme
        self._hmac = _signer(signature_scheme, self.key)
        self.session_id = session_id or new_id()
        self.username = username or _default_username()
        self.digest_history = DigestHistory()
        self._counter = 0

    # -- building -------------------------------------------------------------------

    def header(self, msg_type: str, **extra: Any) -> dict[str, Any]:
        """A fresh header for ``msg_type`` from this session."""
        self._counter += 1
        h = {
            # session prefix + counter, as jupyter_client does: cheap and unique.
            "msg_id": f"{self.session_id[:8]}-{self._counter}-{new_id()[:8]}",
            "msg_type": msg_type,
            "username": self.username,
            "session": self.session_id,
            "date": utcnow_iso(),
            "version": PROTOCOL_VERSION,
        }
        h.update(extra)
        return h

    def msg(
        self,
        msg_type: str,
        content: dict[str, Any] | None = None,
        parent: Message | dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[bytes] | None = None,
    ) -> Message:
        """Build a message; ``parent`` is the request it answers (or its header)."""
        if isinstance(parent, Message):
            parent_header = parent.header
        else:
            parent_header = parent or {}
        return Message(
            header=self.header(msg_type),
            parent_header=dict(parent_header),
            metadata=metadata or {},
            content=content if content is not None else {},
            buffers=list(buffers or []),
        )

    # -- signing --------------------------------------------------------------------

    def sign(self, parts: Sequence[bytes | memoryview]) -> bytes:
        """The lowercase hex HMAC of the four dict frames (empty when no key)."""
        if self._hmac is None:
            return b""
        return self._hmac.hexdigest(parts).encode("ascii")

    # -- wire -----------------------------------------------------------------------

    def serialize(self, msg: Message, identities: list[bytes] | None = None) -> list[bytes]:
        """The frame list for ``msg``, with ``identities`` (or the message's own) first."""
        parts = [
            pack(msg.header),
            pack(msg.parent_header),
            pack(msg.metadata),
            pack(msg.content),
        ]
        idents = msg.identities if identities is None else identities
        return [*idents, DELIM, self.sign(parts), *parts, *msg.buffers]

    def deserialize(self, frames: Sequence[bytes | memoryview]) -> Message:
        """Parse and verify a frame list (identities included) into a Message.

        Raises only :class:`ProtocolError`, whatever the frames hold: a reader loop
        that catches it loses one message, never its socket.
        """
        try:
            return self._deserialize(frames)
        except ProtocolError:
            raise
        except Exception as e:  # a frame no check above foresaw (MemoryError included)
            raise MalformedMessage(f"unreadable message: {type(e).__name__}: {e}") from None

    def _deserialize(self, frames: Sequence[bytes | memoryview]) -> Message:
        try:
            idx = frames.index(DELIM)
        except ValueError:
            raise MalformedMessage("no <IDS|MSG> delimiter in the frames") from None
        identities = [bytes(f) for f in frames[:idx]]
        rest = frames[idx + 1 :]
        if len(rest) < 5:
            raise MalformedMessage(f"{len(rest)} frames after the delimiter, need at least 5")
        signature = bytes(rest[0])
        # Bytes or buffers (a transport may hand a large frame over without copying it):
        # HMAC and the UTF-8 decoding read either.
        parts = rest[1:5]
        if self._hmac is not None:
            if not signature:
                raise UnsignedMessage("message is not signed")
            if signature in self.digest_history:
                raise ReplayedMessage("message signature was already seen (replay)")
            if not compare_digest(signature, self.sign(parts)):
                raise InvalidSignature("message signature does not match (wrong key?)")
            self.digest_history.add(signature)
        try:
            header, parent_header, metadata, content = (unpack(p) for p in parts)
        except MalformedMessage as e:
            raise MalformedMessage(f"a message frame is {e}") from None
        return message_from_parts(
            header, parent_header, metadata, content, rest[5:], identities=identities
        )


def message_from_parts(
    header: Any,
    parent_header: Any,
    metadata: Any,
    content: Any,
    buffers: Sequence[bytes | memoryview],
    *,
    identities: list[bytes] | None = None,
) -> Message:
    """A Message of the four decoded JSON parts of a received message, whichever framing
    carried them (zmq frames, a WebSocket's v1 or JSON framing): raises
    MalformedMessage when the header has no ``msg_type``; a parent header, metadata or
    content that is no object counts as empty."""
    if not isinstance(header, dict) or "msg_type" not in header:
        raise MalformedMessage("message header has no msg_type")
    return Message(
        header=header,
        parent_header=parent_header if isinstance(parent_header, dict) else {},
        metadata=metadata if isinstance(metadata, dict) else {},
        content=content if isinstance(content, dict) else {},
        buffers=[bytes(b) for b in buffers],
        identities=identities if identities is not None else [],
    )


def _default_username() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return os.environ.get("USER", "kconsole")


def new_key() -> bytes:
    """A fresh signing key, as jupyter_client makes them (a uuid4 string)."""
    return str(uuid.uuid4()).encode("ascii")


def topic(kernel_ident: str, msg_type: str) -> bytes:
    """The IOPub topic frame ipykernel uses: ``kernel.<ident>.<msg_type>``."""
    return f"kernel.{kernel_ident}.{msg_type}".encode()


# -- reply validation -------------------------------------------------------------------
#
# A kernel's reply is read by code that trusts its shape (a lexer named by
# language_info, completions at cursor_start, a help text): each field below is checked
# for its type and, when wrong, replaced by what an absent field would mean, so one odd
# kernel costs one note, never a traceback or a hang.


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _str_field(content: dict[str, Any], key: str, problems: list[str], where: str) -> None:
    if key in content and not isinstance(content[key], str):
        problems.append(f"{where}{key} is not a string")
        del content[key]


def _dict_field(content: dict[str, Any], key: str, problems: list[str], where: str) -> None:
    if key in content and not isinstance(content[key], dict):
        problems.append(f"{where}{key} is not an object")
        content[key] = {}


def _list_field(content: dict[str, Any], key: str, problems: list[str], where: str) -> list[Any]:
    value = content.get(key)
    if key in content and not isinstance(value, list):
        problems.append(f"{where}{key} is not a list")
        content[key] = []
        return []
    return value if isinstance(value, list) else []


def _entries(
    content: dict[str, Any], key: str, problems: list[str], ok: Callable[[Any], bool], what: str
) -> None:
    """Keep only the entries of list ``key`` that are ``ok``: one note, saying the
    others were not ``what``, however many are dropped."""
    items = _list_field(content, key, problems, "")
    good = [item for item in items if ok(item)]
    if len(good) != len(items):
        problems.append(f"{key} holds entries that are not {what}")
        content[key] = good


def _help_link_ok(link: Any) -> bool:
    return (
        isinstance(link, dict)
        and isinstance(link.get("text", ""), str)
        and isinstance(link.get("url", ""), str)
    )


def _int_field(content: dict[str, Any], key: str, problems: list[str], where: str) -> None:
    if key in content and content[key] is not None and not _is_int(content[key]):
        problems.append(f"{where}{key} is not an integer")
        del content[key]


_LANGUAGE_INFO_STRINGS = (
    "name",
    "version",
    "mimetype",
    "file_extension",
    "pygments_lexer",
    "nbconvert_exporter",
)


def _check_kernel_info(c: dict[str, Any], problems: list[str]) -> None:
    for key in ("protocol_version", "implementation", "implementation_version", "banner"):
        _str_field(c, key, problems, "")
    _dict_field(c, "language_info", problems, "")
    info = c.get("language_info")
    if isinstance(info, dict):
        info = c["language_info"] = dict(info)
        for key in _LANGUAGE_INFO_STRINGS:
            _str_field(info, key, problems, "language_info.")
        mode = info.get("codemirror_mode")
        if mode is not None and not isinstance(mode, (str, dict)):
            problems.append("language_info.codemirror_mode is neither a string nor an object")
            del info["codemirror_mode"]
    _entries(c, "help_links", problems, _help_link_ok, "{text, url}")
    _list_field(c, "supported_features", problems, "")


def _check_complete(c: dict[str, Any], problems: list[str]) -> None:
    _entries(c, "matches", problems, lambda m: isinstance(m, str), "strings")
    _int_field(c, "cursor_start", problems, "")
    _int_field(c, "cursor_end", problems, "")
    for key in ("cursor_start", "cursor_end"):
        if _is_int(c.get(key)) and c[key] < 0:
            problems.append(f"{key} is negative")
            del c[key]
    _dict_field(c, "metadata", problems, "")
    meta = c.get("metadata")
    if isinstance(meta, dict) and "_jupyter_types_experimental" in meta:
        types = meta["_jupyter_types_experimental"]
        if not isinstance(types, list) or any(not isinstance(t, dict) for t in types):
            problems.append("metadata._jupyter_types_experimental is not a list of objects")
            meta = c["metadata"] = dict(meta)
            meta["_jupyter_types_experimental"] = (
                [t for t in types if isinstance(t, dict)] if isinstance(types, list) else []
            )


def _check_inspect(c: dict[str, Any], problems: list[str]) -> None:
    if "found" in c and not isinstance(c["found"], bool):
        problems.append("found is not a boolean")
        c["found"] = False
    _dict_field(c, "data", problems, "")
    _dict_field(c, "metadata", problems, "")
    data = c.get("data")
    if isinstance(data, dict) and "text/plain" in data and not isinstance(data["text/plain"], str):
        problems.append("data['text/plain'] is not a string")
        c["data"] = {k: v for k, v in data.items() if k != "text/plain"}


def _history_entry_ok(item: Any) -> bool:
    if not isinstance(item, (list, tuple)) or len(item) != 3:
        return False
    session, line, source = item
    if not (_is_int(session) and _is_int(line)):
        return False
    if isinstance(source, str):
        return True
    # With output=True: (input, output-or-None).
    return (
        isinstance(source, (list, tuple))
        and len(source) == 2
        and isinstance(source[0], str)
        and (source[1] is None or isinstance(source[1], str))
    )


def _check_history(c: dict[str, Any], problems: list[str]) -> None:
    _entries(c, "history", problems, _history_entry_ok, "(session, line, input)")


def _check_is_complete(c: dict[str, Any], problems: list[str]) -> None:
    _str_field(c, "indent", problems, "")


def _check_execute(c: dict[str, Any], problems: list[str]) -> None:
    _int_field(c, "execution_count", problems, "")
    _entries(c, "payload", problems, lambda p: isinstance(p, dict), "objects")
    _dict_field(c, "user_expressions", problems, "")
    _check_error_fields(c, problems)


def _check_error_fields(c: dict[str, Any], problems: list[str]) -> None:
    _str_field(c, "ename", problems, "")
    _str_field(c, "evalue", problems, "")
    tb = _list_field(c, "traceback", problems, "")
    if any(not isinstance(line, str) for line in tb):
        problems.append("traceback holds entries that are not strings")
        c["traceback"] = [str(line) for line in tb]


_REPLY_CHECKS = {
    "kernel_info_reply": _check_kernel_info,
    "complete_reply": _check_complete,
    "inspect_reply": _check_inspect,
    "history_reply": _check_history,
    "is_complete_reply": _check_is_complete,
    "execute_reply": _check_execute,
}


def validate_reply(msg_type: str, content: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A reply's content with every ill-typed field a console reads replaced by what
    its absence means, and the list of problems found (empty for a good reply).

    Never raises; ``content`` itself is not modified. ``status`` is always a string
    afterwards (``"error"`` when the kernel sent something else).
    """
    problems: list[str] = []
    c = dict(content) if isinstance(content, dict) else {}
    status = c.get("status")
    if "status" in c and not isinstance(status, str):
        problems.append("status is not a string")
        c["status"] = "error"
    check = _REPLY_CHECKS.get(msg_type)
    if check is not None:
        check(c, problems)
    elif c.get("status") == "error":
        _check_error_fields(c, problems)
    return c, problems
