"""Connection files: Jupyter's runtime dir, 0600 files, lookup by name or id, --ports."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from jupyter_client.connect import write_connection_file

from kconsole import paths
from kconsole.connection import (
    ConnectionFileError,
    ConnectionInfo,
    find_connection_file,
    parse_ports,
)


def test_runtime_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("JUPYTER_RUNTIME_DIR")
    monkeypatch.delenv("JUPYTER_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert paths.runtime_dir() == tmp_path / "xdg" / "jupyter" / "runtime"
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    assert paths.runtime_dir() == tmp_path / "data" / "runtime"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "rt"))
    assert paths.runtime_dir() == tmp_path / "rt"


def test_written_file_is_private_and_readable_by_jupyter_client(tmp_path: Path) -> None:
    from jupyter_client.connect import find_connection_file as jc_find  # noqa: F401

    info = ConnectionInfo.new(kernel_name="python3")
    p = info.write(tmp_path / "kernel-abc.json")
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    data = json.loads(p.read_text())
    assert data["key"] == info.key.decode()
    assert data["signature_scheme"] == "hmac-sha256" and data["transport"] == "tcp"
    ports = {data[f"{c}_port"] for c in ("shell", "iopub", "stdin", "control", "hb")}
    assert len(ports) == 5 and all(p > 0 for p in ports)


def test_reads_a_jupyter_client_file(tmp_path: Path) -> None:
    fname, cfg = write_connection_file(str(tmp_path / "kernel-x.json"), key=b"secret")
    info = ConnectionInfo.from_file(fname)
    assert info.key == b"secret" and info.shell_port == cfg["shell_port"]
    assert info.url("iopub") == f"tcp://127.0.0.1:{cfg['iopub_port']}"


def test_ipc_urls() -> None:
    from kconsole.connection import own_ipc_dir

    info = ConnectionInfo.new(transport="ipc")
    ipc_dir = own_ipc_dir(info)
    assert ipc_dir is not None
    ipc_dir.rmdir()  # nothing was bound in it
    assert info.url("shell").startswith("ipc://") and info.url("shell").endswith("-1")
    # Short, in the temp dir (not the long runtime dir): xeus-python binds no socket
    # path over 25 characters.
    assert info.ip == str(ipc_dir / "k") and len(ipc_dir.name) <= 11


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("{not json", "not valid JSON"),
        ('{"ip": "127.0.0.1"}', "shell_port is missing"),
        (
            '{"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, '
            '"hb_port": 5, "transport": "udp"}',
            "unknown transport",
        ),
        ("[]", "expected a JSON object"),
    ],
)
def test_malformed_files_give_one_clear_error(tmp_path: Path, content: str, fragment: str) -> None:
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(ConnectionFileError, match=fragment):
        ConnectionInfo.from_file(p)


def test_missing_file() -> None:
    with pytest.raises(ConnectionFileError, match="not found"):
        find_connection_file("kernel-nope.json")
    with pytest.raises(ConnectionFileError, match="no running kernel"):
        find_connection_file(None)


def test_find_by_path_name_id_prefix_and_newest() -> None:
    rdir = paths.runtime_dir()
    a = ConnectionInfo.new().write(rdir / "kernel-1111aaaa.json")
    b = ConnectionInfo.new().write(rdir / "kernel-2222bbbb.json")
    os.utime(a, (1, 1))
    assert find_connection_file(str(a)) == a
    assert find_connection_file("kernel-1111aaaa.json") == a
    assert find_connection_file("1111aaaa") == a
    assert find_connection_file("2222") == b
    assert find_connection_file(None) == b  # newest


def test_parse_ports() -> None:
    assert parse_ports("1,2,3,4,5") == {
        "shell_port": 1,
        "iopub_port": 2,
        "stdin_port": 3,
        "control_port": 4,
        "hb_port": 5,
    }
    for bad in ("1,2,3", "1,2,3,4,x", "1,2,3,4,70000"):
        with pytest.raises(ValueError):
            parse_ports(bad)
