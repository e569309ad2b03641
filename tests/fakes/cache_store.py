"""An in-memory CacheStore (engine.cache): each key holds the files a save matched, as
bytes with their executable bit. tests/integration/engine/test_cache_store_conformance.py
holds it to the same contract as FolderCaches and fleet.files.RemoteCaches."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from conveyor.engine.artifacts import collect_artifacts
from conveyor.model import Artifacts

__all__ = ["MemoryCaches"]


class MemoryCaches:
    def __init__(self) -> None:
        self.saved: dict[str, dict[str, tuple[bytes, bool]]] = {}

    async def restore(self, keys: Sequence[str], workspace: Path) -> tuple[str, int] | None:
        for key in keys:
            files = self.saved.get(key)
            if files is None:
                continue
            for rel, (data, is_executable) in files.items():
                target = workspace / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                target.chmod(0o755 if is_executable else 0o644)
            return key, len(files)
        return None

    async def save(self, key: str, workspace: Path, paths: Sequence[str]) -> int:
        with tempfile.TemporaryDirectory() as scratch:
            matched = collect_artifacts(workspace, Artifacts(paths=tuple(paths)), Path(scratch))
            files = {
                rel: (
                    (Path(scratch) / rel).read_bytes(),
                    bool((Path(scratch) / rel).stat().st_mode & 0o100),
                )
                for rel in matched
                if (Path(scratch) / rel).is_file()
            }
        if files:
            self.saved[key] = files
        return len(files)
