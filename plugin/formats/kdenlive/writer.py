"""Write cutscore's music into a Kdenlive project the way Kdenlive itself writes an imported audio
clip (torch-free). The user's project text is patched, never re-serialised: every byte outside the
inserted (or replaced) cutscore elements, and the track-indexed properties the new track shifts,
stays as it was. The output keeps the input's dialect (plugin/formats/kdenlive/document.py): document 1.04
(Kdenlive 22.12: `<producer>` elements, one timeline) or 1.1 (Kdenlive 23.04-26.08: `<chain>`
elements with a `kdenlive:control_uuid`, as 26.08 writes an imported WAV, the music on a track of
the active (or chosen) *sequence*, whose `kdenlive:sequenceproperties.tracksCount` counts it).

What Kdenlive needs so that its document checker keeps a clip on load:
- a *bin clip*: a producer listed in the `main_bin` playlist, with its own `kdenlive:id`, its clip
  type, file size and hash, and MLT's cached media properties (without them an `avformat-novalidate`
  WAV renders as silence in melt); ours live in a bin folder named "cutscore";
- *timeline* producers, one per bin clip and track, carrying the same `kdenlive:id`, referenced by
  the entries of the track's playlist (Kdenlive removes a timeline clip whose kdenlive:id names no
  bin clip: "Timeline clip ... without bin reference found and removed");
- an audio track: a tractor of two playlists with `kdenlive:audio_track` and `hide="video"`, and in
  the sequence's tractor a `mix` transition from track 0 to it, as Kdenlive builds for every audio track;
- every property that names tracks by position renumbered for the inserted track: the groups'
  "track:frame" leaves, the active track, the audio and video targets, the compositions'
  a_track/b_track (Kdenlive otherwise regroups the wrong clips, or drops the groups, on load).

A re-score replaces the previous cutscore track, producers, mix and bin clips; a regenerate adds a
bin clip for the new WAV (the old stays, to switch back) and points the clip's producer at it. The
beats are the bin clips' markers (plugin/formats/kdenlive/markers.py)."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

from opentimelineio.opentime import RationalTime, TimeRange

from core.errors import CutscoreError
from plugin.formats.kdenlive import document
from plugin.formats.kdenlive.markers import ensure_categories, markers_json
from plugin.formats.kdenlive.media import control_uuid, file_hash, media_props
from plugin.formats.kdenlive.volume import volume_filter
from plugin.names import BIN_NAME, TRACK_NAME, take_pattern

if TYPE_CHECKING:
    from plugin.formats.writeback import Segment

FOLDER_NAME, CLIP_TYPE_AUDIO = BIN_NAME, 1  # the bin folder; Kdenlive's ClipType::Audio


def _frames(seg: Segment, rate: float) -> tuple[int, int]:
    """A segment's record position and length in project frames."""
    return (round(seg.range.start_time.rescaled_to(rate).value), round(seg.range.duration.rescaled_to(rate).value))


def _bin_only(wav: Path, name: str, beats: tuple = ()) -> Segment:
    """A take as a bin clip only (no timeline position): a regenerate's new take."""
    from plugin.formats.writeback import Segment

    zero = TimeRange(RationalTime(0, 1), RationalTime(0, 1))
    return Segment("clip", 0, name, zero, wav, beats=list(beats))


def _producer_xml(pid: str, kid: int, folder: int, clip: Segment, rate: float, timeline: bool, v11: bool,
                  categories: dict[str, int] | None = None) -> str:
    frames, props = media_props(clip.wav, rate)
    props += [("kdenlive:clipname", f"{TRACK_NAME}: {clip.name}"), ("kdenlive:folderid", str(folder)), ("kdenlive:id", str(kid)),
              ("kdenlive:clip_type", str(CLIP_TYPE_AUDIO)),
              ("kdenlive:file_size", str(clip.wav.stat().st_size)), ("kdenlive:file_hash", file_hash(clip.wav)),
              ("kdenlive:duration", str(frames)), ("kdenlive:orig_service", "avformat-novalidate")]
    if v11:
        props.append(("kdenlive:control_uuid", control_uuid(clip.wav)))
    if timeline:
        props += [("set.test_audio", "0"), ("set.test_image", "1")]
    elif clip.beats and categories:  # the beats as the bin clip's markers
        props.append(("kdenlive:markers", markers_json(clip.beats, rate, categories, v11, frames)))
    body = "".join(f'  <property name="{k}">{html.escape(v, quote=False)}</property>\n' for k, v in props)
    tag = "chain" if v11 else "producer"
    return f' <{tag} id="{pid}" in="0" out="{frames - 1}">\n{body} </{tag}>\n'


