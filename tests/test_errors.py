"""The one error boundary: user-facing failures are KconsoleErrors, printed once as
``kconsole: <message>`` with their exit status; ``--debug`` (or ``KCONSOLE_DEBUG=1``)
adds the cause chain above that line, and nothing else changes.

Also the contracts the CLI's hand-off relies on: the frozen ConsoleOptions built from
click's parameters, and the one column formatter of the listings.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kconsole.errors import (
    ExitStatus,
    KconsoleError,
    UsageProblem,
    error_line,
    printable,
    signal_status,
)
from kconsole.listing import columns
from kconsole.options import ConsoleOptions

KCONSOLE = [sys.executable, "-m", "kconsole"]


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user config file, and no KCONSOLE_DEBUG from the caller's environment."""
    monkeypatch.setenv("KCONSOLE_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.delenv("KCONSOLE_DEBUG", raising=False)


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        KCONSOLE + args,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def bad_connection_file(tmp_path: Path) -> Path:
    path = tmp_path / "kernel-bad.json"
    path.write_text('{"shell_port": 1,')  # cut short: not JSON
    return path


# -- the boundary, as the user sees it ----------------------------------------------------


def test_a_bad_connection_file_is_one_line_without_debug(bad_connection_file: Path) -> None:
    p = run(["attach", "--existing", str(bad_connection_file)])
    assert p.returncode == ExitStatus.ERROR == 1
    assert "Traceback" not in p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith(f"kconsole: connection file {bad_connection_file} is not valid JSON")


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--debug"], {}), ([], {"KCONSOLE_DEBUG": "1"})],
    ids=["--debug", "KCONSOLE_DEBUG=1"],
)
def test_debug_shows_the_cause_chain_above_the_same_line(
    bad_connection_file: Path, args: list[str], env: dict[str, str]
) -> None:
    plain = run(["attach", "--existing", str(bad_connection_file)])
    p = run([*args, "attach", "--existing", str(bad_connection_file)], env)
    assert p.returncode == plain.returncode == 1
    lines = p.stderr.splitlines()
    # The one line is still there, and still the last: scripts reading it keep working.
    assert lines[-1] == plain.stderr.strip()
    chain = p.stderr
    assert chain.startswith("Traceback (most recent call last):")
    # The parser's own error, the file problem made from it, the error shown.
    assert "json.decoder.JSONDecodeError" in chain
    assert "kconsole.paths.NotJSON" in chain
    assert "kconsole.connection.ConnectionFileError" in chain
    assert chain.count("The above exception was the direct cause") == 2


def test_kconsole_debug_set_to_something_else_changes_nothing(bad_connection_file: Path) -> None:
    p = run(["attach", "--existing", str(bad_connection_file)], {"KCONSOLE_DEBUG": "0"})
    assert (p.returncode, len(p.stderr.splitlines())) == (1, 1), p.stderr
    assert "Traceback" not in p.stderr


def test_a_usage_problem_leaves_with_status_2_also_under_debug() -> None:
    for args in (["attach"], ["--debug", "attach"]):
        p = run([*args, "--existing", "x", "--ssh-key", "k"])
        assert p.returncode == ExitStatus.USAGE == 2
        assert p.stderr.splitlines()[-1] == "kconsole: --ssh-key goes with --ssh"


def test_debug_is_in_the_help() -> None:
    p = run(["--help"])
    assert p.returncode == 0
    assert "--debug" in p.stdout and "KCONSOLE_DEBUG=1" in p.stdout


# -- the hierarchy ------------------------------------------------------------------------


def test_every_user_facing_error_is_a_kconsole_error() -> None:
    from kconsole.config import ConfigError
    from kconsole.connection import ConnectionFileError
    from kconsole.kernelspec import KernelSpecError, NoSuchKernel
    from kconsole.launcher import KernelStartError
    from kconsole.remote.rest import RemoteError, TokenRefused
    from kconsole.remote.ssh import TunnelError
    from kconsole.script import ScriptInputError
    from kconsole.transport import TransportError

    for cls in (
        ConfigError,
        ConnectionFileError,
        KernelSpecError,
        NoSuchKernel,
        KernelStartError,
        RemoteError,
        TokenRefused,
        TunnelError,
        ScriptInputError,
        UsageProblem,
    ):
        assert issubclass(cls, KconsoleError), cls
    # A server's failure is still a transport failure to the client that handles those.
    assert issubclass(RemoteError, TransportError)
    missing = NoSuchKernel("nosuch", ["python3"])
    assert missing.message == "no such kernel: 'nosuch' (available: python3)"
    assert isinstance(missing, LookupError) and missing.exit_status == ExitStatus.ERROR


