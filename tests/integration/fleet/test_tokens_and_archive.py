"""The fleet key file (made once, 0600, shared by processes starting together, kept across
restarts) and tar.gz archives (fleet.archive): round trip, and what unpacking refuses."""

from __future__ import annotations

import io
import stat
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conveyor.errors import ConveyorError
from conveyor.fleet.archive import BadArchive, pack_folder, unpack_archive
from conveyor.fleet.tokens import FLEET_KEY_BYTES, load_fleet_key, run_token, verify


def test_fleet_key_is_made_once_private_and_kept(tmp_path: Path) -> None:
    key = load_fleet_key(tmp_path / "home")
    path = tmp_path / "home" / "fleet.key"
    assert len(key) == FLEET_KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = run_token(key, "r1")
    assert verify(load_fleet_key(tmp_path / "home"), token) == "r1"  # after a restart too
    assert [p.name for p in (tmp_path / "home").iterdir()] == ["fleet.key"]


def test_fleet_key_made_at_once_by_many_is_one_key(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: load_fleet_key(tmp_path), range(16)))
    assert len(keys) == 1


def test_fleet_key_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    (tmp_path / "fleet.key").write_bytes(b"short")
    with pytest.raises(ConveyorError, match=r"fleet\.key: not a fleet key"):
        load_fleet_key(tmp_path)


def test_archive_round_trip_keeps_files_and_executable_bits(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "bin").mkdir(parents=True)
    (source / "bin" / "tool").write_text("#!/bin/sh\n")
    (source / "bin" / "tool").chmod(0o700)
    (source / "a b.txt").write_text("spaced")
    (source / "link").symlink_to(source / "a b.txt")
    assert pack_folder(source, tmp_path / "a.tar.gz") == 2  # the symlink is left out
    assert unpack_archive(tmp_path / "a.tar.gz", tmp_path / "out", max_bytes=1000) == 2
    assert (tmp_path / "out" / "a b.txt").read_text() == "spaced"
    assert (tmp_path / "out" / "bin" / "tool").stat().st_mode & 0o100
    assert not (tmp_path / "out" / "link").exists()


def _tar(tmp_path: Path, *members: tuple[tarfile.TarInfo, bytes]) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            archive.addfile(info, io.BytesIO(data) if info.isfile() else None)
    path = tmp_path / "in.tar.gz"
    path.write_bytes(buffer.getvalue())
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize(
    "member",
    [
        _member("../escape.txt"),
        _member("/etc/cron.d/x"),
        _member("a/../../b"),
        _member("link", tarfile.SYMTYPE, "/etc/passwd"),
        _member("hard", tarfile.LNKTYPE, "a.txt"),
        _member("dev", tarfile.CHRTYPE),
    ],
    ids=["dotdot", "absolute", "climbs", "symlink", "hardlink", "device"],
)
def test_unpack_refuses_entries_that_leave_the_folder_or_are_not_files(
    tmp_path: Path, member: tarfile.TarInfo
) -> None:
    archive = _tar(tmp_path, (member, b"x"))
    with pytest.raises(BadArchive):
        unpack_archive(archive, tmp_path / "out", max_bytes=1000)
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "b").exists()


def test_unpack_refuses_more_than_the_size_limit(tmp_path: Path) -> None:
    archive = _tar(tmp_path, (_member("big"), b"x" * 5000))
    with pytest.raises(BadArchive, match="more than 1000 bytes"):
        unpack_archive(archive, tmp_path / "out", max_bytes=1000)


def test_unpack_refuses_what_is_not_a_tar_gz(tmp_path: Path) -> None:
    (tmp_path / "x.tar.gz").write_bytes(b"\x1f\x8b but broken")
    with pytest.raises(BadArchive, match=r"not a readable tar\.gz archive"):
        unpack_archive(tmp_path / "x.tar.gz", tmp_path / "out", max_bytes=1000)
