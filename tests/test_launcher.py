"""KernelProcess with real processes: ipykernel, plus tiny Python scripts as stand-in kernels.

jupyter_client's BlockingKernelClient is the test-only peer: if it can talk to the kernel
through the connection file we wrote, the file is right. Nothing here sleeps to synchronise:
every wait is for an event (a message, a pidfd, a pipe) with a timeout.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import queue
import select
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kconsole import launcher
from kconsole.connection import ConnectionInfo
from kconsole.kernelspec import KernelSpec, get_kernel_spec
from kconsole.launcher import KernelProcess, KernelStartError

REPO = Path(__file__).resolve().parent.parent
jupyter_client = pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")

pytestmark = pytest.mark.timeout(90)


# -- helpers ------------------------------------------------------------------------------


def pid_gone(pid: int, timeout: float) -> bool:
    """Wait for a process that need not be our child to exit (zombies count as gone)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def wait_readable(fd: int, timeout: float) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


def script_spec(tmp_path: Path, code: str, **kw: Any) -> KernelSpec:
    """A stand-in kernel: python running ``code`` (cheap, for process-level behaviour)."""
    return KernelSpec(
        name=kw.pop("name", "script"),
        resource_dir=tmp_path,
        argv=["python", "-c", textwrap.dedent(code)],
        display_name="Script",
        language="python",
        **kw,
    )


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rdir = tmp_path / "runtime"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(rdir))
    return rdir


@pytest.fixture
def ipykernel_spec() -> KernelSpec:
    spec = get_kernel_spec("python3")
    assert spec.language == "python"
    return spec


@pytest.fixture
def kernel(ipykernel_spec: KernelSpec) -> Iterator[KernelProcess]:
    kp = KernelProcess(ipykernel_spec, ConnectionInfo.new())
    kp.start()
    try:
        yield kp
    finally:
        kp.cleanup()


def connect(kp: KernelProcess, timeout: float = 60) -> Any:
    """A jupyter_client peer that has seen the kernel answer on shell and publish on IOPub.

    Not ``wait_for_ready`` with a heartbeat: jupyter_client then declares a kernel that
    takes over 1 s to start (a loaded machine) dead. A kernel that lost a port race is
    moved to new ports, as kconsole's client does.
    """
    for _ in range(3):
        kc = jupyter_client.BlockingKernelClient(connection_file=str(kp.connection_file))
        kc.load_connection_file()
        kc.start_channels(hb=False)
        try:
            ready = wait_ready(kc, kp, timeout)
        except BaseException:
            kc.stop_channels()
            raise
        if ready:
            return kc
        kc.stop_channels()
        if not kp.died_of_port_clash():
            raise AssertionError(f"kernel died: {kp.stderr_tail()}")
        kp.restart_on_new_ports()
    raise AssertionError("kernel kept losing port races")


def wait_ready(kc: Any, kp: KernelProcess, timeout: float) -> bool:
    """jupyter_client's readiness rule: a kernel_info reply, then any IOPub message (else
    the subscription may not be live yet, so ask again). False if the process died."""
    deadline = time.monotonic() + timeout
    # Messages of an earlier process (its shutdown's status) prove nothing about the
    # new subscription: only IOPub output of our own probe counts.
    while kc.iopub_channel.msg_ready():
        kc.get_iopub_msg()
    while time.monotonic() < deadline:
        if not kp.is_alive():
            return False
        msg_id = kc.kernel_info()
        try:
            get_reply(kc, msg_id, timeout=1)
            probe_end = time.monotonic() + 0.5
            while True:
                msg = kc.get_iopub_msg(timeout=max(0.0, probe_end - time.monotonic()))
                if msg["parent_header"].get("msg_id") == msg_id:
                    break
        except queue.Empty:
            continue
        # Drain what the readiness probes left behind.
        while kc.iopub_channel.msg_ready():
            kc.get_iopub_msg()
        return True
    raise AssertionError(f"kernel not ready after {timeout}s: {kp.stderr_tail()}")


@pytest.fixture
def client(kernel: KernelProcess) -> Iterator[Any]:
    kc = connect(kernel)
    try:
        yield kc
    finally:
        kc.stop_channels()


