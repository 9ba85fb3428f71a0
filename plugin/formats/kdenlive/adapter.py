"""cutscore's OpenTimelineIO adapter for Kdenlive projects (.kdenlive, MLT XML), registered through
plugin/plugin_manifest.json and the `opentimelineio.plugins` entry point (the adapter on the package
registry is an empty placeholder).

    import opentimelineio as otio
    tl = otio.adapters.read_from_file("project.kdenlive")   # adapter_name "cutscore_kdenlive"

Reading: the profile's exact frame rate (frame_rate_num/den); the timeline is the active sequence
(document 1.1, Kdenlive 23.04+), or the one `sequence=` names, or the project's last top-level
tractor (document 1.04, Kdenlive 22.12): see plugin/formats/kdenlive/document.py; each of its tracks is a per-track tractor of playlists (Kdenlive >= 19.04) or a
playlist; a track is audio when it carries kdenlive:audio_track or hides its video. Entries (of `<producer>`s and `<chain>`s) become
Clips (MLT `out` is inclusive), blanks Gaps, the sequence's guides become markers on the stack.
Clip names come from the bin producer's kdenlive:clipname, else the resource's file name; a bin clip's
markers (kdenlive:markers, source frames) become markers on each timeline clip whose range shows them.
A clip on an audio track whose producer plays no sound (`set.test_audio`, the disabled state) is
disabled. The volume filters MLT plays on a clip (Kdenlive's Volume effect, its fades) and on a track (the audio
mixer's fader) are kept in the clip's and track's metadata["kdenlive"]["volume"] (`_volumes`).

Writing is done by patching the original project (plugin/formats/writeback.py), so that every element
Kdenlive wrote stays as it was; write_to_file here refuses with a message that says so.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import NamedTuple

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from plugin.formats.kdenlive import document

_props = document.props  # a Kdenlive element's <property> children, by name


def _time(value: str | None, rate: float) -> RationalTime:
    """MLT time: frames ("125") or a clock ("00:00:05.000" / "00:00:05,000" / "00:00:05:00" as frames)."""
    if value is None or value == "":
        return RationalTime(0, rate)
    v = value.strip().replace(",", ".")
    if ":" not in v:
        return RationalTime(int(float(v)), rate)
    parts = v.split(":")
    if len(parts) == 4:  # SMPTE HH:MM:SS:FF
        h, m, s, f = (int(p) for p in parts)
        return RationalTime(round((h * 3600 + m * 60 + s) * rate) + f, rate)
    h, m, s = int(parts[0]), int(parts[1]), float(parts[2])
    return RationalTime(round((h * 3600 + m * 60 + s) * rate), rate)


def _clip_markers(src: str) -> list[tuple[int, str]]:
    """A bin clip's markers (kdenlive:markers, JSON [{"pos": source frame, "comment": ...}])."""
    try:
        return [(int(m["pos"]), str(m.get("comment", ""))) for m in json.loads(src)]
    except (ValueError, KeyError, TypeError):
        return []  # markers are decoration: a malformed list must not stop reading the edit


_KEY = re.compile(r"^([0-9:.,]+)[^0-9=]*=(.*)$")  # an animated key: time, its interpolation's sign, value


def _volumes(el: ET.Element, rate: float) -> list[dict]:
    """The enabled MLT `volume` filters on an entry (in source seconds) or a track's tractor (in
    timeline seconds), as MLT's filter plays them: `level` in dB, animated (keys relative to the
    filter's in point, straight lines in dB), else `gain` going to `end` in a straight line of linear
    gain over the filter's length; limited to the filter's in..out where it has them.
    [{"range": [in_s, out_s] | None, "keys": [[s, value], ...], "db": bool}] (smooth keys are read as
    straight lines)."""
    out = []
    for f in el.findall("filter"):
        p = _props(f)
        if p.get("mlt_service") != "volume" or p.get("disable") == "1":
            continue
        a, b = f.get("in"), f.get("out")
        rng = [_time(a, rate).to_seconds(), (_time(b, rate) + RationalTime(1, rate)).to_seconds()] if a and b else None
        length = rng[1] - rng[0] if rng else 0.0
        try:
            if p.get("level"):
                keys = [[0.0, float(p["level"])]] if "=" not in p["level"] else [
                    [_time(m[1], rate).to_seconds(), float(m[2])]
                    for m in (_KEY.match(k.strip()) for k in p["level"].split(";")) if m]
                out.append({"range": rng, "keys": keys, "db": True})
            elif p.get("gain"):
                g = p["gain"].strip()
                db = g.lower().endswith("db")
                start = float(g[:-2]) if db else float(g)
                keys = [[0.0, start]] if not p.get("end") or not length else [[0.0, start], [length, float(p["end"])]]
                out.append({"range": rng, "keys": keys, "db": db and len(keys) == 1})
        except ValueError:
            continue  # a level Kdenlive would not write: the clip plays as if it were not there
    return out