# ---- locating top-level elements in the text ----------------------------------------------------------

_OPEN = re.compile(r"<(producer|chain|playlist|tractor)\b[^>]*?(/?)>")


def _top_level(text: str) -> list[tuple[str, str, int, int]]:
    """(tag, id, start, end) of every top-level MLT service element, `end` past its closing tag and
    the line break after it. Services do not nest inside services of the same tag in MLT XML."""
    out, pos = [], 0
    while True:
        m = _OPEN.search(text, pos)
        if not m:
            return out
        tag = m.group(1)
        if m.group(2):
            end = m.end()
        else:
            close = text.find(f"</{tag}>", m.end())
            if close < 0:
                raise CutscoreError(f"the Kdenlive project's <{tag}> is not closed")
            end = close + len(tag) + 3
        start = text.rfind("\n", 0, m.start()) + 1
        if text[start:m.start()].strip():
            start = m.start()
        if text[end:end + 1] == "\n":
            end += 1
        ident = re.search(r'\bid="([^"]*)"', m.group(0))
        out.append((tag, ident.group(1) if ident else "", start, end))
        pos = end


_props = document.props  # a Kdenlive element's <property> children, by name


class Project:
    """A parsed Kdenlive project and its text, for patching. `main` is the tractor of the timeline
    the music goes on: the sequence `sequence` names (document 1.1), else, with `music`, the
    sequence that holds a cutscore track, else the active one."""

    def __init__(self, text: str, sequence: str | None = None, music: bool = False):
        self.text = text
        try:
            self.root = ET.fromstring(text)
        except ET.ParseError as e:
            raise CutscoreError(f"the Kdenlive project is not well-formed XML ({e})") from e
        prof = self.root.find("profile")
        if prof is None:
            raise CutscoreError("the Kdenlive project has no <profile>")
        self.rate = int(prof.get("frame_rate_num")) / int(prof.get("frame_rate_den", "1"))
        self.elements = {el.get("id"): el for el in self.root if el.get("id")}
        self.v11 = document.is_v11(self.root)
        try:
            seq = document.select(self.root, sequence)
        except ValueError as e:
            raise CutscoreError(str(e)) from None
        self.main = seq.tractor
        if music and sequence is None and self.music_track_index() is None:
            for other in document.sequences(self.root):
                self.main = other.tractor
                if self.music_track_index() is not None:
                    break
            else:
                self.main = seq.tractor
        self.bin = self.root.find("playlist[@id='main_bin']")
        if self.bin is None:
            raise CutscoreError("the Kdenlive project has no project bin (main_bin); open and save it in Kdenlive first")

    def ids(self) -> set[str]:
        return set(re.findall(r'\bid="([^"]+)"', self.text))

    def next_kid(self) -> int:
        return max((int(k) for k in re.findall(r'name="kdenlive:id">(\d+)<', self.text)), default=0) + 1

    def folder_id(self) -> int | None:
        for k, v in _props(self.bin).items():
            if k.startswith("kdenlive:folder.-1.") and v == FOLDER_NAME:
                return int(k.rsplit(".", 1)[1])
        return None

    def music_track_index(self) -> int | None:
        for i, tr in enumerate(self.main.findall("track")):
            el = self.elements.get(tr.get("producer"))
            if el is not None and el.tag == "tractor" and _props(el).get("kdenlive:track_name") == TRACK_NAME:
                return i
        return None


def _fresh(ids: set[str], prefix: str) -> str:
    n = 0
    while f"{prefix}{n}" in ids:
        n += 1
    ids.add(f"{prefix}{n}")
    return f"{prefix}{n}"


