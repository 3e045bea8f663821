"""Measuring one console process: wall time, CPU time and peak RSS.

Wall time runs from ``Popen`` to the ``wait4`` that reaps the process; CPU time comes
from that ``wait4``'s rusage. Peak RSS is the process's own ``VmHWM``, sampled from
``/proc`` while it runs (``ru_maxrss`` of ``wait4`` would also count the kernel a
console started and reaped). A console that starts no process of its own is measured
exactly instead: it runs under a small fork-and-exec trampoline (what ``/usr/bin/time``
does) whose ``wait4`` gives its ``ru_maxrss``, wall and CPU time. Not straight from
this harness: Linux carries the peak RSS of the image a process was exec'd from into
its ``ru_maxrss``, and ``subprocess`` execs from (a vfork of) this ~35 MB process, which
would put a 35 MB floor under every console measured. The pipes are drained by threads
so a flood never blocks.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Mark:
    """One stage of a staged run: when its input was written, when its marker was read
    back, and the console's CPU time (s) and peak RSS (MB) at that moment."""

    sent: float
    seen: float
    cpu: float
    rss_mb: float

    @property
    def wall(self) -> float:
        return self.seen - self.sent


@dataclass
class ProcResult:
    wall: float
    cpu: float
    rss_mb: float
    rc: int
    lines: int
    nbytes: int
    head: bytes
    tail: bytes
    stderr: bytes
    marks: list[Mark] = field(default_factory=list)


