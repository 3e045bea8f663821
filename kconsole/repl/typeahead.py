""":class:`KeyHold`, which keeps typed-ahead keys in order while a key waits."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prompt_toolkit.input.typeahead import get_typeahead, store_typeahead
from prompt_toolkit.key_binding import KeyPress
from prompt_toolkit.keys import Keys

if TYPE_CHECKING:
    from prompt_toolkit.application import Application

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
