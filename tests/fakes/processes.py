"""Finding a test's processes by a marker in their command line, for "no process left
behind" checks after a kill or a cancel. Reads /proc (Linux); zombies do not count."""

from __future__ import annotations

from pathlib import Path

__all__ = ["live_with_marker"]


def live_with_marker(marker: str) -> list[int]:
    """PIDs of live (non-zombie) processes whose command line contains `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != "Z":
            found.append(int(entry.name))
    return found
