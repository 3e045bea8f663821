"""The seam between the kernel client and the wire.

A :class:`Transport` moves whole :class:`~kconsole.protocol.Message` objects on the
five channels. The client, the REPL and everything above know only this interface:
zmq (:mod:`kconsole.zmq_transport`) and a Jupyter Server WebSocket implement it.
What a transport is (whose kernel, on which server) is not asked of it: the console's
:class:`~kconsole.kernel_control.KernelControl` knows, and holds the transport's type.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Literal

from .protocol import Message

Channel = Literal["shell", "control", "stdin", "iopub"]
#: Takes each incoming message, in arrival order (see :meth:`Transport.deliver_to`).
Receiver = Callable[[Channel, Message], None]


class TransportError(Exception):
    """The transport failed (closed, unreachable); the message is user-facing."""


class Transport(abc.ABC):
    """Moves messages between a client and one kernel."""

    #: A dropped connection is being reopened: a send waits for it (a request with a
    #: timeout must not outwait it). Only a transport that reconnects sets it.
    reconnecting: bool = False

    @abc.abstractmethod
    async def connect(self) -> None:
        """Open the channels (iopub subscribed before anything is sent)."""

    @abc.abstractmethod
    async def send(self, channel: Channel, msg: Message) -> None:
        """Sign (where the transport signs) and send ``msg`` on ``channel``."""

    async def recv(self) -> tuple[Channel, Message]:
        """The next verified message from any channel, for a transport that cannot
        :meth:`deliver_to` (the default raises: a transport must offer one of the two).

        Messages that fail verification are dropped (and counted in ``rejected``),
        never returned. Raises :class:`TransportError` when the transport is closed.
        """
        raise TransportError(f"{type(self).__name__} delivers only through deliver_to()")

    @abc.abstractmethod
    async def is_alive(self, timeout: float) -> bool:
        """One liveness probe (heartbeat ping or equivalent) within ``timeout``."""

    def deliver_to(self, receiver: Receiver, on_closed: Callable[[str], None]) -> bool:
        """Hand every incoming message to ``receiver`` as soon as it is read, instead of
        queueing it for :meth:`recv`; ``on_closed`` gets a reason if the connection
        fails. Called before :meth:`connect`. Returns False (the default) where the
        transport cannot, and the caller then reads :meth:`recv`."""
        return False

    async def wait_channels(self, timeout: float) -> None:  # noqa: B027 (optional hook)
        """Wait until every channel is connected, where the transport can tell; called
        once the kernel answered. Default: nothing to wait for."""

    def suspend(self) -> None:  # noqa: B027 (optional hook)
        """The kernel's process is gone until a restart: stop trying to reach it (zmq
        would retry every connection each reconnect interval). Default: nothing."""

    def resume(self) -> None:  # noqa: B027 (optional hook)
        """Undo :meth:`suspend` (the kernel was restarted). Default: nothing."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close every channel; idempotent."""

    #: Count of incoming messages dropped because they failed verification.
    rejected: int = 0
    #: The last verification failure, for error messages ("wrong key?").
    last_rejection: str | None = None
    #: Count of incoming messages dropped because they could not be read (signed,
    #: but not a message: bad JSON, nested too deep, too large).
    malformed: int = 0
    #: Where a one-line note for the user goes (the client sets it); None: nowhere.
    on_note: Callable[[str], None] | None = None

    def drop_malformed(self, reason: str) -> None:
        """Count a message that could not be read and tell the user about the first
        one only: a kernel that keeps sending such messages must not bury the screen."""
        self.malformed += 1
        if self.malformed == 1 and self.on_note is not None:
            try:
                self.on_note(
                    f"dropped a message from the kernel that could not be read ({reason}); "
                    "later ones are dropped without a note"
                )
            except Exception:  # a printing hook must not kill a reader
                pass
