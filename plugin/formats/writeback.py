"""Write the music back (torch-free): one function, `write_timeline`, writes every scored timeline
(score, regenerate, choose-take, export): a NEW timeline with the "cutscore music" track (any earlier
cutscore track replaced), everything else preserved. The format's record (plugin/formats/__init__.py) says
how: OTIO's adapter writes a copy of the timeline with the track added, media given relative to the
input pointed at the same files from the output's folder, the format's specifics module mending what
the adapter does not write (FCP7 XML: plugin/formats/fcp7.py); a Kdenlive project is written by patching the
project's own text (plugin/formats/kdenlive/writer.py), so every byte of the rest stays as it was.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from core.files import atomic_write
from plugin.formats import Format, writable
from plugin.formats.timeline import music_track, wav_path
from plugin.names import TRACK_NAME, take_stem


@dataclass
class Segment:
    """One music clip: mirrors one item (clip or gap) of the flattened picture."""

    kind: str  # "clip" or "gap"
    index: int  # picture clip index (plan), or gap number
    name: str
    range: TimeRange  # in the timeline
    wav: Path
    # the ducking over this clip: (seconds from its start, dB), straight lines in dB between keys;
    # written as the format's gain keyframes (Kdenlive, FCP7 XML) or recorded beside a ducked WAV (OTIO)
    gain_keys: list[tuple[float, float]] = field(default_factory=list)
    keys_baked: bool = False  # True: the WAV holds the ducking (OTIO), the keys only describe it
    # the music's beats in this clip (plugin/finish/beats.py): (seconds from its start, "beat" | "downbeat"),
    # written as the format's clip markers
    beats: list[tuple[float, str]] = field(default_factory=list)


def build_track(segments: list[Segment], rate: float, metadata: dict, resolve: bool = False,
                urls: bool = False) -> otio.schema.Track:
    track = otio.schema.Track(name=TRACK_NAME, kind=otio.schema.TrackKind.Audio)
    track.metadata["cutscore"] = metadata
    if resolve:  # what Resolve's own OTIO export writes on an audio track (its import keeps only this)
        track.metadata["Resolve_OTIO"] = {"Audio Type": "Stereo", "Locked": False, "SoloOn": False}
    for seg in segments:
        dur = seg.range.duration
        wav = seg.wav.resolve()
        ref = otio.schema.ExternalReference(target_url=wav.as_uri() if urls else str(wav),
                                            available_range=TimeRange(RationalTime(0, rate), dur))
        clip = otio.schema.Clip(name=f"{TRACK_NAME}: {seg.name}", media_reference=ref,
                                source_range=TimeRange(RationalTime(0, rate), dur))
        clip.metadata["cutscore"] = {"kind": seg.kind, "index": seg.index}
        if seg.gain_keys:  # OTIO has no gain keyframes: the envelope the WAV was ducked by
            clip.metadata["cutscore"]["ducking"] = {"keys": [list(k) for k in seg.gain_keys], "in_wav": seg.keys_baked,
                                                    "unit": "seconds from the clip's start, dB"}
        clip.markers.extend(beat_markers(seg.beats, rate))
        track.append(clip)
    return track


def beat_markers(beats: list[tuple[float, str]], rate: float) -> list[otio.schema.Marker]:
    """cutscore's beat markers on a music clip (its media time: the WAV's first frame is 0), on the
    nearest frame; FCP7 XML keeps their names, OTIO their metadata too (plugin/names.py is_our_marker)."""
    from plugin.names import BEAT_NAMES as NAMES

    colors = {"downbeat": otio.schema.MarkerColor.ORANGE, "beat": otio.schema.MarkerColor.YELLOW}
    return [otio.schema.Marker(name=NAMES[kind], color=colors[kind],
                               marked_range=TimeRange(RationalTime(round(t * rate), rate), RationalTime(0, rate)),
                               metadata={"cutscore": {"beat": kind, "time_s": round(t, 6)}})
            for t, kind in beats]


def scored_otio(base: otio.schema.Timeline, segments: list[Segment], metadata: dict, rate: float,
                urls: bool = False) -> otio.schema.Timeline:
    """A copy of `base` with its cutscore track (if any) replaced by one built from `segments`; the
    editor's own markers on the old music clips move to the new clip of the same segment."""
    out = copy.deepcopy(base)
    old = music_track(out)
    editors: dict[str, list] = {}
    if old is not None:
        from plugin.names import is_our_marker as is_ours

        for c in old.find_clips():
            p = wav_path(c)
            if p is not None:
                editors.setdefault(take_stem(p.name), []).extend(
                    m.clone() for m in c.markers if not is_ours(m.name, dict(m.metadata)))
        out.tracks.remove(old)
    from_resolve = any("Resolve_OTIO" in t.metadata for t in out.tracks) or "Resolve_OTIO" in out.metadata
    track = build_track(segments, rate, metadata, resolve=from_resolve, urls=urls)
    for seg, clip in zip(segments, track.find_clips()):
        clip.markers.extend(editors.get(take_stem(seg.wav.name), []))
    out.tracks.append(track)
    out.metadata["cutscore"] = metadata
    return out


