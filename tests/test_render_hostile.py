"""Kernel content carrying terminal control sequences, through every renderer.

What a user would notice: their clipboard overwritten (OSC 52), the window title
changed, the screen switched or cleared, the terminal reset. The bytes kconsole
writes may only carry SGR colours and the renderers' own escapes (OSC 8 links with a
clean URL, image protocols, the cursor moves around an image).
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ptyconsole import PtyConsole

from kconsole.display.config import DisplayConfig
from kconsole.display.terminal import TerminalCapabilities
from kconsole.output import OutputPrinter
from kconsole.protocol import Message

HOSTILE = {
    "osc52": "\x1b]52;c;aGFja2Vk\x07",
    "title": "\x1b]0;pwned\x1b\\",
    "title2": "\x1b]2;pwned\x07",
    "dcs": "\x1bP1$qm\x1b\\",
    "apc": "\x1b_Gi=1;pwned\x1b\\",
    "osc8-esc-in-href": "\x1b]8;;http://a\x1b\\\x1b]52;c;eA==\x07\x1b\\x\x1b]8;;\x1b\\",
    "altscreen": "\x1b[?1049h",
    "clear": "\x1b[2J\x1b[H",
    "reset": "\x1bc",
    "c1-csi": "\x9b?1049h",
    "c1-osc": "\x9d0;pwned\x9c",
    "unterminated": "\x1b]52;c;",
}

# The escapes kconsole itself writes. An OSC 8 URL must be printable ASCII.
_ALLOWED = re.compile(
    r"\x1b\[[0-9;:]*m"  # SGR
    r"|\x1b\]8;;[!-~]*\x1b\\"  # OSC 8 hyperlink, clean payload
    r"|\x1b\[\d*[ABJ]|\x1b[78]"  # cursor moves around an image
    r"|\x1b_G[A-Za-z0-9=,;+/]*\x1b\\"  # kitty image
    r"|\x1bP[0-9;]*q[\"#!$\-0-9;?-~]*\x1b\\"  # sixel
    r"|\x1b\]1337;File=[A-Za-z0-9=;:+/]*\x07"  # iTerm2 image
)
_CONTROL = re.compile(r"[\x00-\x07\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def forbidden(out: str) -> list[str]:
    """Every control character left once kconsole's own escapes are taken out."""
    return _CONTROL.findall(_ALLOWED.sub("", out))


def charrefs(s: str) -> str:
    return "".join(f"&#{ord(c)};" for c in s)


def bundles(h: str) -> list[dict[str, Any]]:
    """One bundle per renderer, each carrying ``h`` wherever kernel text goes."""
    r = charrefs(h)
    return [
        {"text/plain": f"a{h}b"},
        {"text/html": f"<p>a{h}b <b>{h}</b></p><pre>{h}</pre>"},
        {"text/html": f"<p>{r}</p><pre>{r}</pre><img alt='{r}'>"},
        {"text/html": f"<a href='http://x/{r}'>link{r}</a><a href=\"{h}\">l</a>"},
        {"text/html": f"<table><tr><th>{h}</th></tr><tr><td>{r}</td></tr></table>"},
        {"text/html": f"<ul><li>{h}<blockquote>{r}</blockquote></li></ul><h1>{h}</h1>"},
        {
            "text/markdown": f"# t{h}\n\n*a{h}* [l{h}](http://x/{h}) `c{h}` ![{h}](x)\n\n"
            f"```python\nx = '{h}'\n```\n\n- {h}\n\n> {h}\n\n| a{h} |\n|---|\n| {h} |\n\n"
            f"$x{h}$\n\n$$\\frac{{a{h}}}{{b}}$$\n\n<p>{r}</p>\n"
        },
        {"text/latex": f"$$\\frac{{a{h}}}{{b}} + \\text{{{h}}}$$"},
        {"text/latex": f"\\begin{{unknown}}{h}\\end{{unknown}}"},
        {"application/json": {f"k{h}": [f"v{h}", "\x9b31m", 1]}},
        {"application/json": json.dumps({"s": h})},
        {"text/x-python": f"x = '{h}'  # {h}"},
        {"text/x-no-such-language": f"{h}", "text/plain": "fallback"},
        {f"text/x-{h}": "code", "text/plain": "p"},
        {f"application/{h}": "unknown type"},
    ]