def _music_elements(proj: Project, idx: int | None) -> tuple[set[str], set[str]]:
    """The ids of a previous cutscore track's elements (its tractor, playlists and their producers,
    and the bin clips of the cutscore folder), and of those bin clips alone."""
    drop: set[str] = set()
    if idx is not None:
        tractor = proj.elements[proj.main.findall("track")[idx].get("producer")]
        drop.add(tractor.get("id"))
        for t in tractor.findall("track"):
            pl = proj.elements.get(t.get("producer"))
            if pl is not None:
                drop.add(pl.get("id"))
                drop.update(e.get("producer") for e in pl.findall("entry"))
    folder = proj.folder_id()
    bin_drop = set()
    if folder is not None:
        for e in proj.bin.findall("entry"):
            el = proj.elements.get(e.get("producer"))
            if el is not None and _props(el).get("kdenlive:folderid") == str(folder):
                bin_drop.add(el.get("id"))
    drop |= bin_drop
    # other timeline uses of our bin clips (the editor copied music onto another track) keep them
    used_elsewhere = set()
    for el in proj.root:
        if el.tag == "playlist" and el.get("id") not in drop and el.get("id") != "main_bin":
            used_elsewhere.update(e.get("producer") for e in el.findall("entry"))
    if used_elsewhere & drop:
        raise CutscoreError(f"the project uses cutscore's music outside the '{TRACK_NAME}' track; "
                            "score the original project, or remove those copies first")
    return drop, bin_drop


def _without_music(proj: Project) -> str:
    """The project text with a previous cutscore track, its producers, mix and bin clips removed
    (and the track-indexed properties renumbered back)."""
    text = proj.text
    idx = proj.music_track_index()
    drop, bin_drop = _music_elements(proj, idx)
    spans = [(s, e) for tag, ident, s, e in _top_level(text) if ident in drop]
    for s, e in sorted(spans, reverse=True):
        text = text[:s] + text[e:]
    # main_bin entries of the dropped bin clips
    for pid in bin_drop:
        text = re.sub(rf'[ \t]*<entry producer="{re.escape(pid)}"[^>]*/>\n?', "", text)
    if idx is None:
        return text
    # the track line and its mix in the main tractor; later tracks' transitions shift down by one
    tractor_id = proj.main.findall("track")[idx].get("producer")

    def edit(body: str) -> str:
        body = re.sub(rf'[ \t]*<track\b[^>]*producer="{re.escape(tractor_id)}"[^>]*/>\n?', "", body)

        def transition(m: re.Match) -> str:
            t = m.group(0)
            b = re.search(r'name="b_track">(\d+)<', t)
            if b and int(b.group(1)) == idx:
                return ""
            return re.sub(r'name="([ab])_track">(\d+)<',
                          lambda n: f'name="{n.group(1)}_track">{int(n.group(2)) - (int(n.group(2)) > idx)}<', t)

        return re.sub(r'[ \t]*<transition\b.*?</transition>\n?', transition, body, flags=re.S)

    text = _edit_element(text, proj.main.get("id"), edit)
    return shift_track_refs(text, proj, idx, -1)


# ---- properties that name tracks by position ------------------------------------------------------

def _edit_element(text: str, ident: str, edit) -> str:
    """The text with the top-level element `ident` replaced by edit(its text)."""
    s, e = next((s, e) for tag, i, s, e in _top_level(text) if i == ident)
    return text[:s] + edit(text[s:e]) + text[e:]


def _edit_property(body: str, name: str, edit) -> str:
    """`body` with the value of its property `name` (XML text; None when absent) replaced by edit(value)."""
    pat = re.compile(rf'(<property name="{re.escape(name)}">)(.*?)(</property>)', re.S)
    return pat.sub(lambda m: m.group(1) + edit(m.group(2)) + m.group(3), body, count=1)


