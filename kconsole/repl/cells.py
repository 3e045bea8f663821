"""Running cells in the REPL: each goes through the cell runner shared with script mode
(:mod:`kconsole.cell_runner`: it sends the cell, records it, hands its output here and
returns what became of it, payloads as data); this part decides what the REPL does
with that: output above the prompt, input() through the stdin editor, the restart
offer awaited before the cell's output ends, the reply-lost note, the prompt's
number, and each payload (page, set_next_input, ask_exit, edit_magic)."""

from __future__ import annotations

import asyncio
import contextlib
import functools

from ..cell_runner import (
    AskExit,
    CellOutcome,
    CellResult,
    CellRunner,
    EditMagic,
    InputAnswer,
    Page,
    Payload,
    SetNextInput,
)
from ..errors import ExitStatus
from ..protocol import Message
from .base import ReplParts
from .pager import edit_file, page


class CellsPart(ReplParts):
    """A cell's run, from its request to its payloads."""

    def _init_cells(self) -> None:
        self._cell_serial = 0
        self._cell_running = False
        self._exec_task = None
        #: The cell sent last (one at a time): the one _run_cell waits for.
        self._cell = None
        #: A cell sent to the kernel as its prompt was accepted, before the prompt has
        #: ended (see _start_cell_now): its run overlaps the prompt's last frame.
        self._early_cell = None
        #: Set once the prompt that sent _early_cell has ended (its input() waits).
        self._prompt_gone = asyncio.Event()

    def _on_own_output(self, msg: Message) -> None:
        """An output message of the running cell (the cell runner recorded it)."""
        self._show(msg, own=True)

    @functools.cached_property
    def _cells(self) -> CellRunner:
        """Runs the cells: records each in ``self.recorder``, shows its output through
        _on_own_output, answers its input() with _ask_input; the printer ends each
        cell's output."""
        return CellRunner(
            self.conn,
            self.printer,
            recorder=self.recorder,
            show=self._on_own_output,
            ask_input=self._ask_input,
        )

    async def run_cell(
        self, code: str, started: asyncio.Future[Message] | None = None
    ) -> CellResult:
        """Execute one cell with Ctrl-C bound to interrupting the kernel (``started``:
        its request already sent, see _start_cell_now); what became of it (no reply
        when the kernel died or was restarted before answering)."""
        with self._sigint_handled():
            return await self._run_cell(code, started)

    def _start_cell(self, code: str, *, wait_prompt: bool = False) -> asyncio.Future[Message]:
        """Send ``code``: the task that waits for its reply and idle. ``wait_prompt``:
        sent while its prompt ends, so an input() it asks for waits for that."""
        self._cell_serial += 1
        self._cell_running = True
        on_input: InputAnswer = self._ask_input
        if wait_prompt:

            async def on_input(prompt: str, password: bool) -> str:
                await self._prompt_gone.wait()  # one prompt at a time
                return await self._ask_input(prompt, password)

        self._cell = self._cells.start(code, on_input=on_input)
        self._exec_task = self._cell.task
        return self._cell.task

    async def _run_cell(
        self, code: str, started: asyncio.Future[Message] | None = None
    ) -> CellResult:
        if started is None:
            if self.conn.connection_lost:
                self.note(
                    "the connection to the server is lost: the cell waits for it (Ctrl-C stops)"
                )
            self._start_cell(code)
        cell = self._cell  # the one started above, or by _start_cell_now
        assert cell is not None
        try:
            await self._cells.wait(cell)  # a cancelled wait abandons the cell
        except asyncio.CancelledError:
            if self._restart_offer is not None:
                # The console is leaving (SIGTERM/SIGHUP): nobody may answer.
                self._restart_offer.cancel()
            raise
        finally:
            self._cell_running = False
            self._exec_task = None
            if self._restart_offer is not None:
                # The restart question is still up (the cell ended meanwhile): it owns
                # the terminal until answered.
                offer, self._restart_offer = self._restart_offer, None
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await offer
            # The printer ends the cell's output, the recorder gets its reply.
            result = self._cells.finish(cell)
        if result.outcome is CellOutcome.REPLY_LOST:
            self.printer.note(f"[kconsole] {result.detail}; the cell is left as it is")
            self.printer.flush()
            if result.input_count is not None:
                self.execution_count = result.input_count
        if result.execution_count is not None:
            self.execution_count = result.execution_count
        if result.ask_exit is not None:
            self._cells.discard_recorded()  # `exit` is not part of the work being saved
        await self._handle_payloads(result.payloads)
        return result

    async def _handle_payloads(self, payloads: tuple[Payload, ...]) -> None:
        for p in payloads:
            if isinstance(p, Page):
                await page(p.text, self.stdout)
                self.printer.barrier()
            elif isinstance(p, SetNextInput):
                self._next_input = p.text
            elif isinstance(p, AskExit):
                self.keep_kernel_on_exit = p.keep_kernel
            elif isinstance(p, EditMagic):
                await edit_file(p.filename, p.line_number)
                self.printer.barrier()

    async def _after_cell(self, result: CellResult) -> int | None:
        """The exit status when the console leaves after a cell (its kernel died and
        cannot be restarted, or the cell asked to exit), else None."""
        if result.reply is None and self.client.dead.is_set() and not self.conn.can_restart:
            if not self._death_told:  # else said as it died, just above
                self.printer.note(f"[kconsole] the kernel died: {self.client.dead_reason}")
                self.printer.flush()
            return ExitStatus.KERNEL_DIED
        if self.keep_kernel_on_exit is not None:
            await self._check_self_exit()
            return 0
        return None