def test_exit_statuses() -> None:
    assert KconsoleError("x").exit_status == ExitStatus.ERROR
    assert UsageProblem("x").exit_status == ExitStatus.USAGE
    assert KconsoleError("x", exit_status=ExitStatus.KERNEL_DIED).exit_status == 3
    assert signal_status(signal.SIGTERM) == ExitStatus.TERMINATED == 143
    assert signal_status(signal.SIGINT) == ExitStatus.INTERRUPTED == 130
    assert signal_status(signal.SIGHUP) == 129


def test_the_line_escapes_control_characters_but_keeps_newlines() -> None:
    e = KconsoleError("file \x1b]0;owned\x07 bad\nsecond line \udcff")
    assert error_line(e) == "kconsole: file \\x1b]0;owned\\x07 bad\nsecond line \\xff"
    assert printable("a\nb") == "a\\nb"


# -- options and columns ------------------------------------------------------------------


def test_console_options_are_built_once_from_clicks_params_and_frozen() -> None:
    params = {
        "timeout": 5,
        "no_other_output": True,
        "no_banner": False,
        "vi": True,
        "confirm_exit": False,
        "style": "monokai",
        "no_toolbar": True,
        "history_size": 0,  # a falsy value keeps the default
        "save": "",
        "plain": True,
        "mime_order": " text/html , ,text/markdown",
        "image_protocol": "blocks",
        "image_viewer": "",
        "image_dir": "/tmp/imgs",
        "code_style": "",
    }
    o = ConsoleOptions.from_params(params, started_here=True)
    assert o == ConsoleOptions(
        timeout=5.0,
        show_other_output=False,
        banner=True,
        vi_mode=True,
        confirm_exit=False,
        style="monokai",
        toolbar=False,
        plain=True,
        mime_order=("text/html", "text/markdown"),
        image_protocol="blocks",
        image_dir="/tmp/imgs",
        started_here=True,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.timeout = 1.0  # type: ignore[misc]
    config = o.display_config()
    assert (config.plain, config.mime_order, config.image_protocol) == (
        True,
        ["text/html", "text/markdown"],
        "blocks",
    )
    assert (config.image_viewer, config.image_dir, config.code_style) == (
        None,
        "/tmp/imgs",
        "kconsole",
    )


def test_columns_pad_all_but_the_last_column() -> None:
    rows = [("NAME", "LANG", "PATH"), ("python3", "python", "/a b"), ("r", "-", "/r")]
    assert columns(rows, indent="  ").splitlines() == [
        "  NAME     LANG    PATH",
        "  python3  python  /a b",
        "  r        -       /r",
    ]
    assert columns([("ID", "NAME")]) == "ID  NAME"


def test_debug_shows_why_a_kernel_could_not_start(tmp_path: Path) -> None:
    # The layers below the CLI chain their causes too: the OS's own error is what a
    # user debugging a kernelspec needs to see, and --debug shows it.
    spec = tmp_path / "share" / "jupyter" / "kernels" / "gone"
    spec.mkdir(parents=True)
    missing = tmp_path / "no-such-interpreter"
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(missing), "-f", "{connection_file}"],
                "display_name": "Gone",
                "language": "python",
            }
        )
    )
    env = {"JUPYTER_PATH": str(tmp_path / "share" / "jupyter")}
    plain = run(["start", "--kernel", "gone"], env)
    assert plain.returncode == 1 and len(plain.stderr.splitlines()) == 1, plain.stderr
    assert "Traceback" not in plain.stderr
    p = run(["--debug", "start", "--kernel", "gone"], env)
    assert p.returncode == 1
    assert p.stderr.splitlines()[-1] == plain.stderr.strip()
    assert "\nFileNotFoundError: " in p.stderr, p.stderr  # the OS error, as the chain's root
