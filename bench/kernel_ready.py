#!/usr/bin/env python3
"""Time from spawning a kernel to its kernel_info_reply: kconsole's built-in kernel vs
ipykernel, interleaved in one run on the same machine. Prints medians and the ratio.

    python bench/kernel_ready.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kconsole.connection import ConnectionInfo


def _time_to_kernel_info(module: str, workdir: Path) -> float:
    """Seconds from spawning ``python -m module -f FILE`` to its kernel_info_reply."""
    import zmq

    info = ConnectionInfo.new()
    cf = workdir / f"kernel-{module}-{time.monotonic_ns()}.json"
    info.write(cf)
    session = info.session()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.setsockopt(zmq.RECONNECT_IVL, 2)  # the kernel binds late; retry quickly
    sock.setsockopt(zmq.IDENTITY, session.session_id.encode())
    sock.connect(info.url("shell"))
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "-f", str(cf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        sock.send_multipart(session.serialize(session.msg("kernel_info_request")))
        assert sock.poll(30_000), f"{module} did not answer kernel_info"
        sock.recv_multipart()
        return time.perf_counter() - t0
    finally:
        proc.kill()
        proc.wait()
        sock.close()
        ctx.term()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as d:
        for _ in range(args.runs):  # interleaved, so machine load hits both alike
            ours.append(_time_to_kernel_info("kconsole.kernel", Path(d)))
            theirs.append(_time_to_kernel_info("ipykernel_launcher", Path(d)))
    mo, mt = statistics.median(ours), statistics.median(theirs)
    print(f"{'scenario':32} {'kconsole':>10} {'ipykernel':>10} {'ratio':>6}")
    print(f"{'start to kernel_info reply':32} {mo * 1000:8.1f}ms {mt * 1000:8.1f}ms {mo / mt:6.2f}")


if __name__ == "__main__":
    sys.exit(main())