def run_cell(kc: Any, code: str, timeout: float = 30) -> tuple[dict[str, Any], str]:
    """Execute ``code``; return the reply content and the stdout text printed."""
    msg_id = kc.execute(code)
    out = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    return get_reply(kc, msg_id, timeout)["content"], "".join(out)


def get_reply(kc: Any, msg_id: str, timeout: float = 30) -> dict[str, Any]:
    # Skip stale replies: readiness probes may leave extra kernel_info_replies queued.
    while True:
        reply: dict[str, Any] = kc.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply


def wait_stream(kc: Any, msg_id: str, text: str, timeout: float = 30) -> None:
    """Wait until the cell ``msg_id`` has printed ``text``: its user code is running."""
    seen = ""
    while text not in seen:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["msg_type"] == "stream" and msg["parent_header"]["msg_id"] == msg_id:
            seen += msg["content"]["text"]


# -- ipykernel ----------------------------------------------------------------------------


def test_start_writes_a_private_connection_file_a_client_can_use(
    kernel: KernelProcess, client: Any
):
    assert kernel.is_alive()
    assert kernel.pid is not None and kernel.returncode is None
    assert kernel.connection_file.parent == Path(os.environ["JUPYTER_RUNTIME_DIR"])
    assert kernel.connection_file.name.startswith("kernel-")
    assert stat.S_IMODE(kernel.connection_file.stat().st_mode) == 0o600
    on_disk = json.loads(kernel.connection_file.read_text())
    assert on_disk["shell_port"] == kernel.connection.shell_port
    assert on_disk["kernel_name"] == "python3"
    reply = client.kernel_info(reply=True, timeout=30)
    assert reply["content"]["status"] == "ok"
    assert reply["content"]["language_info"]["name"] == "python"
    # In its own session and process group, so signals reach the whole group.
    assert os.getpgid(kernel.pid) == kernel.pid
    assert os.getsid(kernel.pid) == kernel.pid


def test_kernel_environment_and_output_go_to_the_log(kernel: KernelProcess, client: Any):
    content, out = run_cell(
        client,
        "import os, sys; print(os.environ['JPY_PARENT_PID']);os.write(2, b'raw stderr chatter\\n')",
    )
    assert content["status"] == "ok"
    assert out.strip() == str(os.getpid())
    assert kernel.log_file == kernel.connection_file.with_suffix(".log")
    assert stat.S_IMODE(kernel.log_file.stat().st_mode) == 0o600
    # The fd-level write bypasses ipykernel's capture: it lands in the log, not on our tty.
    run_cell(client, "pass")  # a round trip after the write
    assert "raw stderr chatter" in kernel.stderr_tail()


def test_interrupt_raises_keyboard_interrupt(kernel: KernelProcess, client: Any):
    # Interrupt only once user code runs: a SIGINT that lands in ipykernel's own code
    # before the cell starts is swallowed without a reply (ipykernel's race, not ours).
    msg_id = client.execute("import time; print('sleeping', flush=True); time.sleep(30)")
    wait_stream(client, msg_id, "sleeping")
    assert kernel.interrupt() is True
    reply = get_reply(client, msg_id, timeout=20)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "KeyboardInterrupt"
    assert kernel.is_alive()
    # ipykernel answers requests that arrive just after an error with "aborted" (its
    # stop_on_error handling), so a few may bounce before the kernel takes work again.
    for _ in range(20):
        content, out = run_cell(client, "print('still here')")
        if content["status"] != "aborted":
            break
    assert content["status"] == "ok", content
    assert out == "still here\n"


def test_shutdown_without_request_kills_the_process_group(kernel: KernelProcess, client: Any):
    content, out = run_cell(
        client, "import subprocess; p = subprocess.Popen(['sleep', '100']); print(p.pid)"
    )
    child = int(out)
    assert not pid_gone(child, 0)
    pid = kernel.pid
    assert pid is not None
    asyncio.run(kernel.shutdown(timeout=1.0))
    assert not kernel.is_alive()
    assert kernel.returncode is not None
    assert pid_gone(pid, 5)
    assert pid_gone(child, 5), "the kernel's child was orphaned"
    assert not kernel.connection_file.exists()
    assert not kernel.log_file.exists()


