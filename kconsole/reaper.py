"""Removing a kept kernel's files once it exits, whoever stopped it.

``kconsole start --keep-kernel`` leaves the kernel running when the console goes. Its
connection file, log and ipc sockets are kconsole's: the kernel did not write them and
removes none, and another client that shuts it down (``jupyter console --existing``,
a script with jupyter_client) removes only files it wrote itself. So the console
leaves a watcher behind, ``python .../kconsole/reaper.py PID FILE... [--dir DIR]
[--pidfd FD]``, in a session of its own: it waits for the kernel's exit (on a pidfd
where there is one: no polling) and then removes the files, and the private ipc
directory once it is empty. The pidfd is kconsole's own, handed down: one the watcher
opened from the pid itself could name another process, had the kernel exited and its
pid been reused before the watcher started. It holds nothing else open and ends with
the kernel.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

#: How often the watcher looks when the system has no pidfd (not Linux).
_POLL = 2.0


def watch(
    pid: int, files: Iterable[Path], dirs: Iterable[Path] = (), *, pidfd: int | None = None
) -> None:
    """Leave a watcher that removes ``files`` (then the empty ``dirs``) once process
    ``pid`` exits; ``pidfd``, a pidfd of that process, is what it then waits on (the
    pid is only the fallback). Never raises: a kernel whose files stay is no reason
    to fail."""
    # This file run as a script (it needs only the standard library): it works however
    # kconsole was found, and from "/" it holds no directory busy.
    argv = [sys.executable, str(Path(__file__).resolve()), str(pid), *map(str, files)]
    for d in dirs:
        argv += ["--dir", str(d)]
    if pidfd is not None:
        argv += ["--pidfd", str(pidfd)]
    with contextlib.suppress(OSError, ValueError):
        subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C or hang-up of the terminal is not its end
            close_fds=True,
            pass_fds=(pidfd,) if pidfd is not None else (),
            cwd="/",
        )


def _wait_exit(pid: int, pidfd: int | None = None) -> None:
    if pidfd is not None:
        try:
            select.select([pidfd], [], [])
            return
        except (OSError, ValueError):
            pass  # not a pidfd after all: the pid it is
        finally:
            with contextlib.suppress(OSError):
                os.close(pidfd)
    try:
        fd = os.pidfd_open(pid)  # type: ignore[attr-defined,unused-ignore]
    except ProcessLookupError:
        return
    except (AttributeError, OSError):
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            except PermissionError:
                pass
            time.sleep(_POLL)  # no pidfd: looking now and then is all there is
    try:
        select.select([fd], [], [])
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args or not args[0].isdigit():
        print("usage: reaper.py PID FILE... [--dir DIR] [--pidfd FD]", file=sys.stderr)
        sys.exit(2)
    files: list[str] = []
    dirs: list[str] = []
    pidfd: int | None = None
    it = iter(args[1:])
    for a in it:
        if a == "--dir":
            dirs.append(next(it, ""))
        elif a == "--pidfd":
            fd = next(it, "")
            pidfd = int(fd) if fd.isdigit() else None
        else:
            files.append(a)
    _wait_exit(int(args[0]), pidfd)
    for f in files:
        with contextlib.suppress(OSError):
            os.unlink(f)
    for d in dirs:
        with contextlib.suppress(OSError):  # not empty: what else is there is not ours
            os.rmdir(d)


if __name__ == "__main__":
    main()
