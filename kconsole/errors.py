"""kconsole's exit statuses and the root of its user-facing errors.

Every failure the user should read as one line (a missing connection file, a wrong
key, a kernel that never answers) is a :class:`KconsoleError`, or a subclass, carrying
the exit status it ends the command with (click's ``ClickException.exit_code``
pattern). The CLI catches them once, at its edge, and prints ``kconsole: <message>``;
with ``--debug`` (or ``KCONSOLE_DEBUG=1``) it also shows the cause chain the one line
hides.

:class:`ExitStatus` is the one place exit statuses are defined (the man page's EXIT
STATUS section lists the same).
"""

from __future__ import annotations

import enum
import os


class ExitStatus(enum.IntEnum):
    """How a kconsole command ends, as its process exit status."""

    #: Everything ran (script mode: no cell raised).
    OK = 0
    #: A cell raised (script mode, as ``python3 script.py``), or kconsole itself failed:
    #: a bad connection file, a kernel that did not start, a server that refused.
    ERROR = 1
    #: Options that do not go together, or a malformed value (click's own status).
    USAGE = 2
    #: The kernel died (or its server lost it) under the console.
    KERNEL_DIED = 3
    #: Ctrl-C ended it: 128 + SIGINT, as a shell reports ``python3`` killed by SIGINT.
    INTERRUPTED = 130
    #: SIGTERM ended it (the kernel kconsole started was shut down first).
    TERMINATED = 143


def signal_status(signum: int) -> int:
    """The exit status a shell reports for a process ended by signal ``signum``."""
    return 128 + signum


class KconsoleError(Exception):
    """A failure shown to the user as one line, ending the command with
    :attr:`exit_status`. The message is the whole line, without the ``kconsole:``
    prefix; the cause (``raise ... from e``) is shown only under ``--debug``."""

    exit_status: ExitStatus = ExitStatus.ERROR

    def __init__(self, message: str, *, exit_status: ExitStatus | None = None) -> None:
        super().__init__(message)
        if exit_status is not None:
            self.exit_status = exit_status

    @property
    def message(self) -> str:
        """The one line shown to the user."""
        return str(self)


class UsageProblem(KconsoleError):
    """Options that do not go together (``--ssh-key`` without ``--ssh``): one line,
    exit status 2, as click's own usage errors."""

    exit_status = ExitStatus.USAGE


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with terminal control characters (ESC, BEL, CR...) and undecodable
    file-name bytes shown as escapes: file names and file contents reach the user's
    terminal in messages and listings, and must not drive it."""
    out = []
    for ch in text:
        if ch == "\n" and keep_newlines:
            out.append(ch)
        elif "\udc80" <= ch <= "\udcff":  # a non-UTF-8 byte of a file name
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif not ch.isprintable():
            out.append(repr(ch)[1:-1] if ord(ch) < 0x10000 else "?")
        else:
            out.append(ch)
    return "".join(out)


def error_line(error: KconsoleError) -> str:
    """The line :class:`KconsoleError` ``error`` is shown as (without a newline): its
    message after ``kconsole:``, control characters escaped (a message may quote a file
    name or a server's text)."""
    return f"kconsole: {printable(error.message, keep_newlines=True)}"


def debug_report(error: BaseException) -> str:
    """What ``--debug`` adds above the one line: the traceback of ``error`` with its
    cause chain (the OSError, the JSON error, the server's answer it was made from)."""
    import traceback  # only when asked: not a module a normal start loads

    return "".join(traceback.format_exception(error))


#: The environment variable that turns ``--debug`` on for every command.
DEBUG_ENV = "KCONSOLE_DEBUG"


def debug_from_env() -> bool:
    """Whether ``$KCONSOLE_DEBUG`` asks for ``--debug`` (1, true, yes, on)."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")
