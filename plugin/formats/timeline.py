"""Read an editor's timeline through OpenTimelineIO and see it as the viewer does: the video tracks
flattened into one picture, every boundary between consecutive items a cut (a scene transition
for Diff-V2M), every marker a musical hit point, every clip's source media resolved.

Formats: .otio/.otioz/.otiod (OTIO core), FCP7 .xml (otio-fcp-adapter), Final Cut Pro X .fcpxml
(otio-fcpx-xml-adapter), Avid .aaf (otio-aaf-adapter), CMX 3600 .edl (otio-cmx3600-adapter after
plugin/formats/edl.py's pre-pass for what Avid and FCP write; an EDL carries no rate, so one must be given) and .kdenlive (cutscore's own adapter, plugin/formats/kdenlive/adapter.py,
registered through plugin_manifest.json; the registry's otio-kdenlive-adapter is deprecated upstream
and reads same-track mixes one frame off).

The picture: enabled video tracks (OTIO's flag and FCP7's <enabled>), disabled clips as gaps, each
track's own trim applied, nested sequences inlined, flattened, pieces that continue the same shot
joined (no cut there): plugin/formats/picture.py.

Time stays opentime.RationalTime; `seconds()` helpers convert only at the edge.
"""

from __future__ import annotations

import math
import os
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from core.errors import CutscoreError
from plugin.formats import find, readable
from plugin.formats.kdenlive.document import SequenceError
from plugin.formats.picture import (  # the last three also read from here
    cut_times,
    media_of,
    picture_of,
    unique_sorted,
)
from plugin.names import STATE_FILE, TRACK_NAME


@dataclass
class PictureClip:
    index: int
    name: str
    range: TimeRange  # in the timeline (from its start, the flattened picture)
    source_range: TimeRange  # in the media's own time (its start timecode included, as the timeline says)
    media: str | None  # the media file as written in the timeline (URL or path), None when there is none
    media_path: Path | None  # resolved on this machine, None when missing
    clip: otio.schema.Clip
    media_start: RationalTime | None = None  # the media's first frame (start timecode), None = 0

    @property
    def file_range(self) -> TimeRange:
        """The source range from the media file's first frame: what a decoder seeks to. A clip at
        `<in>0</in>` of a file whose timecode starts at 00:00:14:03 reads from 0 s, not 14.12 s."""
        start = self.source_range.start_time
        if self.media_start is not None:
            start = start - self.media_start.rescaled_to(start.rate)
        return TimeRange(max(start, RationalTime(0, start.rate)), self.source_range.duration)

    @property
    def media_found(self) -> bool:
        return self.media_path is not None


@dataclass
class Timeline:
    path: Path
    otio: otio.schema.Timeline
    rate: float
    duration: RationalTime
    clips: list[PictureClip]
    cuts: list[RationalTime]
    hits: list[RationalTime]
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.otio.name or self.path.stem


@dataclass(frozen=True)
class Limits:
    """What cutscore reads before doing any work; each has a flag to raise it."""

    max_hours: float = 6.0  # --max-hours: timeline length
    max_clips: int = 5000  # --max-clips: picture clips
    max_file_mb: float = 256.0  # --max-file-mb: size of the timeline file read into memory
    max_depth: int = 200  # nesting of an .otio's JSON (OTIO's C++ reader recurses; real files stay < 40)


def _check_path(path: Path, limits: Limits = Limits()) -> None:
    import stat

    try:
        st = path.stat()
    except FileNotFoundError:
        raise CutscoreError(f"{path}: no such file") from None
    except OSError as e:
        raise CutscoreError(f"{path}: cannot be read ({e.strerror}); check the path and its permissions") from None
    fmt = find(path)
    if stat.S_ISDIR(st.st_mode) and not (fmt and fmt.folder):
        raise CutscoreError(f"{path}: is a folder; name the timeline file inside it")
    if not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
        raise CutscoreError(f"{path}: is not a regular file (a pipe or a device); save the timeline to a file first")
    fmt = readable(path)
    if stat.S_ISREG(st.st_mode) and st.st_size > limits.max_file_mb * 1e6:
        raise CutscoreError(f"{path}: {st.st_size / 1e6:.0f} MB is larger than the {limits.max_file_mb:g} MB a timeline "
                            "may have; pass --max-file-mb to raise the limit")
    if fmt.adapter == "otio_json":
        depth = _json_depth(path)
        if depth > limits.max_depth:
            raise CutscoreError(f"{path}: nested {depth} levels deep (more than {limits.max_depth}); this is not a "
                                "timeline an editor wrote: re-export it")


