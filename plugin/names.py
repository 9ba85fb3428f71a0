"""The names cutscore writes into editors' projects and beside them, defined once (standard library
only: plugin/resolve.py imports it inside DaVinci Resolve's own Python).

A take is one WAV of one music segment: `<kind><index:03d>-v<version>.wav` in the sidecar folder
(`clip003-v1.wav` is the first take of the music under picture clip 3, `gap000-v2.wav` would be a
second one under the first gap). Editors keep the file names when they drop cutscore's metadata,
so a take is recognised by its name.
"""

from __future__ import annotations

import re

TRACK_NAME = "cutscore music"  # the audio track cutscore adds (every format)
BIN_NAME = "cutscore"  # the bin folder of the music clips (Kdenlive, Resolve)
STATE_FILE = "cutscore.json"  # the sidecar's state, in `<OUT stem>.cutscore/`

_TAKE = re.compile(r"(?P<stem>(?P<kind>clip|gap)(?P<index>\d{3,}))-v(?P<version>\d+)\.wav")


def take_name(kind: str, index: int, version: int) -> str:
    return f"{kind}{index:03d}-v{version}.wav"


def take_stem(name: str) -> str:
    """The segment a take belongs to ("clip003" of "clip003-v2.wav"); the name itself otherwise."""
    m = _TAKE.fullmatch(name)
    return m.group("stem") if m else name.rsplit("-v", 1)[0]


def take_version(name: str) -> int | None:
    m = _TAKE.fullmatch(name)
    return int(m.group("version")) if m else None


def same_segment(a: str, b: str) -> bool:
    """Whether two WAV names are takes of the same segment."""
    return take_stem(a) == take_stem(b)


def take_pattern(name: str) -> re.Pattern:
    """Any take of the segment `name` is a take of: clip003-v1.wav, clip003-v2.wav, ..."""
    return re.compile(re.escape(take_stem(name)) + r"-v\d+\.wav")


def read_segments(side) -> tuple[str, list[dict]]:
    """(the scored timeline's path, the segments' records) of the sidecar folder `side`, read with
    the standard library: the view of the sidecar (plugin/state.py, typed) that DaVinci Resolve's own
    Python has, where pydantic is not installed. Raises ValueError for a file no cutscore wrote."""
    import json
    from pathlib import Path

    path = Path(side) / STATE_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not readable ({e}); score the timeline again") from None
    if not isinstance(data, dict) or data.get("version", 1) not in (1, 2) or not data.get("segments"):
        raise ValueError(f"{path}: not a cutscore state file this version reads; score the timeline again")
    return str(data.get("scored", "")), list(data["segments"])


RESOLVE_MARKER = {"custom_data": "cutscore-beat", "beat": ("Lemon", "cutscore beat"),
                  "downbeat": ("Yellow", "cutscore downbeat")}  # plugin/beats.py's names


def resolve_beat_marks(side, wav_name: str, timeline_rate: float) -> list[tuple[int, str, str]]:
    """(frame from the item's first frame, colour, name) of cutscore's beat markers on the Resolve
    timeline item playing the sidecar segment whose take is `wav_name` (TimelineItem:AddMarker with
    customData "cutscore-beat", so a later run deletes only those); [] when the score wrote none.
    Standard library: read inside Resolve's own Python too."""
    import json
    from pathlib import Path

    try:
        data = json.loads((Path(side) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return []
    beats = data.get("beats") or {}
    seg = next((s for s in data.get("segments", []) if s.get("wav") == wav_name), None)
    which = {True: "all", False: "off"}.get(beats.get("markers", "all"), beats.get("markers"))  # bool: before downbeats
    if which == "off" or seg is None:
        return []
    a = seg["start"] / seg["rate"]
    n = round(seg["duration"] * timeline_rate / seg["rate"])
    out, used = [], set()
    for t, down in zip(beats.get("times_s", []), beats.get("downbeat", [])):
        if which == "downbeats" and not down:
            continue
        f = round((t - a) * timeline_rate)
        if 0 <= f < n and f not in used:  # Resolve keeps one marker a frame
            used.add(f)
            color, name = RESOLVE_MARKER["downbeat" if down else "beat"]
            out.append((f, color, name))
    return out


def resolve_ducking_note(side) -> str | None:
    """The one line DaVinci Resolve's launchers print when the music was ducked under the dialogue:
    Resolve's scripting API sets no volume keyframes on timeline items, so the ducking is in the
    WAVs themselves (standard library: read inside Resolve's own Python too)."""
    import json
    from pathlib import Path

    try:
        ducking = json.loads((Path(side) / STATE_FILE).read_text()).get("ducking")
    except (OSError, ValueError, AttributeError):
        return None
    if not ducking:
        return None
    return (f"cutscore: the music is ducked {ducking['depth_db']:g} dB under {len(ducking['regions'])} speech regions "
            "in the WAVs themselves (Resolve's scripting API sets no volume keyframes); score with --duck off for "
            "music at full level")
