"""The built-in kernel's magic and shell layer, completion, inspection and history, as
a real kernel process driven by jupyter_client. Expected texts are what ipykernel 7.4
(IPython 9) sends for the same cells; one kernel serves the whole module.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

jupyter_client = pytest.importorskip("jupyter_client")

from jupyter_client.blocking.client import BlockingKernelClient  # noqa: E402
from jupyter_client.manager import KernelManager  # noqa: E402

from kconsole.kernel.install import install_kernelspec  # noqa: E402

KERNEL_NAME = "kconsole-magics"
TIMEOUT = 20
pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KernelManager, Any]]:
    base = tmp_path_factory.mktemp("magics")
    install_kernelspec(base / "prefix", KERNEL_NAME)
    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_PATH", str(base / "prefix" / "share" / "jupyter"))
    mp.setenv("JUPYTER_RUNTIME_DIR", str(base / "runtime"))
    mp.setenv("JUPYTER_DATA_DIR", str(base / "data"))
    mp.setenv("KCONSOLE_HISTORY", "0")
    km = KernelManager(kernel_name=KERNEL_NAME)
    km.start_kernel(cwd=str(base))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=TIMEOUT)
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        mp.undo()


@pytest.fixture
def kc(kernel: tuple[KernelManager, Any]) -> BlockingKernelClient:
    return kernel[1]


def reply_to(kc: BlockingKernelClient, msg_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT
    while True:
        msg = kc.get_shell_msg(timeout=max(0.01, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg["content"]  # type: ignore[no-any-return]


def outputs(kc: BlockingKernelClient, msg_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(msg_type, content) of the request's outputs, up to its idle."""
    out = []
    deadline = time.monotonic() + TIMEOUT
    while True:
        m = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        if m["parent_header"].get("msg_id") != msg_id:
            continue
        if m["msg_type"] == "status":
            if m["content"]["execution_state"] == "idle":
                return out
        elif m["msg_type"] != "execute_input":
            out.append((m["msg_type"], m["content"]))


