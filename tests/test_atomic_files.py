"""Files are replaced whole or not at all."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path

import pytest

from fs_helpers import mounted_tmpfs  # type: ignore[import-not-found]
from lrtune._files import atomic_write_text


def test_a_write_replaces_the_file_and_leaves_no_temporary_behind(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    target.write_text("old")
    atomic_write_text(target, '{"new": true}')
    assert target.read_text() == '{"new": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_a_failed_write_keeps_the_old_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    target.write_text("old")

    class Unencodable(str):
        def encode(self, *args: object, **kwargs: object) -> bytes:
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write_text(target, Unencodable("new"))
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


@pytest.fixture()
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB tmpfs."""
    with mounted_tmpfs(tmp_path / "disk", "64k") as mount:
        yield mount


def test_a_full_disk_leaves_the_target_whole_and_no_temporary(tiny_disk: Path) -> None:
    target = tiny_disk / "summary.json"
    atomic_write_text(target, "whole")
    with pytest.raises(OSError) as caught:
        atomic_write_text(target, "x" * 200_000)  # more than the disk holds
    assert caught.value.errno == errno.ENOSPC
    assert target.read_text() == "whole"
    assert [p.name for p in tiny_disk.iterdir()] == ["summary.json"]
