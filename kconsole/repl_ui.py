"""Small pieces of the REPL's screen: the bottom toolbar, y/n questions, input styles,
and :class:`KeyHold`, which keeps typed-ahead keys in order while a key waits.

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

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prompt_toolkit import PromptSession
from prompt_toolkit.application import get_app_or_none
from prompt_toolkit.formatted_text import AnyFormattedText, FormattedText
from prompt_toolkit.history import DummyHistory
from prompt_toolkit.input.typeahead import get_typeahead, store_typeahead
from prompt_toolkit.key_binding import KeyPress
from prompt_toolkit.keys import Keys
from prompt_toolkit.styles import Style

from .sanitize import plain_line

if TYPE_CHECKING:
    from prompt_toolkit.application import Application

    from .kernel_connection import KernelConnection


def check_style(name: str) -> None:
    """Raise ValueError if ``name`` is not a Pygments style (or ``kconsole``)."""
    from pygments.util import ClassNotFound

    from .display.style import get_style, style_names

    try:
        get_style(name)
    except ClassNotFound:
        available = ", ".join(style_names())
        raise ValueError(f"unknown style {name!r} (available: {available})") from None


def input_style(name: str | None = None) -> Style:
    """The prompt_toolkit style for input highlighting from Pygments style ``name``
    (None: kconsole's own, readable on dark and light backgrounds alike)."""
    from prompt_toolkit.styles.pygments import style_from_pygments_cls

    from .display.style import STYLE_NAME, get_style

    name = name or STYLE_NAME
    check_style(name)
    return style_from_pygments_cls(get_style(name))


def connection_kind(conn: KernelConnection) -> str:
    """``local``, ``server`` or ``attached`` (see the module docstring)."""
    return conn.kind


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


def wrap_words(text: str, width: int) -> str:
    """``text`` with each line wider than ``width`` - 1 terminal cells broken between
    words (the terminal would break it mid-word at the edge); continuation lines keep
    the line's indentation. Lines with escape sequences or tabs, and words wider than
    a line, are left as they are: their width on the screen is not known here."""
    from .display.text import cell_width

    limit = max(20, width - 1)
    out: list[str] = []
    for line in text.split("\n"):
        if "\x1b" in line or "\t" in line or cell_width(line) <= limit or not line.strip():
            out.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        current, used = indent, cell_width(indent)
        for word in line.split():
            w = cell_width(word)
            if current.strip() and used + 1 + w > limit:
                out.append(current)
                current, used = indent + word, cell_width(indent) + w
            elif current.strip():
                current, used = current + " " + word, used + 1 + w
            else:
                current, used = current + word, used + w
        out.append(current)
    return "\n".join(out)


async def ask_yes_no(question: AnyFormattedText, default: bool) -> bool:
    """Ask a question answered by a line ended by Enter: ``y``/``yes`` or ``n``/``no``
    (any case); Enter alone (or Ctrl-D) takes ``default``, Ctrl-C says no, anything
    else asks again. The answer stays on the screen."""
    session: PromptSession[str] = PromptSession(history=DummyHistory(), enable_suspend=True)
    while True:
        try:
            # The REPL's own SIGINT handler stays in place (prompt_toolkit's would
            # remove it).
            answer = await session.prompt_async(question, handle_sigint=False)
        except KeyboardInterrupt:
            return False
        except EOFError:
            return default
        word = answer.strip().lower()
        if not word:
            return default
        if word in ("y", "yes"):
            return True
        if word in ("n", "no"):
            return False


#: Keys that end a hold at once: what follows them is typed after an interrupt.
_INTERRUPT_KEYS = frozenset({Keys.ControlC, Keys.SIGINT})


class KeyHold:
    """Holds back the keys of a running prompt while one key's handling waits.

    prompt_toolkit runs an ``async`` key binding as a background task and goes on at
    once with the keys after it, from the same read of the terminal and from later
    ones. For Enter, which asks the kernel whether the cell is complete, that merged
    everything typed ahead into the cell being accepted (``n = 5`` Enter ``0`` Enter
    ran ``n = 50``). While a hold is on, keys are kept aside in order instead of being
    processed; :meth:`release` gives them back when the waiting key is done: to this
    prompt if it still runs, else as typeahead for the next prompt, so every key acts
    as if pressed on its own. Ctrl-C (or SIGINT) ends a hold at once: the waiting key
    is abandoned (``on_interrupt``) and, as a terminal's interrupt flushes its input,
    the keys held before it are dropped; it and the keys after it are processed.

    Works by wrapping the application's ``KeyProcessor.process_keys`` (the one entry
    point of both terminal reads and ``send_sigint``); CPR answers pass through.
    """

    def __init__(self, app: Application[Any]) -> None:
        self.app = app
        self._kp = app.key_processor
        self._process = self._kp.process_keys
        self._held: list[KeyPress] | None = None
        self._token: object = None
        self._on_interrupt: Callable[[], object] | None = None
        self._kp.process_keys = self._process_keys  # type: ignore[method-assign]

    @property
    def holding(self) -> bool:
        """Whether keys are being held now."""
        return self._held is not None

    def queued(self) -> bool:
        """Whether keys are queued behind the one being handled (read with it)."""
        return any(k.key != Keys.CPRResponse for k in self._kp.input_queue)

    def start(self, on_interrupt: Callable[[], object] | None = None) -> object:
        """Hold from now on, starting with the keys still queued behind the key being
        handled (the rest of its read). Call from inside a key binding. Without
        ``on_interrupt``, Ctrl-C is held like any key (it answers a question asked
        meanwhile, see :meth:`hand_over`). Returns this hold's token for
        :meth:`release` (a Ctrl-C among those keys may have ended it already)."""
        token = self._token = object()
        self._held = []
        self._on_interrupt = on_interrupt
        self._absorb()
        return token

    def holds(self, token: object) -> bool:
        """Whether the hold ``token`` (from :meth:`start`) is still on."""
        return self._held is not None and self._token is token

    def release(self, token: object) -> None:
        """End the hold ``token``: its keys go first, before any typed later. A hold
        that already ended (Ctrl-C) is not released twice, nor a later one."""
        if not self.holds(token):
            return
        held, self._held = self._held, None
        self._on_interrupt = None
        assert held is not None
        queue = self._kp.input_queue
        if not self.app.is_done:
            queue.extendleft(reversed(held))
            self._process()
            return
        # The prompt ended (Enter accepted the cell): the next prompt reads them first.
        rest = [k for k in queue if k.key != Keys.CPRResponse]
        cprs = [k for k in queue if k.key == Keys.CPRResponse]
        queue.clear()
        queue.extend(cprs)
        store_typeahead(self.app.input, held + rest)

    def hand_over(self) -> None:
        """Pass the held keys to the next prompt that starts (a question asked while
        the hold is on): it reads them before the terminal."""
        if self._held:
            store_typeahead(self.app.input, self._held)
            self._held = []

    def take_back(self) -> None:
        """Take back what that prompt left unread (typed after its answer)."""
        if self._held is not None:
            self._held.extend(get_typeahead(self.app.input))

    def _absorb(self) -> None:
        assert self._held is not None
        queue = self._kp.input_queue
        keys = list(queue)
        queue.clear()
        cprs = [k for k in keys if k.key == Keys.CPRResponse]
        keys = [k for k in keys if k.key != Keys.CPRResponse]
        queue.extend(cprs)  # the renderer waits for these: never hold them
        on_interrupt = self._on_interrupt
        cut = -1
        if on_interrupt is not None:
            cut = max((i for i, k in enumerate(keys) if k.key in _INTERRUPT_KEYS), default=-1)
        if on_interrupt is None or cut < 0:
            self._held.extend(keys)
            return
        self._held = None
        self._on_interrupt = None
        queue.extend(keys[cut:])
        on_interrupt()

    def _process_keys(self) -> None:
        if self._held is not None:
            self._absorb()
        self._process()