def tty_printer() -> tuple[OutputPrinter, io.StringIO]:
    out = io.StringIO()
    caps = TerminalCapabilities(is_tty=True, colors=16777216, hyperlinks=True)
    printer = OutputPrinter(out, color=True, tty=True, capabilities=caps, config=DisplayConfig())
    return printer, out


def pipe_printer() -> tuple[OutputPrinter, io.StringIO]:
    out = io.StringIO()
    return OutputPrinter(out, color=False, tty=False), out


def msg(msg_type: str, content: dict[str, Any]) -> Message:
    return Message(
        header={"msg_type": msg_type, "msg_id": "m"},
        parent_header={"msg_id": "p"},
        metadata={},
        content=content,
    )


def messages(h: str) -> list[Message]:
    """Every IOPub message that carries kernel text, each with ``h`` in it."""
    out = [
        msg("stream", {"name": "stdout", "text": f"out{h}\n"}),
        msg("stream", {"name": "stderr", "text": f"err{h}\n"}),
        msg("error", {"ename": f"E{h}", "evalue": f"v{h}", "traceback": []}),
        msg("error", {"ename": "E", "evalue": "v", "traceback": [f"\x1b[31mtb{h}\x1b[0m"]}),
        msg("execute_input", {"code": f"print('{h}')", "execution_count": f"1{h}"}),
        msg("execute_result", {"data": {"text/plain": "x"}, "execution_count": f"2{h}"}),
    ]
    for b in bundles(h):
        out.append(msg("display_data", {"data": b, "metadata": {}}))
        out.append(msg("execute_result", {"data": b, "metadata": {}, "execution_count": 3}))
    return out


@pytest.mark.parametrize("mode", ["tty", "pipe"])
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_no_hostile_sequence_reaches_the_terminal(name: str, mode: str) -> None:
    h = HOSTILE[name]
    for m in messages(h):
        printer, out = tty_printer() if mode == "tty" else pipe_printer()
        printer.handle(m, own=m.msg_type != "execute_input")
        printer.note(f"[kconsole] the kernel died: {h}")
        text = out.getvalue()
        # (A payload whose ESC was a character reference may be left as harmless text.)
        assert not forbidden(text), (m.msg_type, m.content, text)


def test_legitimate_colours_and_progress_still_reach_the_terminal() -> None:
    printer, out = tty_printer()
    printer.handle(msg("stream", {"name": "stdout", "text": "\x1b[32mok\x1b[0m 10%\r100%\n"}))
    assert "\x1b[32mok\x1b[0m 10%\r100%\n" in out.getvalue()
    printer.handle(msg("display_data", {"data": {"text/html": "<a href='http://e.x/a b'>l</a>"}}))
    assert "\x1b]8;;http://e.x/a%20b\x1b\\" in out.getvalue()


# -- property: random and adversarial input through every renderer ----------------------

_HOSTILE_TEXT = st.lists(
    st.sampled_from([*HOSTILE.values(), "<b>", "</b>", "&#27;", "&#x9b;", "*", "`", "$", "\\"])
    | st.text(max_size=8),
    max_size=30,
).map("".join)
_MIMES = [
    "text/plain",
    "text/html",
    "text/markdown",
    "text/latex",
    "application/json",
    "text/x-python",
]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(mime=st.sampled_from(_MIMES), text=_HOSTILE_TEXT, tty=st.booleans())
def test_every_renderer_writes_only_its_own_escapes(mime: str, text: str, tty: bool) -> None:
    printer, out = tty_printer() if tty else pipe_printer()
    t0 = time.perf_counter()
    value: Any = {"k": text} if mime == "application/json" else text
    printer.handle(msg("display_data", {"data": {mime: value}, "metadata": {}}))
    assert time.perf_counter() - t0 < 2.0  # generous: a busy machine, first imports
    assert not forbidden(out.getvalue())


