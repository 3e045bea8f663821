"""How Jupyter Server frames kernel messages on a WebSocket, with no IO.

Theory of this module
---------------------
A Jupyter Server relays messages between one WebSocket and the kernel's zmq
sockets. It signs what it forwards to the kernel with the kernel's key and checks
what comes back, so nothing here signs or verifies: the WebSocket carries plain
message parts, plus the name of the zmq channel each one belongs to.

Two framings exist, chosen by the WebSocket subprotocol negotiated at connect time
(the client offers, the server picks; see ``select_subprotocol`` in jupyter_server's
``services/kernels/websocket.py``):

``v1.kernel.websocket.jupyter.org`` (:func:`encode_v1` / :func:`decode_v1`)
    One binary frame per message: a u64-LE count ``n`` of offsets, ``n`` u64-LE
    offsets from the start of the frame, then the parts: channel name, header,
    parent_header, metadata, content, buffers... Offset ``i`` is where part ``i``
    starts and the last offset is the end of the frame, so ``n = parts + 1``.
    The dict parts are the exact JSON bytes the kernel sent (the server does not
    re-encode them), which is what makes this framing cheaper.

no subprotocol, the "legacy" JSON framing (:func:`encode_json` / :func:`decode_json`)
    A text frame holding ``{header, parent_header, metadata, content, buffers: [],
    channel}``. A message *with* buffers goes as one binary frame instead: a u32-BE
    count ``n`` of parts, ``n`` u32-BE offsets from the start of the frame, then the
    parts: the JSON of the message (without buffers), then each buffer
    (``serialize_binary_message`` in jupyter_server's ``connection/base.py``).

Either way buffers survive in both directions, and the server uses the same framing
for what it sends and what it accepts on one connection.
"""

from __future__ import annotations

import struct
from typing import Any

from ..protocol import MalformedMessage, Message, loads, message_from_parts, pack, unpack

#: The binary subprotocol of jupyter_server >= 2.
V1_SUBPROTOCOL = "v1.kernel.websocket.jupyter.org"

#: The channels a WebSocket carries (heartbeat is the server's business, not ours).
WS_CHANNELS = ("shell", "control", "stdin", "iopub")

#: The most parts (dict parts and buffers) a received frame may declare. Real messages
#: carry a few buffers (a widget's arrays, a few hundred at most); each declared part
#: costs some 60 bytes of Python objects whatever its size, so a frame of empty parts
#: at the WebSocket size limit would take seven times that limit in memory.
MAX_PARTS = 65536

#: What jupyter_server writes (as an iopub stderr stream) when it starts dropping
#: output because the kernel sends too fast; see :func:`rate_limit_notice`.
_RATE_LIMIT_MARKERS = ("IOPub message rate exceeded", "IOPub data rate exceeded")


# -- v1 binary subprotocol --------------------------------------------------------------


def encode_v1(channel: str, msg: Message) -> bytes:
    """One v1 frame for ``msg`` on ``channel``."""
    parts = [
        channel.encode("utf-8"),
        pack(msg.header),
        pack(msg.parent_header),
        pack(msg.metadata),
        pack(msg.content),
        *(bytes(b) for b in msg.buffers),
    ]
    n = len(parts) + 1
    offsets = [8 * (1 + n)]
    for p in parts:
        offsets.append(offsets[-1] + len(p))
    head = struct.pack(f"<{n + 1}Q", n, *offsets)
    return b"".join([head, *parts])


def decode_v1(frame: bytes) -> tuple[str, Message]:
    """Parse a v1 frame into (channel, message); raises only MalformedMessage."""
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise MalformedMessage("a text frame on the binary v1 subprotocol")
    size = len(frame)
    if size < 8:
        raise MalformedMessage(f"v1 frame of {size} bytes is too short")
    (n,) = struct.unpack_from("<Q", frame, 0)
    # channel + 4 dict parts + end offset at least; and the offsets must fit.
    if n < 6 or 8 * (1 + n) > size:
        raise MalformedMessage(f"v1 frame declares {n} offsets in {size} bytes")
    if n > MAX_PARTS + 1:
        raise MalformedMessage(f"v1 frame declares {n - 1} parts, more than {MAX_PARTS}")
    offsets = list(struct.unpack_from(f"<{n}Q", frame, 8))
    if offsets[0] != 8 * (1 + n) or any(a > b for a, b in zip(offsets, offsets[1:], strict=False)):
        raise MalformedMessage("v1 frame offsets are out of order")
    if offsets[-1] > size:
        raise MalformedMessage("v1 frame offsets point past its end")
    parts = [frame[a:b] for a, b in zip(offsets, offsets[1:], strict=False)]
    try:
        channel = parts[0].decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedMessage("a v1 frame's channel name is not UTF-8") from None
    try:
        header, parent_header, metadata, content = (unpack(p) for p in parts[1:5])
    except MalformedMessage as e:
        raise MalformedMessage(f"a v1 message part is {e}") from None
    return channel, message_from_parts(header, parent_header, metadata, content, parts[5:])