def _mix_trims(sub: ET.Element, playlists: list[ET.Element], rate: float) -> dict[str, dict[int, tuple[int, int]]]:
    """Same-track mixes (Kdenlive >= 21.04): the two clips overlap on the track's two playlists and
    a transition with `kdenlive:mixcut` blends them; Kdenlive's cut is at the mix's in + mixcut.
    Returns {playlist id: {entry index: (head frames, tail frames)}} that trim the outgoing clip to
    end at the cut and the incoming one to start there, so the flattened picture cuts where
    Kdenlive does."""
    mixes = []
    for t in sub.findall("transition"):
        p = _props(t)
        if p.get("kdenlive:mixcut", "") == "" or t.get("in") is None:
            continue
        mixes.append((int(_time(t.get("in"), rate).value), int(_time(p["kdenlive:mixcut"], rate).value)))
    if not mixes:
        return {}
    spans = []  # (playlist id, entry index, start, end exclusive)
    for pl in playlists:
        pos = 0
        for idx, el in enumerate(pl):
            if el.tag == "blank":
                pos += int(_time(el.get("length"), rate).value)
            elif el.tag == "entry":
                n = int((_time(el.get("out"), rate) - _time(el.get("in"), rate)).value) + 1
                spans.append((pl.get("id"), idx, pos, pos + n))
                pos += n
    out: dict[str, dict[int, tuple[int, int]]] = {}
    for mix_in, mixcut in mixes:
        cut = mix_in + mixcut
        incoming = [s for s in spans if s[2] == mix_in]
        outgoing = [s for s in spans if s[2] < mix_in < s[3]]
        if len(incoming) != 1 or len(outgoing) != 1:
            continue  # not a mix between two clips we can see: leave the overlap to the flatten
        (pi, ii, si, _), (po, io, _, eo) = incoming[0], outgoing[0]
        h, t = out.setdefault(pi, {}).get(ii, (0, 0))
        out[pi][ii] = (h + cut - si, t)
        h, t = out.setdefault(po, {}).get(io, (0, 0))
        out[po][io] = (h, t + eo - cut)
    return out


class _Doc(NamedTuple):
    """What every track of a project reads: its producers, rate and bin clips' names and markers.
    (A NamedTuple, not a dataclass: OTIO loads this adapter as a module outside sys.modules.)"""

    producers: dict[str, ET.Element]
    rate: float
    bin_names: dict[str, str]
    bin_markers: dict[str, list[tuple[int, str]]]
    root: Path | None = None  # where relative resources are: the document's `root`, else its folder


def _profile_rate(root: ET.Element) -> float:
    profile = root.find("profile")
    if profile is None or not profile.get("frame_rate_num"):
        raise ValueError("the project has no <profile> with a frame rate")
    try:
        num, den = int(profile.get("frame_rate_num")), int(profile.get("frame_rate_den", "1"))
    except ValueError:
        raise ValueError("the profile's frame rate is not a number") from None
    if num <= 0 or den <= 0 or not 1 <= num / den <= 1000:
        raise ValueError(f"the profile's frame rate {num}/{den} is impossible; choose a project profile in Kdenlive")
    return num / den


def _bin_clips(root: ET.Element, producers: dict[str, ET.Element]) -> tuple[dict, dict]:
    """kdenlive:id -> clip name, and -> clip markers (source frames) of the clips in the project bin."""
    names, markers = {}, {}
    main_bin = root.find("playlist[@id='main_bin']")
    bin_ids = {e.get("producer") for e in main_bin.findall("entry")} if main_bin is not None else set()
    for el in producers.values():
        p = _props(el)
        if p.get("kdenlive:id") and p.get("kdenlive:clipname"):
            names[p["kdenlive:id"]] = p["kdenlive:clipname"]
        if el.get("id") in bin_ids and p.get("kdenlive:id") and p.get("kdenlive:markers"):
            markers[p["kdenlive:id"]] = _clip_markers(p["kdenlive:markers"])
    return names, markers


