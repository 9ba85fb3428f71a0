"""Kdenlive: the OTIO adapter that reads .kdenlive projects (adapter.py, registered through
plugin_manifest.json) and the writer that patches a project with the music (writer.py);
`write_project` is what plugin/formats/__init__.py's Kdenlive record names for writing."""

from __future__ import annotations

from pathlib import Path


def write_project(text: str, segments: list, rate: float, sequence: str | None = None,
                  retake: tuple[Path, Path, str] | None = None) -> str:
    """The Kdenlive specifics of plugin/formats/writeback.py write_timeline: the project text with the music of
    `segments` (writeback.Segment) on its cutscore track; retake (old WAV, new WAV, segment name):
    only that segment's take changed, a new bin clip (the old one stays in the bin)."""
    from plugin.formats.kdenlive.writer import patch_project, replace_clip_wav

    if retake is not None:
        old, new, name = retake
        seg = next((s for s in segments if s.wav.name == new.name), None)
        return replace_clip_wav(text, old, new, name, tuple(seg.beats) if seg else ())
    return patch_project(text, segments, sequence)
