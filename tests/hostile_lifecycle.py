"""A minimal kernel that misbehaves on purpose, for the lifecycle tests.

``python hostile_lifecycle.py CONNECTION_FILE MODE`` binds random loopback ports,
writes the connection file and serves until killed. It answers kernel_info like a
real kernel (busy, reply, idle) and echoes the heartbeat. MODE says what it does to
an execute_request:

* ``no-idle``: busy, a stream, the reply, and never the ``idle`` (what ipykernel's
  dropped messages look like to a client);
* ``payload JSON``: a normal execution whose reply carries ``JSON`` as its
  ``payload`` (whatever it is: a non-list, items that are not dicts, wrong types).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kconsole.connection import ConnectionInfo
from kconsole.protocol import Message, new_key


def main() -> None:
    path, mode = sys.argv[1], sys.argv[2]
    payload = json.loads(sys.argv[3]) if mode == "payload" else []
    ctx = zmq.Context()
    sockets = {
        "shell": ctx.socket(zmq.ROUTER),
        "control": ctx.socket(zmq.ROUTER),
        "stdin": ctx.socket(zmq.ROUTER),
        "iopub": ctx.socket(zmq.PUB),
        "hb": ctx.socket(zmq.REP),
    }
    ports = {name: s.bind_to_random_port("tcp://127.0.0.1") for name, s in sockets.items()}
    info = ConnectionInfo(
        shell_port=ports["shell"],
        iopub_port=ports["iopub"],
        stdin_port=ports["stdin"],
        control_port=ports["control"],
        hb_port=ports["hb"],
        key=new_key(),
    )
    session = info.session()
    info.write(path)
    iopub = sockets["iopub"]

    def publish(msg_type: str, content: dict, parent: Message) -> None:
        iopub.send_multipart(session.serialize(session.msg(msg_type, content, parent=parent)))

    poller = zmq.Poller()
    for name in ("shell", "control", "hb"):
        poller.register(sockets[name], zmq.POLLIN)
    count = 0
    while True:
        for sock, _ in poller.poll():
            frames = sock.recv_multipart()
            if sock is sockets["hb"]:
                sock.send_multipart(frames)
                continue
            msg = session.deserialize(frames)
            idents = frames[: frames.index(b"<IDS|MSG>")]
            t = msg.msg_type
            publish("status", {"execution_state": "busy"}, msg)
            if t == "kernel_info_request":
                content = {
                    "status": "ok",
                    "protocol_version": "5.3",
                    "implementation": "hostile",
                    "implementation_version": "0",
                    "language_info": {"name": "python", "version": "3"},
                    "banner": "",
                }
            elif t == "execute_request":
                count += 1
                publish("stream", {"name": "stdout", "text": "ran\n"}, msg)
                content = {"status": "ok", "execution_count": count, "payload": payload}
            elif t == "is_complete_request":
                content = {"status": "complete"}
            else:
                content = {"status": "ok"}
            reply = session.msg(t.replace("_request", "_reply"), content, parent=msg)
            sock.send_multipart(session.serialize(reply, idents))
            if not (mode == "no-idle" and t == "execute_request"):
                publish("status", {"execution_state": "idle"}, msg)


if __name__ == "__main__":
    main()