def shift_track_refs(text: str, proj: Project, mlt_index: int, delta: int) -> str:
    """Renumber the sequence's track-indexed properties for a track inserted at (delta +1) or
    removed from (delta -1) MLT index `mlt_index`. They count tracks without the black track
    (position = MLT index - 1): the groups' "track:frame[:...]" leaves, activeTrack, audioTarget and
    videoTarget (each "-1" or position[:stream] items), and, for a sequence, tracksCount.
    Document 1.1 keeps them as kdenlive:sequenceproperties.* on the sequence's tractor, 1.04 as
    kdenlive:docproperties.* on main_bin."""
    first = mlt_index - 1 if delta > 0 else mlt_index  # positions at or above move

    def pos(n: int) -> int:
        return n + delta if n >= first else n

    def groups(value: str) -> str:
        return re.sub(r'("data"\s*:\s*")(\d+)(:)', lambda m: f"{m.group(1)}{pos(int(m.group(2)))}{m.group(3)}", value)

    def targets(value: str) -> str:
        return re.sub(r"(^|;)(\d+)", lambda m: f"{m.group(1)}{pos(int(m.group(2)))}", value.strip())

    prefix = "kdenlive:sequenceproperties." if proj.v11 else "kdenlive:docproperties."
    owner = proj.main.get("id") if proj.v11 else "main_bin"

    def edit(body: str) -> str:
        body = _edit_property(body, prefix + "groups", groups)
        for name in ("activeTrack", "audioTarget", "videoTarget"):
            body = _edit_property(body, prefix + name, targets)
        if proj.v11:
            body = _edit_property(body, prefix + "tracksCount", lambda v: str(int(v) + delta) if v.strip().isdigit() else v)
        return body

    return _edit_element(text, owner, edit)


def _ensure_folder(text: str, proj_bin_props: dict[str, str], ids_text: str) -> tuple[str, int]:
    for k, v in proj_bin_props.items():
        if k.startswith("kdenlive:folder.-1.") and v == FOLDER_NAME:
            return text, int(k.rsplit(".", 1)[1])
    used = [int(k.rsplit(".", 1)[1]) for k in re.findall(r'name="(kdenlive:folder\.[-\d]+\.\d+)"', ids_text)]
    used += [int(k) for k in re.findall(r'name="kdenlive:id">(\d+)<', ids_text)]
    fid = max(used, default=0) + 1
    m = re.search(r'<playlist id="main_bin"\s*>\n?', text)
    if not m:
        raise CutscoreError("the Kdenlive project's bin (main_bin) is empty or malformed")
    line = f'  <property name="kdenlive:folder.-1.{fid}">{FOLDER_NAME}</property>\n'
    return text[:m.end()] + line + text[m.end():], fid


def _add_bin_clips(text: str, clips: list[Segment], rate: float, v11: bool) -> tuple[str, dict[Path, tuple[int, int]]]:
    """Add one bin clip per distinct WAV (with its beat markers); returns the text and {wav: (kdenlive:id, folder)}."""
    text, categories = ensure_categories(text) if any(c.beats for c in clips) else (text, None)
    proj = Project(text)
    text, folder = _ensure_folder(text, _props(proj.bin), text)
    ids = proj.ids()
    kid = max(proj.next_kid(), folder + 1)
    producers, entries, out = [], [], {}
    for c in clips:
        if c.wav in out:
            continue
        pid = _fresh(ids, "cutscore_bin")
        producers.append(_producer_xml(pid, kid, folder, c, rate, timeline=False, v11=v11, categories=categories))
        frames = media_props(c.wav, rate)[0]
        entries.append(f'  <entry producer="{pid}" in="0" out="{frames - 1}"/>\n')
        out[c.wav] = (kid, folder)
        kid += 1
    bin_start = next(s for tag, ident, s, e in _top_level(text) if ident == "main_bin")
    close = text.find("</playlist>", bin_start)
    close_line = text.rfind("\n", 0, close) + 1
    if text[close_line:close].strip():
        close_line = close
    text = text[:close_line] + "".join(entries) + text[close_line:]
    return text[:bin_start] + "".join(producers) + text[bin_start:], out


