"""Removing a kernel's files on the way out never turns into a crash."""

from __future__ import annotations

import pytest

from kconsole.connection import ConnectionInfo
from kconsole.kernelspec import builtin_kernel_spec
from kconsole.launcher import KernelProcess


@pytest.mark.timeout(30)
def test_cleanup_survives_files_it_cannot_remove() -> None:
    kp = KernelProcess(builtin_kernel_spec(), ConnectionInfo.new())
    kp.start()
    try:
        # Something replaced the log by a directory: unlink() fails with EISDIR.
        kp.log_file.unlink()
        kp.log_file.mkdir()
        kp.cleanup()
        assert not kp.is_alive()
        assert not kp.connection_file.exists()  # the rest is still removed
    finally:
        kp.kill()
        if kp.log_file.is_dir():
            kp.log_file.rmdir()