def _media_reference(pp: dict, root: Path | None = None) -> otio.core.MediaReference:
    resource, service = pp.get("resource", ""), pp.get("mlt_service", "")
    if service.startswith("avformat") or service in ("qimage", "pixbuf", "timewarp"):
        if service == "timewarp" and ":" in resource:
            resource = resource.split(":", 1)[1]
        if root is not None and resource and "://" not in resource and not Path(resource).is_absolute():
            resource = str(root / resource)  # Kdenlive 23.04+ writes media paths relative to the root
        length = pp.get("length", "")
        avail = (TimeRange(RationalTime(0, float(pp["_rate"])), RationalTime(int(length), float(pp["_rate"])))
                 if length.isdigit() and 0 < int(length) < 2**31 - 1 else None)
        return otio.schema.ExternalReference(target_url=resource, available_range=avail)
    return otio.schema.GeneratorReference(generator_kind=service or "unknown", parameters={"resource": resource})


def _entry_items(el: ET.Element, doc: _Doc, head: int, tail: int) -> list:
    """One playlist <entry>: its clip, with the gaps a same-track mix leaves (see _mix_trims)."""
    rate = doc.rate
    prod = doc.producers.get(el.get("producer"))
    if prod is None:
        raise ValueError(f"entry refers to a missing producer {el.get('producer')!r}")
    pp = _props(prod)
    start = _time(el.get("in"), rate)
    dur = _time(el.get("out"), rate) - start + RationalTime(1, rate)
    if dur.value <= 0:
        raise ValueError(f"an entry of producer {el.get('producer')!r} has a negative duration")
    items = []
    if head or tail:  # a same-track mix: the picture cuts inside it
        if head + tail >= dur.value:
            raise ValueError(f"a mix is longer than its clip (producer {el.get('producer')!r})")
        if head:
            items.append(otio.schema.Gap(source_range=TimeRange(RationalTime(0, rate), RationalTime(head, rate))))
        start += RationalTime(head, rate)
        dur -= RationalTime(head + tail, rate)
    service, resource = pp.get("mlt_service", ""), pp.get("resource", "")
    kid = _props(el).get("kdenlive:id") or pp.get("kdenlive:id", "")
    name = doc.bin_names.get(kid) or pp.get("kdenlive:clipname") or Path(resource).name or service
    clip = otio.schema.Clip(name=name, media_reference=_media_reference({**pp, "_rate": rate}, doc.root),
                            source_range=TimeRange(start, dur))
    clip.metadata["kdenlive"] = {"producer": el.get("producer"), "mlt_service": service, "volume": _volumes(el, rate)}
    for pos, comment in doc.bin_markers.get(kid, []):  # source frames; shown where the clip uses them
        if start.value <= pos < start.value + dur.value:
            clip.markers.append(otio.schema.Marker(
                name=comment, marked_range=TimeRange(RationalTime(pos, rate), RationalTime(0, rate))))
    items.append(clip)
    if tail:
        items.append(otio.schema.Gap(source_range=TimeRange(RationalTime(0, rate), RationalTime(tail, rate))))
    return items


def _build_track(playlist: ET.Element, name: str, audio: bool, doc: _Doc, trims: dict | None = None) -> otio.schema.Track:
    track = otio.schema.Track(name=name, kind=otio.schema.TrackKind.Audio if audio else otio.schema.TrackKind.Video)
    for idx, el in enumerate(playlist):
        if el.tag == "blank":
            track.append(otio.schema.Gap(source_range=TimeRange(RationalTime(0, doc.rate), _time(el.get("length"), doc.rate))))
        elif el.tag == "entry":
            silent = audio and _props(doc.producers.get(el.get("producer"), ET.Element("x"))).get("set.test_audio") == "1"
            for item in _entry_items(el, doc, *(trims or {}).get(idx, (0, 0))):
                if silent and isinstance(item, otio.schema.Clip):
                    item.enabled = False  # MLT plays no sound of it: a clip disabled on an audio track
                track.append(item)
    return track


def _guides(root: ET.Element, seq: document.Sequence, rate: float) -> list:
    """The timeline's guides: the sequence's own (document 1.1), else the document's (1.04)."""
    src = document.props(seq.tractor).get("kdenlive:sequenceproperties.guides")
    if src is None:
        main_bin = root.find("playlist[@id='main_bin']")
        src = document.props(main_bin).get("kdenlive:docproperties.guides") if main_bin is not None else None
    if not src:
        return []
    try:
        return [otio.schema.Marker(name=g.get("comment", ""),
                                   marked_range=TimeRange(RationalTime(int(g["pos"]), rate), RationalTime(0, rate)))
                for g in json.loads(src)]
    except (ValueError, KeyError, TypeError):
        return []  # guides are decoration: a malformed list must not stop reading the edit