def run(kc: BlockingKernelClient, code: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The reply and the outputs by kind: ``stdout``, ``stderr``, ``result`` (text/plain)."""
    msg_id = kc.execute(code)
    reply = reply_to(kc, msg_id)
    got: dict[str, str] = {}
    for kind, c in outputs(kc, msg_id):
        key = c["name"] if kind == "stream" else kind
        text = c["text"] if kind == "stream" else c.get("data", {}).get("text/plain", c)
        got[key] = got.get(key, "") + str(text)
    return reply, got


def test_shell_commands_give_ipykernels_stream_output(kc: BlockingKernelClient) -> None:
    assert run(kc, "!echo hi")[1] == {"stdout": "hi\r\n"}
    assert run(kc, "!echo err >&2")[1] == {"stdout": "err\r\n"}  # one terminal, as IPython
    assert run(kc, "for i in range(2):\n    !echo $i {i+10}")[1] == {"stdout": "0 10\r\n1 11\r\n"}
    assert run(kc, "x = !echo a; echo b\nx, x.s, x.n")[1] == {
        "execute_result": "(['a', 'b'], 'a b', 'a\\nb')"
    }
    run(kc, "!exit 3")
    assert run(kc, "_exit_code")[1] == {"execute_result": "3"}


def test_shell_command_output_is_live_and_interruptible(
    kernel: tuple[KernelManager, Any], kc: BlockingKernelClient
) -> None:
    msg_id = kc.execute("!echo start; sleep 30")
    seen = ""
    deadline = time.monotonic() + TIMEOUT
    while "start" not in seen:  # arrives while the command still runs
        m = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "stream":
            seen += m["content"]["text"]
    t0 = time.monotonic()
    kernel[0].interrupt_kernel()
    reply = reply_to(kc, msg_id)
    assert time.monotonic() - t0 < 5
    assert reply["status"] == "ok"  # as IPython: ^C ends the command, not the cell
    assert "^C" in "".join(c.get("text", "") for _, c in outputs(kc, msg_id))
    assert run(kc, "!echo after")[1] == {"stdout": "after\r\n"}


@contextlib.contextmanager
def _background_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str
) -> Iterator[tuple[KernelManager, int]]:
    """A fresh built-in kernel running ``code``, which prints ``pid=N`` of a child it
    started and waits; the kernel's manager and N. The child is killed afterwards
    whatever happened."""
    install_kernelspec(tmp_path / "prefix", KERNEL_NAME)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "prefix" / "share" / "jupyter"))
    km = KernelManager(kernel_name=KERNEL_NAME)
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    pid = 0
    try:
        kc.wait_for_ready(timeout=TIMEOUT)
        msg_id = kc.execute(code)
        seen = ""
        deadline = time.monotonic() + TIMEOUT
        while "\n" not in seen:
            m = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
            if m["parent_header"].get("msg_id") == msg_id and m["msg_type"] == "stream":
                seen += m["content"]["text"]
        pid = int(re.search(r"pid=(\d+)", seen).group(1))  # type: ignore[union-attr]
        kc.stop_channels()
        yield km, pid
    finally:
        kc.stop_channels()
        if km.has_kernel:
            km.shutdown_kernel(now=True)
        if pid and _running(pid):
            os.kill(pid, signal.SIGKILL)


def _wait_gone(pid: int, what: str) -> None:
    deadline = time.monotonic() + 5
    while _running(pid):  # no event tells a stranger's exit: poll /proc
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


@pytest.mark.skipif(sys.platform == "win32", reason="no pty")
def test_a_killed_kernel_leaves_no_shell_command_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _background_child(tmp_path, monkeypatch, "!sleep 300 & echo pid=$!; wait") as (km, pid):
        os.kill(km.provisioner.process.pid, signal.SIGKILL)  # type: ignore[union-attr]
        _wait_gone(pid, "the command outlived its kernel")  # the hung-up terminal ends it


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for init to reap it does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


_TIMEIT = r"\d[\d.]* (ns|μs|ms|s) ± \d[\d.]* (ns|μs|ms|s) per loop \(mean ± std\. dev\. of "


def test_timing_magics_print_ipythons_format(kc: BlockingKernelClient) -> None:
    reply, out = run(kc, "%timeit -n1 -r1 pass")
    assert reply["status"] == "ok"
    assert re.fullmatch(_TIMEIT + r"1 run, 1 loop each\)\n", out["stdout"]), out
    _, out = run(kc, "%timeit -r2 -n 3 y = 1")
    assert re.fullmatch(_TIMEIT + r"2 runs, 3 loops each\)\n", out["stdout"]), out
    # Without -n, the loops are chosen as IPython does: the first 10**k taking >= 0.2 s.
    _, out = run(kc, "%timeit -r1 sum(range(3000))")
    assert re.fullmatch(_TIMEIT + r"1 run, 1[0,]+ loops each\)\n", out["stdout"]), out
    cpu = r"CPU times: user \S+ \S+, sys: \S+ \S+, total: \S+ \S+\nWall time: \S+ \S+\n"
    _, out = run(kc, "%time 1+1")
    assert re.fullmatch(cpu, out["stdout"]) and out["execute_result"] == "2", out
    _, out = run(kc, "%%time\nz = 2\nz + 2")
    assert re.fullmatch(cpu, out["stdout"]) and out["execute_result"] == "4", out
    reply, _ = run(kc, "%time 1/0")  # the cell's line and the error, not the magic's code
    assert reply["ename"] == "ZeroDivisionError"
    assert "magics.py" not in "".join(reply["traceback"]) and "%time 1/0" in reply["traceback"][1]


def test_os_and_namespace_magics(kc: BlockingKernelClient, tmp_path: Path) -> None:
    start = run(kc, "%pwd")[1]["execute_result"]
    assert run(kc, f"%cd {tmp_path}")[1] == {"stdout": f"{tmp_path}\n"}
    assert run(kc, "%cd -")[1] == {"stdout": f"{start[1:-1]}\n"}
    assert run(kc, "%cd ~")[1] == {"stdout": f"{Path.home()}\n"}
    run(kc, f"%cd {start[1:-1]}")
    assert run(kc, "%env KCX=1")[1] == {"stdout": "env: KCX=1\n"}
    assert run(kc, "%env KCX")[1] == {"execute_result": "'1'"}
    assert run(kc, "import os\nos.environ['KCX']")[1] == {"execute_result": "'1'"}
    assert "'KCX': '1'" in run(kc, "%env")[1]["execute_result"]
    run(kc, "%matplotlib inline")
    assert run(kc, "%matplotlib inline")[0]["status"] == "ok"
    assert run(kc, "%%bash\necho b1\necho b2 >&2")[1] == {"stdout": "b1\n", "stderr": "b2\n"}
    reply, _ = run(kc, "%%bash\nexit 3")
    assert (reply["ename"], reply["evalue"]) == (
        "CalledProcessError",
        "Command 'b'exit 3\\n'' returned non-zero exit status 3.",
    )
    run(kc, "w_var = 1")
    who = run(kc, "%who")[1]["stdout"]
    assert who.endswith("\n") and {"os", "w_var"} <= set(who.split()), who
    listing = run(kc, "%lsmagic")[1]["execute_result"]
    banner = reply_to(kc, kc.kernel_info())["banner"]
    names = re.findall(r"%%?\w+", listing)
    for name in ("%cd", "%env", "%pwd", "%time", "%timeit", "%who", "%matplotlib", "%%bash"):
        assert name in names
    assert set(names) - {"%lsmagic"} <= set(re.findall(r"%%?\w+", banner)) and "!cmd" in banner


def test_unknown_magic_is_one_usage_error(kc: BlockingKernelClient) -> None:
    reply, out = run(kc, "%foo")
    assert out == {"stderr": "UsageError: Line magic function `%foo` not found.\n"}
    assert (reply["status"], reply["ename"], reply["traceback"]) == ("error", "UsageError", [])
    reply, out = run(kc, "%%foo\n1")
    assert out == {"stderr": "UsageError: Cell magic `%%foo` not found.\n"}


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("%timeit 1", "complete"),
        ("!ls", "complete"),
        ("x = !ls", "complete"),
        ("if True:\n    !ls", "incomplete"),
        ("%%bash\necho", "incomplete"),  # a cell magic ends at a blank line, as in IPython
        ("%%bash\necho\n\n", "complete"),
        ("!pip install a \\", "incomplete"),  # goes on on the next line, as in IPython
    ],
)
def test_is_complete_of_magics(kc: BlockingKernelClient, code: str, status: str) -> None:
    assert reply_to(kc, kc.is_complete(code))["status"] == status


def test_completion_offers_submodules_without_importing(kc: BlockingKernelClient) -> None:
    def matches(code: str) -> list[str]:
        return reply_to(kc, kc.complete(code, len(code)))["matches"]  # type: ignore[no-any-return]

    assert matches("%ti") == ["%time", "%%time", "%timeit", "%%timeit"]  # as IPython's
    assert matches("%%ba") == ["%%bash"]
    assert "os.path" in matches("import os.pa")
    assert "path" in matches("from os import pa")
    assert {"xml.dom", "xml.etree", "xml.parsers", "xml.sax"} <= set(matches("import xml."))
    assert "xml.etree.ElementTree" in matches("import xml.etree.E")
    assert run(kc, "import sys\n'xml.dom' in sys.modules")[1] == {"execute_result": "False"}


def test_inspect_labels_an_instances_docstring_as_ipython(kc: BlockingKernelClient) -> None:
    run(
        kc,
        "class A:\n  'docA'\na = A()\nL = [1, 2]\n"
        "class B:\n  'docB'\n  def __init__(self):\n    'Init doc.'\nb = B()",
    )

    def text(code: str) -> str:
        return reply_to(kc, kc.inspect(code, len(code)))["data"]["text/plain"]  # type: ignore[no-any-return]

    assert re.fullmatch(
        r"Type:        A\nString form: <__main__\.A object at 0x\w+>\nDocstring:   docA", text("a")
    )
    assert text("L").startswith(
        "Type:        list\nString form: [1, 2]\nLength:      2\n"
        "Docstring:  \nBuilt-in mutable sequence.\n"
    )
    assert text("b").endswith("\nDocstring:      docB\nInit docstring: Init doc.")


def test_history_range_from_the_end_and_connect_reply(kernel: tuple[KernelManager, Any]) -> None:
    km, kc = kernel
    for code in ("1", "2", "3"):
        run(kc, code)
    msg_id = kc.history(hist_access_type="range", session=0, start=-2, stop=None, raw=True)
    assert [h[2] for h in reply_to(kc, msg_id)["history"]] == ["2", "3"]
    msg = kc.session.msg("connect_request", {})
    kc.shell_channel.send(msg)
    ports = reply_to(kc, msg["header"]["msg_id"])
    info = km.get_connection_info()
    for ch in ("shell", "iopub", "stdin", "hb", "control"):
        assert ports[f"{ch}_port"] == info[f"{ch}_port"]
    assert ports["status"] == "ok"


def test_console_runs_shell_lines_and_cell_magics_with_enter(console: Any) -> None:
    c = console("start", "--kernel", "builtin")
    c.expect_prompt(1)
    c.sendline("!echo $((6*7))")  # complete: Enter runs it
    c.expect(r"(?m)^42$")
    c.expect_prompt(2)
    c.sendline("%%bash")  # a cell magic goes on until it ends with a blank line (as
    c.sendline("echo b$((1+1))")  # in IPython's terminal: Enter on it once more)
    c.sendline("")
    c.sendline("")
    c.expect(r"(?m)^b2$")
    c.expect_prompt(3)


def notebook_outputs(kernel_name: str, cells: list[str]) -> list[list[dict[str, Any]]]:
    """Each cell's outputs as nbclient saves them, execution counts left out and
    durations (``5.96 μs``) written ``T``, so two kernels' notebooks compare equal."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, kernel_name=kernel_name, allow_errors=True, timeout=30).execute()
    duration = re.compile(r"\d[\d.]* (ns|μs|ms|s)\b")
    return [
        [
            {k: duration.sub("T", v) if isinstance(v, str) else v for k, v in o.items()}
            for o in (
                {k: v for k, v in out.items() if k != "execution_count"} for out in cell.outputs
            )
        ]
        for cell in nb.cells
    ]


@pytest.mark.timeout(90)
def test_notebook_outputs_of_magics_match_ipykernels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("ipykernel")
    install_kernelspec(tmp_path / "prefix", KERNEL_NAME)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "prefix" / "share" / "jupyter"))
    cells = ["!echo hi", "%timeit -n1 -r1 pass", "x = !echo a\nx", "%%bash\necho b", "%foo"]
    ours = notebook_outputs(KERNEL_NAME, cells)
    assert ours[0] == [{"output_type": "stream", "name": "stdout", "text": "hi\r\n"}]
    assert ours == notebook_outputs("python3", cells)


