"""jupyter_kernel_test's conformance suite against kconsole's built-in kernel.

The kernel runs from a kernelspec installed (with kconsole's own installer) into a
temporary prefix that JUPYTER_PATH points at, exactly as a user's Jupyter would find it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

jkt = pytest.importorskip("jupyter_kernel_test")

from kconsole.kernel.install import install_kernelspec  # noqa: E402

KERNEL_NAME = "kconsole-conformance"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module", autouse=True)
def _kernelspec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # Module scope: the suite starts its kernel in setUpClass, before any
    # function-scoped fixture runs, so the environment must be in place already.
    base = tmp_path_factory.mktemp("conformance")
    kdir = install_kernelspec(base / "prefix", KERNEL_NAME)
    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_PATH", str(base / "prefix" / "share" / "jupyter"))
    mp.setenv("JUPYTER_RUNTIME_DIR", str(base / "runtime"))
    mp.setenv("JUPYTER_DATA_DIR", str(base / "data"))
    yield kdir
    mp.undo()


_PNG = (
    "b'\\x89PNG\\r\\n\\x1a\\n\\x00\\x00\\x00\\rIHDR\\x00\\x00\\x00\\x01\\x00\\x00\\x00\\x01"
    "\\x08\\x06\\x00\\x00\\x00\\x1f\\x15\\xc4\\x89'"
)


def _repr_cell(method: str, value: str) -> str:
    return f"class R:\n    def {method}(self):\n        return {value}\n\ndisplay(R())\n"


class TestBuiltinKernelConformance(jkt.KernelTests):
    kernel_name = KERNEL_NAME
    language_name = "python"
    file_extension = ".py"

    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('test', file=sys.stderr)"

    completion_samples = [
        {"text": "zi", "matches": {"zip"}},
        {"text": "import o"},
        {"text": "import os; os.pa"},
    ]
    complete_code_samples = ["1", "print('hello, world')", "def f(x):\n  return x*2\n\n\n", "len?"]
    incomplete_code_samples = ["print('''hello", "def f(x):\n  x += 1", "if True:"]
    invalid_code_samples = ["import = 7q", "for x in range(3) print(x)"]

    code_page_something = "print?"
    code_generate_error = "raise Exception('boom')"

    code_execute_result = [
        {"code": "1+2+3", "result": "6"},
        {"code": "[n*n for n in range(1, 4)]", "result": "[1, 4, 9]"},
        {"code": "10**2", "result": "100"},
    ]
    code_history_pattern = "1?2*"
    supported_history_operations = ("tail", "range", "search")

    code_display_data = [
        {"code": _repr_cell("_repr_html_", "'<b>hi</b>'"), "mime": "text/html"},
        {"code": _repr_cell("_repr_markdown_", "'**hi**'"), "mime": "text/markdown"},
        {"code": _repr_cell("_repr_latex_", "r'$\\alpha$'"), "mime": "text/latex"},
        {"code": _repr_cell("_repr_png_", _PNG), "mime": "image/png"},
        {
            "code": _repr_cell("_repr_svg_", "'<svg xmlns=\"http://www.w3.org/2000/svg\"/>'"),
            "mime": "image/svg+xml",
        },
        {"code": _repr_cell("_repr_json_", "{'a': [1, 2]}"), "mime": "application/json"},
        {
            "code": "from kconsole.kernel import display\n"
            "display({'text/plain': 'x', 'text/html': '<i>x</i>'}, raw=True)",
            "mime": "text/html",
        },
    ]

    code_inspect_sample = "zip"
    code_clear_output = "clear_output()"


class TestBuiltinKernelConformanceEncrypted(TestBuiltinKernelConformance):
    """The same suite with CurveZMQ on every socket: jupyter_client's manager provisions
    the keys because the installed kernelspec declares support (transport_encryption
    "auto", its setting that only encrypts such kernels), and connects with them."""

    @classmethod
    def setUpClass(cls) -> None:
        from jupyter_client.manager import start_new_kernel

        cls.km, cls.kc = start_new_kernel(kernel_name=cls.kernel_name, transport_encryption="auto")

    def test_the_kernel_is_encrypted(self) -> None:
        info = json.loads(Path(self.km.connection_file).read_text())
        assert len(info["curve_publickey"]) == 40 and len(info["curve_secretkey"]) == 40
        # And a client without the keys gets no answer from it.
        import zmq

        sock = zmq.Context.instance().socket(zmq.REQ)
        sock.linger = 0
        sock.connect(f"tcp://{info['ip']}:{info['hb_port']}")
        sock.send(b"ping")
        assert not sock.poll(500)
        sock.close()


class TestBuiltinKernelIopubWelcome(jkt.IopubWelcomeTests):
    kernel_name = KERNEL_NAME
    support_iopub_welcome = True


def test_kernelspec_is_where_jupyter_looks(
    _kernelspec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    # conftest's per-test fixture resets JUPYTER_PATH; point it at our prefix again.
    monkeypatch.setenv("JUPYTER_PATH", str(_kernelspec.parents[1]))

    spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    assert Path(spec.resource_dir) == _kernelspec
    assert spec.argv[1:4] == ["-m", "kconsole.kernel", "-f"]
    assert spec.interrupt_mode == "signal"
    assert os.path.samefile(spec.argv[0], os.sys.executable)
