"""The stdin editor: the one-line prompt that answers a kernel's ``input_request``
(``input()``, ``getpass()``, pdb). It has its own history; a password is neither
echoed nor remembered; Ctrl-C interrupts the kernel, Ctrl-D sends EOF."""

from __future__ import annotations

import asyncio

from prompt_toolkit import PromptSession
from prompt_toolkit.formatted_text import ANSI
from prompt_toolkit.history import DummyHistory, InMemoryHistory
from prompt_toolkit.layout.processors import Processor, Transformation, TransformationInput

from ..client import EOFInput, NoReply
from ..sanitize import terminal_text
from .base import ReplParts


class _HideInput(Processor):
    """Shows nothing of what is typed (a password prompt, like getpass in a tty)."""

    def apply_transformation(self, ti: TransformationInput) -> Transformation:
        return Transformation([], source_to_display=lambda i: 0, display_to_source=lambda i: 0)


class StdinPart(ReplParts):
    """Answers input_requests (see the module docstring)."""

    def _init_stdin(self) -> None:
        # The input() prompt: one line, its own history (pdb commands, answers). Built at
        # the first input_request: most sessions never need its ~0.5 MB.
        self._input_session: PromptSession[str] | None = None

    async def _ask_input(self, prompt: str, password: bool) -> str:
        """Answer an input_request with a one-line editor (Ctrl-C interrupts the
        kernel, Ctrl-D sends EOF); a password is not echoed and not remembered."""
        if self._input_session is None:
            self._input_session = PromptSession(
                history=InMemoryHistory(), vi_mode=self.vi_mode, enable_suspend=True
            )
        session = self._input_session
        if password:
            session = PromptSession(
                history=DummyHistory(), input_processors=[_HideInput()], enable_suspend=True
            )
        generation = self._generation
        try:
            async with self._prompt_during_cell():
                if generation != self._generation:
                    raise NoReply  # asked by a kernel restarted while we waited our turn
                message = ANSI(terminal_text(prompt, allow_progress=False))
                answer: str = await self._ask(session, message)
                return answer
        except KeyboardInterrupt:
            asyncio.ensure_future(self._interrupt())
            raise NoReply from None
        except EOFError:
            raise EOFInput from None
