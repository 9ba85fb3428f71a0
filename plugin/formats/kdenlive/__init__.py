"""Kdenlive: the OTIO adapter that reads .kdenlive projects (adapter.py, registered through
plugin_manifest.json) and the writer that patches a project with the music (writer.py);
`write_project` is what plugin/formats/__init__.py's Kdenlive record names for writing."""

from __future__ import annotations

from pathlib import Path

from plugin.names import TRACK_NAME


def write_project(text: str, segments: list, rate: float, sequence: str | None = None,
                  retake: tuple[Path, Path, str] | None = None) -> str:
    """The Kdenlive specifics of plugin/formats/writeback.py write_timeline: the project text with the music of
    `segments` (writeback.Segment) on its cutscore track; retake (old WAV, new WAV, segment name):
    only that segment's take changed, a new bin clip (the old one stays in the bin)."""
    from plugin.formats.kdenlive.writer import MusicClip, patch_project, replace_clip_wav

    if retake is not None:
        old, new, name = retake
        seg = next((s for s in segments if s.wav.name == new.name), None)
        return replace_clip_wav(text, old, new, f"{TRACK_NAME}: {name}", tuple(seg.beats) if seg else ())
    clips = [MusicClip(round(s.range.start_time.rescaled_to(rate).value), round(s.range.duration.rescaled_to(rate).value),
                       s.wav, f"{TRACK_NAME}: {s.name}", tuple(s.gain_keys), tuple(s.beats)) for s in segments]
    return patch_project(text, clips, sequence)
