"""Start-up tricks of the ``kconsole`` command: what makes it start fast and fail
cleanly before any console exists.

* :func:`import_asyncio_without_ssl`: asyncio without OpenSSL for zmq consoles.
* :func:`detect_terminal_in_background`: the terminal's answers (graphics protocol,
  cell size) awaited in a thread while the kernel starts.
* :func:`require_stdio`: a closed stdin or stdout is one line, not an AttributeError.
* :func:`drop_stdout`: nothing left to flush into a stdout that cannot be written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .errors import KconsoleError

if TYPE_CHECKING:
    from concurrent.futures import Future

    from .display import TerminalCapabilities

#: Errors of writing to stdout (click itself handles EPIPE, a reader that left).
OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG, errno.EBADF})


def import_asyncio_without_ssl() -> None:
    """Import asyncio for a console that never speaks TLS (a kernel over zmq, tunnelled
    or not), without the ``import ssl`` asyncio makes eagerly: that loads OpenSSL,
    ~4.5 MB resident and a few ms, for nothing.

    asyncio supports interpreters built without ssl: while it is imported, ``import
    ssl`` is made to fail (a None entry in sys.modules), then the entry is removed, so
    later imports of ssl work. asyncio's own TLS stays off in this process: the
    --server paths (HTTPS, WSS) never call this.
    """
    if "asyncio" in sys.modules or "ssl" in sys.modules:
        return
    sys.modules["ssl"] = None  # type: ignore[assignment]
    try:
        import asyncio  # noqa: F401
    finally:
        del sys.modules["ssl"]


def detect_terminal_in_background(*, plain: bool) -> Future[TerminalCapabilities] | None:
    """Ask the terminal what it can show (images, cell size), in a thread: the wait for
    its answers (up to 0.2 s when it gives none) overlaps the console's own start-up.
    None when there is no terminal to ask (script mode, ``--plain``)."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()) or plain:
        return None
    import threading
    from concurrent.futures import Future, InvalidStateError

    from .display import detect_terminal

    future: Future[TerminalCapabilities] = Future()

    def detect() -> None:
        # Ctrl-C during the detection cancels the console's wait for it: nobody wants
        # the answer then (setting it would be the thread's traceback on the terminal).
        try:
            caps = detect_terminal(sys.stdin.fileno(), sys.stdout.fileno(), 0.2)
        except BaseException as e:
            with contextlib.suppress(InvalidStateError):
                future.set_exception(e)
            return
        with contextlib.suppress(InvalidStateError):
            future.set_result(caps)

    # Before prompt_toolkit owns the terminal: the queries' answers must not be read as
    # keystrokes; nothing else reads the terminal meanwhile. The kernel's stdio is not
    # the terminal (see launcher). Not a daemon: an early exit waits (0.2 s at most)
    # for it to restore the terminal's settings.
    threading.Thread(target=detect, name="kconsole-terminal").start()
    return future


def require_stdio() -> None:
    """A console reads stdin and writes stdout: either closed (``<&-``, ``>&-``) is one
    line here, before a kernel is started, not an AttributeError later."""
    for name, stream in (("input", sys.stdin), ("output", sys.stdout)):
        if stream is None:
            raise KconsoleError(
                f"standard {name} is closed: give kconsole a terminal, file or pipe"
            )


def drop_stdout() -> None:
    """Point stdout at /dev/null: after a write to it failed (a full disk), nothing is
    left to flush into it at exit (which would print "Exception ignored...")."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


@contextlib.contextmanager
def reader_may_leave() -> Iterator[None]:
    """Around output its reader may stop reading (``kconsole kernels | head -1``): a
    reader that left ends the command quietly with status 0, as for ripgrep. click
    would exit 1, but only when the reader left before the last write: 0 or 1 by a race
    with the kernels being probed meanwhile."""
    import click

    try:
        yield
        if sys.stdout is not None:  # None: started with stdout closed (`>&-`)
            sys.stdout.flush()
    except BrokenPipeError:
        drop_stdout()  # nothing left to flush into the closed pipe at exit
        raise click.exceptions.Exit(0) from None