# -- found in review (REVIEW.md) ------------------------------------------------------


def test_a_background_shell_command_is_refused_not_silently_killed(
    kc: BlockingKernelClient,
) -> None:
    # The pty's hangup would kill the job the moment the shell exits: say so, as ipykernel.
    reply, out = run(kc, "!sleep 30 &")
    assert reply["ename"] == "UsageError" and reply["traceback"] == []
    assert out == {"stderr": "UsageError: Background processes not supported.\n"}
    assert run(kc, "!true && echo fg")[1] == {"stdout": "fg\r\n"}


def test_an_interrupted_captured_command_gives_its_lines_so_far(
    kernel: tuple[KernelManager, Any], kc: BlockingKernelClient, tmp_path: Path
) -> None:
    # As IPython: ^C ends the command, x gets what it printed, the cell goes on.
    mark = tmp_path / "started"
    msg_id = kc.execute(f"x = !echo got; touch {mark}; sleep 30\nprint('after', x)")
    deadline = time.monotonic() + TIMEOUT
    while not mark.exists():  # the output is captured, not streamed: the file says
        assert time.monotonic() < deadline
        time.sleep(0.01)
    t0 = time.monotonic()
    kernel[0].interrupt_kernel()
    reply = reply_to(kc, msg_id)
    assert time.monotonic() - t0 < 5
    out = "".join(c.get("text", "") for _, c in outputs(kc, msg_id))
    assert reply["status"] == "ok" and out == "^C\nafter ['got']\n", (reply, out)


