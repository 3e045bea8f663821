"""Client workers for ``bench/run``: one measurement per process, JSON on stdout.

``python bench/workers.py CLIENT TASK CONNECTION_FILE N [TASK CONNECTION_FILE N ...]``

CLIENT is ``kconsole`` (kconsole's KernelClient over ZMQTransport), ``jupyter``
(jupyter_client's BlockingKernelClient) or ``raw`` (the floor: blocking pyzmq DEALER +
SUB sockets signing with kconsole.protocol.Session, nothing else). TASK is ``exec``
(N executes of ``pass`` with store_history off, reply and idle awaited: with it on,
ipykernel's history database write is most of each round trip), ``info`` (N kernel_info requests),
``complete`` (N complete_requests), ``flood`` (one cell printing N lines, stream
text counted until idle) or ``dataframe`` (the kernel side of showing a 5,000-row
DataFrame made once, so that no console pays for the first pandas import and repr;
N is ignored).

The timed loop starts after the client is connected and the kernel answered (IOPub
included), so startup costs are measured by the console scenarios, not here. Each
worker prints ``{"seconds": ..., "count": ..., "lines": ...}`` (with several tasks,
``{"tasks": [...]}``, one of those per task, in order).
"""

from __future__ import annotations

import json
import sys
import time

EXEC_CODE = "pass"
COMPLETE_CODE = "import os; os.pa"
SETUP_CODE = "import os"


#: The DataFrame a console shows in full: 5,000 rows of 5 random floats (its HTML,
#: some 800 KB, is over kconsole's markup limit: both consoles show its text/plain).
DATAFRAME_SETUP = (
    "import pandas as pd, numpy as np; pd.set_option('display.max_rows', None); "
    "df = pd.DataFrame(np.random.default_rng(0).random((5000, 5)), columns=list('abcde'))"
)
DATAFRAME_WARM = DATAFRAME_SETUP + "; _ = (df._repr_html_(), repr(df))"


def flood_code(n: int) -> str:
    return f"_ = [print(i) for i in range({n})]"


# -- raw pyzmq floor ----------------------------------------------------------------------


def raw(task: str, cf: str, n: int) -> dict[str, float]:
    import zmq

    from kconsole.connection import ConnectionInfo
    from kconsole.zmq_transport import set_curve_client

    info = ConnectionInfo.from_file(cf)
    session = info.session()
    ctx = zmq.Context()
    shell = ctx.socket(zmq.DEALER)
    set_curve_client(shell, info)  # a file with curve keys: CurveZMQ, as every client
    shell.linger = 0
    shell.setsockopt(zmq.IDENTITY, session.session_id.encode())
    shell.connect(info.url("shell"))
    iopub = ctx.socket(zmq.SUB)
    set_curve_client(iopub, info)
    iopub.linger = 0
    iopub.setsockopt(zmq.SUBSCRIBE, b"")
    iopub.connect(info.url("iopub"))
    poller = zmq.Poller()
    poller.register(shell, zmq.POLLIN)
    poller.register(iopub, zmq.POLLIN)

    def send(msg_type: str, content: dict | None = None) -> str:
        msg = session.msg(msg_type, content or {})
        shell.send_multipart(session.serialize(msg, identities=[]))
        return msg.msg_id

    def wait(msg_id: str, want_idle: bool, on_iopub=None) -> None:
        replied, idle = False, not want_idle
        while not (replied and idle):
            for sock, _ in poller.poll():
                msg = session.deserialize(sock.recv_multipart())
                if msg.parent_id != msg_id:
                    continue
                if sock is shell:
                    replied = True
                elif msg.msg_type == "status":
                    if msg.content.get("execution_state") == "idle":
                        idle = True
                elif on_iopub is not None:
                    on_iopub(msg)

    # Ready: a kernel_info reply, then any IOPub message (the subscription is live).
    while True:
        wait(send("kernel_info_request"), want_idle=False)
        if iopub.poll(500):
            while iopub.poll(50):
                iopub.recv_multipart()
            break

    lines = 0
    if task == "complete":
        wait(send("execute_request", _exec_content(SETUP_CODE)), want_idle=True)
    t0 = time.perf_counter()
    if task == "exec":
        for _ in range(n):
            wait(send("execute_request", _exec_content(EXEC_CODE, False)), want_idle=True)
    elif task == "info":
        # The floor reads only the reply; IOPub status messages queue unread.
        for _ in range(n):
            mid = send("kernel_info_request")
            while session.deserialize(shell.recv_multipart()).parent_id != mid:
                pass
    elif task == "complete":
        code = COMPLETE_CODE
        for _ in range(n):
            mid = send("complete_request", {"code": code, "cursor_pos": len(code)})
            while session.deserialize(shell.recv_multipart()).parent_id != mid:
                pass
    elif task == "flood":

        def count(msg) -> None:
            nonlocal lines
            if msg.msg_type == "stream":
                lines += msg.content.get("text", "").count("\n")

        wait(send("execute_request", _exec_content(flood_code(n))), True, count)
    dt = time.perf_counter() - t0
    shell.close()
    iopub.close()
    ctx.term()
    return {"seconds": dt, "count": n, "lines": lines}


