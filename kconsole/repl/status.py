"""Status: the prompt, its continuation, the rprompt and the bottom toolbar, all drawn
from one state object, :class:`Status`.

The toolbar is one line under the prompt (prompt_toolkit's ``bottom_toolbar``)::

    ipykernel 7.4.0 (Python 3) │ idle │ count 3 │ local │ vi: insert

kernel label, kernel state, execution count, how kconsole reaches the kernel
(``local``: it started the process; ``attached``: zmq to a kernel it did not start;
``server``: a Jupyter Server; ``lost``: the kernel is dead), and the vi input mode when
vi editing is on. prompt_toolkit draws it only once it knows the terminal's height
below the cursor (a cursor position report), so a terminal that does not answer CPR
shows no toolbar; the prompt then shows a busy kernel at its right instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prompt_toolkit.application import get_app_or_none
from prompt_toolkit.formatted_text import FormattedText

from ..kernel_control import kernel_label as label_of
from ..sanitize import plain_line

if TYPE_CHECKING:
    from ..client import KernelClient
    from ..kernel_connection import KernelConnection
    from ..protocol import Message


def connection_kind(conn: KernelConnection) -> str:
    """``local``, ``server`` or ``attached`` (see the module docstring)."""
    return conn.kind


def kernel_label(conn: KernelConnection) -> str:
    if conn.label:
        return conn.label
    info = conn.client.kernel_info
    if not info and conn.spec is not None:
        return conn.spec.display_name  # still starting: its kernelspec is all we know
    return label_of(info, version=False)


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


class Status:
    """What the prompt and toolbar show, in one place.

    ``state`` is the kernel's state for the toolbar (every status except those of our
    own short requests at the prompt: Tab, F1, Enter's is_complete); ``other_state``
    the state others caused (busy/idle), or dead/restarting; ``restarting``: a restart
    is in progress (the death it causes is expected). The kernel's liveness is read
    from ``client`` and ``conn`` as they are when drawn."""

    def __init__(
        self, conn: KernelConnection, *, toolbar: bool = True, vi_mode: bool = False
    ) -> None:
        self.conn = conn
        self.client: KernelClient = conn.client
        self.toolbar_on = toolbar
        self.vi_mode = vi_mode
        self.count = 0
        self.state = "idle" if conn.ready else "starting"
        self.other_state = "idle"
        self.restarting = False
        self.kind = connection_kind(conn)
        self.label = kernel_label(conn)

    def relabel(self) -> None:
        """Read the label again (the kernel answered, or was replaced)."""
        self.label = kernel_label(self.conn)

    def reset(self) -> None:
        """A new kernel: count 0, idle."""
        self.count = 0
        self.state = self.other_state = "idle"

    def came_up(self) -> None:
        """The kernel answered: its "starting" announcement (if heard) is over too."""
        self.relabel()
        if self.state == "starting":
            self.state = "idle"
        if self.other_state == "starting":
            self.other_state = "idle"

    def prompt(self) -> FormattedText:
        """``In [n]:``, n the next execution count."""
        return FormattedText(
            [
                ("ansigreen", "In ["),
                ("ansibrightgreen bold", str(self.count + 1)),
                ("ansigreen", "]: "),
            ]
        )

    def continuation(self, width: int, line_number: int, wrap_count: int) -> FormattedText:
        """``...:`` under the prompt, right-aligned to its width."""
        return FormattedText([("ansigreen", " " * max(0, width - 5) + "...: ")])

    def rprompt(self) -> FormattedText:
        """What is wrong or busy, at the prompt's right, when no toolbar says it."""
        if self.toolbar_visible():
            return FormattedText([])  # the toolbar says it
        if self.client.dead.is_set():
            return FormattedText([("ansired bold", "[kernel dead]")])
        if self.conn.connection_lost:
            return FormattedText([("ansired bold", "[connection lost]")])
        if self.restarting:
            return FormattedText([("ansiyellow", "[kernel restarting]")])
        if not self.conn.ready:
            return FormattedText([("ansiyellow", "[kernel starting]")])
        if self.other_state in ("busy", "restarting", "starting"):
            return FormattedText([("ansiyellow", f"[kernel {self.other_state}]")])
        return FormattedText([])

    def toolbar_visible(self) -> bool:
        """Whether the toolbar is drawn: prompt_toolkit draws it only once the terminal
        answered a cursor position request (PROMPT_TOOLKIT_NO_CPR=1, dumb terminals:
        never)."""
        app = get_app_or_none()
        return self.toolbar_on and app is not None and app.renderer.height_is_known

    def toolbar(self) -> FormattedText:
        """The toolbar line (see the module docstring)."""
        dead = self.client.dead.is_set()
        if self.restarting:
            state = "restarting"
        elif dead:
            state = "dead"
        else:
            state = self.state
        lost = (dead and not self.restarting) or self.conn.connection_lost
        return toolbar_fragments(
            self.label,
            state,
            self.count,
            "lost" if lost else self.kind,
            vi_mode_name() if self.vi_mode else "",
        )

    def on_status(self, msg: Message, own: bool, prompt_active: bool) -> bool:
        """Take a status message in; whether what is shown changed."""
        state = str(msg.content.get("execution_state") or "")
        if not state or (state == "starting" and self.conn.ready):
            return False  # a kernel's boot announcement, read late: it is long up
        changed = False
        if not own and state != self.other_state:
            self.other_state = state
            changed = True
        elif own and self.other_state == "restarting" and state != "restarting":
            # The server's notice is over: a kernel that reports on our cell is up.
            self.other_state = "idle"
            changed = True
        # Our own requests while a prompt is up are Tab, F1 and Enter's is_complete:
        # a flicker of busy, not worth a redraw.
        if not (own and prompt_active) and state != self.state:
            self.state = state
            changed = True
        return changed
