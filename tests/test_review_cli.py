"""Defects found by the CLI review, each run as the real command from the user's side:
bad input is one line on stderr and a non-zero status (1; 2 for usage errors), never a
traceback, a hang, a stray connection file or an orphaned kernel."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

KCONSOLE = [sys.executable, "-m", "kconsole"]
PORTS = {"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5}


@pytest.fixture(autouse=True)
def no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never the user's own config file; tests that need one write it here."""
    cfg = tmp_path / "config.toml"
    monkeypatch.setenv("KCONSOLE_CONFIG", str(cfg))
    return cfg


def run(args: list[str], timeout: float = 60, **kw: object) -> subprocess.CompletedProcess[str]:
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(
        KCONSOLE + args,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,  # type: ignore[call-overload]
    )


def one_line(p: subprocess.CompletedProcess[str], status: int, *fragments: str) -> str:
    """Exactly one line on stderr, no traceback, exit ``status``, naming each fragment."""
    assert "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr[-3000:]
    line = lines[0]
    assert line.startswith("kconsole: "), line
    for f in fragments:
        assert f in line, (f, line)
    assert p.returncode == status, (p.returncode, line)
    return line


def kernel_processes(runtime: Path) -> list[int]:
    """Pids of processes whose command line names a file in ``runtime``."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmdline = (d / "cmdline").read_bytes()
        except OSError:
            continue
        if str(runtime).encode() in cmdline:
            pids.append(int(d.name))
    return pids


def leftovers(runtime: Path) -> list[str]:
    return sorted(p.name for p in runtime.glob("kernel-*"))


def write_spec(root: Path, name: str, argv: list[str]) -> None:
    d = root / "kernels" / name
    d.mkdir(parents=True)
    (d / "kernel.json").write_text(json.dumps({"argv": argv, "language": "python"}))


# -- signals during start ---------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the kernel")
@pytest.mark.timeout(60)
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_a_signal_just_after_the_kernel_is_spawned_leaves_nothing_behind(
    jupyter_dirs: Path, signame: str
) -> None:
    # `start` spawns the kernel before its event loop (and its signal handlers) exist;
    # a SIGTERM in that window used to kill kconsole outright, leaving the connection
    # file, the log and (for a while) the kernel behind.
    runtime = jupyter_dirs / "runtime"
    p = subprocess.Popen(
        [*KCONSOLE, "start", "--kernel", "builtin"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not list(runtime.glob("kernel-*.json")):  # the event: the file appears
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "no connection file appeared"
        p.send_signal(getattr(signal, signame))
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    # 128 + the signal before the event loop runs, 143 (its own handler) after.
    assert p.returncode in (128 + getattr(signal, signame), 143), (p.returncode, err)
    assert b"Traceback" not in err, err
    assert leftovers(runtime) == []
    assert kernel_processes(runtime) == []


# -- option values ----------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "args",
    [
        ["start", "--kernel", "builtin", "--timeout", "nan"],
        ["attach", "--ports", "1,2,3,4,5", "--key", "k", "--timeout", "nan"],
    ],
)
def test_timeout_nan_is_a_usage_error(args: list[str]) -> None:
    # It used to be taken: a traceback on attach, a start that never gave up.
    one_line(run(args, timeout=20), 2, "--timeout")


@pytest.mark.timeout(30)
def test_timeout_nan_in_the_config_file_names_the_file(no_user_config: Path) -> None:
    no_user_config.write_text("timeout = nan\n")
    one_line(run(["start", "--kernel", "builtin"], timeout=20), 1, str(no_user_config))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("scheme", ["hmac-shake_128", "hmac-shake_256"])
def test_a_signature_scheme_hmac_cannot_use_is_one_line(jupyter_dirs: Path, scheme: str) -> None:
    # hashlib has shake_128, but an HMAC over it fails ("no reason supplied").
    p = run(["attach", "--ports", "1,2,3,4,5", "--key", "k", "--signature-scheme", scheme])
    one_line(p, 2, scheme)
    f = jupyter_dirs / "runtime" / "kernel-shake.json"
    f.write_text(json.dumps({**PORTS, "key": "k", "signature_scheme": scheme}))
    one_line(run(["attach", "--existing", str(f)]), 1, str(f), scheme)


@pytest.mark.timeout(30)
def test_an_empty_ip_is_a_usage_error(jupyter_dirs: Path) -> None:
    # It used to start a kernel that could not be reached: a wait of the whole timeout
    # with the built-in kernel, ipykernel's traceback with python3.
    p = run(["start", "--kernel", "builtin", "--ip", ""], timeout=20)
    one_line(p, 2, "--ip")
    assert leftovers(jupyter_dirs / "runtime") == []


@pytest.mark.timeout(30)
def test_a_huge_ports_value_is_one_short_line() -> None:
    p = run(["attach", "--ports", ",".join(["1"] * 50_000)])
    line = one_line(p, 2, "--ports")
    assert len(line) < 300, len(line)


@pytest.mark.timeout(60)
def test_an_ipc_path_zmq_rejects_is_one_line_and_leaves_nothing(
    jupyter_dirs: Path, tmp_path: Path
) -> None:
    runtime = jupyter_dirs / "runtime"
    path = "/tmp/" + "a" * 200  # longer than a unix socket name can be
    p = run(
        ["start", "--kernel", "builtin", "--transport", "ipc", "--ip", path],
        timeout=40,
        input="print(1)\n",
        stdin=None,
    )
    one_line(p, 1, "builtin")
    assert leftovers(runtime) == []
    assert kernel_processes(runtime) == []


# -- closed or full standard streams ------------------------------------------------------


def _close_fd(fd: int) -> object:
    def close() -> None:
        os.close(fd)

    return close


@pytest.mark.timeout(30)
@pytest.mark.parametrize("fd", [0, 1], ids=["stdin", "stdout"])
def test_start_with_a_closed_standard_stream_is_one_line(jupyter_dirs: Path, fd: int) -> None:
    p = subprocess.run(
        [*KCONSOLE, "start", "--kernel", "builtin"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=20,
        preexec_fn=_close_fd(fd),  # type: ignore[arg-type]
    )
    one_line(p, 1, "closed")
    assert leftovers(jupyter_dirs / "runtime") == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.timeout(30)
@pytest.mark.parametrize("args", [["kernels"], ["--help"], ["start", "--help"]])
def test_output_to_a_full_disk_is_one_line(args: list[str]) -> None:
    with open("/dev/full", "w") as full:
        p = subprocess.run(
            KCONSOLE + args,
            stdin=subprocess.DEVNULL,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=20,
        )
    one_line(p, 1, "No space left on device")


# -- a kernel dying during start ---------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "code,fragment",
    [
        ("raise ValueError('boom')", "ValueError: boom"),
        ("import sys; sys.stdout.write('x' * 100000); sys.exit(2)", "exit status 2"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "killed by SIGKILL"),
    ],
    ids=["traceback", "long-output", "sigkill"],
)
def test_a_kernel_dying_during_start_is_one_short_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str, fragment: str
) -> None:
    write_spec(tmp_path, "dies", [sys.executable, "-c", code, "{connection_file}"])
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    p = run(["start", "--kernel", "dies"], input="print(1)\n", stdin=None)
    line = one_line(p, 1, "died during start", fragment)
    assert len(line) < 400, len(line)


# -- kernel install ----------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_kernel_install_with_two_destinations_is_a_usage_error(jupyter_dirs: Path) -> None:
    # The last flag used to win silently (--user --sys-prefix wrote into sys.prefix).
    p = run(["kernel", "install", "--sys-prefix", "--user", "--name", "review-x"])
    one_line(p, 2, "--user", "--sys-prefix")
    assert not (jupyter_dirs / "data" / "kernels" / "review-x").exists()


# -- the config file ---------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("args", [["start", "--help"], ["attach", "--help"]])
def test_a_bad_config_file_does_not_block_the_help(no_user_config: Path, args: list[str]) -> None:
    # The file holds defaults for start and attach only; their help must still show.
    no_user_config.write_text("bogus = 1\n")
    p = run(args)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip()


@pytest.mark.timeout(30)
def test_a_bad_config_file_still_stops_start(no_user_config: Path) -> None:
    no_user_config.write_text("bogus = 1\n")
    one_line(run(["start", "--kernel", "builtin"]), 1, str(no_user_config), "bogus")


@pytest.mark.timeout(60)
def test_a_kernel_dying_during_start_ends_a_dumb_terminal_prompt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With TERM=dumb prompt_toolkit runs a separate application for the prompt: the
    # console used to sit at `In [1]:` for ever, saying nothing.
    pexpect = pytest.importorskip("pexpect")
    write_spec(tmp_path, "dies", [sys.executable, "-c", "raise ValueError('boom')"])
    env = {**os.environ, "JUPYTER_PATH": str(tmp_path), "TERM": "dumb"}
    child = pexpect.spawn(KCONSOLE[0], [*KCONSOLE[1:], "start", "--kernel", "dies"], env=env)
    try:
        child.expect(r"kconsole: kernel 'dies' died during start \(exit status 1\)", timeout=30)
        child.expect(pexpect.EOF, timeout=15)
    finally:
        child.close(force=True)
    assert child.exitstatus == 1
    assert b"Traceback" not in (child.before or b"")


# -- the runtime dir ---------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_a_runtime_dir_that_is_a_file_says_so(tmp_path: Path) -> None:
    # It used to end in "...: File exists", about a file that does not exist.
    afile = tmp_path / "runtime"
    afile.write_text("")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(afile)}
    line = one_line(run(["start", "--kernel", "builtin"], env=env), 1, str(afile))
    assert "Not a directory" in line and "File exists" not in line


@pytest.mark.timeout(30)
def test_attach_existing_with_no_live_kernel_does_not_blame_a_garbage_file(
    jupyter_dirs: Path,
) -> None:
    # None answers: the error is about the newest file that describes a kernel, not
    # the JSON of a newer file that is not a connection file at all.
    runtime = jupyter_dirs / "runtime"
    stale = runtime / "kernel-stale.json"
    stale.write_text(json.dumps({**PORTS, "key": "k"}))
    garbage = runtime / "kernel-garbage.json"
    garbage.write_text("{")
    os.utime(stale, (1, 1))  # older than the garbage
    line = one_line(run(["attach", "--existing"]), 1, str(stale))
    assert "JSON" not in line, line


# -- --ssh -------------------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("spec", ["", "-oProxyCommand=true", "host:99999", "host:-1", "user@"])
def test_a_bad_ssh_host_is_a_usage_error(jupyter_dirs: Path, spec: str) -> None:
    f = jupyter_dirs / "runtime" / "kernel-far.json"
    f.write_text(json.dumps({**PORTS, "key": "k"}))
    one_line(run(["attach", "--existing", str(f), "--ssh", spec]), 2, "--ssh")


# -- --server ----------------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("url", ["not a url", "http://[::1", "http://a\x01b/", "http://[::1]:x/"])
@pytest.mark.parametrize("command", ["kernels", "start"])
def test_a_malformed_server_url_is_a_usage_error(url: str, command: str) -> None:
    one_line(run([command, "--server", url, "--token", "t"]), 2, "--server")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("where", ["option", "environment"])
def test_a_token_that_cannot_be_sent_is_one_line(where: str) -> None:
    token = "a\nb"
    args = ["kernels", "--server", "http://127.0.0.1:1/"]
    env = dict(os.environ)
    if where == "option":
        args += ["--token", token]
    else:
        env["JUPYTER_TOKEN"] = token
    one_line(run(args, env=env), 1, "token")


@pytest.mark.timeout(30)
def test_a_config_dir_that_is_a_file_means_no_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # $XDG_CONFIG_HOME naming a file: there can be no config file under it, which is
    # not an error (every command used to fail with "Not a directory").
    afile = tmp_path / "xdg"
    afile.write_text("")
    monkeypatch.delenv("KCONSOLE_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(afile))
    p = run(["start", "--kernel", "builtin"], input="print(6*7)\n", stdin=None)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "42"


# -- --save ------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_save_to_something_that_is_not_a_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    # The atomic save renames its temporary file over the path: `--save /dev/null` run
    # as root replaced the device with a regular file. A FIFO stands in for it here.
    import stat

    fifo = tmp_path / "out.ipynb"
    os.mkfifo(fifo)
    p = run(["start", "--kernel", "builtin", "--save", str(fifo)], input="1\n", stdin=None)
    one_line(p, 2, "--save", "not a regular file")
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_notebook_is_never_renamed_over_a_fifo(tmp_path: Path) -> None:
    # The save's own guard, for a path that became special after the command line
    # was checked (Ctrl-X s saves again to the same path).
    import stat

    from kconsole.notebook import NotebookRecorder

    fifo = tmp_path / "later.ipynb"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        NotebookRecorder(fifo).save()
    assert stat.S_ISFIFO(fifo.stat().st_mode)


@pytest.mark.timeout(30)
def test_attach_to_a_fifo_says_what_it_is_not_that_it_is_missing(jupyter_dirs: Path) -> None:
    fifo = jupyter_dirs / "runtime" / "kernel-fifo.json"
    os.mkfifo(fifo)
    line = one_line(run(["attach", "--existing", str(fifo)]), 1, str(fifo))
    assert "not found" not in line and "not a regular file" in line, line


@pytest.mark.timeout(60)
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_a_session_ended_by_a_signal_exits_as_a_shell_reports_it(signame: str) -> None:
    # A closed terminal (SIGHUP) used to exit 143, SIGTERM's status.
    from ptyconsole import PtyConsole, pid_alive

    c = PtyConsole(["start", "--kernel", "builtin"])
    try:
        c.expect_prompt(1)
        c.sendline("import os; print('pid', os.getpid())")
        pid = int(c.expect(r"pid (\d+)").group(1))
        c.child.kill(getattr(signal, signame))
        assert c.wait_exit(20) == 128 + getattr(signal, signame)
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)  # polling for the kernel's end, bounded
        assert not pid_alive(pid)
    finally:
        c.close()


@pytest.mark.timeout(30)
def test_an_image_dir_that_is_a_file_is_a_usage_error(tmp_path: Path) -> None:
    # It used to be accepted, then every image of the session gave a FileExistsError note.
    f = tmp_path / "not-a-dir"
    f.write_text("x")
    p = run(["start", "--kernel", "builtin", "--image-dir", str(f)])
    assert p.returncode == 2
    assert "not a directory" in p.stderr
    assert "Traceback" not in p.stderr
