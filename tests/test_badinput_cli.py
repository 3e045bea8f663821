"""Bad files and values given to kconsole, each run as the real command: one line on
stderr naming the file (or value) at fault, exit status 1, never a traceback.

The files are the ones kconsole reads: kernelspecs (``kernel.json`` on JUPYTER_PATH),
connection files (``attach --existing``), the TOML config file, the runtime dir it
writes connection files into.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

KCONSOLE = [sys.executable, "-m", "kconsole"]
DEEP = "[" * 100_000 + "]" * 100_000
PORTS = {"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5}


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never the user's own config file; tests that need one write it here."""
    cfg = tmp_path / "config.toml"
    monkeypatch.setenv("KCONSOLE_CONFIG", str(cfg))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    return cfg


def run(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        KCONSOLE + args,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        **kw,  # type: ignore[call-overload]
    )


def assert_one_line(p: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exactly one line on stderr, no traceback, status 1, naming each fragment."""
    assert "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    line = lines[0]
    assert line.startswith("kconsole: "), line
    for f in fragments:
        assert f in line, (f, line)
    assert p.returncode == 1, (p.returncode, line)
    return line


# -- kernelspecs ------------------------------------------------------------------------

BAD_SPECS: dict[str, bytes] = {
    "badjson": b"{",
    "noargv": b'{"display_name": "x"}',
    "argvstr": b'{"argv": "python"}',
    "argvempty": b'{"argv": []}',
    "argvnul": b'{"argv": ["python\\u0000"]}',
    "envlist": b'{"argv": ["python"], "env": ["a"]}',
    "envkey": b'{"argv": ["python"], "env": {"A=B": "1"}}',
    "intmode": b'{"argv": ["python"], "interrupt_mode": ["signal"]}',
    "toplist": b"[1, 2]",
    "deep": b'{"argv": ["python"], "metadata": ' + DEEP.encode() + b"}",
    "deepish": b'{"argv": ["python"], "metadata": ' + b"[" * 500 + b"]" * 500 + b"}",
    "binary": b'\xff\xfe{"argv": ["python"]}',
    "huge": b'{"argv": ["python"], "display_name": "' + b"x" * (2 << 20) + b'"}',
    "bigint": b'{"argv": ["python"], "x": ' + b"9" * 5000 + b"}",
}


@pytest.fixture
def bad_specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "jupyter-path"
    for name, content in BAD_SPECS.items():
        d = root / "kernels" / name
        d.mkdir(parents=True)
        (d / "kernel.json").write_bytes(content)
    monkeypatch.setenv("JUPYTER_PATH", str(root))
    return root / "kernels"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(BAD_SPECS))
def test_start_with_a_malformed_kernelspec_is_one_line(bad_specs: Path, name: str) -> None:
    p = run(["start", "--kernel", name])
    assert_one_line(p, str(bad_specs / name / "kernel.json"))


@pytest.mark.timeout(60)
def test_kernels_lists_malformed_kernelspecs_as_skipped(bad_specs: Path) -> None:
    p = run(["kernels"])
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    for name in BAD_SPECS:
        assert str(bad_specs / name / "kernel.json") in p.stdout, (name, p.stdout[-3000:])


# -- connection files -------------------------------------------------------------------

BAD_CONNECTION_FILES: dict[str, bytes] = {
    "scheme-int": json.dumps({**PORTS, "signature_scheme": 5}).encode(),
    "scheme-unknown": json.dumps({**PORTS, "signature_scheme": "hmac-nope"}).encode(),
    "key-nonascii": json.dumps({**PORTS, "key": "schl\u00fcssel"}).encode(),
    "key-list": json.dumps({**PORTS, "key": ["a"]}).encode(),
    "ip-list": json.dumps({**PORTS, "ip": [127, 0, 0, 1]}).encode(),
    "name-dict": json.dumps({**PORTS, "kernel_name": {"a": 1}}).encode(),
    "port-str": json.dumps({**PORTS, "hb_port": "5"}).encode(),
    "transport-list": json.dumps({**PORTS, "transport": ["tcp"]}).encode(),
    "toplist": b"[]",
    "empty": b"",
    "deep": b'{"x": ' + DEEP.encode() + b"}",
    "deepish": b'{"x": ' + b"[" * 500 + b"]" * 500 + b"}",
    "binary": b"\xff\xfe{}",
    "huge": json.dumps({**PORTS, "pad": "x" * (2 << 20)}).encode(),
    "nan-port": b'{"shell_port": NaN}',
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(BAD_CONNECTION_FILES))
def test_attach_to_a_malformed_connection_file_is_one_line(jupyter_dirs: Path, name: str) -> None:
    f = jupyter_dirs / "runtime" / f"kernel-{name}.json"
    f.write_bytes(BAD_CONNECTION_FILES[name])
    line = assert_one_line(run(["attach", "--existing", str(f)]), str(f))
    assert "--ports" not in line


@pytest.mark.timeout(30)
def test_attach_to_a_fifo_or_a_directory_does_not_hang(jupyter_dirs: Path) -> None:
    fifo = jupyter_dirs / "runtime" / "kernel-fifo.json"
    os.mkfifo(fifo)
    assert_one_line(run(["attach", "--existing", str(fifo)]), str(fifo))


@pytest.mark.timeout(30)
def test_a_non_ascii_key_with_ports_is_not_called_bad_ports() -> None:
    p = run(["attach", "--ports", "1,2,3,4,5", "--key", "schl\u00fcssel"])
    # A bad value on the command line: a usage error (status 2), one line.
    assert p.returncode == 2 and len(p.stderr.splitlines()) == 1, p.stderr
    assert "--key" in p.stderr and "--ports" not in p.stderr, p.stderr


@pytest.mark.timeout(30)
def test_kernels_lists_a_malformed_connection_file_as_unreadable(jupyter_dirs: Path) -> None:
    for name in ("deep", "binary", "scheme-int"):
        f = jupyter_dirs / "runtime" / f"kernel-{name}.json"
        f.write_bytes(BAD_CONNECTION_FILES[name])
    p = run(["kernels"])
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert p.stdout.count("[unreadable]") == 3, p.stdout


# -- the config file --------------------------------------------------------------------

BAD_CONFIGS: dict[str, tuple[bytes, str]] = {
    "style": (b'style = "nope"\n', "style"),
    "code-style": (b'code-style = "nope"\n', "code-style"),
    "timeout-word": (b'timeout = "soon"\n', "timeout"),
    "timeout-negative": (b"timeout = -1\n", "timeout"),
    "timeout-table": (b"timeout = { a = 1 }\n", "timeout"),
    "timeout-date": (b"timeout = 1979-05-27\n", "timeout"),
    "plain-number": (b"plain = 3\n", "plain"),
    "plain-word": (b'plain = "maybe"\n', "plain"),
    "image-protocol": (b'image-protocol = "smoke"\n', "image-protocol"),
    "save-nowhere": (b'save = "/nonexistent/dir/x.ipynb"\n', "save"),
    "mime-order-tables": (b"mime-order = [{ a = 1 }]\n", "mime-order"),
    "start-not-table": (b"start = 5\n", "start"),
    "unknown": (b"colour = 1\n", "colour"),
    "unknown-in-start": (b"[start]\ncolour = 1\n", "colour"),
    "not-toml": (b"= = =\n", "TOML"),
    "deep": (b"a = " + DEEP.encode() + b"\n", "nested"),
    "deepish": (b"plain = true\na = " + b"[" * 200 + b"]" * 200 + b"\n", "nested"),
    "binary": (b'style = "\xff"\n', "UTF-8"),
    "huge": (b"# " + b"x" * (2 << 20) + b"\n", "larger than"),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
@pytest.mark.parametrize("command", ["start", "attach"])
def test_a_bad_config_value_names_the_file(no_user_config: Path, name: str, command: str) -> None:
    content, what = BAD_CONFIGS[name]
    no_user_config.write_bytes(content)
    assert_one_line(run([command]), str(no_user_config), what)


@pytest.mark.timeout(30)
def test_a_config_file_that_is_a_directory_is_one_line(no_user_config: Path) -> None:
    no_user_config.mkdir()
    assert_one_line(run(["start"]), str(no_user_config))


# -- the runtime dir ----------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_a_runtime_dir_that_cannot_exist_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    rdir = blocker / "runtime"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(rdir))
    assert_one_line(run(["start", "--kernel", "builtin"]), str(rdir))


def _full_disk() -> None:
    # Every write to a regular file fails with EFBIG, as on a full disk (ENOSPC) but
    # without needing one; pipes (stderr) are not limited.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


@pytest.mark.timeout(30)
def test_a_full_runtime_dir_is_one_line_and_leaves_no_partial_file(jupyter_dirs: Path) -> None:
    p = run(["start", "--kernel", "builtin"], preexec_fn=_full_disk)
    rdir = jupyter_dirs / "runtime"
    assert_one_line(p, str(rdir), "connection file")
    assert list(rdir.iterdir()) == []


@pytest.mark.timeout(30)
def test_an_unwritable_runtime_dir_is_one_line(
    jupyter_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.geteuid() != 0:
        rdir = jupyter_dirs / "runtime"
        rdir.chmod(0o500)
    else:  # root writes anywhere a mode allows nothing; sysfs refuses even root
        if not os.path.isdir("/sys/kernel"):
            pytest.skip("no /sys to be refused by")
        rdir = Path("/sys/kernel")
        monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(rdir))
    try:
        line = assert_one_line(run(["start", "--kernel", "builtin"]), str(rdir))
        assert "Permission denied" in line
    finally:
        if os.geteuid() != 0:
            rdir.chmod(0o700)


# -- what is printed comes from files: no terminal control sequences -----------------------

ESC_TITLE = "\x1b]0;pwned\x07\x1b[2J"


@pytest.mark.timeout(60)
def test_kernels_prints_no_control_sequences_from_files(
    jupyter_dirs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "jp"
    d = root / "kernels" / "evil"
    d.mkdir(parents=True)
    (d / "kernel.json").write_text(
        json.dumps({"argv": ["python"], "display_name": ESC_TITLE, "language": ESC_TITLE})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(root))
    rdir = jupyter_dirs / "runtime"
    (rdir / "kernel-evil.json").write_text(json.dumps({**PORTS, "kernel_name": ESC_TITLE}))
    # A file name that is not UTF-8 (any bytes are legal in a Linux file name).
    (rdir / os.fsdecode(b"kernel-\xff\x1b[2J.json")).write_text(json.dumps(PORTS))
    p = subprocess.run(
        [*KCONSOLE, "kernels"], capture_output=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert p.returncode == 0, p.stderr
    assert b"Traceback" not in p.stderr
    assert b"\x1b" not in p.stdout and b"\x07" not in p.stdout, p.stdout
    assert b"evil" in p.stdout


@pytest.mark.timeout(30)
def test_an_error_line_carries_no_control_sequences(jupyter_dirs: Path) -> None:
    # The file's name and its content carry escape sequences.
    f = jupyter_dirs / "runtime" / f"kernel-{ESC_TITLE}.json"
    f.write_text(json.dumps({**PORTS, "transport": ESC_TITLE}))
    p = run(["attach", "--existing", str(f)])
    line = assert_one_line(p, "unknown transport", "kernel-")
    assert "\x1b" not in line and "\x07" not in line, line


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", ["a" * 5000, "a/" * 3000])
def test_an_impossible_connection_file_name_is_one_short_line(name: str) -> None:
    line = assert_one_line(run(["attach", "--existing", name]), "not found")
    assert len(line) < 400, len(line)


BAD_CONFIG_STRINGS: dict[str, tuple[str, str]] = {
    "ip-nul": ('ip = "a\\u0000"\n', "ip"),
    "save-too-long": (f'save = "/{"a" * 300}/x.ipynb"\n', "save"),
    "scheme-nul": ('[attach]\nports = "1,2,3,4,5"\nsignature-scheme = "hmac-\\u0000"\n', "scheme"),
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", sorted(BAD_CONFIG_STRINGS))
def test_a_bad_string_in_the_config_is_one_line(no_user_config: Path, name: str) -> None:
    content, what = BAD_CONFIG_STRINGS[name]
    no_user_config.write_text(content)
    command = "attach" if "[attach]" in content else "start"
    p = run([command, "--kernel", "builtin"] if command == "start" else [command])
    assert_one_line(p, what)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "args, fragment",
    [
        (["start", "--style", "nope"], "--style"),
        (["start", "--timeout", "soon"], "--timeout"),
        (["start", "--image-protocol", "smoke"], "--image-protocol"),
        (["attach", "--no-such-option"], "--no-such-option"),
    ],
)
def test_a_bad_option_value_on_the_command_line_is_one_line(args: list[str], fragment: str) -> None:
    # Usage errors keep their status 2 (see the man page), in one line, not click's three.
    p = run(args)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kconsole: ") and fragment in lines[0], lines
    assert f"`kconsole {args[0]} --help`" in lines[0]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "content, what",
    [
        ('[attach]\nports = "1,2,3"\n', "ports"),
        ('[attach]\nkey = "schl\\u00fcssel"\n', "key"),
        ('[attach]\nsignature-scheme = "hmac-nope"\n', "signature-scheme"),
    ],
)
def test_attach_settings_in_the_config_name_the_file(
    no_user_config: Path, content: str, what: str
) -> None:
    no_user_config.write_text(content)
    assert_one_line(run(["attach", "--existing", "x"]), str(no_user_config), what)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "content, args, what",
    [
        ('[start]\nkernel = "no-such-kernel"\n', ["start"], "no such kernel"),
        ('ip = "192.0.2.99"\n', ["start", "--kernel", "builtin"], "cannot listen"),
        ('[attach]\nexisting = "kernel-nope"\n', ["attach"], "not found"),
    ],
)
def test_a_config_value_that_fails_later_still_names_the_file(
    no_user_config: Path, content: str, args: list[str], what: str
) -> None:
    no_user_config.write_text(content)
    assert_one_line(run(args), what, f"(set in config file {no_user_config})")
