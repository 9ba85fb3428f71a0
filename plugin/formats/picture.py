"""The picture a timeline shows (torch-free; the timeline side): its enabled video tracks as the viewer
sees them (switched-off clips as gaps, each track's own trim, nested sequences inlined), flattened
into one track, pieces that continue the same shot joined, and the cuts between its items."""

from __future__ import annotations

from pathlib import Path

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from core.errors import CutscoreError


def _visible_track(track: otio.schema.Track, path: Path) -> otio.schema.Track:
    """A copy of a video track as the viewer sees it: disabled clips become gaps, the track's own
    trim (source_range) applied; a negative duration is refused."""
    out = _nests_inlined(track.clone(), path)
    for i, item in enumerate(list(out)):
        if isinstance(item, otio.schema.Transition):
            continue
        if item.duration().value < 0:
            raise CutscoreError(f"{path}: track {track.name!r} holds an item with a negative duration "
                                f"({item.duration().value:g} frames); fix the edit in your editor and export again")
        if isinstance(item, otio.schema.Clip) and not enabled(item):
            out[i] = otio.schema.Gap(source_range=TimeRange(RationalTime(0, item.duration().rate), item.duration()))
    # a trim that starts before 0 is no trim: the cmx_3600 adapter stores the record start timecode
    # there (-01:00:00:00), covering the whole track
    if out.source_range is not None and out.source_range.start_time.value >= 0:
        trim = out.source_range
        out.source_range = None
        out = otio.algorithms.track_trimmed_to_range(out, trim)
    return out


def _nests_inlined(track: otio.schema.Track, path: Path) -> otio.schema.Track:
    """A nested sequence on a track (an Avid nest, an FCP compound clip: a Track or a Stack item) as
    the viewer sees it: its own picture, trimmed to the part the outer track uses, in its place (the
    AAF adapter keeps a nest as a Track inside the track; read as one item it was black with false
    cuts at its edges and its real cuts lost)."""
    if not any(isinstance(item, (otio.schema.Track, otio.schema.Stack)) for item in track):
        return track
    out = track.clone()
    while len(out):
        out.pop()
    for item in track:
        if not isinstance(item, (otio.schema.Track, otio.schema.Stack)):
            out.append(item.clone())
            continue
        rng = item.trimmed_range()
        if not enabled(item):
            out.append(otio.schema.Gap(source_range=TimeRange(RationalTime(0, rng.duration.rate), rng.duration)))
            continue
        inner = item.clone()
        inner.source_range = None
        if isinstance(inner, otio.schema.Stack):
            tracks = [_visible_track(t, path) for t in inner if isinstance(t, otio.schema.Track)
                      and t.kind == otio.schema.TrackKind.Video and enabled(t)]
            inner = otio.algorithms.flatten_stack(tracks) if tracks else otio.schema.Track()
        else:
            inner = _visible_track(inner, path)
        for piece in list(otio.algorithms.track_trimmed_to_range(inner, rng)):
            out.append(piece.clone())
    return out


def picture_of(tl: otio.schema.Timeline, path: Path) -> otio.schema.Track:
    tracks = [_visible_track(t, path) for t in tl.video_tracks() if enabled(t)]
    if not tracks:
        raise CutscoreError(f"{path}: the timeline has no enabled video track; cutscore scores a picture edit")
    return _join_through_edits(otio.algorithms.flatten_stack(tracks) if len(tracks) > 1 else tracks[0])


def _join_through_edits(track: otio.schema.Track) -> otio.schema.Track:
    """Consecutive pieces that continue the same media without a jump (a lower clip seen through a
    gap or a switched-off clip above, split by the flatten; an editor's through edit) are one shot:
    no picture change, so no cut."""
    items = list(track)
    if not any(_continues(a, b) for a, b in zip(items, items[1:])):
        return track
    out = otio.schema.Track(name=track.name, kind=track.kind, source_range=track.source_range)
    for item in items:
        prev = out[-1] if len(out) else None
        if prev is not None and _continues(prev, item):
            merged = prev.clone()
            r = prev.source_range
            merged.source_range = TimeRange(r.start_time, r.duration + item.source_range.duration.rescaled_to(r.duration.rate))
            out[-1] = merged
        else:
            out.append(item.clone())
    return out


def _continues(a, b) -> bool:
    if not (isinstance(a, otio.schema.Clip) and isinstance(b, otio.schema.Clip)):
        return False
    if a.source_range is None or b.source_range is None or _shows(a) is None or _shows(a) != _shows(b):
        return False
    return a.source_range.end_time_exclusive() == b.source_range.start_time and a.name == b.name


def _shows(clip: otio.schema.Clip):
    """What a clip shows: its media file, or a generator (a colour, title or generated clip of
    Kdenlive's) by its kind and parameters; None when neither is known."""
    ref = clip.media_reference
    if isinstance(ref, otio.schema.GeneratorReference):
        return ("generator", ref.generator_kind, repr(sorted(dict(ref.parameters).items())))
    return media_of(clip)


def cut_times(picture: otio.schema.Track) -> list[RationalTime]:
    """Every boundary between two consecutive items of the flattened picture (gaps included),
    excluding 0 and the end, sorted and unique."""
    total = picture.duration()
    cuts: list[RationalTime] = []
    for item in picture:
        if isinstance(item, otio.schema.Transition):
            continue
        start = picture.range_of_child(item).start_time
        if RationalTime(0, start.rate) < start < total:
            cuts.append(start)
    return unique_sorted(cuts)


def media_of(clip: otio.schema.Clip) -> str | None:
    ref = clip.media_reference
    if isinstance(ref, otio.schema.ExternalReference) and ref.target_url:
        return ref.target_url
    if isinstance(ref, otio.schema.MissingReference):  # an .otioz/.otiod bundle keeps offline media's URL
        return ref.metadata.get("original_target_url") or None
    return None


def enabled(item) -> bool:
    """OTIO's own flag, and FCP7 XML's <enabled>FALSE</enabled> (which the fcp adapter keeps only
    in metadata["fcp_xml"])."""
    fcp = item.metadata.get("fcp_xml") if hasattr(item, "metadata") else None
    fcp_enabled = fcp.get("enabled") if isinstance(fcp, dict) or hasattr(fcp, "get") else None
    return getattr(item, "enabled", True) and str(fcp_enabled).upper() != "FALSE"


def unique_sorted(times: list[RationalTime]) -> list[RationalTime]:
    out: list[RationalTime] = []
    for t in sorted(times):
        if not out or t != out[-1]:
            out.append(t)
    return out
