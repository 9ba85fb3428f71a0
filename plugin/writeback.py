"""Write the music back: a NEW timeline with an added audio track "cutscore music" (or the previous
cutscore track replaced), everything else preserved (torch-free).

- .otio / .otioz / .otiod / FCP7 .xml: a copy of the input's OTIO timeline with the track added,
  written by OTIO's adapters. Media paths are absolute and plain (no file://, which Resolve's
  import has been reported to reject).
- .kdenlive: the ORIGINAL project text is patched (plugin/kdenlive/writer.py): the WAVs become bin
  clips in a "cutscore" bin folder on a "cutscore music" audio track, as Kdenlive writes an imported
  clip, and every byte of the rest stays as it was, so Kdenlive keeps the music and melt renders it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from core.errors import CutscoreError
from core.files import atomic_write
from plugin.kdenlive.volume import volume_keys
from plugin.kdenlive.writer import MusicClip, patch_project
from plugin.names import TRACK_NAME
from plugin.timeline import ADAPTERS, Timeline, is_cutscore_track, music_track

WRITABLE = {".otio", ".otioz", ".otiod", ".xml", ".kdenlive"}
# how each OTIO-written format points at media given relative to the input (rebase_media); a bundle
# copies the media it finds, FCP7 XML's <pathurl> is a file:// URL
MEDIA_URLS = {".otio": "relative", ".otioz": "path", ".otiod": "path", ".xml": "url"}


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
    # the music's beats in this clip (plugin/beats.py): (seconds from its start, "beat" | "downbeat"),
    # written as the format's clip markers
    beats: list[tuple[float, str]] = field(default_factory=list)


def build_track(segments: list[Segment], rate: float, metadata: dict, resolve: bool = False) -> otio.schema.Track:
    track = otio.schema.Track(name=TRACK_NAME, kind=otio.schema.TrackKind.Audio)
    track.metadata["cutscore"] = metadata
    if resolve:  # what Resolve's own OTIO export writes on an audio track (its import keeps only this)
        track.metadata["Resolve_OTIO"] = {"Audio Type": "Stereo", "Locked": False, "SoloOn": False}
    for seg in segments:
        dur = seg.range.duration
        ref = otio.schema.ExternalReference(target_url=str(seg.wav.resolve()),
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
    nearest frame; FCP7 XML keeps their names, OTIO their metadata too (plugin/beats.py is_ours)."""
    from plugin.beats import NAMES

    colors = {"downbeat": otio.schema.MarkerColor.ORANGE, "beat": otio.schema.MarkerColor.YELLOW}
    return [otio.schema.Marker(name=NAMES[kind], color=colors[kind],
                               marked_range=TimeRange(RationalTime(round(t * rate), rate), RationalTime(0, rate)),
                               metadata={"cutscore": {"beat": kind, "time_s": round(t, 6)}})
            for t, kind in beats]


def replace_beat_markers(clip: otio.schema.Clip, beats: list[tuple[float, str]], rate: float) -> None:
    """A music clip's cutscore beat markers replaced by `beats`; the editor's own markers stay."""
    from plugin.beats import is_ours

    keep = [m for m in clip.markers if not is_ours(m.name, dict(m.metadata))]
    clip.markers[:] = keep + beat_markers(beats, rate)


def scored_otio(tl: Timeline, segments: list[Segment], metadata: dict) -> otio.schema.Timeline:
    out = copy.deepcopy(tl.otio)
    for i in reversed(range(len(out.tracks))):
        if out.tracks[i].kind == otio.schema.TrackKind.Audio and is_cutscore_track(out.tracks[i]):
            del out.tracks[i]
    from_resolve = any("Resolve_OTIO" in t.metadata for t in out.tracks) or "Resolve_OTIO" in out.metadata
    out.tracks.append(build_track(segments, tl.duration.rate, metadata, resolve=from_resolve))
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


def check_output(in_path: Path, out_path: Path) -> None:
    """Refuse an output cutscore cannot write before any work is done."""
    suffix = out_path.suffix.lower()
    if suffix not in WRITABLE:
        what = f"{suffix!r}" if suffix else "a file without an extension"
        raise CutscoreError(f"{out_path}: cannot write {what}; name the output .otio, .otioz, .otiod, .xml or .kdenlive")
    if suffix == ".kdenlive" and in_path.suffix.lower() != ".kdenlive":
        raise CutscoreError(f"{out_path}: a .kdenlive output needs a .kdenlive input (it patches the original "
                            "project); write .otio and import it in Kdenlive instead")


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


