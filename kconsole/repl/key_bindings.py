"""The REPL's keys beyond prompt_toolkit's editing, as ptpython's ``load_*_bindings``.

Enter runs a complete cell (:mod:`.enter`), Escape Enter adds a line, Tab where only
indentation precedes the cursor indents, F1 pages the kernel's help on the name at the
cursor and Shift-Tab prints its first lines above the prompt, Ctrl-C clears the line,
Ctrl-X r restarts the kernel (after a question), Ctrl-X s saves the session as a
notebook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prompt_toolkit.application import get_app
from prompt_toolkit.document import Document
from prompt_toolkit.filters import (
    Condition,
    completion_is_selected,
    emacs_insert_mode,
    has_completions,
    is_searching,
    vi_insert_mode,
)
from prompt_toolkit.key_binding import (
    KeyBindings,
    KeyBindingsBase,
    KeyPressEvent,
    merge_key_bindings,
)

from ..client import KernelError
from ..sanitize import terminal_text
from .pager import page

if TYPE_CHECKING:
    from .repl import Repl

#: How many spaces Tab inserts where only indentation precedes the cursor.
INDENT = 4
#: How long F1 / Shift-Tab wait for an inspect_reply.
INSPECT_TIMEOUT = 3.0
#: How many lines Shift-Tab prints above the prompt (F1 pages the whole text).
SHORT_HELP_LINES = 12


def load_repl_bindings(repl: Repl) -> KeyBindingsBase:
    """The REPL's own keys (see the module docstring), for its PromptSession."""
    return merge_key_bindings([load_editing_bindings(repl), load_command_bindings(repl)])


def load_editing_bindings(repl: Repl) -> KeyBindings:
    """Enter (run or add a line), Escape Enter, Tab that indents."""
    kb = KeyBindings()
    selected = has_completions & completion_is_selected
    editing = ~is_searching  # in Ctrl-R search, Enter accepts the search (default)

    @kb.add("enter", filter=editing & ~selected)
    def _enter(event: KeyPressEvent) -> object:
        repl._on_enter(event)
        # What it changes on screen redraws itself (the text, the accepted prompt);
        # Enter alone is no reason to draw the prompt again.
        return NotImplemented

    @kb.add("enter", filter=editing & selected)
    def _accept_completion(event: KeyPressEvent) -> None:
        # The selected completion is already in the text: Enter just closes the menu.
        event.current_buffer.complete_state = None

    typing = vi_insert_mode | emacs_insert_mode

    @Condition
    def in_leading_whitespace() -> bool:
        before = get_app().current_buffer.document.current_line_before_cursor
        return not before.strip()

    # Tab where only indentation precedes the cursor indents, as in IPython: there
    # is nothing to complete there, and the kernel would offer every name it knows.
    @kb.add("tab", filter=editing & typing & in_leading_whitespace & ~has_completions)
    def _indent(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text(" " * INDENT)

    @kb.add("escape", "enter")
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    return kb


def load_command_bindings(repl: Repl) -> KeyBindings:
    """F1 and Shift-Tab (the kernel's help), Ctrl-C (clear), Ctrl-X r (restart),
    Ctrl-X s (save)."""
    kb = KeyBindings()

    @kb.add("f1")
    async def _help(event: KeyPressEvent) -> None:
        await show_inspection(repl, event.current_buffer.document, full=True)

    @kb.add("s-tab", filter=~has_completions)
    async def _sig(event: KeyPressEvent) -> None:
        await show_inspection(repl, event.current_buffer.document, full=False)

    @kb.add("c-c")
    def _clear(event: KeyPressEvent) -> None:
        event.app.exit(exception=KeyboardInterrupt, style="class:aborting")

    # eager: prompt_toolkit's emacs keys have Ctrl-X r y (yank); without it Ctrl-X r
    # would wait for a third key.
    @kb.add("c-x", "r", eager=True)
    def _restart(event: KeyPressEvent) -> None:
        # The keys behind it (an answer typed ahead) are for the question.
        hold = repl._keys.start()
        repl._question = event.app.create_background_task(repl._restart_from_prompt(hold))

    @kb.add("c-x", "s", eager=True)
    def _save(event: KeyPressEvent) -> None:
        repl.save_notebook()

    return kb


async def show_inspection(repl: Repl, document: Document, *, full: bool) -> None:
    """The kernel's help on the name at the cursor (inspect_request: nothing runs).
    ``full`` pages it, else its first lines are printed above the prompt."""
    if not await repl._kernel_ready() or repl.client.dead.is_set():
        return
    try:
        reply = await repl.client.inspect(
            document.text, document.cursor_position, 0, timeout=INSPECT_TIMEOUT
        )
    except KernelError:
        return
    text = ""
    if reply.get("status") == "ok" and reply.get("found"):
        text = terminal_text(
            str((reply.get("data") or {}).get("text/plain", "")), allow_progress=False
        )
    if not text.strip():
        text = "[kconsole] no help found for the name at the cursor"
    if full:
        async with repl._in_terminal():
            await page(text, repl.stdout)
        return
    lines = text.rstrip("\n").split("\n")
    if len(lines) > SHORT_HELP_LINES:
        lines = [*lines[:SHORT_HELP_LINES], "\x1b[2m... (F1 shows all of it)\x1b[0m"]
    short = "\n".join(lines)

    def show() -> None:
        repl.stdout.write(short + "\x1b[0m\n")
        repl.stdout.flush()
        # Not the printer's text: never erased; counted, so that a display above
        # it is still redrawn where it is.
        repl.printer.barrier(text=short + "\n")

    repl._write_above(show)
