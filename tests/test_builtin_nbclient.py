"""nbclient runs one notebook on the built-in kernel and on ipykernel: the saved
outputs match (output types, MIME types, text). Add a cell by adding a line to CELLS."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")

from kconsole.kernel.install import install_kernelspec  # noqa: E402

pytestmark = pytest.mark.timeout(120)

#: One notebook cell per entry.
CELLS: list[str] = [
    "from IPython.display import display, HTML, Markdown, clear_output\n"
    "display(Markdown('**bold**'))\ndisplay(HTML('<i>html</i>'))\n"
    "h = display('first', display_id=True)\nh.update('updated')",
    "clear_output()\nprint('before')\nclear_output(wait=True)\nprint('after')",
    "import asyncio\nawait asyncio.sleep(0, result='awaited')",
    "class Sym:\n    def _repr_latex_(self):\n        return r'$x^{2}$'\nSym()",
    "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 3, 2])\nfig",
    "!echo shell says hi",
    "%timeit -n1 -r1 pass",
]

#: Timings differ from run to run; their format must not.
_DURATION = re.compile(r"\d[\d.]* (ns|μs|ms|s)\b")


def _run(kernel_name: str, tmp_path: Path) -> list[list[tuple[Any, ...]]]:
    """Execute the notebook, save it, read it back: each cell's outputs, comparable."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    client = nbclient.NotebookClient(
        nb, kernel_name=kernel_name, timeout=60, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    saved = tmp_path / f"{kernel_name}.ipynb"
    nbformat.write(nb, saved)
    return [[_shown(o) for o in cell.outputs] for cell in nbformat.read(saved, 4).cells]


def _shown(out: Any) -> tuple[Any, ...]:
    if out.output_type == "stream":
        return ("stream", out.name, _DURATION.sub("T", out.text))
    if out.output_type == "error":
        return ("error", out.ename, out.evalue)
    text = {
        k: re.sub(r"0x[0-9a-f]+", "0x", v) for k, v in out.data.items() if k.startswith("text/")
    }
    return (out.output_type, sorted(out.data), sorted(text.items()))


def test_notebook_outputs_match_ipykernel(
    jupyter_dirs: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install_kernelspec(jupyter_dirs / "prefix", "kconsole-nbclient")
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_dirs / "prefix" / "share" / "jupyter"))
    builtin = _run("kconsole-nbclient", tmp_path)
    reference = _run("python3", tmp_path)
    for outs in reference:
        # ipykernel's inline backend shows a figure that is the cell's value a second
        # time, as display_data; the built-in kernel shows it once.
        results = [o[1:] for o in outs if o[0] == "execute_result"]
        outs[:] = [o for o in outs if not (o[0] == "display_data" and o[1:] in results)]
    assert builtin == reference
    assert all(builtin), "every cell shows something"
