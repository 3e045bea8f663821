"""The fields the REPL's parts share, declared once for the type checker.

:class:`~kconsole.repl.repl.Repl` is put together from one class per concern
(:mod:`.screen`, :mod:`.enter`, :mod:`.sigint`, :mod:`.stdin`, :mod:`.questions`,
:mod:`.cells`), each keeping its own state; what one part reads of another's is
declared here, with the methods one part calls in another. Nothing here runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import History

    from ..cell_runner import RunningCell
    from ..client import KernelClient
    from ..kernel_connection import KernelConnection
    from ..notebook import NotebookRecorder
    from ..output import OutputPrinter
    from ..protocol import Message
    from .completion import KernelCompleter
    from .status import Status
    from .typeahead import KeyHold


class ReplParts:
    """What every part of the REPL may read (see the module docstring)."""

    conn: KernelConnection
    client: KernelClient
    printer: OutputPrinter
    stdout: TextIO
    recorder: NotebookRecorder
    history: History
    completer: KernelCompleter
    session: PromptSession[str]
    status: Status
    vi_mode: bool
    show_other_output: bool
    keep_kernel_on_exit: bool | None
    _next_input: str
    _generation: int
    _restart_task: asyncio.Task[bool] | None
    # screen
    _prompt_active: bool
    _asking: PromptSession[Any] | None
    _death_told: bool
    # key bindings, Enter
    _keys: KeyHold
    # questions
    _restart_offer: asyncio.Task[None] | None
    _question: asyncio.Task[None] | None
    # cells
    _cell_serial: int
    _cell_running: bool
    _cell: RunningCell | None
    _exec_task: asyncio.Future[Message] | None
    _early_cell: asyncio.Future[Message] | None
    _prompt_gone: asyncio.Event
    # SIGINT
    _sigint_stops: asyncio.Future[Any] | None
    _stopped_by_sigint: bool

    execution_count: int

    # -- implemented by the parts named --------------------------------------------------

    async def _kernel_ready(self) -> bool:  # repl
        raise NotImplementedError

    async def _restart_kernel(self) -> bool:  # repl
        raise NotImplementedError

    async def _check_self_exit(self) -> None:  # repl
        raise NotImplementedError

    def note(self, text: str) -> None:  # screen
        raise NotImplementedError

    def _emit(self, fn: Callable[[], Any]) -> None:  # screen
        raise NotImplementedError

    def _invalidate(self) -> None:  # screen
        raise NotImplementedError

    def _write_above(self, write: Callable[[], None]) -> None:  # screen
        raise NotImplementedError

    def _show(self, msg: Message, own: bool) -> None:  # screen
        raise NotImplementedError

    def _prompting(self) -> contextlib.AbstractContextManager[None]:  # screen
        raise NotImplementedError

    def _in_terminal(self) -> contextlib.AbstractAsyncContextManager[None]:  # screen
        raise NotImplementedError

    def _prompt_during_cell(self) -> contextlib.AbstractAsyncContextManager[None]:  # screen
        raise NotImplementedError

    async def _ask(self, session: PromptSession[Any], message: Any, **kwargs: Any) -> Any:
        raise NotImplementedError  # screen

    def _redraws_held(self) -> contextlib.AbstractContextManager[None]:  # enter
        raise NotImplementedError

    def _sigint_handled(self) -> contextlib.AbstractContextManager[None]:  # sigint
        raise NotImplementedError

    async def _interrupt(self) -> None:  # sigint
        raise NotImplementedError

    async def _offer_restart(self) -> None:  # questions
        raise NotImplementedError

    async def _ask_input(self, prompt: str, password: bool) -> str:  # stdin
        raise NotImplementedError

    def _start_cell(self, code: str, *, wait_prompt: bool = False) -> asyncio.Future[Message]:
        raise NotImplementedError  # cells


__all__ = ["ReplParts"]
