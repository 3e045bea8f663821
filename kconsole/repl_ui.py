"""Small pieces of the REPL's screen: the bottom toolbar, y/n questions, input styles.

The toolbar is one line under the prompt (prompt_toolkit's ``bottom_toolbar``)::

    ipykernel 7.4.0 (Python 3) │ idle │ count 3 │ local │ vi: insert

kernel label, kernel state, execution count, how kconsole reaches the kernel
(``local``: it started the process; ``attached``: zmq to a kernel it did not start;
``server``: a Jupyter Server; ``lost``: the kernel is dead), and the vi input mode when
vi editing is on. prompt_toolkit draws it only once it knows the terminal's height
below the cursor (a cursor position report), so a terminal that does not answer CPR
shows no toolbar; the REPL then shows a busy kernel at the right of the prompt instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prompt_toolkit import PromptSession
from prompt_toolkit.application import get_app_or_none
from prompt_toolkit.formatted_text import AnyFormattedText, FormattedText
from prompt_toolkit.history import DummyHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.keys import Keys
from prompt_toolkit.styles import Style

from .sanitize import plain_line

if TYPE_CHECKING:
    from .console import KernelConnection


def check_style(name: str) -> None:
    """Raise ValueError if ``name`` is not a Pygments style."""
    from pygments.styles import get_all_styles, get_style_by_name
    from pygments.util import ClassNotFound

    try:
        get_style_by_name(name)
    except ClassNotFound:
        available = ", ".join(sorted(get_all_styles()))
        raise ValueError(f"unknown style {name!r} (available: {available})") from None


def input_style(name: str) -> Style:
    """The prompt_toolkit style for input highlighting from Pygments style ``name``."""
    from prompt_toolkit.styles.pygments import style_from_pygments_cls
    from pygments.styles import get_style_by_name

    check_style(name)
    return style_from_pygments_cls(get_style_by_name(name))


def connection_kind(conn: KernelConnection) -> str:
    """``local``, ``server`` or ``attached`` (see the module docstring)."""
    if conn.process is not None:
        return "local"
    if hasattr(conn.client.transport, "kernel_id"):
        return "server"
    return "attached"


def kernel_label(conn: KernelConnection) -> str:
    if conn.label:
        return conn.label
    info = conn.client.kernel_info
    if not info and conn.spec is not None:
        return conn.spec.display_name  # still starting: its kernelspec is all we know
    impl = str(info.get("implementation") or "kernel")
    lang = str((info.get("language_info") or {}).get("name") or "")
    return f"{impl} ({lang})" if lang else impl


_VI_MODES = {
    "vi-insert": "insert",
    "vi-insert-multiple": "insert",
    "vi-navigation": "nav",
    "vi-replace": "replace",
    "vi-replace-single": "replace",
}


def vi_mode_name() -> str:
    """The running application's vi input mode, as the toolbar shows it."""
    app = get_app_or_none()
    if app is None:
        return ""
    if app.current_buffer.selection_state is not None:
        return "visual"
    return _VI_MODES.get(app.vi_state.input_mode.value, "")


_SEP = " │ "
_STATE_STYLE = {
    "idle": "",
    "busy": "bold",
    "starting": "bold",
    "restarting": "bold",
    "dead": "bold",
}


def toolbar_fragments(
    label: str, state: str, count: int, kind: str, vi_mode: str = ""
) -> FormattedText:
    """The toolbar line (plain fragments on the toolbar's reverse-video background)."""
    parts: list[tuple[str, str]] = [
        ("", " " + plain_line(label)),
        ("", _SEP),
        (_STATE_STYLE.get(state, ""), state),
        ("", _SEP),
        ("", f"count {count}"),
        ("", _SEP),
        ("bold" if kind == "lost" else "", kind),
    ]
    if vi_mode:
        parts += [("", _SEP), ("", f"vi: {vi_mode}")]
    parts.append(("", " "))
    return FormattedText(parts)


async def ask_yes_no(question: AnyFormattedText, default: bool) -> bool:
    """Ask one question answered by one key: y/n, Enter (or Ctrl-D) takes ``default``,
    Ctrl-C says no. Other keys are ignored. The answer stays on the line."""
    kb = KeyBindings()

    def answer(event: KeyPressEvent, value: bool) -> None:
        event.app.current_buffer.text = "y" if value else "n"
        event.app.exit(result=value)

    @kb.add(Keys.Any)
    def _ignore(event: KeyPressEvent) -> None:
        pass

    @kb.add("y")
    @kb.add("Y")
    def _yes(event: KeyPressEvent) -> None:
        answer(event, True)

    @kb.add("n")
    @kb.add("N")
    @kb.add("c-c")
    def _no(event: KeyPressEvent) -> None:
        answer(event, False)

    @kb.add("enter")
    @kb.add("c-d")
    def _default(event: KeyPressEvent) -> None:
        answer(event, default)

    session: PromptSession[bool] = PromptSession(question, key_bindings=kb, history=DummyHistory())
    # The REPL's own SIGINT handler stays in place (prompt_toolkit's would remove it).
    return bool(await session.prompt_async(handle_sigint=False))