def test_shell_commands_run_in_the_users_shell(kc: BlockingKernelClient) -> None:
    # IPython runs !cmd with $SHELL (bash, typically), not /bin/sh: `echo -e` etc. work.
    run(kc, "import os\n_old_shell = os.environ.get('SHELL')\nos.environ['SHELL'] = '/bin/bash'")
    try:
        assert run(kc, "!echo ${BASH_VERSION:+bash}")[1] == {"stdout": "bash\r\n"}
    finally:
        run(kc, "os.environ['SHELL'] = _old_shell or '/bin/sh'")


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("x = 1\n%%time\nx", "Line magic function `%%time` not found."),  # IPython's text
        ("%", "Line magic function `%` not found."),
        ("%foo-bar", "Line magic function `%foo-bar` not found."),
        ("%pwd-x", "Line magic function `%pwd-x` not found."),
    ],
)
def test_misplaced_or_odd_magics_are_usage_errors(
    kc: BlockingKernelClient, code: str, error: str
) -> None:
    reply, out = run(kc, code)
    assert out == {"stderr": f"UsageError: {error}\n"}, out


def test_timing_magics_errors_and_cpu_times(kc: BlockingKernelClient) -> None:
    reply, _ = run(kc, "%time x = (")
    assert reply["ename"] == "SyntaxError"
    assert not any("ast.py" in line for line in reply["traceback"]), reply["traceback"]
    _, out = run(kc, "%time sum(i * i for i in range(300000))")
    assert "user 0 ns, sys: 0 ns" not in out["stdout"], out  # µs, not 10 ms ticks
    t0 = time.monotonic()
    assert run(kc, "%timeit")[1] == {}
    assert time.monotonic() - t0 < 1.5  # nothing to time: nothing done, as IPython


