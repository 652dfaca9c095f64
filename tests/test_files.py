"""Files and folders are written whole or not at all."""

from __future__ import annotations

import pytest

from selfimprove.core.files import atomic_path, atomic_write_text


def test_a_file_appears_only_when_complete(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as partial:
            partial.write_text("half")
            raise RuntimeError("interrupted")
    assert not target.exists() and not partial.exists()
    atomic_write_text(target, "whole")
    atomic_write_text(target, "again")
    assert target.read_text() == "again" and [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_a_folder_is_swapped_in_whole(tmp_path):
    target = tmp_path / "merged"
    with atomic_path(target, directory=True) as partial:
        (partial / "a").write_text("1")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target, directory=True) as partial:
            (partial / "b").write_text("2")
            raise KeyboardInterrupt
    assert [p.name for p in target.iterdir()] == ["a"]
    with atomic_path(target, directory=True) as partial:
        (partial / "c").write_text("3")
    assert [p.name for p in target.iterdir()] == ["c"] and sorted(p.name for p in tmp_path.iterdir()) == ["merged"]
