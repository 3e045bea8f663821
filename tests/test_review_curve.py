"""Review of CurveZMQ (issue 13, REVIEW.md): the defects found by trying it as a user
and an attacker, each as a user sees it. No kernel runs here except the one that
ignores its keys: the rest fail (or warn) before anything connects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from ptyconsole import KCONSOLE

from kconsole.connection import ConnectionFileError, ConnectionInfo

zmq = pytest.importorskip("zmq")
pytestmark = pytest.mark.skipif(not zmq.has("curve"), reason="this pyzmq has no CurveZMQ")

#: 40 Z85 characters that are no key: each 5-character group is above 2**32.
OVERFLOW = "#" * 40
#: Runs kconsole with zmq.has("curve") false (a pyzmq built without libsodium).
NO_CURVE_SHIM = (
    "import sys, zmq; _has = zmq.has; "
    "zmq.has = lambda f: False if f == 'curve' else _has(f); "
    "from kconsole.cli import main; sys.argv[0] = 'kconsole'; main()"
)


def _run(*args: str, env: dict[str, str] | None = None, shim: bool = False) -> Any:
    cmd = [sys.executable, "-c", NO_CURVE_SHIM, *args] if shim else [*KCONSOLE, *args]
    return subprocess.run(
        cmd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def _one_line(p: Any, *fragments: str) -> str:
    assert p.returncode in (1, 2), (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    for fragment in fragments:
        assert fragment in lines[0], p.stderr
    return str(lines[0])


def _keyed_file(path: Path, public: str, secret: str) -> Path:
    info = ConnectionInfo.new()
    info.curve_publickey, info.curve_secretkey = public, secret
    data = info.to_dict()
    path.write_text(json.dumps(data))
    return path


def _keypair() -> tuple[str, str]:
    from kconsole.connection import new_curve_keypair

    return new_curve_keypair()


def test_an_overflowing_z85_key_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    public, secret = _keypair()
    for fields in ({"curve_secretkey": OVERFLOW}, {"curve_publickey": OVERFLOW}):
        data = json.loads(_keyed_file(tmp_path / "k.json", public, secret).read_text())
        with pytest.raises(ConnectionFileError, match="is not a CurveZMQ key"):
            ConnectionInfo.from_dict(data | fields)
    bad = _keyed_file(tmp_path / "kernel-bad.json", public, OVERFLOW)
    _one_line(_run("attach", "--existing", str(bad)), "curve_secretkey is not a CurveZMQ key")
    p = _run(
        "attach", "--ports", "1,2,3,4,5", "--key", "k", "--curve-public-key", OVERFLOW,
        env={"KCONSOLE_CURVE_SECRET_KEY": secret},
    )  # fmt: skip
    _one_line(p, "--curve-public-key is not a CurveZMQ key")


def test_the_secret_given_as_public_key_is_named(tmp_path: Path) -> None:
    _, secret = _keypair()
    p = _run(
        "attach", "--ports", "1,2,3,4,5", "--key", "k", "--curve-public-key", secret,
        env={"KCONSOLE_CURVE_SECRET_KEY": secret},
    )  # fmt: skip
    line = _one_line(p, "--curve-public-key is the secret key")
    assert secret not in line


def test_a_secret_key_file_others_can_read_is_warned_about(tmp_path: Path) -> None:
    _, secret = _keypair()
    f = tmp_path / "secret"
    f.write_text(secret + "\n")
    f.chmod(0o644)
    # A public key that is no key ends the run at once, after the file was read.
    args = ("attach", "--ports", "1,2,3,4,5", "--key", "k", "--curve-public-key", "x")
    p = _run(*args, "--curve-secret-key-file", str(f))
    warning = p.stderr.splitlines()[0]
    assert "readable by other users" in warning and str(f) in warning, p.stderr
    assert secret not in p.stderr
    f.chmod(0o600)
    _one_line(_run(*args, "--curve-secret-key-file", str(f)), "--curve-public-key")


def test_encrypt_required_from_the_config_against_server_names_the_config(
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("[start]\nencrypt = 'required'\n")
    p = _run("start", "--server", "http://127.0.0.1:9/", env={"KCONSOLE_CONFIG": str(cfg)})
    _one_line(p, "--encrypt required", f"(set in config file {cfg})")


def test_without_curve_kernels_does_not_call_an_encrypted_kernel_silent(
    tmp_path: Path,
) -> None:
    _keyed_file(tmp_path / "kernel-enc.json", *_keypair())
    p = _run("kernels", env={"JUPYTER_RUNTIME_DIR": str(tmp_path)}, shim=True)
    line = next(ln for ln in p.stdout.splitlines() if "kernel-enc.json" in ln)
    assert "not answering" not in line and "no CurveZMQ" in line, p.stdout


def test_without_curve_start_encrypt_required_says_it_cannot_provision() -> None:
    p = _run("start", "--kernel", "builtin", "--encrypt", "required", shim=True)
    _one_line(p, "built without CurveZMQ", "cannot start an encrypted kernel")


def test_connection_info_repr_hides_the_secrets() -> None:
    info = ConnectionInfo.new()
    info.curve_publickey, info.curve_secretkey = _keypair()
    text = repr(info)
    assert info.curve_secretkey not in text and info.key.decode() not in text
    assert info.curve_publickey in text  # the public key names the kernel


def test_a_kernel_that_ignores_its_keys_is_told_in_seconds(tmp_path: Path) -> None:
    """Its kernelspec declares Curve, the kernel runs plain: the one line comes once
    the plain kernel is up, not after the whole start timeout (60 s)."""
    plain_kernel = (
        "import json, sys; from kconsole.kernel.kernel import run_kernel; "
        "d = json.load(open(sys.argv[1])); d.pop('curve_publickey'); d.pop('curve_secretkey'); "
        "json.dump(d, open(sys.argv[1] + '.plain', 'w')); run_kernel(sys.argv[1] + '.plain')"
    )
    spec_dir = tmp_path / "share" / "jupyter" / "kernels" / "liar"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-c", plain_kernel, "{connection_file}"],
        "display_name": "liar",
        "language": "python",
        "metadata": {"supported_encryption": ["curve"]},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    env = {"JUPYTER_PATH": str(tmp_path / "share" / "jupyter")}
    t0 = time.monotonic()
    p = _run("start", "--kernel", "liar", env=env)
    elapsed = time.monotonic() - t0
    _one_line(p, "the kernel ignored the keys and runs plain: start it with --encrypt off")
    assert elapsed < 15, elapsed
