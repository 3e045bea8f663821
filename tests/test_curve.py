"""CurveZMQ transport encryption against the real peers (issue 13).

- ipykernel 7.4 started by jupyter_client 8.10 with transport_encryption="required" is
  attached by kconsole in a pty (execute, complete, input, interrupt, a restart by its
  manager), through a loopback TCP forwarder that records every byte: no cell text
  and no output ever crosses the wire in the clear.
- a kernel `kconsole start --encrypt required` started (the built-in one, on 0.0.0.0)
  is used by jupyter_client's BlockingKernelClient, survives kconsole's restart, and a
  plain zmq subscriber gets none of its output.
- every mismatch is one line naming its cause.

One kernel of each kind per module: the kernels are the slow part.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ptyconsole import KCONSOLE, PtyConsole

from kconsole.connection import ConnectionInfo

zmq = pytest.importorskip("zmq")
pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not zmq.has("curve"), reason="this pyzmq has no CurveZMQ"),
]


class Recorder:
    """A loopback TCP forwarder for each of a kernel's ports, recording all bytes both
    ways: what a packet capture on the loopback interface would show."""

    def __init__(self, info: ConnectionInfo) -> None:
        self.data = bytearray()
        self.lock = threading.Lock()
        self.ports: dict[str, int] = {}
        self._listeners: list[socket.socket] = []
        for ch in ("shell", "iopub", "stdin", "control", "hb"):
            lsock = socket.socket()
            lsock.bind(("127.0.0.1", 0))
            lsock.listen(8)
            self._listeners.append(lsock)
            self.ports[ch] = lsock.getsockname()[1]
            threading.Thread(target=self._accept, args=(lsock, info.port(ch)), daemon=True).start()

    def _accept(self, lsock: socket.socket, port: int) -> None:
        while True:
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(("127.0.0.1", port))
            except OSError:  # the kernel is restarting: the client retries
                conn.close()
                continue
            for a, b in ((conn, up), (up, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                with self.lock:
                    self.data += chunk
                dst.sendall(chunk)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        for lsock in self._listeners:
            lsock.close()


@pytest.fixture(scope="module")
def jc_kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """ipykernel as jupyter_client starts it with transport_encryption="required"."""
    from jupyter_client.manager import KernelManager

    base = tmp_path_factory.mktemp("curve-jc")
    km = KernelManager(kernel_name="python3", connection_file=str(base / "kernel-jc.json"))
    km.start_kernel(transport_encryption="required")
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        kc.stop_channels()
        yield km
    finally:
        km.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def plain_kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """kconsole's built-in kernel without encryption (for "keys met by a plain kernel")."""
    from kconsole.zmq_transport import probe_heartbeat

    path = tmp_path_factory.mktemp("curve-plain") / "kernel-plain.json"
    info = ConnectionInfo.new()
    info.write(path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kconsole.kernel", "-f", str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not probe_heartbeat(info, 1.0):  # each probe waits for its answer
            assert proc.poll() is None and time.monotonic() < deadline
        yield path
    finally:
        proc.kill()
        proc.wait()


def _kconsole(*args: str, env: dict[str, str] | None = None, code: str = "") -> Any:
    return subprocess.run(
        [*KCONSOLE, *args],
        input=code,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def _one_line(p: Any, cause: str) -> None:
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and cause in lines[0], p.stderr
    assert "heartbeat silent" not in p.stderr and "Traceback" not in p.stderr


def test_ipykernel_of_jupyter_client_attached_over_ports_with_curve(jc_kernel: Any) -> None:
    """--ports with --curve-public-key and the secret in the environment, every byte
    through the recorder: execute, complete, input, interrupt, a restart by the
    kernel's manager (same keys), and none of it readable on the wire."""
    info = json.loads(Path(jc_kernel.connection_file).read_text())
    rec = Recorder(ConnectionInfo.from_dict(info))
    ports = ",".join(str(rec.ports[ch]) for ch in ("shell", "iopub", "stdin", "control", "hb"))
    c = PtyConsole(
        ["attach", "--ports", ports, "--key", info["key"]]
        + ["--curve-public-key", info["curve_publickey"]],
        env={"KCONSOLE_CURVE_SECRET_KEY": info["curve_secretkey"]},
    )
    try:
        c.expect_prompt()
        c.sendline("print('MARK' + 'ER-42', 'to' + 'ken')")
        c.expect(r"(?m)^MARKER-42 token")
        c.expect_prompt()
        c.send("import os; os.getcw\t")
        c.expect_cursor_line(r"In \[\d+\]: import os; os\.getcwdb?")
        c.ctrl("c")
        c.expect_prompt()
        c.sendline("name = input('who? '); print('hi', name[::-1])")
        c.expect(r"who\? ")
        c.sendline("zedeni")
        c.expect(r"(?m)^hi inedez")
        c.expect_prompt()
        c.sendline("print('sleep' + 'ing', flush=True); import time; time.sleep(60)")
        c.expect(r"(?m)^sleeping")
        c.ctrl("c")
        c.expect("KeyboardInterrupt", timeout=15)
        c.expect_prompt()

        # Its manager restarts it (same ports and keys), slowly enough for kconsole to
        # see it die: kconsole takes it back once it answers again.
        jc_kernel.shutdown_kernel(now=True, restart=True)
        c.expect("the kernel died", timeout=20)
        jc_kernel.start_kernel(**jc_kernel._launch_args)
        c.expect("the kernel answers again", timeout=40)
        c.sendline("print('after' + ' restart', 1 + 1)")
        c.expect(r"(?m)^after restart 2", timeout=40)
        c.expect_prompt()
        c.ctrl("d")
        assert c.wait_exit(20) == 0
    finally:
        c.close()
        rec.close()
    with rec.lock:
        wire = bytes(rec.data)
    assert len(wire) > 10_000  # the session did cross the recorder
    for text in (b"MARKER", b"ER-42", b"inedez", b"zedeni", b"getcw", b"restart", b"who?"):
        assert text not in wire, text
    assert b"execute_request" not in wire and b"<IDS|MSG>" not in wire


def test_existing_file_of_jupyter_client_and_kernels_listing(jc_kernel: Any) -> None:
    p = _kconsole("attach", "--existing", jc_kernel.connection_file, code="print(6 * 7)\n")
    assert p.returncode == 0 and p.stdout.strip().endswith("42"), (p.stdout, p.stderr)

    runtime = Path(jc_kernel.connection_file).parent
    p = _kconsole("kernels", env={"JUPYTER_RUNTIME_DIR": str(runtime)})
    line = next(ln for ln in p.stdout.splitlines() if "kernel-jc.json" in ln)
    assert line.endswith("[alive, encrypted]"), p.stdout


def test_mismatches_are_one_line_each(jc_kernel: Any, plain_kernel: Path, tmp_path: Path) -> None:
    info = json.loads(Path(jc_kernel.connection_file).read_text())
    # The kernel requires encryption, the file has no keys.
    stripped = tmp_path / "kernel-nokeys.json"
    no_keys = {k: v for k, v in info.items() if not k.startswith("curve_")}
    stripped.write_text(json.dumps(no_keys))
    _one_line(_kconsole("attach", "--existing", str(stripped)), "requires CurveZMQ encryption")

    # Keys given, the kernel is plain: by file, and by --ports.
    plain = json.loads(plain_kernel.read_text())
    keyed = tmp_path / "kernel-keyed.json"
    keys = {"curve_publickey": info["curve_publickey"], "curve_secretkey": info["curve_secretkey"]}
    keyed.write_text(json.dumps(plain | keys))
    _one_line(_kconsole("attach", "--existing", str(keyed)), "does not use CurveZMQ")
    ports = ",".join(
        str(plain[f"{ch}_port"]) for ch in ("shell", "iopub", "stdin", "control", "hb")
    )
    secret = tmp_path / "secret"
    secret.write_text(info["curve_secretkey"] + "\n")
    secret.chmod(0o600)  # one readable by others is warned about (test_review_curve)
    p = _kconsole(
        "attach", "--ports", ports, "--key", plain["key"], "--curve-public-key",
        info["curve_publickey"], "--curve-secret-key-file", str(secret),
    )  # fmt: skip
    _one_line(p, "does not use CurveZMQ")

    # Keys that are not the kernel's.
    other = ConnectionInfo.from_dict(info)
    from kconsole.connection import new_curve_keypair

    other.curve_publickey, other.curve_secretkey = new_curve_keypair()
    wrong = other.write(tmp_path / "kernel-wrong.json")
    _one_line(_kconsole("attach", "--existing", str(wrong)), "not this kernel's")

    # A pyzmq without Curve (zmq.has("curve") made false in the kconsole process).
    shim = (
        "import sys, zmq; _has = zmq.has; "
        "zmq.has = lambda f: False if f == 'curve' else _has(f); "
        "from kconsole.cli import main; sys.argv[0] = 'kconsole'; main()"
    )
    p = subprocess.run(
        [sys.executable, "-c", shim, "attach", "--existing", jc_kernel.connection_file],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    _one_line(p, "built without CurveZMQ")

    # --ports keys without a secret, and a secret on the command line is no option.
    p = _kconsole("attach", "--ports", ports, "--curve-public-key", info["curve_publickey"])
    assert p.returncode == 2 and "KCONSOLE_CURVE_SECRET_KEY" in p.stderr, p.stderr
    assert "--curve-secret-key " not in _kconsole("attach", "--help").stdout


def test_start_encrypt_required_refuses_a_kernelspec_without_curve(bash_kernelspec: str) -> None:
    p = _kconsole("start", "--kernel", bash_kernelspec, "--encrypt", "required")
    _one_line(p, "does not declare 'curve'")


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PtyConsole, Path]]:
    """`kconsole start --kernel builtin --ip 0.0.0.0 --encrypt required` in a pty."""
    runtime = tmp_path_factory.mktemp("curve-start")
    c = PtyConsole(
        ["start", "--kernel", "builtin", "--ip", "0.0.0.0", "--encrypt", "required"],
        env={"JUPYTER_RUNTIME_DIR": str(runtime)},
    )
    try:
        c.expect_prompt(1)
        (cf,) = runtime.glob("kernel-*.json")
        yield c, cf
        c.ctrl("d")
        assert c.wait_exit(20) == 0
    finally:
        c.close()


def test_started_kernel_is_encrypted_and_used_by_jupyter_client(
    started: tuple[PtyConsole, Path],
) -> None:
    from jupyter_client import BlockingKernelClient

    c, cf = started
    assert cf.stat().st_mode & 0o777 == 0o600
    info = json.loads(cf.read_text())
    assert info["ip"] == "0.0.0.0" and len(info["curve_secretkey"]) == 40

    # A plain subscriber to its iopub: never a byte of the output below.
    ctx = zmq.Context.instance()
    spy = ctx.socket(zmq.SUB)
    spy.linger = 0
    spy.setsockopt(zmq.SUBSCRIBE, b"")
    spy.connect(f"tcp://127.0.0.1:{info['iopub_port']}")

    kc = BlockingKernelClient()
    kc.load_connection_file(str(cf))
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=30)
        out: list[str] = []
        reply = kc.execute_interactive(
            "print('from ' + 'jupyter_client')",
            timeout=30,
            output_hook=lambda m: out.append(m["content"].get("text", "")),
        )
        assert reply["content"]["status"] == "ok" and "from jupyter_client\n" in out
    finally:
        kc.stop_channels()
    c.expect(r"from jupyter_client")  # kconsole shows the other client's output too
    c.sendline("print('own ' + 'cell')")
    c.expect(r"(?m)^own cell")
    c.expect_prompt()
    assert not spy.poll(200)
    spy.close()


