"""kconsole as a command: script mode against real kernels, and every user error as one
clear line with a non-zero exit status (never a traceback)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from jupyter_client.manager import KernelManager

from kconsole import paths

KCONSOLE = [sys.executable, "-m", "kconsole"]


def run(args: list[str], stdin: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        KCONSOLE + args, input=stdin, capture_output=True, text=True, timeout=timeout
    )


def assert_one_line_error(p: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert p.returncode != 0
    assert "Traceback" not in p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert lines and lines[0].startswith("kconsole: "), p.stderr
    assert fragment in p.stderr, p.stderr


# -- script mode ------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_output_piped_into_head_ends_quietly() -> None:
    # `kconsole ... | head -1`: the reader leaves early; no traceback, no further cells.
    p = subprocess.Popen(
        [*KCONSOLE, "start", "--kernel", "builtin"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert p.stdin is not None and p.stdout is not None and p.stderr is not None
    p.stdin.write("for i in range(200000): print(i)\nprint('second cell')\n")
    p.stdin.close()
    assert p.stdout.readline() == "0\n"
    p.stdout.close()  # as head does after its line
    assert p.wait(30) == 1
    assert p.stderr.read() == ""


@pytest.mark.timeout(60)
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_output_to_a_full_disk_is_one_line() -> None:
    with open("/dev/full", "w") as full:
        p = subprocess.run(
            [*KCONSOLE, "start", "--kernel", "builtin"],
            input="print(6*7)\n",
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=30,
        )
    assert p.returncode == 1
    assert (
        p.stderr.strip() == "kconsole: cannot write the output: [Errno 28] No space left on device"
    )


@pytest.mark.timeout(60)
def test_start_runs_piped_code_and_exits_0() -> None:
    p = run(["start", "--kernel", "python3"], "print(6*7)\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "42"
    assert list(paths.runtime_dir().glob("kernel-*.json")) == []  # shut down, cleaned up


@pytest.mark.timeout(60)
def test_a_cell_that_raises_stops_the_script_with_status_1() -> None:
    # As python3 does: the traceback on stderr, no later cell runs.
    p = run(["start", "--kernel", "python3"], "print('before')\n1/0\nprint('after')\n")
    assert p.returncode == 1
    assert "ZeroDivisionError" in p.stderr and p.stdout == "before\n"


@pytest.mark.timeout(60)
def test_tracebacks_into_a_pipe_have_no_colour_codes() -> None:
    p = run(["start", "--kernel", "python3"], "1/0\n")
    assert "ZeroDivisionError: division by zero" in p.stderr
    assert "\x1b[" not in p.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kernel", ["python3", "builtin"])
def test_script_cells_follow_is_complete_and_input_reads_next_line(kernel: str) -> None:
    # The built-in kernel asks for input within a millisecond of the execute: the
    # console must be reachable on stdin by then.
    code = "for i in range(3):\n    print(i)\n\nx = input()\nab\nprint(x*2)\n"
    p = run(["start", "--kernel", kernel], code)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["0", "1", "2", "abab"]


@pytest.mark.timeout(60)
def test_input_at_eof_is_eof() -> None:
    p = run(
        ["start", "--kernel", "python3"], "try:\n    input()\nexcept EOFError:\n    print('eof')\n"
    )
    assert "eof" in p.stdout


@pytest.mark.timeout(120)
def test_flood_arrives_complete_and_in_order() -> None:
    p = run(
        ["start", "--kernel", "python3"], "for i in range(200000): print(i)\nprint('end')\n", 110
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[:-1] == [str(i) for i in range(200000)]
    assert lines[-1] == "end"


@pytest.mark.timeout(60)
def test_kill_9_during_execute_is_reported_quickly() -> None:
    proc = subprocess.Popen(
        KCONSOLE + ["start", "--kernel", "python3"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin and proc.stdout
    proc.stdin.write("import os, time; print(os.getpid(), flush=True); time.sleep(60)\n")
    proc.stdin.close()
    pid = int(proc.stdout.readline())
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=20)
    err = proc.stderr.read() if proc.stderr else ""
    elapsed = time.monotonic() - t0
    assert elapsed < 5, elapsed
    assert proc.returncode == 3  # the documented status for a kernel that died
    assert "kernel died" in err


# -- attach -----------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_attach_existing_file_and_ports(ipykernel: KernelManager) -> None:
    cf = ipykernel.connection_file
    p = run(["attach", "--existing", cf], "print('via file')\n")
    assert p.returncode == 0, p.stderr
    assert "via file" in p.stdout
    info = json.loads(Path(cf).read_text())
    ports = ",".join(str(info[f"{c}_port"]) for c in ("shell", "iopub", "stdin", "control", "hb"))
    p = run(["attach", "--ports", ports, "--key", info["key"]], "print('via ports')\n")
    assert p.returncode == 0, p.stderr
    assert "via ports" in p.stdout
    assert ipykernel.is_alive()  # attaching never shuts the kernel down


@pytest.mark.timeout(60)
def test_attach_to_newest_in_runtime_dir(ipykernel: KernelManager) -> None:
    p = run(["attach", "--existing"], "print(1+1)\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "2"


@pytest.mark.timeout(60)
def test_wrong_key_is_one_clear_line(ipykernel: KernelManager) -> None:
    info = json.loads(Path(ipykernel.connection_file).read_text())
    ports = ",".join(str(info[f"{c}_port"]) for c in ("shell", "iopub", "stdin", "control", "hb"))
    p = run(["attach", "--ports", ports, "--key", "wrong", "--timeout", "3"], "print(1)\n")
    assert_one_line_error(p, "key")


# -- bad input ----------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_unknown_kernel_lists_known_ones() -> None:
    p = run(["start", "--kernel", "nosuchkernel"])
    assert_one_line_error(p, "nosuchkernel")
    assert "python3" in p.stderr


@pytest.mark.timeout(30)
def test_missing_and_malformed_connection_files(tmp_path: Path) -> None:
    assert_one_line_error(run(["attach", "--existing", str(tmp_path / "nope.json")]), "not found")
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    assert_one_line_error(run(["attach", "--existing", str(bad)]), "not valid JSON")
    assert_one_line_error(run(["attach", "--existing"]), "no running kernel")


@pytest.mark.timeout(30)
def test_bad_option_combinations_are_usage_errors_with_status_2() -> None:
    for args, fragment in [
        (["attach", "--ports", "1,2,x", "--key", "k"], "--ports"),
        (["attach"], "--existing"),
        (["attach", "--existing", "x", "--ssh-key", "k"], "--ssh"),
        (["attach", "--kernel-id", "abc"], "--server"),
        (["start", "--timeout", "0"], "--timeout"),
    ]:
        p = run(args, "1\n")
        assert p.returncode == 2, (args, p.stderr)
        assert fragment in p.stderr and "Traceback" not in p.stderr


@pytest.mark.timeout(30)
def test_an_address_that_is_not_ours_is_one_line() -> None:
    assert_one_line_error(run(["start", "--kernel", "builtin", "--ip", "not-an-ip"], "1\n"), "--ip")


@pytest.mark.timeout(30)
def test_nothing_listening_is_reported_quickly_with_a_cause(tmp_path: Path) -> None:
    p = run(["attach", "--ports", "1,2,3,4,5", "--key", "k"], "print(1)\n")
    assert_one_line_error(p, "no kernel answers")
    # A stale connection file: reported within seconds, not after the 60 s timeout.
    from kconsole.connection import ConnectionInfo

    stale = ConnectionInfo.new().write(tmp_path / "kernel-stale.json")
    t0 = time.monotonic()
    p = run(["attach", "--existing", str(stale)], "print(1)\n")
    assert_one_line_error(p, "stale")
    assert time.monotonic() - t0 < 15


@pytest.mark.timeout(60)
def test_kernel_dying_during_start_shows_its_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kdir = tmp_path / "kernels" / "broken"
    kdir.mkdir(parents=True)
    (kdir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [
                    sys.executable,
                    "-c",
                    "import sys; sys.stderr.write('boom: cannot start\\n'); sys.exit(3)",
                    "{connection_file}",
                ],
                "display_name": "Broken",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    p = run(["start", "--kernel", "broken"], "print(1)\n")
    assert_one_line_error(p, "died during start")
    assert "boom: cannot start" in p.stderr


@pytest.mark.timeout(30)
def test_kernels_lists_specs_and_running_kernels(ipykernel: KernelManager) -> None:
    p = run(["kernels"])
    assert p.returncode == 0, p.stderr
    assert "python3" in p.stdout
    assert Path(ipykernel.connection_file).name in p.stdout
    assert "alive" in p.stdout


@pytest.mark.timeout(30)
def test_kernels_whose_reader_left_ends_quietly_with_status_0(ipykernel: KernelManager) -> None:
    # `kconsole kernels | head -1`: head leaves after the first line, while kconsole is
    # still probing the running kernels. Whether the rest was written before it left or
    # not, that is a normal end (as for ripgrep), not 0 or 1 by a race; the reader here
    # is gone before the first write, the case that used to exit 1.
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run(
            [*KCONSOLE, "kernels"], stdout=w, stderr=subprocess.PIPE, text=True, timeout=30
        )
    finally:
        os.close(w)
    assert (p.returncode, p.stderr) == (0, "")
    head = subprocess.run(
        f"{sys.executable} -m kconsole kernels | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (head.stdout, head.stderr) == ("Available kernels:\n", "")


@pytest.mark.timeout(30)
def test_kernels_with_stdout_closed_ends_quietly() -> None:
    # `kconsole kernels >&-`: no stdout at all (sys.stdout is None), nothing to write
    # to and no reader to leave: status 0 as before, not a traceback.
    p = subprocess.run(
        f"{sys.executable} -m kconsole kernels >&-",
        shell=True,
        stderr=subprocess.PIPE,
        text=True,
        timeout=30,
    )
    assert (p.returncode, p.stderr) == (0, "")


# -- rich output settings ---------------------------------------------------------------

HTML_CELL = "from IPython.display import HTML, display\ndisplay(HTML('<h1>Title</h1><table><tr><th>a</th><th>bb</th></tr><tr><td>1</td><td>2</td></tr></table>'))\n"


@pytest.mark.timeout(60)
def test_html_is_rendered_and_plain_turns_it_off() -> None:
    rich = run(["start", "--kernel", "python3"], HTML_CELL)
    assert rich.returncode == 0, rich.stderr
    assert "│ a │ bb │" in rich.stdout and "<IPython" not in rich.stdout
    plain = run(["start", "--kernel", "python3", "--plain"], HTML_CELL)
    assert "<IPython.core.display.HTML object>" in plain.stdout


@pytest.mark.timeout(90)
def test_config_file_sets_defaults_and_bad_settings_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "config.toml"
    monkeypatch.setenv("KCONSOLE_CONFIG", str(cfg))
    cfg.write_text("plain = true\n[start]\nkernel = 'python3'\n")
    p = run(["start"], HTML_CELL)
    assert p.returncode == 0, p.stderr
    assert "<IPython.core.display.HTML object>" in p.stdout  # plain, and ipykernel's repr
    for bad, fragment in [
        ("no-such-thing = 1\n", "no-such-thing"),
        ("timeout = 'abc'\n", "timeout"),
        ("plain = \n", "not valid TOML"),
        ("[start]\nserver-url = 'x'\n", "start.server-url"),
    ]:
        cfg.write_text(bad)
        p = run(["start", "--kernel", "python3"], "1\n")
        assert_one_line_error(p, fragment)
        assert str(cfg) in p.stderr
    cfg.unlink()
    cfg.mkdir()  # a config path that cannot be read is reported, not ignored
    assert_one_line_error(run(["kernels"]), "cannot read config file")


@pytest.mark.timeout(60)
def test_save_writes_a_valid_notebook(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    out = tmp_path / "s.ipynb"
    code = "print('printed')\nfrom IPython.display import HTML, display\ndisplay(HTML('<b>shown</b>'))\n1/0\n"
    p = run(["start", "--kernel", "python3", "--save", str(out)], code)
    assert p.returncode == 1  # the last cell raised
    nb = nbformat.read(str(out), as_version=4)
    nbformat.validate(nb)
    kinds = [[o["output_type"] for o in c["outputs"]] for c in nb.cells]
    assert kinds == [["stream"], [], ["display_data"], ["error"]], kinds
    assert nb.cells[0]["outputs"][0]["text"] == "printed\n"
    assert nb.cells[3]["outputs"][0]["ename"] == "ZeroDivisionError"


@pytest.mark.timeout(60)
def test_history_files_are_private() -> None:
    import stat

    from kconsole.repl.history import history_for

    history_for("python")
    console_file = paths.user_state_dir() / "history-python"
    assert stat.S_IMODE(console_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.user_state_dir().stat().st_mode) == 0o700
    p = run(["start", "--kernel", "builtin"], "x = 1\n")
    assert p.returncode == 0, p.stderr
    dbs = list(paths.user_state_dir().glob("*.sqlite"))
    assert dbs and all(stat.S_IMODE(db.stat().st_mode) == 0o600 for db in dbs)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kernel", ["python3", "builtin"])
def test_ipc_transport(kernel: str) -> None:
    p = run(["start", "--kernel", kernel, "--transport", "ipc"], "print('over ipc')\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "over ipc"
    assert list(paths.runtime_dir().glob("kernel-*")) == []  # sockets and files cleaned up


@pytest.mark.timeout(60)
def test_ipv6_loopback_with_the_builtin_kernel() -> None:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    p = run(["start", "--kernel", "builtin", "--ip", "::1", "--timeout", "20"], "print('v6')\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "v6"


@pytest.mark.timeout(60)
def test_a_kept_kernel_that_died_leaves_no_files(tmp_path: Path) -> None:
    # `start --keep-kernel` leaves a watcher that removes the kernel's files once it
    # exits; a kernel that died before the console left has no watcher to come: the
    # console removes its connection file and log itself (they named a dead kernel).
    runtime = tmp_path / "runtime"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime)}
    p = subprocess.run(
        [*KCONSOLE, "start", "--kernel", "python3", "--keep-kernel"],
        input="import os; os._exit(1)\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert p.returncode == 3, p.stderr
    assert "left running" not in p.stderr
    assert list(runtime.glob("kernel-*")) == []
