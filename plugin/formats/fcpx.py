"""Final Cut Pro X XML's specifics (torch-free): what otio-fcpx-xml-adapter reads wrongly, read right
after it (plugin/formats/__init__.py names this module for .fcpxml): the spine's start timecode, and the
markers where they play."""

from __future__ import annotations

from pathlib import Path

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange


def after_read(path: Path, tl: otio.schema.Timeline) -> None:
    _from_timecode_start(path, tl)
    _markers_where_they_play(path, tl)


def _sequence(path: Path, tl: otio.schema.Timeline):
    """The <sequence> element of the project the adapter read (by the timeline's name), else the first."""
    import xml.etree.ElementTree as ET

    seqs = [(p.get("name"), p.find("sequence")) for p in ET.parse(path).getroot().iter("project")]
    return next((s for n, s in seqs if s is not None and n == tl.name), None) or next(
        (s for _, s in seqs if s is not None), None)


def _seconds(value: str | None):
    """An FCPXML time ("3600s", "100994/25s") as a Fraction of a second; None when it is not one."""
    from fractions import Fraction

    try:
        return Fraction((value or "0s").removesuffix("s"))
    except (ValueError, ZeroDivisionError):
        return None


def _markers_where_they_play(path: Path, tl: otio.schema.Timeline) -> None:
    """Every marker of the sequence where it plays, read from the XML: otio-fcpx-xml-adapter drops a
    marker on a gap and places some others a fraction of a second off (a marker at 28.022 s read as
    28.000 s). FCPXML's rule: an element's `offset` is in its parent's time, and its own children
    (markers, connected clips, storylines) are in its time, which starts at its `start`; a marker
    plays where it is shown, inside its element's start..start+duration. The markers replace the
    adapter's, on the timeline, in seconds from the sequence's start timecode."""
    seq = _sequence(path, tl)
    spine = seq.find("spine") if seq is not None else None
    if spine is None:
        return
    found: list[tuple[float, str]] = []
    _walk(spine, -(_seconds(seq.get("tcStart")) or 0), 0, found)
    for item in [tl.tracks, *tl.tracks, *tl.find_children()]:
        if hasattr(item, "markers"):
            del item.markers[:]
    rate = tl.duration().rate
    for t, name in sorted(found):
        tl.tracks.markers.append(otio.schema.Marker(name=name, marked_range=TimeRange(
            RationalTime(t * rate, rate), RationalTime(0, rate))))


def _walk(parent, at, parent_start, found: list) -> None:
    """The markers of `parent`'s children: `at` is where `parent_start` (the parent's own time at
    its first frame) plays in the sequence."""
    for el in parent:
        offset = _seconds(el.get("offset"))
        if offset is None or el.get("offset") is None or el.get("enabled") == "0":
            continue
        start = _seconds(el.get("start")) or 0
        duration = _seconds(el.get("duration"))
        here = at + offset - parent_start  # where el's time `start` plays
        for m in el:
            if m.tag in ("marker", "chapter-marker") and (t := _seconds(m.get("start"))) is not None:
                if duration is None or start <= t < start + duration:
                    found.append((float(here + t - start), m.get("value") or m.tag))
        _walk(el, here, start, found)


def _from_timecode_start(path: Path, tl: otio.schema.Timeline) -> None:
    """FCPXML counts a sequence's spine offsets from its start timecode (`tcStart`; DaVinci Resolve
    writes 01:00:00:00, `tcStart="3600/1s"`), and otio-fcpx-xml-adapter places the spine at the
    offsets as they are: an hour of black before the first frame. Read right here: that much taken
    off the front of every track (and of the timeline's own markers), the start timecode kept as the
    timeline's global start time."""
    seq = _sequence(path, tl)
    start = _seconds(seq.get("tcStart")) if seq is not None else None
    if start is None or start <= 0:
        return
    tracks = [t for t in tl.tracks if len(t)]
    for track in tracks:
        if not isinstance(track[0], otio.schema.Gap) or track[0].duration().to_seconds() < float(start) - 1e-9:
            return  # not placed at the offsets: nothing to take off
    for track in tracks:
        gap = track[0]
        rate = gap.duration().rate
        cut = RationalTime(round(float(start) * rate), rate)
        rest = gap.duration() - cut
        if rest.value > 0:
            gap.source_range = TimeRange(RationalTime(0, rate), rest)
        else:
            del track[0]
    rate = tl.duration().rate
    for m in tl.tracks.markers:
        m.marked_range = TimeRange(m.marked_range.start_time - RationalTime(round(float(start) * rate), rate),
                                   m.marked_range.duration)
    tl.global_start_time = RationalTime(round(float(start) * rate), rate)