def test_shutdown_with_request_exits_gracefully(kernel: KernelProcess, client: Any):
    requested = []

    async def request_shutdown() -> None:
        requested.append(True)
        client.shutdown()  # shutdown_request on control

    asyncio.run(kernel.shutdown(request_shutdown, timeout=20))
    assert requested == [True]
    assert kernel.returncode == 0  # exited by itself, no signal needed
    assert not kernel.connection_file.exists()
    assert not kernel.log_file.exists()


def test_kill_9_is_detected(kernel: KernelProcess):
    assert kernel.pid is not None
    os.kill(kernel.pid, signal.SIGKILL)
    assert kernel.wait(10)
    assert not kernel.is_alive()
    assert kernel.returncode == -signal.SIGKILL
    assert not kernel.died_of_port_clash()


def test_restart_keeps_ports_and_key_with_a_new_pid(kernel: KernelProcess, client: Any):
    run_cell(client, "x = 42")
    old_pid = kernel.pid
    before = kernel.connection_file.read_text()

    async def request_shutdown() -> None:
        client.shutdown(restart=True)

    asyncio.run(kernel.restart(request_shutdown))
    assert kernel.is_alive()
    assert kernel.pid != old_pid
    assert old_pid is not None and pid_gone(old_pid, 5)
    assert kernel.connection_file.read_text() == before
    # The same client, on the same ports and key, talks to the new process.
    assert wait_ready(client, kernel, 60)
    content, out = run_cell(client, "print('x' in globals())")
    assert out == "False\n"


def test_port_clash_is_detected_and_new_ports_fix_it(ipykernel_spec: KernelSpec):
    info = ConnectionInfo.new()
    with socket.socket() as squatter:
        squatter.bind((info.ip, 0))
        squatter.listen()
        taken = info.shell_port = squatter.getsockname()[1]
        kp = KernelProcess(ipykernel_spec, info)
        try:
            kp.start()
            assert kp.wait(60), "ipykernel should die when its port is taken"
            assert kp.died_of_port_clash()
            assert "Address already in use" in kp.stderr_tail()
            kp.restart_on_new_ports()
        except BaseException:
            kp.cleanup()
            raise
    try:
        assert kp.connection is info and info.shell_port != taken
        assert json.loads(kp.connection_file.read_text())["shell_port"] == info.shell_port
        kc = connect(kp)
        try:
            assert kc.kernel_info(reply=True, timeout=30)["content"]["status"] == "ok"
        finally:
            kc.stop_channels()
        assert not kp.died_of_port_clash()
    finally:
        kp.cleanup()


def test_atexit_guard_kills_a_kernel_left_running(tmp_path: Path):
    script = textwrap.dedent(
        """
        import json, sys
        from jupyter_client import BlockingKernelClient
        from kconsole.connection import ConnectionInfo
        from kconsole.kernelspec import get_kernel_spec
        from kconsole.launcher import KernelProcess

        kp = KernelProcess(get_kernel_spec("python3"), ConnectionInfo.new())
        kp.start()
        kc = BlockingKernelClient(connection_file=str(kp.connection_file))
        kc.load_connection_file()
        kc.start_channels(hb=False)  # a heartbeat calls a slow-starting kernel dead
        kc.wait_for_ready(timeout=60)
        kc.stop_channels()
        print(json.dumps({"pid": kp.pid, "files": [str(kp.connection_file), str(kp.log_file)]}))
        sys.exit(0)  # no shutdown: the atexit guard must clean up
        """
    )
    res = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=80,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert pid_gone(info["pid"], 5), "kernel outlived its parent"
    for f in info["files"]:
        assert not Path(f).exists()


