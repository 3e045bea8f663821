"""Questions: a y/n line at the prompt's place (restart, exit), read with the keys
typed ahead of it, its answer left on the screen."""

from __future__ import annotations

import asyncio

from prompt_toolkit import PromptSession
from prompt_toolkit.formatted_text import AnyFormattedText
from prompt_toolkit.history import DummyHistory

from .base import ReplParts


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


class QuestionsPart(ReplParts):
    """The REPL's questions: Ctrl-X r's and double Ctrl-C's restart, Ctrl-D's exit."""

    async def _restart_from_prompt(self, hold: object) -> None:
        """Ctrl-X r: ask, then restart; the prompt and its text stay meanwhile. The
        keys are held from Ctrl-X r on: the question reads them first, the prompt gets
        what it leaves (typed after the answer's Enter)."""
        try:
            ok = await self._ask_restart_at_prompt()
        finally:
            self._keys.release(hold)
        if ok:
            # Not a task of the prompt's application: those are cancelled when the
            # prompt ends (Enter while restarting), and a restart must not stop halfway.
            self._restart_task = asyncio.ensure_future(self._restart_kernel())

    async def _ask_restart_at_prompt(self) -> bool:
        if not self.conn.can_restart:
            self.note("this kernel cannot be restarted: kconsole only attached to it")
            return False
        if not self.conn.ready:
            self.note("the kernel is still starting")
            return False
        if self._restart_task is not None and not self._restart_task.done():
            return False
        async with self._in_terminal():
            self._keys.hand_over()
            try:
                return await ask_yes_no("Restart the kernel? [y/N] ", default=False)
            finally:
                self._keys.take_back()

    async def _offer_restart(self) -> None:
        # The restart happens with the terminal still ours: an input() of the old kernel
        # waiting for its turn must not get a prompt meanwhile.
        async with self._prompt_during_cell():
            if await ask_yes_no("Restart the kernel? [y/N] ", default=False):
                await self._restart_kernel()

    async def _ask_exit(self) -> bool:
        with self._prompting():
            return await ask_yes_no("Do you really want to exit ([y]/n)? ", default=True)