def _exec_content(code: str, store_history: bool = True) -> dict:
    return {
        "code": code,
        "silent": False,
        "store_history": store_history,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }


# -- kconsole -----------------------------------------------------------------------------


def kconsole(task: str, cf: str, n: int) -> dict[str, float]:
    import asyncio

    from kconsole.connection import ConnectionInfo
    from kconsole.kernel_connection import connect_client
    from kconsole.zmq_transport import ZMQTransport

    async def main() -> dict[str, float]:
        info = ConnectionInfo.from_file(cf)
        session = info.session()
        client = await connect_client(ZMQTransport(info, session), session, 30.0)
        lines = 0

        def count(msg) -> None:
            nonlocal lines
            if msg.msg_type == "stream":
                lines += msg.content.get("text", "").count("\n")

        def ignore(msg) -> None:
            pass

        if task == "complete":
            await client.execute(SETUP_CODE)
        t0 = time.perf_counter()
        if task == "exec":
            for _ in range(n):
                await client.execute(EXEC_CODE, store_history=False, on_output=ignore)
        elif task == "info":
            for _ in range(n):
                await client.kernel_info_request(timeout=10)
        elif task == "complete":
            code = COMPLETE_CODE
            for _ in range(n):
                await client.complete(code, len(code), timeout=10)
        elif task == "flood":
            await client.execute(flood_code(n), on_output=count)
        elif task == "dataframe":
            await client.execute(DATAFRAME_WARM, on_output=ignore)
        dt = time.perf_counter() - t0
        await client.close()
        return {"seconds": dt, "count": n, "lines": lines}

    return asyncio.run(main())


# -- jupyter_client -----------------------------------------------------------------------


def jupyter(task: str, cf: str, n: int) -> dict[str, float]:
    from jupyter_client import BlockingKernelClient

    kc = BlockingKernelClient()
    kc.load_connection_file(cf)
    kc.start_channels()
    kc.wait_for_ready(timeout=30)
    lines = 0

    def count(msg) -> None:
        nonlocal lines
        if msg["msg_type"] == "stream":
            lines += msg["content"].get("text", "").count("\n")

    def ignore(msg) -> None:
        pass

    if task == "complete":
        kc.execute_interactive(SETUP_CODE, output_hook=ignore, timeout=30)
    t0 = time.perf_counter()
    if task == "exec":
        for _ in range(n):
            kc.execute_interactive(EXEC_CODE, store_history=False, output_hook=ignore, timeout=30)
    elif task == "info":
        for _ in range(n):
            kc.kernel_info(reply=True, timeout=10)
    elif task == "complete":
        code = COMPLETE_CODE
        for _ in range(n):
            kc.complete(code, len(code), reply=True, timeout=10)
    elif task == "flood":
        kc.execute_interactive(flood_code(n), output_hook=count, timeout=300)
    dt = time.perf_counter() - t0
    kc.stop_channels()
    return {"seconds": dt, "count": n, "lines": lines}


CLIENTS = {"raw": raw, "kconsole": kconsole, "jupyter": jupyter}


def main(argv: list[str]) -> int:
    client, *jobs = argv
    if len(jobs) == 3:
        task, cf, n = jobs
        print(json.dumps(CLIENTS[client](task, cf, int(n))))
        return 0
    # Several (TASK, CONNECTION_FILE, N) in one process: one start-up for all of them.
    results = [
        CLIENTS[client](jobs[i], jobs[i + 1], int(jobs[i + 2])) for i in range(0, len(jobs), 3)
    ]
    print(json.dumps({"tasks": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
