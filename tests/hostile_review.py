"""A hostile kernel for the protocol review (tests/test_review_protocol.py): the one of
tests/hostile_protocol.py, plus requests answered with a reply of the wrong type.

Run as ``python hostile_review.py CONNECTION_FILE``. ``execute_request`` with code
``wrongtype REPLY_TYPE`` is answered with a ``REPLY_TYPE`` message (parented to the
request) whose ``payload`` holds entries that are not objects, after a stream
``before-reply``. Code ``quotes`` publishes a stream whose content frame is
:data:`QUOTES` (signed), then a good stream ``after-quotes``. Any other code behaves
as in hostile_protocol.py, except ``never-reply``: a stream ``waiting-forever`` and no
reply ever (interrupt_request is still answered).
"""

from __future__ import annotations

import sys
from typing import Any

import zmq
from hostile_protocol import HostileKernel

from kconsole.protocol import Message

#: Unterminated JSON whose every quote is escaped, past the depth check's bracket count:
#: a string-literal regex that retries at each quote scans to the end each time.
QUOTES = b'{"name":"stdout","text":' + b"[" * 101 + b'"' + b'\\"' * 200_000 + b"}"


class ReviewKernel(HostileKernel):
    def handle(self, sock: zmq.Socket[Any], req: Message) -> bool:
        code = str(req.content.get("code", "")).strip()
        if req.msg_type == "execute_request" and code == "never-reply":
            self.publish("stream", {"name": "stdout", "text": "waiting-forever\n"}, req)
            return False
        if req.msg_type == "execute_request" and code == "quotes":
            self.publish_raw("stream", QUOTES, req)
            self.publish("stream", {"name": "stdout", "text": "after-quotes\n"}, req)
            self.count += 1
            self.reply(sock, req, {"status": "ok", "execution_count": self.count})
            return False
        if req.msg_type == "execute_request" and code.startswith("wrongtype "):
            reply_type = code.split()[1]
            self.count += 1
            self.publish("stream", {"name": "stdout", "text": "before-reply\n"}, req)
            content = {"status": "ok", "execution_count": self.count, "payload": ["x", 5]}
            msg = self.session.msg(reply_type, content, parent=req)
            sock.send_multipart(self.session.serialize(msg, req.identities))
            return False
        return super().handle(sock, req)


def main() -> None:
    kernel = ReviewKernel(sys.argv[1], None)
    try:
        kernel.serve()
    finally:
        for s in (kernel.shell, kernel.control, kernel.stdin, kernel.iopub):
            s.close()
        kernel.ctx.destroy(linger=500)


if __name__ == "__main__":
    main()