def _one_file_per_timecode(tl: otio.schema.Timeline) -> None:
    """Premiere can describe one media file in two <file> entries with different start timecodes,
    and clips cite either. The fcp adapter writes one <file> per URL, so clips of the second entry
    would be re-read against the first one's timecode (their source time moves). Each further
    timecode gets an equivalent spelling of the same path (file://localhost/..., then ./ segments),
    which gives it its own <file> entry; every spelling opens the same file."""
    from urllib.parse import urlparse

    seen: dict[str, list] = {}
    for clip in tl.find_clips():
        ref = clip.media_reference
        if not isinstance(ref, otio.schema.ExternalReference) or ref.available_range is None:
            continue
        starts = seen.setdefault(ref.target_url, [])
        start = ref.available_range.start_time
        k = next((i for i, s in enumerate(starts) if s == start), None)
        if k is None:
            starts.append(start)
            k = len(starts) - 1
        if k == 0:
            continue
        u = urlparse(ref.target_url) if "://" in ref.target_url else None
        path = u.path if u else ref.target_url
        head, _, name = path.rpartition("/")
        ref.target_url = "file://localhost" + head + "/" + "./" * (k - 1) + name


def _generators_as_offline(tl: otio.schema.Timeline) -> None:
    """FCP7 XML's writer cannot express another editor's generators (Kdenlive's colour and title
    clips): they go out as offline clips of the same name and length, so the edit keeps its timing."""
    for clip in tl.find_clips():
        ref = clip.media_reference
        if isinstance(ref, otio.schema.GeneratorReference):
            clip.media_reference = otio.schema.MissingReference(
                name=ref.generator_kind, available_range=ref.available_range,
                metadata={"cutscore": {"generator_kind": ref.generator_kind}})


def define_files_before_use(path: Path) -> None:
    """FCP7 XML defines a <file> once and refers to it later as <file id="..."/>. The fcp adapter's
    writer can emit a reference before the definition (a clip of an earlier track reusing media
    defined in a later one), and readers (the adapter's own included) then lose that clip's media.
    Move each definition to the first use."""
    import xml.etree.ElementTree as ET

    tree = ET.parse(path)
    first: dict[str, ET.Element] = {}
    moved = False
    for el in tree.getroot().iter("file"):
        fid = el.get("id")
        if fid is None:
            continue
        if fid not in first:
            first[fid] = el
        elif len(el) and not len(first[fid]):
            head = first[fid]
            head.text, head[:] = el.text, list(el)
            el[:] = []
            el.text = None
            moved = True
    if moved:
        tree.write(path, encoding="UTF-8", xml_declaration=True)


def add_sequence_format(path: Path, width: int = 1920, height: int = 1080) -> None:
    """Resolve ignores an FCP7 XML sequence without a <format> (the fcp adapter writes an empty
    one): fill it with the sequence's own rate and a frame size."""
    import xml.etree.ElementTree as ET

    tree = ET.parse(path)
    changed = False
    for seq in tree.getroot().iter("sequence"):
        video = seq.find("media/video")
        if video is None or video.find("format/samplecharacteristics") is not None:
            continue
        for empty in video.findall("format"):
            video.remove(empty)
        rate = seq.find("rate")
        fmt = ET.Element("format")
        sc = ET.SubElement(fmt, "samplecharacteristics")
        if rate is not None:
            sc.append(copy.deepcopy(rate))
        for tag, text in (("width", str(width)), ("height", str(height)), ("anamorphic", "FALSE"),
                          ("pixelaspectratio", "square"), ("fielddominance", "none")):
            ET.SubElement(sc, tag).text = text
        video.insert(0, fmt)
        changed = True
    if changed:
        tree.write(path, encoding="UTF-8", xml_declaration=True)