def patch_project(text: str, clips: list[Segment], sequence: str | None = None) -> str:
    """The project with the "cutscore music" track holding `clips` (any previous one replaced), on
    the sequence `sequence` names (document 1.1; name or uuid) or the active one."""
    proj = Project(text, sequence)
    rate, v11 = proj.rate, proj.v11
    text = _without_music(proj)
    text, kids = _add_bin_clips(text, clips, rate, v11)
    proj = Project(text, sequence)
    ids = proj.ids()
    block, tr = _music_track(ids, clips, kids, rate, v11)
    main_id = proj.main.get("id")
    main_start, main_end = next((s, e) for tag, ident, s, e in _top_level(text) if ident == main_id)
    body, at = _with_track(proj, text[main_start:main_end], ids, tr)
    text = text[:main_start] + block + body + text[main_end:]
    return shift_track_refs(text, proj, at, +1)


def _music_track(ids: set, clips: list[Segment], kids: dict, rate, v11: bool) -> tuple[str, str]:
    """The music's timeline producers, its two playlists and its track tractor (XML) and the tractor's id."""
    producers, entries, pos = [], [], 0
    for c in sorted(clips, key=lambda c: _frames(c, rate)):
        start, length = _frames(c, rate)
        if length <= 0:
            continue
        kid, folder = kids[c.wav]
        pid = _fresh(ids, "cutscore_producer")
        producers.append(_producer_xml(pid, kid, folder, c, rate, timeline=True, v11=v11))
        if start > pos:
            entries.append(f'  <blank length="{start - pos}"/>\n')
        duck = volume_filter(_fresh(ids, "cutscore_duck"), c.gain_keys, length, rate) if c.gain_keys else ""
        entries.append(f'  <entry producer="{pid}" in="0" out="{length - 1}">\n'
                       f'   <property name="kdenlive:id">{kid}</property>\n{duck}  </entry>\n')
        pos = start + length
    pl_a, pl_b, tr = _fresh(ids, "cutscore_playlist"), _fresh(ids, "cutscore_playlist"), _fresh(ids, "cutscore_tractor")
    block = "".join(producers)
    block += (f' <playlist id="{pl_a}">\n  <property name="kdenlive:audio_track">1</property>\n'
              + "".join(entries) + " </playlist>\n")
    block += f' <playlist id="{pl_b}">\n  <property name="kdenlive:audio_track">1</property>\n </playlist>\n'
    block += (f' <tractor id="{tr}" in="0" out="{max(pos - 1, 0)}">\n'
              f'  <property name="kdenlive:audio_track">1</property>\n'
              f'  <property name="kdenlive:trackheight">69</property>\n'
              f'  <property name="kdenlive:collapsed">0</property>\n'
              f'  <property name="kdenlive:track_name">{TRACK_NAME}</property>\n'
              f'  <track hide="video" producer="{pl_a}"/>\n  <track hide="video" producer="{pl_b}"/>\n'
              f' </tractor>\n')
    return block, tr


def _mix_xml(ident: str, at: int, v11: bool) -> str:
    """The track's mix transition, as Kdenlive writes it for an audio track (26.08 adds its ducking
    parameters, off: threshold 0)."""
    duck = ('   <property name="duck_threshold">0</property>\n   <property name="duck_attenuation">-12</property>\n'
            '   <property name="duck_level">0</property>\n   <property name="duck_fade_in">1500</property>\n'
            '   <property name="duck_fade_out">250</property>\n   <property name="prefix"/>\n') if v11 else ""
    return (f'  <transition id="{ident}">\n'
            f'   <property name="a_track">0</property>\n   <property name="b_track">{at}</property>\n{duck}'
            f'   <property name="mlt_service">mix</property>\n   <property name="kdenlive_id">mix</property>\n'
            f'   <property name="internal_added">237</property>\n   <property name="always_active">1</property>\n'
            f'   <property name="accepts_blanks">1</property>\n   <property name="sum">1</property>\n  </transition>\n')


