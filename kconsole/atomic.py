"""Replacing a file in one step: readers see the old content or the new, never a part.

The new content goes to a temporary file beside the target (same directory, so the
same file system), is synced, and is renamed over the target (``os.replace``, atomic
on POSIX). On any failure the target is left as it was and the temporary file is
removed. Used for saved notebooks, the built-in kernel's kernelspec and the trimmed
history file.
"""

from __future__ import annotations

import os


def replace_file(target: str | os.PathLike[str], data: bytes, mode: int) -> None:
    """Make ``target`` hold ``data`` with permission bits ``mode``, atomically.

    A symlink at ``target`` is replaced, not followed (resolve it first to replace
    the file it points to). Raises OSError (target untouched) when the directory is
    not writable, the disk is full or the rename fails.
    """
    # Imported here: script mode, which may never save, does not load tempfile (nor
    # the random module it brings).
    import tempfile

    path = os.fspath(target)
    directory, name = os.path.split(path)
    # mkstemp: a fresh name opened with O_EXCL, 0600 until the chmod below, so two
    # writers never share a temporary file and no one reads it half written.
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            # On disk before the rename: a crash then leaves the old file or the
            # whole new one, not an empty file under the target's name.
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt too: never leave the temporary file
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def umask_mode() -> int:
    """The permission bits a new file gets by default (0666 less the umask): what a
    replaced file is given when it had none of its own to keep."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask
