"""The safe-write and safe-read primitives every build file goes through (codesign.fileio)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codesign.errors import BuildError
from codesign.fileio import check_tree, make_dir_in, read_in, write_in


def test_write_in_replaces_by_rename_and_refuses_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "b"
    root.mkdir()
    write_in(root, "f.txt", "one")
    inode = (root / "f.txt").stat().st_ino
    write_in(root, "f.txt", "two")
    assert (root / "f.txt").read_text() == "two"
    assert (root / "f.txt").stat().st_ino != inode  # a new file renamed over the old one
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (root / "link").symlink_to(victim)
    with pytest.raises(BuildError, match="symlink"):
        write_in(root, "link", "x")
    (root / "sub").symlink_to(tmp_path)
    with pytest.raises(BuildError, match="must be a directory, not a symlink"):
        write_in(root, "sub/victim", "x")
    assert victim.read_text() == "keep"
    assert sorted(p.name for p in root.iterdir()) == ["f.txt", "link", "sub"]  # no temporaries


def test_write_in_and_make_dir_in_never_create_the_root(tmp_path: Path) -> None:
    with pytest.raises(BuildError):
        write_in(tmp_path / "gone", "f", "x")
    with pytest.raises(BuildError):
        make_dir_in(tmp_path / "gone", "weights")
    with pytest.raises(BuildError):
        write_in(tmp_path, "missing/f", "x")
    assert list(tmp_path.iterdir()) == []


def test_read_in_reads_regular_files_of_the_expected_size(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abcd")
    assert read_in(tmp_path, "f", size=4) == b"abcd"
    with pytest.raises(BuildError, match="must hold 8 bytes, not 4"):
        read_in(tmp_path, "f", size=8)
    with pytest.raises(BuildError, match="at most 2 bytes"):
        read_in(tmp_path, "f", max_bytes=2)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(BuildError, match="not a FIFO"):
        read_in(tmp_path, "fifo")
    (tmp_path / "link").symlink_to(tmp_path / "f")
    with pytest.raises(BuildError, match="not a symlink"):
        read_in(tmp_path, "link")
    with pytest.raises(BuildError, match="relative path"):
        read_in(tmp_path, "../f")


def test_check_tree_refuses_special_files(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    check_tree(tmp_path)
    os.mkfifo(tmp_path / "d" / "fifo")
    with pytest.raises(BuildError, match="FIFO"):
        check_tree(tmp_path)
