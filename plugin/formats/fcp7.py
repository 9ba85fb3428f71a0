"""FCP7 XML's specifics (torch-free): what cutscore writes beyond the fcp adapter (otio-fcp-adapter),
and the adapter's writing mended. `prepare` runs on the OTIO timeline before the adapter writes it,
`finish` on the written file (plugin/formats/__init__.py names this module for FCP7 XML)."""

from __future__ import annotations

import copy
from pathlib import Path

import opentimelineio as otio

from core.errors import CutscoreError
from plugin.formats.kdenlive.volume import volume_keys
from plugin.names import TRACK_NAME


def prepare(tl: otio.schema.Timeline) -> None:
    """The timeline as the fcp adapter can write it: other editors' generators as offline clips, one
    <file> per media timecode."""
    _generators_as_offline(tl)
    _one_file_per_timecode(tl)


def finish(path: Path, gain_keys: list[list[tuple[float, float]]], rate: float) -> None:
    """The written file mended (each <file> defined before use, a sequence <format> Resolve reads)
    and the music's gain keys (one list per music clip) as Audio Levels keyframes."""
    define_files_before_use(path)
    add_sequence_format(path)
    add_audio_levels(path, gain_keys, rate)


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