def _with_track(proj: Project, body: str, ids: set, tr: str) -> tuple[str, int]:
    """The main tractor's XML with the track `tr` above the audio tracks and a mix transition for
    it, and the MLT index the track took."""
    tracks = list(re.finditer(r"[ \t]*<track\b[^>]*/>\n?", body))
    if not tracks:
        raise CutscoreError("the Kdenlive project's main tractor has no tracks")
    # Kdenlive keeps audio tracks below the video tracks: first in MLT order, after black_track.
    # The music goes on top of the audio tracks; every transition index from there shifts up by one.
    audio = [i for i, t in enumerate(proj.main.findall("track")) if _is_audio(proj, t.get("producer"))]
    at = (max(audio) + 1) if audio else 1
    at = min(at, len(tracks))
    body = re.sub(r'name="([ab])_track">(\d+)<',
                  lambda n: f'name="{n.group(1)}_track">{int(n.group(2)) + (int(n.group(2)) >= at)}<', body)
    tracks = list(re.finditer(r"[ \t]*<track\b[^>]*/>\n?", body))
    mix = _mix_xml(_fresh(ids, "cutscore_transition"), at, proj.v11)
    prev = tracks[at - 1]
    indent = re.match(r"[ \t]*", prev.group(0)).group(0) or "  "
    track_line = f'{indent}<track hide="video" producer="{tr}"/>\n'
    if not prev.group(0).endswith("\n"):
        track_line = "\n" + track_line.rstrip("\n")
    # the mix goes after the main tractor's last transition (or its last track)
    trans = list(re.finditer(r"[ \t]*<transition\b.*?</transition>\n?", body, flags=re.S))
    mix_at = trans[-1].end() if trans else tracks[-1].end()
    body = body[:mix_at] + mix + body[mix_at:]
    body = body[:prev.end()] + track_line + body[prev.end():]
    return body, at


def _is_audio(proj: Project, pid: str) -> bool:
    el = proj.elements.get(pid)
    if el is None or pid == "black_track":
        return False
    if _props(el).get("kdenlive:audio_track") == "1":
        return True
    return el.tag == "tractor" and bool(el.findall("track")) and all(t.get("hide") == "video" for t in el.findall("track"))


def music_sequence(text: str) -> str | None:
    """The uuid of the sequence that holds the cutscore track (document 1.1; the active one first),
    None for a document 1.04 project or when no sequence holds one."""
    proj = Project(text, music=True)
    if not proj.v11 or proj.music_track_index() is None:
        return None
    return document.props(proj.main).get("kdenlive:uuid")


def replace_clip_wav(text: str, old: Path, new: Path, name: str, beats: tuple = ()) -> str:
    """A scored project where the music clip playing `old` plays `new` (a new bin clip; the old
    bin clip stays in the bin). The music is found on whichever sequence holds it."""
    proj = Project(text, music=True)
    rate = proj.rate
    take = take_pattern(old.name)  # any take of this segment
    idx = proj.music_track_index()
    if idx is None:
        raise CutscoreError(f"the project has no '{TRACK_NAME}' track; score it first with `cutscore score`")
    tractor = proj.elements[proj.main.findall("track")[idx].get("producer")]
    targets = []
    for t in tractor.findall("track"):
        pl = proj.elements.get(t.get("producer"))
        for e in (pl.findall("entry") if pl is not None else []):
            el = proj.elements.get(e.get("producer"))
            res = Path(_props(el).get("resource", "")) if el is not None else Path()
            if el is not None and not res.is_absolute():  # Kdenlive writes paths relative to the document root
                res = Path(proj.root.get("root", "")) / res
            if el is not None and res.parent == old.resolve().parent and take.fullmatch(res.name):
                targets.append(el.get("id"))
    if not targets:
        raise CutscoreError(f"the clip's music WAV ({old.name}) is not on the '{TRACK_NAME}' track")
    text, kids = _add_bin_clips(text, [_bin_only(new, name, beats)], rate, proj.v11)
    kid, folder = kids[new]
    for pid in targets:
        span = next((s, e) for tag, ident, s, e in _top_level(text) if ident == pid)
        # a timeline use keeps its element (Kdenlive 26.08 may have saved ours as <chain> or <producer>)
        tag = next(tag for tag, ident, s, e in _top_level(text) if ident == pid)
        xml = _producer_xml(pid, kid, folder, _bin_only(new, name), rate, True, v11=tag == "chain")
        text = text[:span[0]] + xml + text[span[1]:]
        # the entry names the bin clip too
        text = re.sub(rf'(<entry producer="{re.escape(pid)}"[^>]*>\s*<property name="kdenlive:id">)\d+(<)',
                      rf"\g<1>{kid}\g<2>", text)
    return text
