"""Files written without following links: O_EXCL|O_NOFOLLOW for a new one, a temporary file
and a rename to replace one; keys 0600 whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gateway.tools.safe_files import taken, write_file


def test_a_new_file_is_never_written_through_a_link(tmp_path: Path) -> None:
    target = tmp_path / "target"
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(FileExistsError):
        write_file(tmp_path / "link", b"data")
    assert not target.exists()
    assert taken([tmp_path / "link", tmp_path / "free"]) == [tmp_path / "link"]


def test_replacing_swaps_the_link_itself(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"theirs")
    (tmp_path / "link").symlink_to(target)
    write_file(tmp_path / "link", b"ours", replace=True)
    assert target.read_bytes() == b"theirs"
    assert not (tmp_path / "link").is_symlink() and (tmp_path / "link").read_bytes() == b"ours"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "target"]


def test_a_private_file_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        write_file(tmp_path / "key.pem", b"k", private=True)
        write_file(tmp_path / "cert.pem", b"c")
        (tmp_path / "old-key.pem").write_bytes(b"old")
        (tmp_path / "old-key.pem").chmod(0o666)
        write_file(tmp_path / "old-key.pem", b"new", private=True, replace=True)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "old-key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "cert.pem").stat().st_mode) == 0o644


def test_a_failed_replace_names_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    (tmp_path / "a-folder").mkdir()
    with pytest.raises(OSError) as caught:
        write_file(tmp_path / "a-folder", b"data", replace=True)
    assert caught.value.filename == str(tmp_path / "a-folder")
    assert [p.name for p in tmp_path.iterdir()] == ["a-folder"]
