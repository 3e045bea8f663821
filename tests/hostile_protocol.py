"""A hostile Jupyter kernel: real zmq sockets, the real HMAC key, messages no real
kernel sends.

Run as ``python hostile_protocol.py CONNECTION_FILE [BAD_REPLY]``: it binds random
loopback ports, writes the connection file, then serves until shutdown_request.

* ``execute_request`` with code ``poison KIND`` publishes, parented to the request,
  the poison message KIND (see :data:`POISONS`), then a good stream
  ``after-poison KIND``, then the reply and idle. Any other code is echoed as a
  stream ``echo: CODE``.
* ``BAD_REPLY`` names one reply field to break (see :data:`BAD_REPLIES`); every
  other reply is well formed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import zmq

from kconsole.connection import ConnectionInfo
from kconsole.protocol import DELIM, Message, pack, topic

_KERNEL_ID = "hostile"


def _deep(levels: int) -> bytes:
    return b'{"name":"stdout","text":' + b"[" * levels + b"]" * levels + b"}"


#: What ``poison KIND`` publishes: the four dict frames' content part (raw bytes,
#: signed), or a callable building the whole frame list.
POISONS: dict[str, bytes] = {
    "deep": _deep(1000),
    "deeper": _deep(100_000),
    "notjson": b"{not json",
    "badutf8": b'{"name":"stdout","text":"\xff\xfe bytes that are not UTF-8\\n"}',
    "surrogate": b'{"name":"stdout","text":"lone \\ud800 surrogate\\n"}',
    "hugeint": b'{"name":"stdout","text":' + b"9" * 100_000 + b"}",
    "list": b"[1, 2, 3]",
    "textlist": b'{"name":"stdout","text":["not", "a", "string"]}',
    "namelist": b'{"name":["x"],"text":"name is a list\\n"}',
}

#: Reply fields ``BAD_REPLY`` can break: reply type -> content update.
BAD_REPLIES: dict[str, tuple[str, dict[str, Any]]] = {
    "language_info": ("kernel_info_reply", {"language_info": "python"}),
    "banner": ("kernel_info_reply", {"banner": ["not", "text"]}),
    "history": ("history_reply", {"history": 7}),
    "cursor_start": ("complete_reply", {"cursor_start": "zero"}),
    "matches": ("complete_reply", {"matches": 5}),
    "inspect_data": ("inspect_reply", {"data": "a string, not a bundle"}),
    "execution_count": ("execute_reply", {"execution_count": "one"}),
    "status": ("execute_reply", {"status": ["ok"]}),
}


class HostileKernel:
    def __init__(self, path: str, bad_reply: str | None) -> None:
        self.info = ConnectionInfo(ip="127.0.0.1", key=str(uuid.uuid4()).encode())
        self.session = self.info.session()
        self.bad_reply = BAD_REPLIES.get(bad_reply or "")
        self.ctx = zmq.Context()
        self.shell = self._bind(zmq.ROUTER, "shell")
        self.control = self._bind(zmq.ROUTER, "control")
        self.stdin = self._bind(zmq.ROUTER, "stdin")
        self.iopub = self._bind(zmq.PUB, "iopub")
        self.hb = self._bind(zmq.REP, "hb")
        self.count = 0
        self.info.write(path)

    def _bind(self, kind: int, channel: str) -> zmq.Socket[Any]:
        sock = self.ctx.socket(kind)
        sock.linger = 500
        setattr(self.info, f"{channel}_port", sock.bind_to_random_port("tcp://127.0.0.1"))
        return sock

    # -- sending -------------------------------------------------------------------

    def publish(self, msg_type: str, content: dict[str, Any], parent: Message | None) -> None:
        msg = self.session.msg(msg_type, content, parent=parent)
        self.iopub.send_multipart(
            self.session.serialize(msg, [topic(_KERNEL_ID, msg_type)]), copy=True
        )

    def publish_raw(self, msg_type: str, content: bytes, parent: Message) -> None:
        """A message whose content frame is ``content`` as it is, correctly signed."""
        header = pack(self.session.header(msg_type))
        parts = [header, pack(parent.header), b"{}", content]
        frames = [topic(_KERNEL_ID, msg_type), DELIM, self.session.sign(parts), *parts]
        self.iopub.send_multipart(frames)

    def reply(self, sock: zmq.Socket[Any], req: Message, content: dict[str, Any]) -> None:
        reply_type = req.msg_type.replace("_request", "_reply")
        if self.bad_reply is not None and self.bad_reply[0] == reply_type:
            content = {**content, **self.bad_reply[1]}
        msg = self.session.msg(reply_type, content, parent=req)
        sock.send_multipart(self.session.serialize(msg, req.identities))

    # -- serving -------------------------------------------------------------------

    def heartbeat(self) -> None:
        try:
            zmq.proxy(self.hb, self.hb)
        except zmq.ZMQError:
            pass

    def serve(self) -> None:
        threading.Thread(target=self.heartbeat, daemon=True).start()
        poller = zmq.Poller()
        poller.register(self.shell, zmq.POLLIN)
        poller.register(self.control, zmq.POLLIN)
        self.publish("status", {"execution_state": "starting"}, None)
        while True:
            for sock, _ in poller.poll():
                frames = sock.recv_multipart()
                try:
                    req = self.session.deserialize(frames)
                except Exception:
                    continue
                self.publish("status", {"execution_state": "busy"}, req)
                done = self.handle(sock, req)
                self.publish("status", {"execution_state": "idle"}, req)
                if done:
                    return

    def handle(self, sock: zmq.Socket[Any], req: Message) -> bool:
        t = req.msg_type
        c = req.content
        if t == "kernel_info_request":
            self.reply(sock, req, kernel_info())
        elif t == "execute_request":
            code = str(c.get("code", ""))
            if not c.get("silent"):
                self.count += 1
                self.publish("execute_input", {"code": code, "execution_count": self.count}, req)
            for line in code.splitlines():
                if line.startswith("poison "):
                    kind = line.split()[1]
                    self.publish_raw("stream", POISONS[kind], req)
                    text = f"after-poison {kind}\n"
                else:
                    text = f"echo: {line}\n"
                self.publish("stream", {"name": "stdout", "text": text}, req)
            self.reply(
                sock,
                req,
                {
                    "status": "ok",
                    "execution_count": self.count,
                    "payload": [],
                    "user_expressions": {},
                },
            )
        elif t == "complete_request":
            pos = int(c.get("cursor_pos") or 0)
            self.reply(
                sock,
                req,
                {
                    "status": "ok",
                    "matches": ["hostile_match"],
                    "cursor_start": pos,
                    "cursor_end": pos,
                    "metadata": {},
                },
            )
        elif t == "inspect_request":
            self.reply(
                sock,
                req,
                {
                    "status": "ok",
                    "found": True,
                    "data": {"text/plain": "hostile help"},
                    "metadata": {},
                },
            )
        elif t == "is_complete_request":
            self.reply(sock, req, {"status": "complete"})
        elif t == "history_request":
            self.reply(sock, req, {"status": "ok", "history": [[1, 1, "hostile_history_entry"]]})
        elif t == "comm_info_request":
            self.reply(sock, req, {"status": "ok", "comms": {}})
        elif t == "shutdown_request":
            self.reply(sock, req, {"status": "ok", "restart": False})
            return True
        elif t == "interrupt_request":
            self.reply(sock, req, {"status": "ok"})
        return False


def kernel_info() -> dict[str, Any]:
    return {
        "status": "ok",
        "protocol_version": "5.4",
        "implementation": "hostile",
        "implementation_version": "0",
        "language_info": {"name": "python", "version": "3", "file_extension": ".py"},
        "banner": "hostile kernel\n",
        "help_links": [],
    }


def wait_started(proc: subprocess.Popen[bytes], cf: Path, timeout: float = 20.0) -> None:
    """For tests: wait until the kernel ``proc`` has written its connection file ``cf``."""
    deadline = time.monotonic() + timeout
    while True:
        # Polling for a file another process writes: there is no event to wait for.
        if cf.exists():
            try:
                json.loads(cf.read_text())
                return
            except ValueError:
                pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("the hostile kernel did not start")
        time.sleep(0.02)


def main() -> None:
    path = sys.argv[1]
    bad = sys.argv[2] if len(sys.argv) > 2 else None
    kernel = HostileKernel(path, bad)
    try:
        kernel.serve()
    finally:
        for s in (kernel.shell, kernel.control, kernel.stdin, kernel.iopub):
            s.close()
        kernel.ctx.destroy(linger=500)


if __name__ == "__main__":
    main()