def test_assignment_of_a_shell_command_to_any_target(kc: BlockingKernelClient) -> None:
    code = "a = [0, 0]\na[1] = !echo s\nd = {}\nd['k'] = %pwd\na, d == {'k': os.getcwd()}"
    assert run(kc, "import os\n" + code)[1] == {"execute_result": "([0, ['s']], True)"}


def test_the_transform_keeps_strings_and_indented_cell_magics() -> None:
    from kconsole.kernel.magics import transform_cell

    code = "s = 'a\\\n!ls'"  # a one-quote string continued on the next line
    assert transform_cell(code) == code
    assert "_kc_cell_magic('time'" in transform_cell("  %%time\n  1")  # dedented as IPython


def test_completing_a_subpackage_does_not_import_its_package(
    kc: BlockingKernelClient, tmp_path: Path
) -> None:
    pkg = tmp_path / "kc_sidefx"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w')\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "leaf.py").write_text("")
    run(kc, f"import sys\nsys.path.insert(0, {str(tmp_path)!r})")
    code = "import kc_sidefx.sub."
    assert reply_to(kc, kc.complete(code, len(code)))["matches"] == ["kc_sidefx.sub.leaf"]
    assert not (tmp_path / "imported").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="no process groups")
def test_a_cell_magics_script_dies_with_its_kernels_process_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Restarting or shutting a kernel down kills its process group (jupyter_client and
    # kconsole's launcher alike): a %%bash script must be in it, as with ipykernel.
    code = "%%bash\nsleep 300 &\necho pid=$!\nwait"
    with _background_child(tmp_path, monkeypatch, code) as (km, pid):
        km.shutdown_kernel(now=True)
        _wait_gone(pid, "the script outlived its kernel")


def test_a_shell_line_continued_with_backslashes_is_one_command(kc: BlockingKernelClient) -> None:
    # As IPython: the lines are joined (pip install a \ b ...); later line numbers stay.
    reply, out = run(kc, '!echo a \\\n  "it\'s" \\\n  c\nx = 1\n1/0')
    assert out["stdout"] == "a it's c\r\n", out
    assert reply["ename"] == "ZeroDivisionError" and "line 5" in "".join(reply["traceback"])


def test_an_error_in_timed_code_shows_no_frame_of_the_timeit_module(
    kc: BlockingKernelClient,
) -> None:
    """`%timeit` of failing code (or Ctrl-C during it) shows the cell and the timed code,
    not the stdlib's timeit.py the magic runs it with."""
    reply, _ = run(kc, "def boom():\n    1/0\n%timeit -n1 -r1 boom()")
    assert reply["ename"] == "ZeroDivisionError"
    tb = "\n".join(reply["traceback"])
    assert "boom" in tb and "1/0" in tb, tb
    assert "timeit.py" not in tb, tb
