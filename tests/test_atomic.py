"""kconsole.atomic.replace_file: the one atomic file replacement (notebooks, the
built-in kernelspec, the history trim)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kconsole.atomic import replace_file, umask_mode


def test_replaces_content_and_sets_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    target.write_bytes(b"old content, longer than the new one\n")
    replace_file(target, b"new\n", 0o640)
    assert target.read_bytes() == b"new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert os.listdir(tmp_path) == ["f.json"]  # no temporary file left beside it


def test_creates_a_missing_file_with_a_relative_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    replace_file("plain.txt", b"x", umask_mode())
    assert (tmp_path / "plain.txt").read_bytes() == b"x"
    assert stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == umask_mode()


def test_a_symlink_is_replaced_not_followed(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.write_bytes(b"kept")
    link = tmp_path / "link"
    link.symlink_to(real)
    replace_file(link, b"new", 0o600)
    assert not link.is_symlink()
    assert link.read_bytes() == b"new"
    assert real.read_bytes() == b"kept"


def test_a_failed_rename_leaves_the_target_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "a_directory"
    target.mkdir()
    (target / "inside").write_bytes(b"untouched")
    with pytest.raises(OSError):
        replace_file(target, b"data", 0o644)
    assert sorted(os.listdir(tmp_path)) == ["a_directory"]
    assert (target / "inside").read_bytes() == b"untouched"


def test_an_unwritable_directory_raises_oserror(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "f"
    with pytest.raises(OSError):
        replace_file(missing, b"data", 0o644)
    assert not (tmp_path / "no").exists()


def test_umask_mode_follows_the_umask() -> None:
    old = os.umask(0o027)
    try:
        assert umask_mode() == 0o640
        assert os.umask(0o027) == 0o027  # asking did not change it
    finally:
        os.umask(old)