def _json_depth(path: Path) -> int:
    """The deepest nesting of arrays/objects in a JSON file, strings skipped (before OTIO's reader,
    which recurses in C++ and crashes on a few thousand levels). The strings are cut out by one
    regular expression and the brackets counted with numpy: a 60-minute edit's file in milliseconds."""
    import numpy as np

    text = re.sub(r'"[^"\\]*(?:\\.[^"\\]*)*"?', "", path.read_text(encoding="utf-8", errors="replace"))
    step = np.zeros(256, np.int32)
    step[[ord("["), ord("{")]], step[[ord("]"), ord("}")]] = 1, -1
    return int(np.cumsum(step[np.frombuffer(text.encode("utf-8"), np.uint8)]).max(initial=0))


def load_otio(path: str | Path, rate: float | None = None, limits: Limits = Limits(),
              sequence: str | None = None) -> otio.schema.Timeline:
    """The file as an OTIO Timeline, with one-line errors for malformed input. `sequence` picks a
    Kdenlive project's sequence other than the active one (plugin/formats/kdenlive/document.py)."""
    path = Path(path)
    _check_path(path, limits)
    fmt = readable(path)
    suffix = path.suffix.lower()
    kwargs = {}
    if sequence is not None:
        if fmt.adapter != "cutscore_kdenlive":
            raise CutscoreError(f"{path}: --sequence picks a sequence of a Kdenlive project; a {suffix} file holds one "
                                "timeline, leave it out")
        kwargs["sequence"] = sequence
    specifics = fmt.module()
    if hasattr(specifics, "before_read"):  # what the format's OTIO adapter would refuse unclearly
        specifics.before_read(path)
    if fmt.needs_rate:
        if rate is None:
            raise CutscoreError(f"{path}: an EDL carries no frame rate; pass --rate (e.g. --rate 24 or --rate 29.97)")
        kwargs["rate"] = _exact_rate(rate)
    try:
        if hasattr(specifics, "read"):  # the format's own pre-pass before its OTIO adapter reads
            result = specifics.read(path, **kwargs)
        else:
            result = otio.adapters.read_from_file(str(path), adapter_name=fmt.adapter, **kwargs)
    except CutscoreError:
        raise
    except SequenceError as e:
        raise CutscoreError(f"{path}: {e}") from None
    except otio.exceptions.UnsupportedSchemaError as e:
        raise CutscoreError(_newer_schema_message(path)) from e
    except Exception as e:  # noqa: BLE001 - adapters raise anything from ValueError to ParseError
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CutscoreError(f"{path}: not a readable {suffix} timeline ({msg[:200]}); re-export it from your editor") from e
    if isinstance(result, otio.schema.SerializableCollection):
        timelines = list(result.find_children(descended_from_type=otio.schema.Timeline))
        if not timelines:
            raise CutscoreError(f"{path}: holds no timeline (sequence); export a sequence, not a bin")
        result = timelines[0]
    if not isinstance(result, otio.schema.Timeline):
        raise CutscoreError(f"{path}: holds a {type(result).__name__}, not a timeline")
    specifics = fmt.module()
    if hasattr(specifics, "after_read"):  # what the format's OTIO adapter reads wrongly, read right
        specifics.after_read(path, result)
    return result


def _newer_schema_message(path: Path) -> str:
    """Which schema of the file is newer than this OpenTimelineIO reads, and what to do."""
    import re

    known = otio.core.type_version_map()
    newer = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for name, version in sorted(set(re.findall(r'"OTIO_SCHEMA"\s*:\s*"(\w+)\.(\d+)"', text))):
        if name in known and int(version) > known[name]:
            newer.append(f"{name}.{version} (this cutscore reads up to {name}.{known[name]})")
    what = ", ".join(newer) or "a schema version"
    return (f"{path}: written by a newer OpenTimelineIO than cutscore's {otio.__version__}: {what}; export it for "
            f"OTIO {otio.__version__} (with the newer OTIO: otioconvert -i IN -o OUT "
            f"--downgrade OTIO_CORE:{otio.__version__})")


def _exact_rate(rate: float) -> float:
    """29.97 -> 30000/1001 etc.: a rate within 0.005 of a SMPTE timecode rate becomes that rate
    exactly (OTIO's table of valid rates, NTSC fractions included); any other rate is kept."""
    nearest = otio.opentime.RationalTime.nearest_valid_timecode_rate(float(rate))
    return nearest if abs(nearest - rate) < 0.005 else float(rate)


