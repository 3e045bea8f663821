"""Kernels behind Jupyter Server, Enterprise Gateway, Kernel Gateway and a JupyterHub
user's server: what the server in the middle costs, beside direct zmq to the same
kernel, in one run.

For each engine (a real server on loopback; the gateways from their own environments,
built as the tests build them: tests/engines.py) one ipykernel is started through REST
and measured two ways, interleaved:

* through the engine: kconsole's WebSocketTransport (v1 framing where offered);
* direct: kconsole's ZMQTransport on the kernel's ports, from the connection file the
  engine wrote in its runtime dir (the engine keeps relaying meanwhile).

Round trip: ``execute("pass")`` with its reply and idle, median of N. Flood: one cell
printing 200,000 lines, wall time until idle, and whether every line arrived (a
server's IOPub rate limits may drop output: that is reported, not hidden).

Run: python bench/engines_bench.py [--rounds N] [--engines server,eg,kg,hub]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

import engines  # noqa: E402
from remote_bench import WARMUP, start_server, time_executes  # noqa: E402

from kconsole.client import KernelClient  # noqa: E402
from kconsole.connection import ConnectionInfo  # noqa: E402
from kconsole.remote import ServerClient, WebSocketTransport  # noqa: E402
from kconsole.zmq_transport import ZMQTransport  # noqa: E402

FLOOD = 200_000


async def _client(transport: Any, session: Any) -> KernelClient:
    client = KernelClient(transport, session)
    await client.start()
    await client.wait_for_ready(60)
    return client


async def round_trips(client: KernelClient, n: int) -> float:
    return statistics.median(await time_executes(client, n))


async def flood(client: KernelClient, lines: int) -> tuple[float, int]:
    got: list[str] = []

    def out(msg: Any) -> None:
        if msg.msg_type == "stream":
            got.append(msg.content.get("text", ""))

    t0 = time.perf_counter()
    await client.execute(f"for i in range({lines}): print(i)", on_output=out)
    wall = time.perf_counter() - t0
    return wall, "".join(got).count("\n")


def start_engine(kind: str, tmp: Path) -> tuple[Any, str, str, Path]:
    """(handle with .stop(), url, token, runtime dir) of a running engine."""
    if kind == "server":
        proc, url, token, runtime = start_server(tmp)

        class Stop:
            def stop(self) -> None:
                proc.terminate()
                proc.wait(15)

        return Stop(), url, token, runtime
    if kind == "hub":
        from test_engine_hub import Hub

        hub = Hub(engines.build("hub"), tmp)
        token = hub.user("bench")
        return hub, hub.spawn("bench"), token, tmp
    from test_engine_gateways import Gateway

    gw = Gateway(kind, engines.build(kind), tmp)
    return gw, gw.url, gw.token, tmp / "runtime"


def connection_file(runtime: Path, kernel_id: str) -> Path:
    """The kernel's connection file, in the engine's runtime dir (a hub user's server
    keeps its own somewhere under the hub's home directories)."""
    name = f"kernel-{kernel_id}.json"
    if (runtime / name).exists():
        return runtime / name
    return next(runtime.rglob(name))


async def measure(kind: str, rounds: int, lines: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        handle, url, token, runtime = start_engine(kind, Path(d))
        try:
            import os

            os.environ.setdefault("KERNEL_USERNAME", "bench")
            from kconsole.remote.rest import kernel_env

            server = ServerClient(url, token)
            model = await server.start_kernel("python3", kernel_env())
            ws = WebSocketTransport(server, model.id)
            via = await _client(ws, ws.session())
            info = ConnectionInfo.from_file(connection_file(runtime, model.id))
            session = info.session()
            direct = await _client(ZMQTransport(info, session), session)
            res: dict[str, Any] = {"rt": {}, "flood": {}}
            for label, client in (("engine", via), ("zmq", direct), ("engine2", via)):
                key = label.rstrip("2")
                res["rt"].setdefault(key, []).append(await round_trips(client, rounds))
            for label, client in (("zmq", direct), ("engine", via)):
                res["flood"][label] = await flood(client, lines)
            await via.close()
            await direct.close()
            await server.delete_kernel(model.id)
            return res
        finally:
            handle.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--lines", type=int, default=FLOOD)
    ap.add_argument("--engines", default="server,eg,kg,hub")
    a = ap.parse_args()
    print(f"ipykernel behind each engine vs direct zmq to the same kernel; {a.rounds} round")
    print(f"trips after {WARMUP} warm-up (median), one {a.lines:,}-line print (wall to idle)\n")
    print("| engine | round trip via engine | direct zmq | ratio | flood via engine | "
          "direct zmq | ratio | lines via engine |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for kind in a.engines.split(","):
        r = asyncio.run(measure(kind, a.rounds, a.lines))
        rt_e, rt_z = statistics.median(r["rt"]["engine"]), statistics.median(r["rt"]["zmq"])
        (f_e, n_e), (f_z, n_z) = r["flood"]["engine"], r["flood"]["zmq"]
        name = {
            "server": "Jupyter Server",
            "eg": "Enterprise Gateway",
            "kg": "Kernel Gateway",
            "hub": "JupyterHub (user server through the proxy)",
        }
        print(
            f"| {name.get(kind, kind)} | {rt_e * 1e3:.2f} ms | {rt_z * 1e3:.2f} ms | "
            f"x{rt_e / rt_z:.2f} | {f_e:.2f} s | {f_z:.2f} s | x{f_e / f_z:.2f} | "
            f"{n_e:,} of {n_z:,} |"
        )


if __name__ == "__main__":
    main()
