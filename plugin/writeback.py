"""Write the music back: a NEW timeline with an added audio track "cutscore music" (or the previous
cutscore track replaced), everything else preserved (torch-free).

- .otio / .otioz / .otiod / FCP7 .xml: a copy of the input's OTIO timeline with the track added,
  written by OTIO's adapters. Media paths are absolute and plain (no file://, which Resolve's
  import has been reported to reject).
- .kdenlive: the ORIGINAL project text is patched: producers, a playlist, a track tractor and a mix
  transition are inserted for the music, and every byte of the rest stays as it was, so the project
  opens in Kdenlive and renders with melt.
"""

from __future__ import annotations

import copy
import html
import os
import re
from dataclasses import dataclass
from pathlib import Path

import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from engine.errors import CutscoreError
from plugin.timeline import ADAPTERS, Timeline

TRACK_NAME = "cutscore music"
WRITABLE = {".otio", ".otioz", ".otiod", ".xml", ".kdenlive"}


@dataclass
class Segment:
    """One music clip: mirrors one item (clip or gap) of the flattened picture."""

    kind: str  # "clip" or "gap"
    index: int  # picture clip index (plan), or gap number
    name: str
    range: TimeRange  # in the timeline
    wav: Path


def _is_cutscore_track(track) -> bool:
    return track.name == TRACK_NAME or "cutscore" in track.metadata


def music_track(tl: otio.schema.Timeline) -> otio.schema.Track | None:
    return next((t for t in tl.audio_tracks() if _is_cutscore_track(t)), None)


def build_track(segments: list[Segment], rate: float, metadata: dict) -> otio.schema.Track:
    track = otio.schema.Track(name=TRACK_NAME, kind=otio.schema.TrackKind.Audio)
    track.metadata["cutscore"] = metadata
    for seg in segments:
        dur = seg.range.duration
        ref = otio.schema.ExternalReference(target_url=str(seg.wav.resolve()),
                                            available_range=TimeRange(RationalTime(0, rate), dur))
        clip = otio.schema.Clip(name=f"{TRACK_NAME}: {seg.name}", media_reference=ref,
                                source_range=TimeRange(RationalTime(0, rate), dur))
        clip.metadata["cutscore"] = {"kind": seg.kind, "index": seg.index}
        track.append(clip)
    return track


def scored_otio(tl: Timeline, segments: list[Segment], metadata: dict) -> otio.schema.Timeline:
    out = copy.deepcopy(tl.otio)
    for i in reversed(range(len(out.tracks))):
        if out.tracks[i].kind == otio.schema.TrackKind.Audio and _is_cutscore_track(out.tracks[i]):
            del out.tracks[i]
    out.tracks.append(build_track(segments, tl.duration.rate, metadata))
    out.metadata["cutscore"] = metadata
    return out


def _absolute_media(tl: otio.schema.Timeline, base: Path) -> None:
    for clip in tl.find_clips():
        ref = clip.media_reference
        url = getattr(ref, "target_url", None)
        if url and "://" not in url and not Path(url).is_absolute() and (base / url).is_file():
            ref.target_url = str((base / url).resolve())


def write_scored(tl: Timeline, segments: list[Segment], metadata: dict, out_path: Path) -> None:
    suffix = out_path.suffix.lower()
    if suffix not in WRITABLE:
        raise CutscoreError(f"{out_path}: cannot write {suffix!r}; use .otio, .otioz, .otiod, .xml or .kdenlive")
    tmp = out_path.with_name(f".{out_path.stem}.{os.getpid()}.tmp{out_path.suffix}")
    try:
        if suffix == ".kdenlive":
            if tl.path.suffix.lower() != ".kdenlive":
                raise CutscoreError(f"{out_path}: a .kdenlive output needs a .kdenlive input (it patches the original "
                                    "project); write .otio and import it in Kdenlive instead")
            tmp.write_text(patch_kdenlive(tl.path.read_text(encoding="utf-8"), segments, tl.duration.rate),
                           encoding="utf-8")
        else:
            out = scored_otio(tl, segments, metadata)
            kwargs = {}
            if suffix in (".otioz", ".otiod"):
                _absolute_media(out, tl.path.parent)  # the bundle copies media it can find on disk
                from opentimelineio.adapters.file_bundle_utils import MediaReferencePolicy

                kwargs["media_policy"] = MediaReferencePolicy.MissingIfNotFile
            otio.adapters.write_to_file(out, str(tmp), adapter_name=ADAPTERS[suffix], **kwargs)
        os.replace(tmp, out_path)
    finally:
        if tmp.exists():
            if tmp.is_dir():
                import shutil

                shutil.rmtree(tmp)
            else:
                tmp.unlink()