def _timeline_rate(tl: otio.schema.Timeline) -> float:
    for track in tl.video_tracks() + tl.audio_tracks():
        for item in track:
            if isinstance(item, (otio.schema.Clip, otio.schema.Gap)) and item.source_range is not None:
                return item.source_range.duration.rate
    return tl.duration().rate  # (video times were checked by _check_times)


def resolve_media(media: str, base: Path, relink: Path | None) -> Path | None:
    parsed = urllib.parse.urlparse(media)
    if parsed.scheme == "file":
        raw = urllib.parse.unquote(parsed.path)
        if parsed.netloc and parsed.netloc != "localhost":
            raw = f"//{parsed.netloc}{raw}"
    elif parsed.scheme and len(parsed.scheme) > 1:  # http:// etc.; a drive letter is one char
        return None
    else:
        raw = media
    p = Path(raw)
    if not p.is_absolute():
        p = base / p
    if p.is_file():
        return p.resolve()
    if relink is not None:
        name = Path(raw.replace("\\", "/")).name
        for root, _dirs, files in os.walk(relink):
            if name in files:
                return (Path(root) / name).resolve()
    return None


def is_cutscore_track(track) -> bool:
    return track.name == TRACK_NAME or "cutscore" in track.metadata


def _holds_cutscore_music(track) -> bool:
    """A track whose name and metadata were dropped (FCP7 XML keeps neither) is still ours when its
    clips carry our clip names or play WAVs from a folder holding cutscore's state."""
    clips = list(track.find_clips())
    if clips and all(c.name.startswith(f"{TRACK_NAME}: ") for c in clips):
        return True
    for c in clips:
        path = wav_path(c)
        if path is not None and (path.parent / STATE_FILE).exists():
            return True
    return False


def wav_path(clip: otio.schema.Clip) -> Path | None:
    """The file a (music) clip plays, as its reference writes it: a path, or a file:// URL."""
    url = getattr(clip.media_reference, "target_url", None)
    if not url:
        return None
    if url.startswith("file://"):
        return Path(urllib.parse.unquote(urllib.parse.urlparse(url).path))
    return Path(url)


def music_track(tl: otio.schema.Timeline) -> otio.schema.Track | None:
    """cutscore's own "cutscore music" track of a timeline (by its name or metadata, else by its
    clips), None when it has none: never picture, dialogue or hit points."""
    tracks = tl.audio_tracks()
    return (next((t for t in tracks if is_cutscore_track(t)), None)
            or next((t for t in tracks if _holds_cutscore_music(t)), None))


def _kdenlive_export(tl: otio.schema.Timeline) -> bool:
    """Written by Kdenlive's own OpenTimelineIO export (25.04+; 26.08.2 seen here): it stamps the
    timeline's metadata with {"kdenlive": {"version": ...}} (cutscore's .kdenlive reader does not)."""
    meta = tl.metadata.get("kdenlive")
    return hasattr(meta, "keys") and "version" in meta


def _clip_marker_times(item, tl: otio.schema.Timeline, local: bool) -> list[RationalTime]:
    """Where a clip's markers fall in the timeline, for the markers the clip shows. OTIO puts a
    clip's markers in its media's time; Kdenlive's export writes each use of a bin clip with all of
    the bin clip's markers in the *clip's* time (0 = the clip's first frame), those it does not show
    included (seen in 26.08.2: a marker at source 240 on a use from source 205 is written at 35)."""
    out = []
    rng = item.trimmed_range() if isinstance(item, otio.schema.Clip) else None
    from plugin.names import is_our_marker as is_ours

    for m in getattr(item, "markers", []):
        if is_ours(m.name, dict(m.metadata)):
            continue
        t = m.marked_range.start_time
        try:
            if local and rng is not None:
                t = rng.start_time + t.rescaled_to(rng.start_time.rate)
            if rng is not None and not rng.contains(t):
                continue  # outside the part of the media the clip shows
            out.append(item.transformed_time(t, tl.tracks))
        except Exception:  # noqa: BLE001 - a marker OTIO cannot place is not a hit point
            continue
    return out


def _markers(tl: otio.schema.Timeline, end: RationalTime) -> list[RationalTime]:
    """The editor's hit points: markers of the timeline, its tracks and its clips, never cutscore's
    own (its music track, and its beat markers wherever a format moved them)."""
    from plugin.names import is_our_marker as is_ours

    def editors(markers) -> list:
        return [m for m in markers if not is_ours(m.name, dict(m.metadata))]

    hits = [m.marked_range.start_time for m in editors(tl.tracks.markers)]
    local = _kdenlive_export(tl)
    ours = music_track(tl)
    for track in tl.tracks:
        if track is ours:
            continue
        hits.extend(m.marked_range.start_time for m in editors(track.markers))
        for item in track.find_children():
            hits.extend(_clip_marker_times(item, tl, local))
    zero = RationalTime(0, end.rate)
    ok = [h for h in hits if math.isfinite(h.value) and math.isfinite(h.rate) and h.rate > 0]  # a NaN marker is no hit
    return unique_sorted([h for h in ok if zero <= h <= end])


