"""A folder of files as one tar.gz, and back: how artifacts and caches travel between a
worker and the server (fleet.files, server.runfiles).

`pack_folder` writes the regular files under a folder (sorted, `/` paths; symlinks, devices
and `.git` left out, as artifacts.py collects them) with their executable bit. Unpacking is
the guarded part, since the archive comes over the network: only regular files and folders,
names relative and inside the target (no absolute path, no `..`), at most
`MAX_ARCHIVE_FILES` entries and `max_bytes` unpacked (a small gzip can hold a huge file), all
read as a stream. A refused archive is `BadArchive` and leaves a partly filled target,
which callers unpack into a fresh staging folder and drop. Synchronous: callers run it in a
worker thread. Must not: know runs, jobs or HTTP.
"""

from __future__ import annotations

import gzip
import shutil
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from conveyor.engine.artifacts import list_files
from conveyor.errors import ConveyorError

__all__ = ["MAX_ARCHIVE_FILES", "BadArchive", "pack_folder", "unpack_archive"]

MAX_ARCHIVE_FILES = 100_000
_COMPRESS_LEVEL = 3  # build outputs: most of gzip's gain at a fraction of level 9's time


class BadArchive(ConveyorError):
    """An archive that cannot be unpacked safely; the message says which entry and why."""

    http_status = 422
    code = "bad_archive"


def pack_folder(folder: Path, dest: Path) -> int:
    """Write the files under `folder` into the tar.gz `dest`; returns how many."""
    count = 0
    with tarfile.open(dest, "w:gz", compresslevel=_COMPRESS_LEVEL) as archive:
        for rel in list_files(folder):
            path = folder / rel
            if path.is_symlink() or not path.is_file():
                continue
            info = archive.gettarinfo(str(path), arcname=rel)
            info.mode = 0o755 if info.mode & 0o100 else 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(path, "rb") as handle:
                archive.addfile(info, handle)
            count += 1
    return count


def _target(folder: Path, name: str) -> Path:
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or any(part in ("..", "") for part in parts):
        raise BadArchive(f"archive entry {name[:100]!r}: not a relative path inside the folder")
    return folder.joinpath(*(part for part in parts if part != "."))


def unpack_archive(source: Path, folder: Path, *, max_bytes: int) -> int:
    """Unpack the tar.gz `source` into `folder` (module docstring); returns the number of
    files. BadArchive when it is not one, or breaks a rule."""
    folder.mkdir(parents=True, exist_ok=True)
    files = total = 0
    try:
        with tarfile.open(source, "r|gz") as archive:
            for entry, member in enumerate(archive, start=1):
                if entry > MAX_ARCHIVE_FILES:
                    raise BadArchive(f"the archive has more than {MAX_ARCHIVE_FILES} entries")
                target = _target(folder, member.name)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                if not member.isfile():
                    raise BadArchive(
                        f"archive entry {member.name[:100]!r}: a link or device "
                        "(only files and folders are carried)"
                    )
                total += member.size
                if total > max_bytes:
                    raise BadArchive(f"the archive unpacks to more than {max_bytes} bytes")
                _write(archive, member, target)
                files += 1
    except (tarfile.TarError, zlib.error, EOFError, gzip.BadGzipFile) as exc:
        raise BadArchive(f"not a readable tar.gz archive ({type(exc).__name__})") from None
    return files


def _write(archive: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    source = archive.extractfile(member)
    if source is None:  # pragma: no cover - a regular file always has a body
        raise BadArchive(f"archive entry {member.name[:100]!r}: no content")
    if target.is_dir():
        raise BadArchive(f"archive entry {member.name[:100]!r}: a folder of that name exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    with source, open(target, "wb") as handle:
        shutil.copyfileobj(source, handle)
    target.chmod(0o755 if member.mode & 0o100 else 0o644)