# -- the real thing: a kernel's display in a pty and in a pipe ---------------------------

_CELL = (
    # Built from hex: the typed cell (echoed as input) must not carry the payload itself.
    "h = bytes.fromhex({h!r}).decode()\n"
    "display({{'text/html': '<p>html' + h + '</p>', 'text/plain': 'p'}}, raw=True)\n"
    "display({{'text/markdown': '*md*' + h, 'text/plain': 'p'}}, raw=True)\n"
    "display({{'text/latex': '$$x' + h + '$$', 'text/plain': 'p'}}, raw=True)\n"
    "display({{'application/json': {{'j': h + '\\x9b?1049h'}}, 'text/plain': 'p'}}, raw=True)\n"
    "display({{'text/plain': 'plain' + h}}, raw=True)\n"
    "display({{'text/x-python': 'src = 1  # ' + h, 'text/plain': 'p'}}, raw=True)\n"
    "display({{'text/html': '<a href=\"http://x/' + h + '\">link' + h + '</a>'}}, raw=True)\n"
    "display({{'text/markdown': '[mdlink](http://y/' + h + ')'}}, raw=True)\n"
    "print('stream' + h)\n"
    "raise ValueError('evalue' + h)\n"
)


def _payload() -> str:
    keys = ("osc52", "title", "dcs", "apc", "altscreen", "c1-osc")
    return "".join(HOSTILE[k] for k in keys).encode().hex()


@pytest.mark.timeout(90)
def test_hostile_displays_in_a_pty_reach_the_screen_as_text_only() -> None:
    raw: list[str] = []

    class Collect:
        def write(self, data: str) -> None:
            raw.append(data)

        def flush(self) -> None:
            pass

    # VTE_VERSION: a terminal with OSC 8 hyperlinks, so hrefs become escape payloads.
    c = PtyConsole(
        ["start", "--kernel", "builtin", "--no-banner"],
        env={"TERM_PROGRAM": "", "VTE_VERSION": "6003"},
    )
    c.child.logfile_read = Collect()
    try:
        c.expect_prompt(1)
        cell = _CELL.format(h=_payload())
        c.send("\x1b[200~" + cell + "\x1b[201~")
        c.sendline("")
        c.expect(r"ValueError", timeout=30)
        c.expect_prompt(2)
        out = "".join(raw)
        for mark in ("html", "md", "plain", "stream", "evalue", "src", "link", "mdlink"):
            assert mark in out
        # The links are hyperlinks, their URLs printable ASCII only.
        links = re.findall(r"\x1b\]8;;([^\x1b\x07]*)\x1b\\", out)
        assert any(u.startswith("http://x/") for u in links), links
        assert all(all(" " < ch < "\x7f" for ch in u) for u in links), links
        # (JSON shows the payload escaped, as \u001b text: that is data, not a sequence.)
        assert "\x1b]52" not in out and "\x1b]0;" not in out
        assert "\x1bP1$q" not in out and "\x1b_Gi=1" not in out
        assert "\x9d" not in out and "\x9b" not in out
        # prompt_toolkit itself switches modes; the kernel's ?1049h must not be among them.
        assert out.count("\x1b[?1049h") == 0
        c.ctrl("d")
        assert c.wait_exit(20) == 0
    finally:
        c.close()


@pytest.mark.timeout(90)
def test_hostile_displays_in_a_pipe_reach_stdout_as_text_only() -> None:
    cell = _CELL.format(h=_payload())
    p = subprocess.run(
        [sys.executable, "-m", "kconsole", "start", "--kernel", "builtin"],
        input=cell,
        capture_output=True,
        text=True,
        timeout=80,
    )
    out = p.stdout + p.stderr
    for mark in ("html", "md", "plain", "stream", "evalue"):
        assert mark in out, out
    assert not forbidden(out), out


