"""CMX 3600 EDL's specifics (torch-free): what otio-cmx3600-adapter would refuse with an unclear
message, refused in one line before it reads (plugin/formats.py names this module for .edl)."""

from __future__ import annotations

from pathlib import Path

from core.errors import CutscoreError


def before_read(path: Path) -> None:
    _picture_events(path)


def _picture_events(path: Path) -> None:
    """An EDL whose events are all sound (channels A, A2, AA, ...) is refused in one line before
    OTIO's reader, which fails on it with a message about durations."""
    import re

    text = path.read_text(encoding="utf-8-sig", errors="replace")
    channels = re.findall(r"^\s*\d{3,}\s+\S+\s+(\S+)\s", text, re.M)
    if channels and not any("V" in c.upper() or c.upper() == "B" for c in channels):
        heard = ", ".join(sorted(set(channels))[:6])
        raise CutscoreError(f"{path}: this list has no picture events (its {len(channels)} events are sound only: "
                            f"{heard}); export the EDL of the video track")
