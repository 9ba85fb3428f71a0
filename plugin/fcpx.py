"""Final Cut Pro X XML's specifics (torch-free): what otio-fcpx-xml-adapter reads wrongly, read right
after it (plugin/formats.py names this module for .fcpxml)."""

from __future__ import annotations

from pathlib import Path

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange


def after_read(path: Path, tl: otio.schema.Timeline) -> None:
    _from_timecode_start(path, tl)


def _from_timecode_start(path: Path, tl: otio.schema.Timeline) -> None:
    """FCPXML counts a sequence's spine offsets from its start timecode (`tcStart`; DaVinci Resolve
    writes 01:00:00:00, `tcStart="3600/1s"`), and otio-fcpx-xml-adapter places the spine at the
    offsets as they are: an hour of black before the first frame. Read right here: that much taken
    off the front of every track (and of the timeline's own markers), the start timecode kept as the
    timeline's global start time."""
    import xml.etree.ElementTree as ET
    from fractions import Fraction

    seqs = [(p.get("name"), p.find("sequence")) for p in ET.parse(path).getroot().iter("project")]
    seq = next((s for n, s in seqs if s is not None and n == tl.name), None) or next(
        (s for _, s in seqs if s is not None), None)
    tc = (seq.get("tcStart") or "0s") if seq is not None else "0s"
    try:
        start = Fraction(tc.removesuffix("s"))
    except (ValueError, ZeroDivisionError):
        return
    if start <= 0:
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