def _check_times(tl: otio.schema.Timeline, path: Path, limits: Limits) -> None:
    """Every time of the picture finite, at a frame rate between 1 and 1000, no item longer than the
    timeline may be: checked before flattening or planning, which would otherwise run for hours or
    allocate audio for a 1e12-frame clip."""
    max_s = limits.max_hours * 3600
    for track in tl.video_tracks():
        for item in track.find_children():
            rng = getattr(item, "source_range", None)  # a Transition has none
            if rng is None:
                continue
            for t in (rng.start_time, rng.duration):
                if not (math.isfinite(t.value) and math.isfinite(t.rate)) or not 1 <= t.rate <= 1000:
                    raise CutscoreError(f"{path}: {type(item).__name__.lower()} {item.name!r} has an impossible time "
                                        f"({t.value:g} frames at {t.rate:g} fps); re-export the timeline from your editor")
            if rng.duration.to_seconds() > max_s:
                raise CutscoreError(f"{path}: {type(item).__name__.lower()} {item.name!r} is "
                                    f"{rng.duration.to_seconds() / 3600:.3g} hours long, more than the "
                                    f"{limits.max_hours:g} hours a timeline may be; pass --max-hours to raise it")


def read_timeline(path: str | Path, rate: float | None = None, relink: str | Path | None = None,
                  limits: Limits = Limits(), sequence: str | None = None) -> Timeline:
    path = Path(path)
    tl = load_otio(path, rate, limits, sequence)
    relink_dir = Path(relink) if relink else None
    if relink_dir is not None and not relink_dir.is_dir():
        raise CutscoreError(f"{relink_dir}: --relink needs a folder")
    _check_times(tl, path, limits)
    try:
        picture = picture_of(tl, path)
        duration = picture.duration()
    except otio.exceptions.OTIOError as e:
        raise CutscoreError(f"{path}: OpenTimelineIO cannot place its clips ({str(e).splitlines()[0][:160]}); "
                            "re-export the timeline from your editor") from e
    if duration.value <= 0:
        raise CutscoreError(f"{path}: the picture is empty (duration 0)")
    if not (math.isfinite(duration.to_seconds()) and 1 <= duration.rate <= 1000):
        raise CutscoreError(f"{path}: the picture's frame rate {duration.rate:g} is impossible; re-export it")
    if duration.to_seconds() > limits.max_hours * 3600:
        raise CutscoreError(f"{path}: {duration.to_seconds() / 3600:.3g} hours is longer than the {limits.max_hours:g} "
                            "hours a timeline may be; pass --max-hours to raise it")
    n_clips = sum(1 for item in picture if isinstance(item, otio.schema.Clip))
    if n_clips == 0:
        raise CutscoreError(f"{path}: the picture has no clip (every video clip is muted, disabled or absent); "
                            "cutscore scores a picture edit: unmute the video in your editor and export again")
    if n_clips > limits.max_clips:
        raise CutscoreError(f"{path}: {n_clips} clips are more than the {limits.max_clips} a timeline may have; "
                            "pass --max-clips to raise it")
    clips, warnings = [], []
    for item in picture:
        if not isinstance(item, otio.schema.Clip):
            continue
        rng = picture.range_of_child(item)
        if rng.duration.value < 0 or item.source_range is not None and item.source_range.duration.value < 0:
            raise CutscoreError(f"{path}: clip {item.name!r} has a negative duration; fix it in your editor")
        media = media_of(item)
        resolved = resolve_media(media, path.parent, relink_dir) if media else None
        if media and resolved is None:
            warnings.append(f"media of clip {len(clips)} {item.name!r} not found ({media}); it gets cut-only "
                            "conditioning (use --relink DIR)")
        avail = getattr(item.media_reference, "available_range", None)
        clips.append(PictureClip(index=len(clips), name=item.name or f"clip {len(clips)}", range=rng,
                                 source_range=item.trimmed_range(), media=media, media_path=resolved, clip=item,
                                 media_start=avail.start_time if avail is not None else None))
    return Timeline(path=path, otio=tl, rate=_timeline_rate(tl), duration=duration, clips=clips,
                    cuts=cut_times(picture), hits=_markers(tl, duration), warnings=warnings)
