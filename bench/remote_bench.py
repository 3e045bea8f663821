"""Round trip of a trivial execute through a Jupyter Server WebSocket vs direct zmq.

Starts ``jupyter server`` on a free loopback port (own runtime/config/data dirs), starts
one ipykernel through REST, and times ``KernelClient.execute("pass")`` (reply *and*
idle received) against that same kernel three ways:

* WebSocket, ``v1.kernel.websocket.jupyter.org`` framing;
* WebSocket, legacy JSON framing;
* zmq straight to the kernel's ports, from the connection file the server wrote in
  its runtime dir (the server keeps relaying meanwhile; nothing else talks to it).

Run: python bench/remote_bench.py [rounds]   (needs jupyter-server and websockets)
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from kconsole.client import KernelClient
from kconsole.connection import ConnectionInfo
from kconsole.remote import ServerClient, WebSocketTransport
from kconsole.transport import Transport
from kconsole.zmq_transport import ZMQTransport

WARMUP = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(tmp: Path) -> tuple[subprocess.Popen[bytes], str, str, Path]:
    token = secrets.token_hex(16)
    port = free_port()
    env = dict(os.environ)
    env.update(
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_DATA_DIR=str(tmp / "data"),
    )
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={tmp}",
        ],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    req = urllib.request.Request(url + "api/status", headers={"Authorization": f"token {token}"})
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise SystemExit("jupyter server exited during start")
        try:
            with urllib.request.urlopen(req, timeout=2):
                break
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise SystemExit("jupyter server did not start in 60 s") from None
            try:
                proc.wait(timeout=0.1)  # wait on its exit between polls
            except subprocess.TimeoutExpired:
                pass
    return proc, url, token, tmp / "runtime"


async def time_executes(client: KernelClient, rounds: int) -> list[float]:
    for _ in range(WARMUP):
        await client.execute("pass", store_history=False)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await client.execute("pass", store_history=False)
        times.append(time.perf_counter() - t0)
    return times


async def measure(transport: Transport, session_factory: object, rounds: int) -> list[float]:
    session = session_factory() if callable(session_factory) else session_factory
    client = KernelClient(transport, session)  # type: ignore[arg-type]
    await client.start()
    try:
        await client.wait_for_ready(30)
        return await time_executes(client, rounds)
    finally:
        await client.close()


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        proc, url, token, runtime = start_server(Path(d))
        server = ServerClient(url, token)
        try:
            model = await server.start_kernel()
            results: dict[str, list[float]] = {}
            for label, force_json in (("websocket v1", False), ("websocket json", True)):
                ws = WebSocketTransport(server, model.id, force_json=force_json)
                results[label] = await measure(ws, ws.session, rounds)
            info = ConnectionInfo.from_file(runtime / f"kernel-{model.id}.json")
            session = info.session()
            results["zmq direct"] = await measure(ZMQTransport(info, session), session, rounds)
            await server.delete_kernel(model.id)
        finally:
            proc.terminate()
            proc.wait(timeout=15)

    base = statistics.median(results["zmq direct"])
    print(f"execute('pass') round trip, {rounds} rounds after {WARMUP} warm-up, same kernel")
    for label, times in results.items():
        med = statistics.median(times)
        p90 = sorted(times)[int(0.9 * len(times))]
        print(f"  {label:15s} median {med * 1e3:6.2f} ms  p90 {p90 * 1e3:6.2f} ms  "
              f"x{med / base:4.2f} of zmq")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