def test_kernel_exits_when_parent_is_killed(tmp_path: Path):
    # SIGKILL skips atexit; JPY_PARENT_PID makes ipykernel notice its parent is gone.
    script = textwrap.dedent(
        """
        import sys
        from jupyter_client import BlockingKernelClient
        from kconsole.connection import ConnectionInfo
        from kconsole.kernelspec import get_kernel_spec
        from kconsole.launcher import KernelProcess

        kp = KernelProcess(get_kernel_spec("python3"), ConnectionInfo.new())
        kp.start()
        kc = BlockingKernelClient(connection_file=str(kp.connection_file))
        kc.load_connection_file()
        kc.start_channels(hb=False)  # a heartbeat calls a slow-starting kernel dead
        kc.wait_for_ready(timeout=60)
        print(kp.pid, flush=True)
        sys.stdin.read()  # until killed
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line, "the parent script failed"
        pid = int(line)
        parent.kill()
        parent.wait(10)
        assert pid_gone(pid, 20), "kernel survived its parent's SIGKILL"
    finally:
        parent.kill()
        parent.wait()
        if parent.stdin:
            parent.stdin.close()
        if parent.stdout:
            parent.stdout.close()


# -- stand-in kernels (cheap processes) ------------------------------------------------------


def test_missing_command_gives_kernel_start_error(tmp_path: Path, runtime_dir: Path):
    spec = dataclasses.replace(
        script_spec(tmp_path, ""),
        name="ghost",
        argv=["kconsole-no-such-command", "{connection_file}"],
    )
    kp = KernelProcess(spec, ConnectionInfo.new())
    with pytest.raises(KernelStartError) as exc:
        kp.start()
    assert str(exc.value) == (
        "kernel 'ghost' could not start: command 'kconsole-no-such-command' not found"
    )
    assert not kp.is_alive() and kp.pid is None
    assert list(runtime_dir.glob("kernel-*")) == []  # no stale connection file or log
    kp.cleanup()


def test_non_executable_command_gives_kernel_start_error(tmp_path: Path):
    exe = tmp_path / "not-executable"
    exe.write_text("#!/bin/sh\n")
    spec = dataclasses.replace(script_spec(tmp_path, ""), argv=[str(exe)])
    with pytest.raises(KernelStartError, match="is not executable"):
        KernelProcess(spec, ConnectionInfo.new()).start()


def test_bad_working_directory_gives_kernel_start_error(tmp_path: Path):
    kp = KernelProcess(script_spec(tmp_path, "pass"), ConnectionInfo.new(), cwd=tmp_path / "no")
    with pytest.raises(KernelStartError, match="working directory"):
        kp.start()


def test_exit_status_and_output_tail(tmp_path: Path):
    code = """
        import sys
        for i in range(30):
            print("line", i)
        print("boom", file=sys.stderr)
        sys.exit(3)
    """
    kp = KernelProcess(script_spec(tmp_path, code), ConnectionInfo.new())
    kp.start()
    assert kp.wait(30)
    assert kp.returncode == 3
    tail = kp.stderr_tail()
    assert tail.splitlines()[-1] == "boom"
    assert len(tail.splitlines()) == 15
    assert kp.stderr_tail(lines=2) == "line 29\nboom"
    assert not kp.died_of_port_clash()
    kp.cleanup()
    assert not kp.log_file.exists() and not kp.connection_file.exists()
    assert kp.stderr_tail() == ""
    kp.cleanup()  # idempotent


def test_command_receives_the_connection_file(tmp_path: Path):
    code = """
        import json, sys
        info = json.load(open(sys.argv[1]))
        print(info["shell_port"], info["key"])
    """
    spec = script_spec(tmp_path, code)
    spec.argv.append("{connection_file}")
    info = ConnectionInfo.new()
    kp = KernelProcess(spec, info, tmp_path / "mine.json")
    kp.start()
    assert kp.wait(30) and kp.returncode == 0
    assert kp.log_file == tmp_path / "mine.log"
    assert kp.stderr_tail() == f"{info.shell_port} {info.key.decode()}"
    kp.cleanup()


def test_extra_env_and_spec_env_reach_the_kernel(tmp_path: Path):
    code = "import os; print(os.environ['A'], os.environ['B'], os.environ['JPY_PARENT_PID'])"
    spec = script_spec(tmp_path, code, env={"A": "from-spec-${HOME}"})
    kp = KernelProcess(spec, ConnectionInfo.new(), extra_env={"B": "extra"})
    kp.start()
    assert kp.wait(30)
    assert kp.stderr_tail() == f"from-spec-{os.environ['HOME']} extra {os.getpid()}"
    kp.cleanup()


def test_signal_mode_interrupt_sends_sigint_to_the_group(tmp_path: Path):
    fifo = tmp_path / "ready"
    os.mkfifo(fifo)
    code = f"""
        import sys, time
        try:
            with open({str(fifo)!r}, "w") as f:
                f.write("ready")
            time.sleep(60)
        except KeyboardInterrupt:
            sys.exit(42)
    """
    r = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    kp = KernelProcess(script_spec(tmp_path, code), ConnectionInfo.new())
    kp.start()
    try:
        assert wait_readable(r, 30) and os.read(r, 5) == b"ready"
        assert kp.interrupt() is True
        assert kp.wait(10)
        assert kp.returncode == 42
        assert kp.interrupt() is False  # nothing left to interrupt
    finally:
        os.close(r)
        kp.cleanup()


def test_message_mode_interrupt_is_left_to_the_caller(tmp_path: Path):
    spec = script_spec(tmp_path, "import time; time.sleep(60)", interrupt_mode="message")
    kp = KernelProcess(spec, ConnectionInfo.new())
    kp.start()
    try:
        assert kp.interrupt() is False
        assert kp.is_alive()
    finally:
        asyncio.run(kp.shutdown(timeout=0))
    assert kp.returncode == -signal.SIGTERM


def test_sigterm_ignored_escalates_to_sigkill(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(launcher, "TERM_GRACE", 0.3)
    fifo = tmp_path / "ready"
    os.mkfifo(fifo)
    code = f"""
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with open({str(fifo)!r}, "w") as f:
            f.write("ready")
        time.sleep(60)
    """
    r = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    kp = KernelProcess(script_spec(tmp_path, code), ConnectionInfo.new())
    kp.start()
    try:
        assert wait_readable(r, 30) and os.read(r, 5) == b"ready"

        async def deaf() -> None:
            await asyncio.Event().wait()  # a kernel that never answers

        asyncio.run(kp.shutdown(deaf, timeout=0.2))
        assert kp.returncode == -signal.SIGKILL
    finally:
        os.close(r)
        kp.cleanup()


def test_failing_request_shutdown_falls_back_to_signals(tmp_path: Path):
    kp = KernelProcess(script_spec(tmp_path, "import time; time.sleep(60)"), ConnectionInfo.new())
    kp.start()

    async def broken() -> None:
        raise ConnectionError("no control channel")

    asyncio.run(kp.shutdown(broken, timeout=5))
    assert kp.returncode == -signal.SIGTERM
    assert not kp.connection_file.exists()


def test_wait_exit_times_out_and_supports_concurrent_waiters(tmp_path: Path):
    kp = KernelProcess(script_spec(tmp_path, "import time; time.sleep(60)"), ConnectionInfo.new())
    kp.start()

    async def main() -> list[bool]:
        assert await kp.wait_exit(0.05) is False
        assert kp.wait(0.05) is False
        waiters = [asyncio.ensure_future(kp.wait_exit(20)) for _ in range(3)]
        await asyncio.sleep(0)  # let the waiters register before the kill
        assert kp.pid is not None
        os.kill(kp.pid, signal.SIGKILL)
        return list(await asyncio.gather(*waiters))

    try:
        assert asyncio.run(main()) == [True, True, True]
        assert kp.returncode == -signal.SIGKILL
    finally:
        kp.cleanup()


def test_without_pidfd_waiting_falls_back_to_popen_wait(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(launcher, "_open_pidfd", lambda pid: None)
    kp = KernelProcess(script_spec(tmp_path, "import time; time.sleep(60)"), ConnectionInfo.new())
    kp.start()
    try:
        assert kp._pidfd is None
        assert kp.wait(0.05) is False
        assert asyncio.run(kp.wait_exit(0.05)) is False
        asyncio.run(kp.shutdown())
        assert kp.returncode == -signal.SIGTERM
    finally:
        kp.cleanup()


def test_start_twice_is_refused(tmp_path: Path):
    kp = KernelProcess(script_spec(tmp_path, "import time; time.sleep(60)"), ConnectionInfo.new())
    kp.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            kp.start()
    finally:
        kp.cleanup()
    assert not kp.is_alive()
    assert kp not in launcher._live


def test_outlive_console_kernel_has_no_parent_watch_or_orphan_guard(tmp_path: Path):
    code = "import os; print(os.environ.get('JPY_PARENT_PID', 'unset'))"
    kp = KernelProcess(script_spec(tmp_path, code), ConnectionInfo.new(), outlive_console=True)
    kp.start()
    try:
        assert kp not in launcher._live
        assert kp.wait(30)
        assert kp.stderr_tail() == "unset"
    finally:
        kp.cleanup()