# ---- Kdenlive ------------------------------------------------------------------------------------

def _frames(t: RationalTime, rate: float) -> int:
    return int(round(t.rescaled_to(rate).value))


def patch_kdenlive(text: str, segments: list[Segment], rate: float) -> str:
    """Insert the music into Kdenlive's MLT XML without touching the rest of the text."""
    tractors = list(re.finditer(r"<tractor\b[^>]*>", text))
    if not tractors:
        raise CutscoreError("the Kdenlive project has no sequence (<tractor>)")
    main = tractors[-1]
    main_end = text.find("</tractor>", main.end())
    if main_end < 0:
        raise CutscoreError("the Kdenlive project's main tractor is not closed")
    ids = set(re.findall(r'\bid="([^"]+)"', text))
    kids = [int(k) for k in re.findall(r'name="kdenlive:id">(\d+)<', text)]
    next_kid = max(kids, default=0) + 1

    def fresh(prefix: str) -> str:
        n = 0
        while f"{prefix}{n}" in ids:
            n += 1
        ids.add(f"{prefix}{n}")
        return f"{prefix}{n}"

    lines, entries = [], []
    pos = 0
    for seg in segments:
        start, length = _frames(seg.range.start_time, rate), _frames(seg.range.duration, rate)
        if length <= 0:
            continue
        pid = fresh("cutscore_producer")
        res = html.escape(str(seg.wav.resolve()), quote=True)
        lines.append(f' <producer id="{pid}" in="0" out="{length - 1}">\n'
                     f'  <property name="length">{length}</property>\n'
                     f'  <property name="eof">pause</property>\n'
                     f'  <property name="resource">{res}</property>\n'
                     f'  <property name="mlt_service">avformat</property>\n'
                     f'  <property name="kdenlive:clipname">{html.escape(TRACK_NAME + ": " + seg.name)}</property>\n'
                     f'  <property name="kdenlive:id">{next_kid}</property>\n'
                     f' </producer>\n')
        next_kid += 1
        if start > pos:
            entries.append(f'  <blank length="{start - pos}"/>\n')
        entries.append(f'  <entry producer="{pid}" in="0" out="{length - 1}"/>\n')
        pos = start + length
    pl_a, pl_b, tr = fresh("cutscore_playlist"), fresh("cutscore_playlist"), fresh("cutscore_tractor")
    lines.append(f' <playlist id="{pl_a}">\n  <property name="kdenlive:audio_track">1</property>\n'
                 + "".join(entries) + " </playlist>\n")
    lines.append(f' <playlist id="{pl_b}">\n  <property name="kdenlive:audio_track">1</property>\n </playlist>\n')
    lines.append(f' <tractor id="{tr}" in="0" out="{max(pos - 1, 0)}">\n'
                 f'  <property name="kdenlive:audio_track">1</property>\n'
                 f'  <property name="kdenlive:track_name">{TRACK_NAME}</property>\n'
                 f'  <track hide="video" producer="{pl_a}"/>\n  <track hide="video" producer="{pl_b}"/>\n'
                 f' </tractor>\n')
    main_body = text[main.end():main_end]
    n_tracks = len(re.findall(r"<track\b", main_body))
    last_track = list(re.finditer(r"<track\b[^>]*/>", main_body))
    if not last_track:
        raise CutscoreError("the Kdenlive project's main tractor has no tracks")
    insert_track_at = main.end() + last_track[-1].end()
    mix = (f'\n  <transition id="{fresh("cutscore_transition")}">\n'
           f'   <property name="a_track">0</property>\n   <property name="b_track">{n_tracks}</property>\n'
           f'   <property name="mlt_service">mix</property>\n   <property name="kdenlive_id">mix</property>\n'
           f'   <property name="internal_added">237</property>\n   <property name="always_active">1</property>\n'
           f'   <property name="sum">1</property>\n  </transition>\n ')
    # Insert from the end backwards so earlier offsets stay valid.
    line_start = text.rfind("\n", 0, main.start()) + 1
    out = text[:main_end] + mix + text[main_end:]
    out = out[:insert_track_at] + f'\n  <track hide="video" producer="{tr}"/>' + out[insert_track_at:]
    out = out[:line_start] + "".join(lines) + out[line_start:]
    return out