# -- the REPL's own lines: banner, prompts, help, another client's code -------------------

_RAW_HOSTILE = ("\x1b]52", "\x1b]0;", "\x1b]2;", "\x1bP1$q", "\x1b_Gi=1", "\x9d", "\x9b")


def _assert_clean(out: str) -> None:
    for seq in _RAW_HOSTILE:
        assert seq not in out, (seq, out[-2000:])
    assert "\x1b[?1049h" not in out


def _collecting(c: PtyConsole) -> list[str]:
    raw: list[str] = []

    class Collect:
        def write(self, data: str) -> None:
            raw.append(data)

        def flush(self) -> None:
            pass

    c.child.logfile_read = Collect()
    return raw


def _install_hostile_kernel(jupyter_dirs: Path) -> None:
    kdir = jupyter_dirs / "data" / "kernels" / "hostile-output"
    kdir.mkdir(parents=True)
    script = str(Path(__file__).parent / "hostile_output_kernel.py")
    spec = {
        "argv": [sys.executable, script, "-f", "{connection_file}"],
        "display_name": "Hostile",
        "language": "python",
    }
    (kdir / "kernel.json").write_text(json.dumps(spec))


@pytest.mark.timeout(90)
def test_banner_label_input_prompt_and_help_from_the_kernel_are_text_only(
    jupyter_dirs: Path,
) -> None:
    _install_hostile_kernel(jupyter_dirs)
    hostile = bytes.fromhex(_payload()).decode()
    # Markers built from hex: the echo of the typed line never contains them.
    ask = ("ASKME" + hostile).encode().hex()
    doc = ("HELPTEXT" + hostile).encode().hex()
    c = PtyConsole(
        ["start", "--kernel", "hostile-output"],
        env={"TERM_PROGRAM": "", "PAGER": "cat", "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
    )
    raw = _collecting(c)
    try:
        c.expect("HOSTILE BANNER")
        c.expect_prompt(1)
        # input() with a hostile prompt, answered.
        c.sendline(f"answer = input(bytes.fromhex({ask!r}).decode())")
        c.expect("ASKME")
        c.sendline("fine")
        c.expect_prompt(2)
        # Help on a name whose docstring is hostile: Shift-Tab prints it, F1 pages it.
        c.sendline(f"f = lambda: 0; f.__doc__ = bytes.fromhex({doc!r}).decode()")
        c.expect_prompt(3)
        c.send("f")
        c.send("\x1b[Z")  # Shift-Tab
        c.expect("HELPTEXT")
        c.send("\x1bOP")  # F1: through the pager (cat)
        c.expect("HELPTEXT")
        c.expect("Type:")
        c.expect_cursor_line(r"In \[3\]: f.*")  # the pager is done, the prompt is back
        c.ctrl("c")
        c.expect_empty_prompt()
        _assert_clean("".join(raw))
        c.ctrl("d")
        assert c.wait_exit(20) == 0
    finally:
        c.close()


@pytest.mark.timeout(90)
def test_another_client_s_code_is_echoed_as_text_only(shared_kernel: tuple[Any, Any]) -> None:
    km, kc = shared_kernel
    c = PtyConsole(["attach", "--existing", km.connection_file, "--no-banner"])
    raw = _collecting(c)
    try:
        c.expect_prompt()
        hostile = "".join(HOSTILE[k] for k in ("osc52", "title", "dcs", "apc", "c1-osc"))
        kc.execute(f"x = 1  # OTHER {hostile}")
        c.expect(r"\[remote\] In \[\d+\]: x = 1  # OTHER")
        c.settle()
        _assert_clean("".join(raw))
        c.ctrl("d")
        c.wait_exit(20)
    finally:
        c.close()
