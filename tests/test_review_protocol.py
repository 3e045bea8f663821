"""Defects found by the protocol review, each from the user's side: a hostile kernel
(tests/hostile_review.py, a real process with real sockets and the real key), the
built-in kernel, and the sans-IO core with bytes alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ptyconsole import KCONSOLE, PtyConsole

HOSTILE = Path(__file__).with_name("hostile_review.py")


def _env() -> dict[str, str]:
    root = str(Path(__file__).parent.parent)
    return dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))


@pytest.fixture
def review_kernel(tmp_path: Path) -> Iterator[Path]:
    cf = tmp_path / "kernel-review.json"
    proc = subprocess.Popen([sys.executable, str(HOSTILE), str(cf)], env=_env())
    deadline = time.monotonic() + 20
    while True:
        # Polling for a file another process writes: there is no event to wait for.
        if cf.exists():
            try:
                json.loads(cf.read_text())
                break
            except ValueError:
                pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("the hostile kernel did not start")
        time.sleep(0.02)
    yield cf
    proc.kill()
    proc.wait(5)


# -- a reply of the wrong type -------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("reply_type", ["complete_reply", "kernel_info_reply", "execute_result"])
def test_script_mode_survives_an_execute_answered_by_another_reply_type(
    review_kernel: Path, reply_type: str
) -> None:
    # The reply was validated as what it claimed to be, so an execute_request answered
    # by a complete_reply reached the console with a payload of strings: a traceback.
    p = subprocess.run(
        [*KCONSOLE, "attach", "--existing", str(review_kernel)],
        input=f"wrongtype {reply_type}\nafter\n",
        capture_output=True,
        text=True,
        timeout=45,
    )
    assert "Traceback" not in p.stderr, p.stderr
    assert "before-reply" in p.stdout
    assert "echo: after" in p.stdout, p.stdout + p.stderr
    assert p.stderr.count("[kconsole]") == 1, p.stderr
    assert p.returncode == 0, p.stderr


@pytest.mark.timeout(60)
def test_repl_survives_an_execute_answered_by_another_reply_type(review_kernel: Path) -> None:
    c = PtyConsole(["attach", "--existing", str(review_kernel)])
    try:
        c.expect_prompt()
        c.sendline("wrongtype complete_reply")
        c.expect("before-reply")
        c.sendline("still here")
        c.expect("echo: still here")
        c.expect_empty_prompt()
        assert "Traceback" not in c.transcript
        assert c.transcript.count("[kconsole]") == 1
        c.ctrl("d")
        assert c.wait_exit(20) == 0
    finally:
        c.close()
