"""SIGINT routing: one handler for the whole session.

At a prompt, SIGINT does what Ctrl-C there does (a ``kill -INT``: the raw terminal
reads Ctrl-C as a key); while a cell runs it interrupts the kernel, and a second one
within :data:`DOUBLE_CTRL_C` seconds (same cell) offers to restart it; during a wait
outside any cell (a new kernel being started on a server) it stops the wait. The
prompts are told not to install their own handler (prompt_toolkit's would replace
it, and it loads ctypes to restore the C-level handler each time).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Iterator

from .base import ReplParts

#: A second Ctrl-C this many seconds after the first, same cell running: offer a restart.
DOUBLE_CTRL_C = 2.0


class SigintPart(ReplParts):
    """Where a SIGINT goes (see the module docstring)."""

    def _init_sigint(self) -> None:
        #: How many holders of the SIGINT handler there are (see _sigint_handled).
        self._sigint_depth = 0
        #: A wait outside any cell that Ctrl-C stops (a new kernel being started on a
        #: server), and whether Ctrl-C did stop it.
        self._sigint_stops = None
        self._stopped_by_sigint = False
        self._last_sigint: tuple[int, float] | None = None

    def _on_sigint(self) -> None:
        """SIGINT: at a prompt, what Ctrl-C does there (a `kill -INT`: the raw terminal
        reads Ctrl-C as a key); while a cell runs, interrupt it; else nothing."""
        if self._prompt_active:
            if self._asking is not None and self._asking.app.is_running:
                self._asking.app.key_processor.send_sigint()
        elif self._cell_running:
            self._sigint()
        elif self._sigint_stops is not None and not self._sigint_stops.done():
            self._stopped_by_sigint = True
            self._sigint_stops.cancel()

    @contextlib.contextmanager
    def _sigint_handled(self) -> Iterator[None]:
        """Install :meth:`_on_sigint` (once; nested uses share it)."""
        loop = asyncio.get_running_loop()
        self._sigint_depth += 1
        if self._sigint_depth == 1:
            loop.add_signal_handler(signal.SIGINT, self._on_sigint)
        try:
            yield
        finally:
            self._sigint_depth -= 1
            if self._sigint_depth == 0:
                loop.remove_signal_handler(signal.SIGINT)

    def _sigint(self) -> None:
        """Ctrl-C while a cell runs: interrupt; again within DOUBLE_CTRL_C s (same cell):
        ask whether to restart a restartable kernel, else stop waiting for the cell."""
        if self.conn.connection_lost:
            # Nothing reaches the kernel now (an interrupt neither): stop waiting for
            # the cell rather than for a reconnect that may take minutes.
            self._stop_waiting("the connection to the server is lost")
            return
        now = time.monotonic()
        last, self._last_sigint = self._last_sigint, (self._cell_serial, now)
        if last is not None and last[0] == self._cell_serial and now - last[1] <= DOUBLE_CTRL_C:
            if not self.conn.can_restart:
                # A kernel kconsole may not restart, deaf to the interrupt: the console
                # at least must not be stuck with it.
                self._last_sigint = None
                self._stop_waiting("the kernel did not stop on the interrupt")
                return
            if self._restart_offer is None or self._restart_offer.done():
                self._last_sigint = None
                self._restart_offer = asyncio.ensure_future(self._offer_restart())
                return
        asyncio.ensure_future(self._interrupt())

    def _stop_waiting(self, why: str) -> None:
        """Give up on the running cell (the kernel may still run it): back to a prompt."""
        task = self._exec_task
        if task is None or task.done():
            return
        task.cancel()
        self.note(f"stopped waiting for the cell: {why} (output it still sends is shown)")

    async def _interrupt(self) -> None:
        try:
            what = await self.conn.interrupt()
        except Exception as e:  # a failing interrupt must not take the console down
            what = f"interrupt failed: {e}"
        self._emit(lambda: self.printer.note(f"^C: {what}"))
