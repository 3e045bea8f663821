"""Running cells: send one, show its output, wait for its reply and idle, record it,
act on its payloads (page, set_next_input, ask_exit, edit_magic).

Kept together and as they were: the cell runner shared with script mode replaces
this part."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from ..client import KernelDied, ReplyLost
from ..errors import ExitStatus
from ..kernel_connection import payloads_of
from ..protocol import Message
from .base import ReplParts
from .pager import edit_file, page


class CellsPart(ReplParts):
    """A cell's run, from its request to its payloads."""

    def _init_cells(self) -> None:
        #: The execution_count of the running cell's execute_input, when one came.
        self._input_count = None
        self._cell_serial = 0
        self._cell_running = False
        self._exec_task = None
        #: A cell sent to the kernel as its prompt was accepted, before the prompt has
        #: ended (see _start_cell_now): its run overlaps the prompt's last frame.
        self._early_cell = None
        #: Set once the prompt that sent _early_cell has ended (its input() waits).
        self._prompt_gone = asyncio.Event()

    def _on_own_output(self, msg: Message) -> None:
        if msg.msg_type == "execute_input":
            # The cell's number as the kernel counts it: the prompt's source when the
            # execute_reply never comes (bash_kernel on `for i in 1 2; do`).
            count = msg.content.get("execution_count")
            if isinstance(count, int):
                self._input_count = count
        if self.recorder is not None:
            self.recorder.add_output(msg)
        self._show(msg, own=True)

    async def run_cell(
        self, code: str, started: asyncio.Future[Message] | None = None
    ) -> Message | None:
        """Execute one cell with Ctrl-C bound to interrupting the kernel (``started``:
        its request already sent, see _start_cell_now). None when the kernel died or
        was restarted before answering."""
        with self._sigint_handled():
            return await self._run_cell(code, started)

    def _start_cell(self, code: str, *, wait_prompt: bool = False) -> asyncio.Future[Message]:
        """Send ``code``: the task that waits for its reply and idle. ``wait_prompt``:
        sent while its prompt ends, so an input() it asks for waits for that."""
        self._cell_serial += 1
        self._cell_running = True
        self._input_count = None
        self.recorder.start_cell(code)
        on_input: Callable[[str, bool], Awaitable[str]] = self._ask_input
        if wait_prompt:

            async def on_input(prompt: str, password: bool) -> str:
                await self._prompt_gone.wait()  # one prompt at a time
                return await self._ask_input(prompt, password)

        task = self._exec_task = asyncio.ensure_future(
            self.client.execute(
                code,
                on_output=self._on_own_output,
                on_input=on_input,
                on_idle_lost=lambda: self.printer.note(
                    "[kconsole] the kernel's idle status never came; some output may be lost"
                ),
            )
        )
        return task

    async def _run_cell(
        self, code: str, started: asyncio.Future[Message] | None = None
    ) -> Message | None:
        if started is None:
            if self.conn.connection_lost:
                self.note(
                    "the connection to the server is lost: the cell waits for it (Ctrl-C stops)"
                )
            task = self._start_cell(code)
        else:
            task = started
        reply: Message | None = None
        try:
            await asyncio.wait({task})
            if not task.cancelled():  # cancelled: a restart abandoned the cell
                reply = task.result()
        except KernelDied:
            pass
        except ReplyLost as e:
            self.printer.note(f"[kconsole] {e}; the cell is left as it is")
            if self._input_count is not None:
                self.execution_count = self._input_count
        except BaseException as e:
            task.cancel()
            if isinstance(e, asyncio.CancelledError) and self._restart_offer is not None:
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
            self.printer.finish_cell()  # widgets not drawn live (output to a file)
            self.printer.end_line()
            self.printer.flush()
            self.recorder.finish_cell(reply)
        if reply is None:
            return None
        count = reply.content.get("execution_count")
        if isinstance(count, int):
            self.execution_count = count
        payloads = payloads_of(reply.content)
        if any(p.get("source") == "ask_exit" for p in payloads):
            self.recorder.discard_last()  # `exit` is not part of the work being saved
        await self._handle_payloads(payloads)
        return reply

    async def _handle_payloads(self, payloads: list[dict[str, Any]]) -> None:
        for p in payloads:
            source = p.get("source")
            if source == "page":
                data = p.get("data") or {}
                text = data.get("text/plain") if isinstance(data, dict) else data
                if isinstance(text, str) and text:
                    await page(text, self.stdout)
                    self.printer.barrier()
            elif source == "set_next_input":
                text = p.get("text")
                self._next_input = text if isinstance(text, str) else ""
            elif source == "ask_exit":
                # Only a real True keeps (ipykernel sends None for a plain ask_exit()).
                self.keep_kernel_on_exit = p.get("keepkernel") is True
            elif source == "edit_magic":
                filename, line = p.get("filename"), p.get("line_number")
                if isinstance(filename, str) and filename:
                    await edit_file(filename, line if isinstance(line, int) else 0)
                    self.printer.barrier()

    async def _after_cell(self, reply: Message | None) -> int | None:
        """The exit status when the console leaves after a cell (its kernel died and
        cannot be restarted, or the cell asked to exit), else None."""
        if reply is None and self.client.dead.is_set() and not self.conn.can_restart:
            self.printer.note(f"[kconsole] the kernel died: {self.client.dead_reason}")
            self.printer.flush()
            return ExitStatus.KERNEL_DIED
        if self.keep_kernel_on_exit is not None:
            await self._check_self_exit()
            return 0
        return None
