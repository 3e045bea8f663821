"""Handing the terminal to another program: the pager (``obj?``, F1) and $EDITOR.

While the child runs, SIGINT is ignored by kconsole (the child still gets Ctrl-C, as
it restores the default disposition before exec): a Ctrl-C in ``less`` must neither
cancel the console's main task nor clear the line being edited.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
from collections.abc import Iterator
from typing import TextIO

from ..sanitize import terminal_text

DEFAULT_PAGER = "less -R"


def pager_command() -> list[str]:
    """$PAGER split like a shell would, else ``less -R``."""
    try:
        argv = shlex.split(os.environ.get("PAGER") or DEFAULT_PAGER)
    except ValueError:
        argv = []
    return argv or shlex.split(DEFAULT_PAGER)


def editor_command() -> list[str]:
    try:
        argv = shlex.split(os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi")
    except ValueError:
        argv = []
    return argv or ["vi"]


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT in this process for the duration (main thread only)."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing we can change
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _restore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_foreground(argv: list[str], input_text: str | None = None) -> bool:
    """Run ``argv`` on the terminal and wait; False when it could not be started."""
    try:
        subprocess.run(
            argv,
            input=input_text.encode("utf-8", "replace") if input_text is not None else None,
            check=False,
            preexec_fn=_restore_sigint,  # only resets a signal disposition: thread-safe
        )
    except OSError:
        return False
    return True


async def page(text: str, stdout: TextIO) -> None:
    """Show ``text`` (ANSI colours kept) through the user's pager, or print it when
    stdout is not a terminal or the pager cannot be run. Call with no prompt up, or
    inside prompt_toolkit's ``in_terminal()``."""
    # Help text comes from the kernel: colours reach the pager (less -R), nothing else.
    text = terminal_text(text, allow_progress=False).rstrip("\n") + "\n"
    if not stdout.isatty():
        stdout.write(text)
        stdout.flush()
        return
    stdout.flush()
    loop = asyncio.get_running_loop()
    with sigint_ignored():
        ok = await loop.run_in_executor(None, run_foreground, pager_command(), text)
    if not ok:
        stdout.write(text)
        stdout.flush()


async def edit_file(filename: str, line: int) -> None:
    """Open ``filename`` in $VISUAL / $EDITOR (the edit_magic payload)."""
    argv = editor_command()
    if line:
        argv.append(f"+{line}")
    argv.append(filename)
    loop = asyncio.get_running_loop()
    with sigint_ignored():
        await loop.run_in_executor(None, run_foreground, argv, None)
