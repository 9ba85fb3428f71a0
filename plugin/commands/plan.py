"""The score plan: the timeline split into generation windows no longer than the model's window
(30 s for Diff-V2M), preferring to split at cuts, with an overlap for the crossfade.

A window after the first starts exactly at its boundary b (a cut when one lies in the allowed
range, so the new window's music begins with the new scene); the window before it runs on to
b + overlap and fades out under it. Each window carries its continuous start time (seconds from the
timeline's start), which Diff-V2M receives as its start-time embedding.

The JSON (`cutscore plan --json`) is a contract: keys timeline, rate, duration_s, cuts_s, clips
(index, name, start_s, duration_s, media, media_found, source_start_s), hits_s, windows (start_s,
duration_s, overlap_s).
"""

from __future__ import annotations

from dataclasses import dataclass

from opentimelineio.opentime import RationalTime

from plugin.formats.timeline import Timeline

DEFAULT_WINDOW_S = 30.0
DEFAULT_OVERLAP_S = 2.0


@dataclass
class Window:
    start: RationalTime
    end: RationalTime
    overlap: RationalTime  # with the previous window (0 for the first)

    @property
    def duration(self) -> RationalTime:
        return self.end - self.start


@dataclass
class Plan:
    timeline: Timeline
    windows: list[Window]

    def to_dict(self) -> dict:
        tl = self.timeline
        return {
            "timeline": str(tl.path),
            "name": tl.name,
            "rate": tl.rate,
            "duration_s": tl.duration.to_seconds(),
            "cuts_s": [c.to_seconds() for c in tl.cuts],
            "clips": [{
                "index": c.index, "name": c.name, "start_s": c.range.start_time.to_seconds(),
                "duration_s": c.range.duration.to_seconds(), "media": c.media,
                "media_path": str(c.media_path) if c.media_path else None, "media_found": c.media_found,
                "source_start_s": c.file_range.start_time.to_seconds(),
            } for c in tl.clips],
            "hits_s": [h.to_seconds() for h in tl.hits],
            "windows": [{"start_s": w.start.to_seconds(), "duration_s": w.duration.to_seconds(),
                         "overlap_s": w.overlap.to_seconds()} for w in self.windows],
            "warnings": list(tl.warnings),
            **({"sequence": kd["sequence"], "sequences": list(kd["sequences"])}
               if (kd := tl.otio.metadata.get("kdenlive", {})).get("uuid") else {}),
        }

    def describe(self) -> str:
        tl = self.timeline
        lines = [f"{tl.name}: {tl.duration.to_seconds():.3f} s at {tl.rate:g} fps, {len(tl.clips)} clips, "
                 f"{len(tl.cuts)} cuts, {len(tl.hits)} hit points, {len(self.windows)} window(s)"]
        kd = tl.otio.metadata.get("kdenlive", {})
        if len(kd.get("sequences", [])) > 1 or kd.get("uuid"):
            lines.append(f"  sequence {kd['sequence']!r} of {', '.join(repr(n) for n in kd['sequences'])} "
                         "(--sequence NAME picks another)")
        lines.append(f"  {'#':>3} {'start':>9} {'dur':>8}  {'media':<6} name")
        for c in tl.clips:
            lines.append(f"  {c.index:>3} {c.range.start_time.to_seconds():>9.3f} {c.range.duration.to_seconds():>8.3f}  "
                         f"{'ok' if c.media_found else ('MISSING' if c.media else '-'):<6} {c.name}")
        lines.append("  cuts (s): " + ", ".join(f"{c.to_seconds():.3f}" for c in tl.cuts))
        for i, w in enumerate(self.windows):
            lines.append(f"  window {i}: start {w.start.to_seconds():.3f} s, duration {w.duration.to_seconds():.3f} s, "
                         f"overlap {w.overlap.to_seconds():.3f} s")
        return "\n".join(lines)


def make_plan(tl: Timeline, window_s: float = DEFAULT_WINDOW_S, overlap_s: float = DEFAULT_OVERLAP_S,
              tail: RationalTime | None = None) -> Plan:
    """tail: music to generate past the picture's last frame (`score --tail`, a ring that runs on)."""
    if window_s <= 2 * overlap_s:
        raise ValueError(f"window ({window_s} s) must be longer than twice the overlap ({overlap_s} s)")
    rate = tl.duration.rate
    end = tl.duration + tail if tail is not None else tl.duration
    win = RationalTime.from_seconds(window_s, rate).floor()  # never longer than the model window
    ov = RationalTime.from_seconds(overlap_s, rate).round()
    windows: list[Window] = []
    start, overlap = RationalTime(0, rate), RationalTime(0, rate)
    while True:
        if end - start <= win:
            windows.append(Window(start, end, overlap))
            return Plan(tl, windows)
        latest = start + win - ov  # the boundary b must leave room for the fade-out: b + ov <= start + win
        earliest = start + RationalTime.from_seconds(window_s / 2, rate).round()
        candidates = [c for c in tl.cuts if earliest <= c <= latest]
        b = candidates[-1] if candidates else latest
        windows.append(Window(start, b + ov, overlap))
        start, overlap = b, ov
