"""Connection info: the five ports, address, transport and key of one kernel.

Reads and writes Jupyter connection files (``kernel-<id>.json`` in the runtime dir,
mode 0600) and picks free ports for a kernel about to start.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import stat
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import paths
from .errors import KconsoleError
from .protocol import DEFAULT_SIGNATURE_SCHEME, Session, UnknownSignatureScheme, new_key

CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
LOCALHOST = "127.0.0.1"


class ConnectionFileError(KconsoleError):
    """A connection file is missing, unreadable or malformed (message is user-facing)."""


@dataclass
class ConnectionInfo:
    """Everything a client needs to reach a kernel's sockets."""

    shell_port: int = 0
    iopub_port: int = 0
    stdin_port: int = 0
    control_port: int = 0
    hb_port: int = 0
    ip: str = LOCALHOST
    #: The secrets (HMAC key, Curve secret key) are kept out of the repr, so that no
    #: log line or assertion message that shows the object ever prints them.
    key: bytes = field(default=b"", repr=False)
    transport: str = "tcp"
    signature_scheme: str = DEFAULT_SIGNATURE_SCHEME
    kernel_name: str = ""
    #: CurveZMQ keypair of the kernel (Z85, 40 characters each), as jupyter_client 8.10
    #: writes it: the kernel uses it as its server keys on every socket, a client as its
    #: own keypair with the public key as the server key. Empty: no transport encryption.
    curve_publickey: str = ""
    curve_secretkey: str = field(default="", repr=False)
    #: Extra fields found in a file (jupyter_client's extras), kept on rewrite.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def encrypted(self) -> bool:
        """Whether the kernel's sockets use CurveZMQ (the file carries its keypair)."""
        return bool(self.curve_publickey)

    def port(self, channel: str) -> int:
        return int(getattr(self, f"{channel}_port"))

    def url(self, channel: str) -> str:
        """The zmq endpoint of ``channel`` (``tcp://ip:port`` or ``ipc://ip-port``)."""
        if self.transport == "ipc":
            return f"ipc://{self.ip}-{self.port(channel)}"
        ip = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{self.transport}://{ip}:{self.port(channel)}"

    def session(self, **kw: Any) -> Session:
        """A new Session signing with this connection's key and scheme."""
        return Session(self.key, self.signature_scheme, **kw)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(self.extra)
        d.update(
            shell_port=self.shell_port,
            iopub_port=self.iopub_port,
            stdin_port=self.stdin_port,
            control_port=self.control_port,
            hb_port=self.hb_port,
            ip=self.ip,
            key=self.key.decode("ascii"),
            transport=self.transport,
            signature_scheme=self.signature_scheme,
            kernel_name=self.kernel_name,
        )
        if self.encrypted:
            d.update(curve_publickey=self.curve_publickey, curve_secretkey=self.curve_secretkey)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "connection info") -> ConnectionInfo:
        """Validate and build; errors name ``source`` and the offending field."""
        if not isinstance(d, dict):
            raise ConnectionFileError(f"{source}: expected a JSON object")
        known = {f"{c}_port" for c in CHANNELS} | {
            "ip",
            "key",
            "transport",
            "signature_scheme",
            "kernel_name",
            "curve_publickey",
            "curve_secretkey",
        }
        ports = {}
        for ch in CHANNELS:
            v = d.get(f"{ch}_port")
            if isinstance(v, bool) or not isinstance(v, int) or not 0 < v < 65536:
                raise ConnectionFileError(f"{source}: {ch}_port is missing or not a port ({v!r})")
            ports[f"{ch}_port"] = v
        transport = d.get("transport", "tcp")
        if transport not in ("tcp", "ipc"):
            raise ConnectionFileError(f"{source}: unknown transport {transport!r}")
        key = d.get("key", "")
        if not isinstance(key, str) or not key.isascii():
            raise ConnectionFileError(f"{source}: key must be a string of ASCII characters")
        scheme = d.get("signature_scheme") or DEFAULT_SIGNATURE_SCHEME
        if not isinstance(scheme, str):
            raise ConnectionFileError(f"{source}: signature_scheme must be a string ({scheme!r})")
        if not re.fullmatch(r"hmac-[A-Za-z0-9_.-]{1,40}", scheme):
            raise ConnectionFileError(
                f"{source}: signature scheme {scheme[:60]!r} is not hmac-<algorithm>"
            )
        try:
            # Checked here, where the file is named, and with a key: hashlib knows
            # shake_128, but an HMAC over it fails only once it has a key.
            Session(b"key", scheme)
        except UnknownSignatureScheme as e:
            raise ConnectionFileError(f"{source}: {e}") from e
        except (ValueError, TypeError) as e:
            raise ConnectionFileError(
                f"{source}: signature scheme {scheme!r} cannot be used for an HMAC"
            ) from e
        ip = d.get("ip") or LOCALHOST
        if not isinstance(ip, str) or not ip.isprintable():
            raise ConnectionFileError(f"{source}: ip must be an address ({ip!r})")
        kernel_name = d.get("kernel_name") or ""
        if not isinstance(kernel_name, str):
            raise ConnectionFileError(f"{source}: kernel_name must be a string")
        public, secret = (check_curve_key(d.get(k), f"{source}: {k}") for k in _CURVE_FIELDS)
        if bool(public) != bool(secret):
            have, missing = _CURVE_FIELDS if public else _CURVE_FIELDS[::-1]
            raise ConnectionFileError(f"{source}: {have} is given without {missing}")
        return cls(
            ip=ip,
            key=key.encode("ascii"),
            curve_publickey=public,
            curve_secretkey=secret,
            transport=transport,
            signature_scheme=scheme,
            kernel_name=kernel_name,
            extra={k: v for k, v in d.items() if k not in known},
            **ports,
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ConnectionInfo:
        """Read and validate a connection file; every defect (missing, unreadable, too
        large, not UTF-8, not JSON, nested, a bad field) is a :class:`ConnectionFileError`
        naming the file."""
        p = Path(path)
        try:
            data = paths.load_json(paths.read_small_file(p))
        except FileNotFoundError:
            raise ConnectionFileError(f"connection file not found: {p}") from None
        except paths.Unreadable as e:
            raise ConnectionFileError(f"cannot read connection file {p}: {e.reason}") from e
        except paths.FileProblem as e:
            raise ConnectionFileError(f"connection file {p} {e}") from e
        return cls.from_dict(data, source=f"connection file {p}")  # type: ignore[arg-type]

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write as a 0600 file (created fresh, so no other user can ever read the key).

        Raises OSError (a full disk, an unwritable or missing runtime dir); no partial
        file is left behind then.
        """
        p = Path(path)
        try:
            p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except FileExistsError:  # a file where the runtime dir should be
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR)) from None
        try:
            p.unlink()
        except FileNotFoundError:
            pass
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.to_dict(), f, indent=1)
        except BaseException:
            # A half-written file would be found by `attach --existing` and fail there.
            with contextlib.suppress(OSError):
                p.unlink()
            raise
        return p

    @classmethod
    def new(
        cls, ip: str = LOCALHOST, transport: str = "tcp", kernel_name: str = ""
    ) -> ConnectionInfo:
        """Fresh connection info: a new key and free ports (ipc: free socket paths)."""
        info = cls(ip=ip, transport=transport, key=new_key(), kernel_name=kernel_name)
        info.assign_free_ports()
        return info

    def assign_free_ports(self) -> None:
        """Pick five free ports. Racy by nature: the launcher retries on a clash."""
        if self.transport == "ipc":
            if self.ip in ("", LOCALHOST):
                # A private directory of its own in the temp dir, not the runtime dir:
                # socket paths are limited in length (107 bytes; xeus-python fails
                # beyond 23 characters) and ~/.local/share/jupyter/runtime is long.
                import tempfile

                self.ip = os.path.join(tempfile.mkdtemp(prefix=IPC_DIR_PREFIX), "k")
            port = 1
            for ch in CHANNELS:
                while os.path.exists(f"{self.ip}-{port}"):
                    port += 1
                setattr(self, f"{ch}_port", port)
                port += 1
            return
        socks = []
        try:
            family = socket.AF_INET6 if ":" in self.ip else socket.AF_INET
            for ch in CHANNELS:
                s = socket.socket(family, socket.SOCK_STREAM)
                s.bind((self.ip, 0))
                socks.append(s)
                setattr(self, f"{ch}_port", s.getsockname()[1])
        finally:
            for s in socks:
                s.close()


NO_CURVE_TO_START = (
    "this pyzmq is built without CurveZMQ (zmq.has('curve') is false), so kconsole "
    "cannot start an encrypted kernel; install a pyzmq wheel (they bundle libsodium) "
    "or use --encrypt off"
)


def curve_available() -> bool:
    """Whether this pyzmq's libzmq can do CurveZMQ."""
    # pyzmq alone, not kconsole.zmq_transport: `start` asks before it spawns the kernel,
    # and that module loads asyncio (with ssl, ~5 MB) before cli can load it without.
    import zmq

    return bool(zmq.has("curve"))


def new_curve_keypair() -> tuple[str, str]:
    """A fresh CurveZMQ keypair (public, secret), Z85 text as connection files hold it."""
    import zmq

    public, secret = zmq.curve_keypair()
    return public.decode("ascii"), secret.decode("ascii")


_CURVE_FIELDS = ("curve_publickey", "curve_secretkey")
#: Z85's alphabet: a 32-byte Curve key is 40 of these characters.
_Z85 = re.compile(r"[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}")


def check_curve_key(value: Any, what: str) -> str:
    """``value`` if it is a Z85 CurveZMQ key (40 characters), "" if absent; else a
    :class:`ConnectionFileError` naming ``what`` (the key itself is never quoted: the
    secret one is the secret)."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or not _Z85.fullmatch(value) or not _decodes(value):
        raise ConnectionFileError(f"{what} is not a CurveZMQ key (40 characters of Z85)")
    return value


def _decodes(value: str) -> bool:
    """Whether each 5-character group of a Z85 string is at most 2**32 - 1: libzmq
    rejects a key whose group overflows ("#" * 40 is 40 Z85 characters) with EINVAL,
    which would surface as a traceback from setsockopt, not as a bad connection file."""
    for i in range(0, len(value), 5):
        n = 0
        for ch in value[i : i + 5]:
            n = n * 85 + _Z85_ALPHABET.index(ch)
        if n > 0xFFFFFFFF:
            return False
    return True


_Z85_ALPHABET = (
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
)


#: The private temp directories kconsole makes for a kernel's ipc sockets start so.
IPC_DIR_PREFIX = "kc-"


def own_ipc_dir(info: ConnectionInfo) -> Path | None:
    """The temp directory :meth:`ConnectionInfo.assign_free_ports` made for ``info``'s
    ipc sockets (removed with them), None for any other ip (the user's own path)."""
    if info.transport != "ipc":
        return None
    import tempfile

    parent = Path(info.ip).parent
    if parent.name.startswith(IPC_DIR_PREFIX) and parent.parent == Path(tempfile.gettempdir()):
        return parent
    return None


def new_connection_file_path() -> Path:
    """A fresh ``kernel-<id>.json`` path in the runtime dir."""
    return paths.runtime_dir() / f"kernel-{uuid.uuid4()}.json"


def find_connection_file(name: str | None = None) -> Path:
    """Resolve ``name`` as Jupyter does: a path, a file name (or id) in the runtime dir,
    or, when omitted, the newest connection file there."""
    rdir = paths.runtime_dir()
    if name is None:
        files = list_connection_files()
        if not files:
            raise ConnectionFileError(f"no running kernel: no connection file in {rdir}")
        return files[0]
    p = Path(name).expanduser()
    if _is_file(p) or _is_special(p):
        return p  # a FIFO or device: from_file says what it is, not "not found"
    candidates = [rdir / name, rdir / f"{name}.json", rdir / f"kernel-{name}.json"]
    for c in candidates:
        if _is_file(c):
            return c
    # A unique prefix of a kernel id, as `jupyter console --existing 1a2b` accepts.
    matches = [f for f in list_connection_files() if f.name.startswith(f"kernel-{name}")]
    if len(matches) == 1:
        return matches[0]
    shown = name if len(name) <= 100 else name[:99] + "\u2026"
    if len(matches) > 1:
        raise ConnectionFileError(f"{shown!r} matches several connection files in {rdir}")
    raise ConnectionFileError(f"connection file not found: {shown} (looked in {rdir})")


def _is_special(p: Path) -> bool:
    """True for an existing path that is neither a regular file nor a directory."""
    try:
        mode = p.stat().st_mode
    except (OSError, ValueError):
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _is_file(p: Path) -> bool:
    """Path.is_file, False for names the system rejects (too long, a NUL byte)."""
    try:
        return p.is_file()
    except (OSError, ValueError):
        return False


#: How many of the newest connection files ``attach --existing`` probes, and for how long
#: in all: a stale file must not cost the user the whole --timeout.
PROBE_CANDIDATES = 16
PROBE_BUDGET = 1.5
#: At most this many heartbeat sockets are open at once (each is a file descriptor).
PROBE_AT_ONCE = 64


@dataclass
class LiveChoice:
    """The connection file :func:`find_live_connection_file` chose."""

    path: Path
    #: Newer files passed over: unreadable, or their kernel did not answer in time.
    skipped: list[Path]
    #: False when no candidate answered: ``path`` is then merely the newest file.
    answered: bool


def find_live_connection_file(budget: float = PROBE_BUDGET) -> LiveChoice:
    """The newest connection file in the runtime dir whose kernel answers a heartbeat.

    A console killed with -9 leaves its kernel's file behind, newer than the file of
    the kernel the user means. All candidates are probed at once, newest first wins,
    within ``budget`` seconds in all; a local port that refuses the connection rules
    its file out at once. When none answers, the newest file is returned
    (``answered=False``) and the caller's own wait reports it.
    """
    import time

    files = list_connection_files()
    if not files:
        raise ConnectionFileError(f"no running kernel: no connection file in {paths.runtime_dir()}")
    candidates = files[:PROBE_CANDIDATES]
    infos: list[ConnectionInfo | None] = []
    for f in candidates:
        try:
            infos.append(ConnectionInfo.from_file(f))
        except ConnectionFileError:
            infos.append(None)  # unreadable: never the one to attach to
    deadline = time.monotonic() + budget
    alive = probe_heartbeats(infos, deadline, first_only=True)
    for i, ok in enumerate(alive):
        if ok:
            return LiveChoice(candidates[i], candidates[:i], True)
    # The newest that describes a kernel: the caller's error is then about that kernel,
    # not about the JSON of some newer file that is no connection file at all.
    readable = [f for f, info in zip(candidates, infos, strict=True) if info is not None]
    return LiveChoice(readable[0] if readable else files[0], [], False)


def probe_heartbeats(
    infos: list[ConnectionInfo | None], deadline: float, *, first_only: bool = False
) -> list[bool]:
    """Ping every kernel's heartbeat at once; True for those that echoed before
    ``deadline`` (a ``time.monotonic()`` value). With ``first_only``, return as soon
    as the first entry that can answer has answered. Only the first
    :data:`PROBE_AT_ONCE` entries are pinged; the rest count as not answering."""
    import time

    import zmq

    from .transport import TransportError
    from .zmq_transport import set_curve_client

    # Entries past PROBE_AT_ONCE are not probed (thousands of stale files must not
    # cost thousands of file descriptors); unreadable ones cannot answer.
    status: list[bool | None] = [
        None if info is not None and n < PROBE_AT_ONCE else False for n, info in enumerate(infos)
    ]
    for n, info in enumerate(infos):
        if info is not None and status[n] is None and _refused(info):
            status[n] = False
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    poller = zmq.Poller()
    socks: dict[zmq.Socket[bytes], int] = {}
    try:
        for n, info in enumerate(infos):
            if info is None or status[n] is not None:
                continue
            try:
                sock = ctx.socket(zmq.REQ)
            except zmq.ZMQError:  # out of file descriptors
                status[n] = False
                continue
            sock.linger = 0
            try:
                if ":" in info.ip:
                    sock.setsockopt(zmq.IPV6, 1)
                set_curve_client(sock, info)  # an encrypted kernel answers only Curve
                sock.connect(info.url("hb"))
                sock.send(b"ping", zmq.NOBLOCK)
            except (zmq.ZMQError, TransportError):
                sock.close(linger=0)
                status[n] = False
                continue
            socks[sock] = n
            poller.register(sock, zmq.POLLIN)
        while socks:
            first = next((s for s in status if s is not False), False)
            if first_only and first is not None:  # the first still in the running answered
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for sock, _ in poller.poll(max(1, int(remaining * 1000))):
                n = socks.pop(sock)
                poller.unregister(sock)
                try:
                    status[n] = sock.recv(zmq.NOBLOCK) == b"ping"
                except zmq.ZMQError:
                    status[n] = False
                sock.close(linger=0)
    finally:
        for sock in socks:
            sock.close(linger=0)
    return [bool(s) for s in status]


def _refused(info: ConnectionInfo) -> bool:
    """True if nothing listens on the kernel's heartbeat, as far as can be told at once:
    a missing ipc socket file, or a loopback TCP port that refuses connections."""
    if info.transport == "ipc":
        return not os.path.exists(f"{info.ip}-{info.hb_port}")
    if info.ip not in (LOCALHOST, "localhost", "::1", "0.0.0.0", "") and not info.ip.startswith(
        "127."
    ):
        return False  # another host: a connect could take long; leave it to the ping
    family = socket.AF_INET6 if ":" in info.ip else socket.AF_INET
    host = {"0.0.0.0": LOCALHOST, "": LOCALHOST}.get(info.ip, info.ip)
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        try:
            return s.connect_ex((host, info.hb_port)) == errno.ECONNREFUSED
        except OSError:
            return False


def list_connection_files() -> list[Path]:
    """Connection files in the runtime dir, newest first."""
    rdir = paths.runtime_dir()
    found: list[tuple[float, Path]] = []
    try:
        for p in rdir.glob("kernel-*.json"):
            # A kernel may remove its file between the listing and the stat.
            with contextlib.suppress(OSError):
                st = p.stat()
                if stat.S_ISREG(st.st_mode):
                    found.append((st.st_mtime, p))
    except OSError:  # no runtime dir, or an unreadable one: no kernels there
        return []
    found.sort(key=lambda t: t[0], reverse=True)
    return [p for _, p in found]


def parse_ports(spec: str) -> dict[str, int]:
    """Parse ``SHELL,IOPUB,STDIN,CONTROL,HB`` into port fields (ValueError on bad input)."""
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) != 5:
        shown = spec if len(spec) <= 60 else spec[:59] + "\u2026"  # one short line
        raise ValueError(f"expected 5 ports SHELL,IOPUB,STDIN,CONTROL,HB, got {shown!r}")
    ports = {}
    for ch, p in zip(CHANNELS, parts, strict=True):
        if not p.isdigit() or not 0 < int(p) < 65536:
            raise ValueError(f"{ch} port {p[:20]!r} is not a port number")
        ports[f"{ch}_port"] = int(p)
    return ports