def add_audio_levels(path: Path, keys_per_clip: list[list[tuple[float, float]]], rate: float) -> None:
    """The ducking as FCP7 XML's Audio Levels filter on each music clipitem (in order of the music
    track, one list of keys per clip; [] leaves a clip alone): keyframes at frames from the clip's
    first frame, values as linear gain (FCP's `level`, 1 = 0 dB). A music clip's earlier Audio Levels
    filter is replaced; its other filters stay."""
    import xml.etree.ElementTree as ET

    if not any(keys_per_clip):
        return
    tree = ET.parse(path)
    items = _music_clipitems(tree.getroot())
    if len(items) != len(keys_per_clip):
        raise CutscoreError(f"{path}: its '{TRACK_NAME}' track has {len(items)} clips, not the "
                            f"{len(keys_per_clip)} the sidecar records; score the timeline again")
    for item, keys in zip(items, keys_per_clip):
        for old in item.findall("filter"):
            if old.findtext("effect/effectid") == "audiolevels":
                item.remove(old)
        if keys:
            item.append(_audio_levels(keys, rate))
    tree.write(path, encoding="UTF-8", xml_declaration=True)


def _music_clipitems(root) -> list:
    for track in root.iter("track"):
        items = track.findall("clipitem")
        if items and all((c.findtext("name") or "").startswith(f"{TRACK_NAME}: ") for c in items):
            return items
    return []


def _audio_levels(keys: list[tuple[float, float]], rate: float):
    import xml.etree.ElementTree as ET

    f = ET.Element("filter")
    effect = ET.SubElement(f, "effect")
    for tag, text in (("name", "Audio Levels"), ("effectid", "audiolevels"), ("effectcategory", "audiolevels"),
                      ("effecttype", "audiolevels"), ("mediatype", "audio")):
        ET.SubElement(effect, tag).text = text
    param = ET.SubElement(effect, "parameter")
    for tag, text in (("parameterid", "level"), ("name", "Level"), ("valuemin", "0"), ("valuemax", "3.98109"),
                      ("value", "1")):
        ET.SubElement(param, tag).text = text
    length = int(round(max(t for t, _ in keys) * rate)) + 1
    for frame, db in volume_keys(keys, length, rate):
        kf = ET.SubElement(param, "keyframe")
        ET.SubElement(kf, "when").text = str(frame)
        ET.SubElement(kf, "value").text = f"{10 ** (db / 20):.6g}"
    return f


def write_scored(tl: Timeline, segments: list[Segment], metadata: dict, out_path: Path) -> None:
    suffix = out_path.suffix.lower()
    check_output(tl.path, out_path)

    def write(tmp: Path) -> None:
        if suffix == ".kdenlive":
            sequence = tl.otio.metadata.get("kdenlive", {}).get("uuid") or None
            tmp.write_text(patch_kdenlive(tl.path.read_text(encoding="utf-8"), segments, tl.duration.rate, sequence),
                           encoding="utf-8")
            return
        out = scored_otio(tl, segments, metadata)
        rebase_media(out, tl.path.parent, out_path.parent, MEDIA_URLS[suffix])
        if suffix != ".otio":
            _explicit_source_ranges(out)
        if suffix == ".xml":
            _generators_as_offline(out)
            _one_file_per_timecode(out)
            for clip in music_track(out).find_clips():  # FCP7 XML's <pathurl> is a file:// URL
                clip.media_reference.target_url = Path(clip.media_reference.target_url).as_uri()
        kwargs = {}
        if suffix in (".otioz", ".otiod"):
            from opentimelineio.adapters.file_bundle_utils import MediaReferencePolicy

            kwargs["media_policy"] = MediaReferencePolicy.MissingIfNotFile
        otio.adapters.write_to_file(out, str(tmp), adapter_name=ADAPTERS[suffix], **kwargs)
        if suffix == ".xml":
            define_files_before_use(tmp)
            add_sequence_format(tmp)
            add_audio_levels(tmp, [s.gain_keys for s in segments], tl.duration.rate)

    atomic_write(out_path, write)


# ---- Kdenlive ------------------------------------------------------------------------------------

def _frames(t: RationalTime, rate: float) -> int:
    return int(round(t.rescaled_to(rate).value))


def patch_kdenlive(text: str, segments: list[Segment], rate: float, sequence: str | None = None) -> str:
    """The project text with the music as Kdenlive bin clips on a "cutscore music" track (of the
    sequence `sequence` names, by uuid; else the active one)."""
    clips = [MusicClip(_frames(s.range.start_time, rate), _frames(s.range.duration, rate), s.wav,
                       f"{TRACK_NAME}: {s.name}", tuple(s.gain_keys), tuple(s.beats)) for s in segments]
    return patch_project(text, clips, sequence)