# -- legacy JSON framing ----------------------------------------------------------------


def encode_json(channel: str, msg: Message) -> str | bytes:
    """The JSON framing of ``msg``: a text frame, or a binary frame if it has buffers."""
    d: dict[str, Any] = {
        "header": msg.header,
        "parent_header": msg.parent_header,
        "metadata": msg.metadata,
        "content": msg.content,
        "channel": channel,
    }
    if not msg.buffers:
        d["buffers"] = []
        return pack(d).decode("utf-8")
    parts = [pack(d), *(bytes(b) for b in msg.buffers)]
    n = len(parts)
    offsets = [4 * (n + 1)]
    for p in parts[:-1]:
        offsets.append(offsets[-1] + len(p))
    return b"".join([struct.pack(f"!{n + 1}I", n, *offsets), *parts])


def decode_json(frame: str | bytes) -> tuple[str, Message]:
    """Parse a JSON-framing WebSocket frame (text, or binary with buffers); raises
    only MalformedMessage."""
    buffers: list[bytes] = []
    if isinstance(frame, str):
        text: str | bytes = frame
    else:
        size = len(frame)
        if size < 4:
            raise MalformedMessage(f"binary frame of {size} bytes is too short")
        (n,) = struct.unpack_from("!I", frame, 0)
        if n < 1 or 4 * (n + 1) > size:
            raise MalformedMessage(f"binary frame declares {n} parts in {size} bytes")
        if n > MAX_PARTS:
            raise MalformedMessage(f"binary frame declares {n} parts, more than {MAX_PARTS}")
        offsets = [*struct.unpack_from(f"!{n}I", frame, 4), size]
        if any(a > b for a, b in zip(offsets, offsets[1:], strict=False)):
            raise MalformedMessage("binary frame offsets are out of order")
        parts = [frame[a:b] for a, b in zip(offsets, offsets[1:], strict=False)]
        text, buffers = parts[0], parts[1:]
    try:
        d = loads(text)
    except MalformedMessage as e:
        raise MalformedMessage(f"WebSocket message is {e}") from None
    if not isinstance(d, dict):
        raise MalformedMessage("WebSocket message is not a JSON object")
    channel = d.get("channel")
    return (
        str(channel) if channel else "shell",
        message_from_parts(
            d.get("header"), d.get("parent_header"), d.get("metadata"), d.get("content"), buffers
        ),
    )


# -- things the server adds -------------------------------------------------------------


def rate_limit_notice(msg: Message) -> str | None:
    """The first line of a server "IOPub message/data rate exceeded" notice, else None.

    jupyter_server drops a kernel's output when it exceeds
    ``iopub_msg_rate_limit``/``iopub_data_rate_limit`` and says so once per flood, as
    an iopub stderr stream. A console wants to show a short line for it (once), not
    the server's ten-line advice about ``--ServerApp`` options.
    """
    if msg.msg_type != "stream" or msg.content.get("name") != "stderr":
        return None
    text = msg.content.get("text")
    if not isinstance(text, str):
        return None
    for marker in _RATE_LIMIT_MARKERS:
        if text.startswith(marker):
            return marker + ": the server is dropping output"
    return None


def server_status(msg: Message) -> str | None:
    """``"restarting"`` or ``"dead"`` when ``msg`` is the server's kernel-status notice.

    jupyter_server injects these iopub ``status`` messages itself (with no parent)
    when its restarter restarts a kernel that died, or gives up on it.
    """
    if msg.msg_type == "status":
        state = msg.content.get("execution_state")
        if state in ("restarting", "dead"):
            return str(state)
    return None