def _document_root(root: ET.Element, base_dir: str | Path | None) -> Path | None:
    """The folder MLT resolves relative resources against: `<mlt root=...>`, or, when that folder is
    gone (the project was moved, as Kdenlive then assumes), the project file's own folder."""
    declared = root.get("root")
    if declared and Path(declared).is_dir():
        return Path(declared)
    return Path(base_dir) if base_dir is not None else None


def read_from_string(input_str: str, base_dir: str | Path | None = None, sequence: str | None = None) -> otio.schema.Timeline:
    root = ET.fromstring(input_str)
    if root.tag != "mlt":
        raise ValueError("not an MLT/Kdenlive project (the root element is not <mlt>)")
    rate = _profile_rate(root)
    seq = document.select(root, sequence)
    seqs = document.sequences(root)
    producers = {el.get("id"): el for el in root if el.tag in ("producer", "chain")}
    # a sequence used as a clip of another sequence (document 1.1) plays like a producer, each copy
    # Kdenlive writes of it where it is nested included
    producers.update({el.get("id"): el for el in root if el.tag == "tractor" and _props(el).get("kdenlive:uuid")
                      and _props(el).get("kdenlive:projectTractor") != "1"})
    playlists = {el.get("id"): el for el in root if el.tag == "playlist"}
    tractors = [el for el in root if el.tag == "tractor"]
    doc = _Doc(producers, rate, *_bin_clips(root, producers), root=_document_root(root, base_dir))
    main_bin = root.find("playlist[@id='main_bin']")
    title = _props(main_bin).get("kdenlive:docproperties.projectName", "") if main_bin is not None else ""
    tl = otio.schema.Timeline(name=title)
    tl.metadata["kdenlive"] = {"document": "1.1" if seq.uuid else "1.04", "sequence": seq.name, "uuid": seq.uuid,
                               "sequences": [s.name for s in seqs]}
    tractor_by_id = {t.get("id"): t for t in tractors}
    for tr in seq.tractor.findall("track"):
        pid = tr.get("producer")
        if pid == "black_track" or (pid in producers and pid not in tractor_by_id):
            continue
        if pid in tractor_by_id:  # a Kdenlive track: a tractor of two playlists
            sub = tractor_by_id[pid]
            sp = _props(sub)
            audio = sp.get("kdenlive:audio_track") == "1" or all(t.get("hide") == "video" for t in sub.findall("track"))
            name = sp.get("kdenlive:track_name", "")
            pls = [playlists.get(t.get("producer")) for t in sub.findall("track")]
            trims = _mix_trims(sub, [p for p in pls if p is not None], rate)
            # a muted audio track is hidden ("both") in the sequence's tractor and on its own playlists
            hides = {tr.get("hide"), *(t.get("hide") for t in sub.findall("track"))}
            off = audio and bool(hides & {"audio", "both"})
            for i, pl in enumerate(pls):
                if pl is None:
                    continue
                track = _build_track(pl, name if i == 0 else f"{name} (2)", audio, doc, trims.get(pl.get("id")))
                track.enabled = not off
                track.metadata["kdenlive"] = {"volume": _volumes(sub, rate)}
                if i == 0 or len(track):
                    tl.tracks.append(track)
        elif pid in playlists:
            pl = playlists[pid]
            audio = _props(pl).get("kdenlive:audio_track") == "1" or tr.get("hide") == "video"
            tl.tracks.append(_build_track(pl, pid, audio, doc))
    for marker in _guides(root, seq, rate):
        tl.tracks.markers.append(marker)
    return tl


def read_from_file(filepath: str, sequence: str | None = None) -> otio.schema.Timeline:
    path = Path(filepath)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError("not a text file") from e
    try:
        return read_from_string(text, base_dir=path.parent, sequence=sequence)
    except ET.ParseError as e:
        raise ValueError(f"not well-formed XML ({e})") from e


def write_to_file(input_otio, filepath: str) -> None:
    raise NotImplementedError("cutscore writes .kdenlive files by patching the original project: "
                              "use `cutscore score PROJECT.kdenlive -o OUT.kdenlive`")