def vm_hwm_kb(pid: int) -> int:
    """The peak resident set of ``pid`` in KiB (0 once it exited)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class HWMSampler(threading.Thread):
    """Samples a process's VmHWM every ``interval`` seconds until stopped."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_kb = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak_kb = max(self.peak_kb, vm_hwm_kb(self.pid))
            self._stop_event.wait(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak_kb


#: Run as ``python -S -c TRAMPOLINE OUT ARGV...``: forks (a fresh process, its peak RSS
#: this small interpreter's), execs ARGV in the child, and writes the child's rusage and
#: wall time (fork to reap) to the file OUT.
TRAMPOLINE = """
import json, os, sys, time
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
with open(sys.argv[1], "w") as f:
    json.dump({"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "maxrss_kb": ru.ru_maxrss}, f)
sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
"""


class _Watch:
    """Tells the feeder when a marker shows up in what the drain thread reads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.want: bytes | None = None
        self.window = b""
        self.seen = 0.0
        self.event = threading.Event()

    def expect(self, marker: bytes) -> None:
        with self.lock:
            self.want, self.window = marker, b""
            self.event.clear()

    def feed(self, chunk: bytes) -> None:
        with self.lock:
            if self.want is None:
                return
            window = self.window + chunk
            if self.want in window:
                self.seen = time.perf_counter()
                self.want = None
                self.event.set()
            else:
                self.window = window[-len(self.want) :]


def _drain(stream, out: dict, keep: int = 65536, watch: _Watch | None = None) -> None:
    head = bytearray()
    tail = b""
    lines = 0
    nbytes = 0
    read = stream.read1 if hasattr(stream, "read1") else stream.read
    while True:
        chunk = read(1 << 16)
        if not chunk:
            break
        if watch is not None:
            watch.feed(chunk)
        nbytes += len(chunk)
        lines += chunk.count(b"\n")
        if len(head) < keep:
            head += chunk[: keep - len(head)]
        tail = (tail + chunk)[-keep:]
    out.update(head=bytes(head), tail=tail, lines=lines, nbytes=nbytes)


def run_process(
    argv: list[str],
    *,
    stdin: bytes = b"",
    env: dict[str, str] | None = None,
    timeout: float = 120.0,
    cwd: str | Path | None = None,
    starts_children: bool = True,
    stages: list[tuple[bytes, bytes]] | tuple = (),
) -> ProcResult:
    """Run ``argv`` with ``stdin`` piped in and stdout/stderr piped out; measure it.

    ``starts_children=False`` (an attaching console) runs it under :data:`TRAMPOLINE`,
    whose exact ``ru_maxrss`` stands for the peak RSS.

    ``stages`` (input, marker) are written first, one at a time: each input, then a
    wait for its marker on stdout, and a :class:`Mark` in ``marks`` (a stage whose
    marker does not come within ``timeout`` ends the staging); ``stdin`` follows, and
    EOF. The difference of two marks is what the console did between them, without
    its start-up and exit.
    """
    report = None
    if not starts_children:
        fd, report = tempfile.mkstemp(prefix="kconsole-bench-", suffix=".json")
        os.close(fd)
        argv = [sys.executable, "-S", "-c", TRAMPOLINE, report, *argv]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
        # Its own group when under the trampoline: the timeout must kill the console too.
        start_new_session=report is not None,
    )
    sampler = HWMSampler(proc.pid)
    sampler.start()
    out: dict = {}
    err: dict = {}
    watch = _Watch()
    marks: list[Mark] = []
    threads = [
        threading.Thread(target=_drain, args=(proc.stdout, out, 65536, watch), daemon=True),
        threading.Thread(target=_drain, args=(proc.stderr, err, 16384), daemon=True),
    ]
    for t in threads:
        t.start()

    def feed() -> None:
        try:
            assert proc.stdin is not None
            console = 0
            for data, marker in stages:
                watch.expect(marker)
                sent = time.perf_counter()
                proc.stdin.write(data)
                proc.stdin.flush()
                if not watch.event.wait(timeout):
                    break
                console = console or _console_pid(proc.pid, report is not None)
                cpu, rss = cpu_seconds(console), vm_hwm_kb(console) / 1024
                marks.append(Mark(sent, watch.seen, cpu, rss))
            proc.stdin.write(stdin)
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    killer = threading.Timer(timeout, _kill_group if report else _kill, args=(proc.pid,))
    killer.start()
    try:
        _, status, ru = os.wait4(proc.pid, 0)
    finally:
        killer.cancel()
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    peak_kb = sampler.stop()
    for t in threads:
        t.join(10)
    cpu = ru.ru_utime + ru.ru_stime
    if report is not None:
        try:
            with open(report) as f:
                exact = json.load(f)
        except (OSError, ValueError):  # killed by the timeout: no report
            exact = {}
        finally:
            os.unlink(report)
        wall = exact.get("wall", wall)
        cpu = exact.get("cpu", cpu)
        peak_kb = exact.get("maxrss_kb", peak_kb)
    return ProcResult(
        wall=wall,
        cpu=cpu,
        rss_mb=peak_kb / 1024,
        rc=proc.returncode,
        lines=out.get("lines", 0),
        nbytes=out.get("nbytes", 0),
        head=out.get("head", b""),
        tail=out.get("tail", b""),
        stderr=err.get("tail", b""),
        marks=marks,
    )


def _console_pid(pid: int, trampoline: bool) -> int:
    """The console's pid: ``pid``, or its child when it runs under the trampoline."""
    if not trampoline:
        return pid
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = f.read().split()
    except OSError:
        return 0
    return int(children[0]) if children else 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time ``pid`` has used so far (its own, not its children's);
    0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, 9)
    except ProcessLookupError:
        pass


def _kill(pid: int) -> None:
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass


# -- stray kernels ------------------------------------------------------------------------


def processes_mentioning(needle: str) -> list[int]:
    """Pids of processes whose command line contains ``needle`` (our temp dir)."""
    pids = []
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if needle in cmd:
            pids.append(int(d))
    return pids


def kill_strays(needle: str, grace: float = 3.0) -> int:
    """Wait up to ``grace`` s for processes mentioning ``needle`` to end, then kill them.

    Returns how many had to be killed (kernels a console left behind).
    """
    deadline = time.monotonic() + grace
    while True:
        pids = processes_mentioning(needle)
        if not pids or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for pid in pids:
        _kill(pid)
    return len(pids)


ANSI = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[PX^_][^\x1b]*\x1b\\"
    rb"|\x1b[=>()][0-9A-Za-z]?|\r"
)
