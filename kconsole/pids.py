"""Whether a process id names a live process (POSIX: signal 0 probes without sending)."""

from __future__ import annotations

import os


def pid_exists(pid: int) -> bool:
    """Whether process ``pid`` exists: someone else's (EPERM) counts as existing."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, someone else's
        return True
    return True