def test_started_kernel_restarts_with_its_keys(started: tuple[PtyConsole, Path]) -> None:
    c, cf = started
    keys = json.loads(cf.read_text())["curve_publickey"]
    c.ctrl("x")
    c.send("r")
    c.expect(r"Restart the kernel\? \[y/N\]")
    c.sendline("y")
    c.expect("kernel restarted", timeout=30)
    c.sendline("print('again', 3 * 3)")
    c.expect(r"(?m)^again 9")
    c.expect_prompt()
    assert json.loads(cf.read_text())["curve_publickey"] == keys


def test_connection_file_curve_fields(tmp_path: Path) -> None:
    """The keys round-trip as jupyter_client writes them; a bad or lone key is one
    error naming the field, never quoting the (secret) key."""
    from jupyter_client.connect import write_connection_file

    from kconsole.connection import ConnectionFileError, new_curve_keypair

    pub, sec = (k.encode() for k in new_curve_keypair())
    fname, _ = write_connection_file(
        str(tmp_path / "kernel-jc.json"), key=b"k", curve_publickey=pub, curve_secretkey=sec
    )
    info = ConnectionInfo.from_file(fname)
    assert info.encrypted and (info.curve_publickey, info.curve_secretkey) == (
        pub.decode(),
        sec.decode(),
    )
    again = json.loads(info.write(tmp_path / "kernel-again.json").read_text())
    assert (again["curve_publickey"], again["curve_secretkey"]) == (pub.decode(), sec.decode())
    assert "curve_publickey" not in json.loads(
        ConnectionInfo.new().write(tmp_path / "p.json").read_text()
    )

    base = json.loads(Path(fname).read_text())
    for change, fragment in [
        ({"curve_secretkey": None}, "curve_publickey is given without curve_secretkey"),
        ({"curve_publickey": "short"}, "curve_publickey is not a CurveZMQ key"),
        ({"curve_secretkey": 7}, "curve_secretkey is not a CurveZMQ key"),
    ]:
        data = {k: v for k, v in (base | change).items() if v is not None}
        with pytest.raises(ConnectionFileError, match=fragment) as e:
            ConnectionInfo.from_dict(data)
        assert sec.decode() not in str(e.value)


def test_encrypt_as_a_config_key(bash_kernelspec: str, tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("[start]\nencrypt = 'required'\n")
    p = _kconsole("start", "--kernel", bash_kernelspec, env={"KCONSOLE_CONFIG": str(cfg)})
    _one_line(
        p,
        f"does not declare 'curve' in metadata.supported_encryption (its kernel would ignore the keys) (set in config file {cfg})",
    )
    cfg.write_text("encrypt = 'sometimes'\n")
    p = _kconsole("start", env={"KCONSOLE_CONFIG": str(cfg)})
    assert p.returncode == 1 and "encrypt" in p.stderr and "sometimes" in p.stderr, p.stderr
