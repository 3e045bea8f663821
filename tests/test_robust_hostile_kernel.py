"""The console against a hostile kernel (tests/hostile_protocol.py): a real process with
real zmq sockets and the real key that sends what real kernels never send. One bad
message costs that message and at most one note; later output still shows; the
console exits cleanly."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from ptyconsole import KCONSOLE, PtyConsole

HOSTILE = Path(__file__).with_name("hostile_protocol.py")
POISONS = ["deep", "deeper", "notjson", "badutf8", "surrogate", "hugeint", "list", "textlist"]


@pytest.fixture
def hostile(kernel_script) -> Path:
    return kernel_script(HOSTILE, name="kernel-hostile.json")


def notes(text: str) -> int:
    """The notes kconsole printed about the kernel (not its usual "no help found")."""
    return text.count("[kconsole]") - text.count("[kconsole] no help found")


@pytest.mark.timeout(60)
def test_script_mode_keeps_showing_output_after_each_poison_message(hostile: Path) -> None:
    cells = "".join(f"poison {kind}\n" for kind in POISONS) + "last cell\n"
    p = subprocess.run(
        [*KCONSOLE, "attach", "--existing", str(hostile)],
        input=cells,
        capture_output=True,
        text=True,
        timeout=45,
    )
    for kind in POISONS:
        assert f"after-poison {kind}" in p.stdout, p.stdout + p.stderr
    assert "echo: last cell" in p.stdout
    assert "Traceback" not in p.stderr
    assert notes(p.stderr) <= len(POISONS)
    assert p.returncode == 0, p.stderr


@pytest.mark.timeout(60)
def test_surrogates_and_bad_bytes_from_the_kernel_are_shown(hostile: Path) -> None:
    p = subprocess.run(
        [*KCONSOLE, "attach", "--existing", str(hostile)],
        input="poison surrogate\npoison badutf8\n",
        capture_output=True,
        text=True,
        timeout=45,
    )
    assert r"lone \ud800 surrogate" in p.stdout, p.stdout + p.stderr
    assert r"\xff\xfe bytes that are not UTF-8" in p.stdout
    assert p.returncode == 0, p.stderr


@pytest.mark.timeout(60)
def test_repl_survives_a_deeply_nested_message(hostile: Path) -> None:
    c = PtyConsole(["attach", "--existing", str(hostile)])
    try:
        c.expect_prompt()
        c.sendline("poison deep")
        c.expect("after-poison deep")
        c.sendline("poison deeper")
        c.expect("after-poison deeper")
        c.sendline("still here")
        c.expect("echo: still here")
        c.expect_empty_prompt()
        assert notes(c.transcript) <= 2
        assert "Traceback" not in c.transcript
        c.ctrl("d")
        assert c.wait_exit(20) == 0
    finally:
        c.close()


# -- malformed reply fields ------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("field", ["language_info", "banner", "execution_count", "status"])
def test_script_mode_with_a_malformed_reply_field(kernel_script, field: str) -> None:
    cf = kernel_script(HOSTILE, field, name="kernel-hostile.json")
    p = subprocess.run(
        [*KCONSOLE, "attach", "--existing", str(cf)],
        input="one\ntwo\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "Traceback" not in p.stderr
    assert notes(p.stderr) <= 1, p.stderr
    if field == "status":
        # A reply that does not say "ok" is an error: a Python script stops there, as
        # python3 would at an exception, with status 1 and a line saying why.
        assert "echo: one" in p.stdout and "echo: two" not in p.stdout, p.stdout + p.stderr
        assert "gave no details" in p.stderr, p.stderr
        assert p.returncode == 1, p.stderr
    else:
        assert "echo: one" in p.stdout and "echo: two" in p.stdout, p.stdout + p.stderr
        assert p.returncode in (0, 1), p.stderr


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    "field", ["language_info", "history", "cursor_start", "matches", "inspect_data"]
)
def test_repl_with_a_malformed_reply_field(kernel_script, field: str) -> None:
    cf = kernel_script(HOSTILE, field, name="kernel-hostile.json")
    c = PtyConsole(["attach", "--existing", str(cf)])
    try:
        c.expect_prompt()
        c.send("hos\t")  # complete_request
        c.settle()
        c.send("\x15")  # clear the line
        c.send("x")
        c.send("\x1bOP")  # F1: inspect_request, paged
        c.settle()
        c.send("q")
        c.send("\x15")
        c.sendline("after")
        c.expect("echo: after")
        c.expect_empty_prompt()
        assert "Traceback" not in c.transcript
        assert notes(c.transcript) <= 1, c.transcript[-2000:]
        c.ctrl("d")
        assert c.wait_exit(20) == 0
    finally:
        c.close()
