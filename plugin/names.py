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


BEAT_NAMES = {"beat": "cutscore beat", "downbeat": "cutscore downbeat"}  # the beat markers (plugin/finish/beats.py)


def is_our_marker(name: str | None, metadata: dict | None = None) -> bool:
    """A beat marker cutscore wrote (by its metadata, or by its name where a format keeps only that):
    never read as the editor's hit point."""
    if metadata and isinstance(metadata.get("cutscore"), dict) and "beat" in metadata["cutscore"]:
        return True
    return (name or "") in BEAT_NAMES.values()