def _plain_relative(url: str) -> bool:
    """A media URL written as a path relative to the timeline's folder (no scheme, not absolute on
    any system: `C:\\...` and `\\\\server\\...` are Windows' absolute paths)."""
    import re

    if not url or re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", url) or url.startswith(("/", "\\")):
        return False
    return not re.match(r"^[A-Za-z]:[\\/]", url)


def rebase_media(tl: otio.schema.Timeline, src_dir: Path, out_dir: Path, how: str) -> None:
    """Every media reference written relative to the input's folder made to point at the same file
    from the output's folder: `relative` keeps it relative (rebased, so the project folder can move
    with its media), `path` makes it an absolute path (a bundle copies what it finds), `url` an
    absolute file:// URL (FCP7 XML's <pathurl>). Absolute paths and URLs are left as they are."""
    import os

    for clip in tl.find_clips():
        ref = clip.media_reference
        url = getattr(ref, "target_url", None)
        if not isinstance(ref, otio.schema.ExternalReference) or not _plain_relative(url):
            continue
        full = Path(os.path.normpath(src_dir.resolve() / url))
        if how == "relative":
            ref.target_url = Path(os.path.relpath(full, out_dir.resolve())).as_posix()
        elif how == "url":
            ref.target_url = full.as_uri()
        else:
            ref.target_url = str(full)


def _explicit_source_ranges(tl: otio.schema.Timeline) -> None:
    """A clip that uses its media's whole available range may leave source_range unset; a bundle
    (whose offline media become MissingReferences without a range) and FCP7 XML (whose writer needs
    it) would lose that range, so it is written out."""
    for clip in tl.find_clips():
        if clip.source_range is None:
            try:
                clip.source_range = clip.trimmed_range()
            except otio.exceptions.CannotComputeAvailableRangeError:
                continue
        ref = clip.media_reference
        if isinstance(ref, (otio.schema.ExternalReference, otio.schema.GeneratorReference)) and ref.available_range is None:
            # FCP7 XML's <file> needs a duration: at least the part of the media the clip uses
            end = clip.source_range.end_time_exclusive()
            ref.available_range = TimeRange(RationalTime(0, end.rate), end)




def write_timeline(out_path: Path, base_path: Path, base: otio.schema.Timeline, segments: list[Segment],
                   metadata: dict, rate: float, retake: tuple[Path, Path, str] | None = None) -> Format:
    """THE writer of scored timelines: `base` (read from `base_path`: the editor's timeline, or a
    scored one) with the music of `segments` on the cutscore track, written atomically to out_path
    in the format its suffix names. retake (old WAV, new WAV, segment name): only that segment's take
    changed, for a format that keeps the old take in its project (Kdenlive's bin)."""
    fmt = writable(out_path, base_path)
    specifics = fmt.module()

    def write(tmp: Path) -> None:
        if fmt.patches_input:
            sequence = base.metadata.get("kdenlive", {}).get("uuid") or None
            text = specifics.write_project(base_path.read_text(encoding="utf-8"), segments, rate, sequence, retake)
            tmp.write_text(text, encoding="utf-8")
            return
        out = scored_otio(base, segments, metadata, rate, urls=fmt.music_urls == "url")
        rebase_media(out, base_path.parent, out_path.parent, fmt.media_urls)
        if fmt.explicit_ranges:
            _explicit_source_ranges(out)
        if specifics is not None:
            specifics.prepare(out)
        kwargs = {}
        if fmt.bundle:
            from opentimelineio.adapters.file_bundle_utils import MediaReferencePolicy

            kwargs["media_policy"] = MediaReferencePolicy.MissingIfNotFile
        otio.adapters.write_to_file(out, str(tmp), adapter_name=fmt.adapter, **kwargs)
        if specifics is not None:
            specifics.finish(tmp, [s.gain_keys for s in segments], rate)

    atomic_write(out_path, write)
    return fmt
