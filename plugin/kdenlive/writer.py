"""Write cutscore's music into a Kdenlive project the way Kdenlive itself writes an imported audio
clip (torch-free). The user's project text is patched, never re-serialised: every byte outside the
inserted (or replaced) cutscore elements stays as it was.

What Kdenlive 22.12 (document version 1.04, `<producer>` elements; Kdenlive 23.04+ writes `<chain>`
and loads 1.04 documents too) needs so that its document checker keeps a clip on load:
- a *bin clip*: a producer listed in the `main_bin` playlist, with its own `kdenlive:id`, its clip
  type, file size and hash, and MLT's cached media properties (without them an `avformat-novalidate`
  WAV renders as silence in melt); ours live in a bin folder named "cutscore";
- *timeline* producers, one per bin clip and track, carrying the same `kdenlive:id`, referenced by
  the entries of the track's playlist (Kdenlive removes a timeline clip whose kdenlive:id names no
  bin clip: "Timeline clip ... without bin reference found and removed");
- an audio track: a tractor of two playlists with `kdenlive:audio_track` and `hide="video"`, and in
  the main tractor a `mix` transition from track 0 to it, as Kdenlive builds for every audio track.

Scoring an already scored project replaces the previous cutscore track, its timeline producers,
its mix and its bin clips. Regenerating one clip adds a bin clip for the new WAV (the old one stays
in the bin, so the editor can switch back) and points that clip's timeline producer at it.
"""

from __future__ import annotations

import hashlib
import html
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from engine.errors import CutscoreError

TRACK_NAME = "cutscore music"
FOLDER_NAME = "cutscore"
CLIP_TYPE_AUDIO = 1  # Kdenlive's ClipType::Audio


@dataclass
class MusicClip:
    start: int  # record position in project frames
    length: int  # frames
    wav: Path
    name: str


def file_hash(path: Path) -> str:
    """Kdenlive's kdenlive:file_hash: MD5 of the whole file, or of its first and last megabyte
    (1,000,000 bytes each) when it is larger than 2 MB."""
    size = path.stat().st_size
    h = hashlib.md5()
    with open(path, "rb") as f:
        if size > 2_000_000:
            h.update(f.read(1_000_000))
            f.seek(size - 1_000_000)
            h.update(f.read(1_000_000))
        else:
            h.update(f.read())
    return h.hexdigest()


def _media_props(wav: Path, rate: float) -> tuple[int, list[tuple[str, str]]]:
    info = sf.info(str(wav))
    frames = max(1, int(round(info.frames / info.samplerate * rate)))
    bits = {"PCM_16": 16, "PCM_24": 24, "PCM_32": 32, "FLOAT": 32}.get(info.subtype, 24)
    codec = {16: "pcm_s16le", 24: "pcm_s24le", 32: "pcm_s32le"}[bits] if info.subtype != "FLOAT" else "pcm_f32le"
    fmt = {16: "s16", 24: "s32", 32: "s32"}[bits] if info.subtype != "FLOAT" else "flt"
    props = [
        ("length", str(frames)), ("eof", "pause"), ("resource", str(wav.resolve())),
        ("meta.media.nb_streams", "1"), ("meta.media.0.stream.type", "audio"),
        ("meta.media.0.codec.sample_fmt", fmt), ("meta.media.0.codec.sample_rate", str(info.samplerate)),
        ("meta.media.0.codec.channels", str(info.channels)), ("meta.media.0.codec.name", codec),
        ("meta.media.0.codec.bit_rate", str(info.samplerate * info.channels * bits)),
        ("seekable", "1"), ("audio_index", "0"), ("video_index", "-1"), ("mute_on_pause", "1"),
        ("mlt_service", "avformat-novalidate"),
    ]
    return frames, props


def _producer_xml(pid: str, kid: int, folder: int, clip: MusicClip, rate: float, timeline: bool) -> str:
    frames, props = _media_props(clip.wav, rate)
    props += [("kdenlive:clipname", clip.name), ("kdenlive:folderid", str(folder)), ("kdenlive:id", str(kid)),
              ("kdenlive:clip_type", str(CLIP_TYPE_AUDIO)),
              ("kdenlive:file_size", str(clip.wav.stat().st_size)), ("kdenlive:file_hash", file_hash(clip.wav)),
              ("kdenlive:duration", str(frames)), ("kdenlive:orig_service", "avformat-novalidate")]
    if timeline:
        props += [("set.test_audio", "0"), ("set.test_image", "1")]
    body = "".join(f'  <property name="{k}">{html.escape(v, quote=False)}</property>\n' for k, v in props)
    return f' <producer id="{pid}" in="0" out="{frames - 1}">\n{body} </producer>\n'


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


def _props(el: ET.Element) -> dict[str, str]:
    return {p.get("name"): (p.text or "") for p in el.findall("property")}


class Project:
    """A parsed Kdenlive project and its text, for patching."""

    def __init__(self, text: str):
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
        tractors = [el for el in self.root if el.tag == "tractor"]
        if not tractors:
            raise CutscoreError("the Kdenlive project has no sequence (<tractor>)")
        self.main = tractors[-1]
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


def _without_music(proj: Project) -> str:
    """The project text with a previous cutscore track, its producers, mix and bin clips removed."""
    text = proj.text
    idx = proj.music_track_index()
    folder = proj.folder_id()
    drop: set[str] = set()
    if idx is not None:
        tractor = proj.elements[proj.main.findall("track")[idx].get("producer")]
        drop.add(tractor.get("id"))
        for t in tractor.findall("track"):
            pl = proj.elements.get(t.get("producer"))
            if pl is not None:
                drop.add(pl.get("id"))
                drop.update(e.get("producer") for e in pl.findall("entry"))
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
        raise CutscoreError("the project uses cutscore's music outside the 'cutscore music' track; "
                            "score the original project, or remove those copies first")
    spans = [(s, e) for tag, ident, s, e in _top_level(text) if ident in drop]
    for s, e in sorted(spans, reverse=True):
        text = text[:s] + text[e:]
    # main_bin entries of the dropped bin clips
    for pid in bin_drop:
        text = re.sub(rf'[ \t]*<entry producer="{re.escape(pid)}"[^>]*/>\n?', "", text)
    if idx is None:
        return text
    # the track line and its mix in the main tractor; later tracks' transitions shift down by one
    main_id = proj.main.get("id")
    span = next((s, e) for tag, ident, s, e in _top_level(text) if ident == main_id)
    body = text[span[0]:span[1]]
    tractor_id = proj.main.findall("track")[idx].get("producer")
    body = re.sub(rf'[ \t]*<track\b[^>]*producer="{re.escape(tractor_id)}"[^>]*/>\n?', "", body)

    def transition(m: re.Match) -> str:
        t = m.group(0)
        b = re.search(r'name="b_track">(\d+)<', t)
        if b and int(b.group(1)) == idx:
            return ""
        return re.sub(r'name="([ab])_track">(\d+)<',
                      lambda n: f'name="{n.group(1)}_track">{int(n.group(2)) - (int(n.group(2)) > idx)}<', t)

    body = re.sub(r'[ \t]*<transition\b.*?</transition>\n?', transition, body, flags=re.S)
    return text[:span[0]] + body + text[span[1]:]


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


def _add_bin_clips(text: str, clips: list[MusicClip], rate: float) -> tuple[str, dict[Path, tuple[int, int]]]:
    """Add one bin clip per distinct WAV; returns the text and {wav: (kdenlive:id, folder)}."""
    proj = Project(text)
    text, folder = _ensure_folder(text, _props(proj.bin), text)
    ids = proj.ids()
    kid = max(proj.next_kid(), folder + 1)
    producers, entries, out = [], [], {}
    for c in clips:
        if c.wav in out:
            continue
        pid = _fresh(ids, "cutscore_bin")
        producers.append(_producer_xml(pid, kid, folder, c, rate, timeline=False))
        frames = _media_props(c.wav, rate)[0]
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


def patch_project(text: str, clips: list[MusicClip]) -> str:
    """The project with the "cutscore music" track holding `clips` (any previous one replaced)."""
    proj = Project(text)
    rate = proj.rate
    text = _without_music(proj)
    text, kids = _add_bin_clips(text, clips, rate)
    proj = Project(text)
    ids = proj.ids()
    block, tr = _music_track(ids, clips, kids, rate)
    main_id = proj.main.get("id")
    main_start, main_end = next((s, e) for tag, ident, s, e in _top_level(text) if ident == main_id)
    body = _with_track(proj, text[main_start:main_end], ids, tr)
    return text[:main_start] + block + body + text[main_end:]


def _music_track(ids: set, clips: list[MusicClip], kids: dict, rate) -> tuple[str, str]:
    """The music's timeline producers, its two playlists and its track tractor (XML) and the tractor's id."""
    producers, entries, pos = [], [], 0
    for c in sorted(clips, key=lambda c: c.start):
        if c.length <= 0:
            continue
        kid, folder = kids[c.wav]
        pid = _fresh(ids, "cutscore_producer")
        producers.append(_producer_xml(pid, kid, folder, c, rate, timeline=True))
        if c.start > pos:
            entries.append(f'  <blank length="{c.start - pos}"/>\n')
        entries.append(f'  <entry producer="{pid}" in="0" out="{c.length - 1}">\n'
                       f'   <property name="kdenlive:id">{kid}</property>\n  </entry>\n')
        pos = c.start + c.length
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


def _with_track(proj: Project, body: str, ids: set, tr: str) -> str:
    """The main tractor's XML with the track `tr` above the audio tracks and a mix transition for it."""
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
    mix = (f'  <transition id="{_fresh(ids, "cutscore_transition")}">\n'
           f'   <property name="a_track">0</property>\n   <property name="b_track">{at}</property>\n'
           f'   <property name="mlt_service">mix</property>\n   <property name="kdenlive_id">mix</property>\n'
           f'   <property name="internal_added">237</property>\n   <property name="always_active">1</property>\n'
           f'   <property name="accepts_blanks">1</property>\n   <property name="sum">1</property>\n  </transition>\n')
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
    return body


def _is_audio(proj: Project, pid: str) -> bool:
    el = proj.elements.get(pid)
    if el is None or pid == "black_track":
        return False
    if _props(el).get("kdenlive:audio_track") == "1":
        return True
    return el.tag == "tractor" and bool(el.findall("track")) and all(t.get("hide") == "video" for t in el.findall("track"))


def replace_clip_wav(text: str, old: Path, new: Path, name: str) -> str:
    """A scored project where the music clip playing `old` plays `new` (a new bin clip; the old
    bin clip stays in the bin)."""
    proj = Project(text)
    rate = proj.rate
    take = re.compile(re.escape(old.name.rsplit("-v", 1)[0]) + r"-v\d+\.wav")  # any take of this segment
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
            if el is not None and res.parent == old.resolve().parent and take.fullmatch(res.name):
                targets.append(el.get("id"))
    if not targets:
        raise CutscoreError(f"the clip's music WAV ({old.name}) is not on the '{TRACK_NAME}' track")
    text, kids = _add_bin_clips(text, [MusicClip(0, 0, new, name)], rate)
    kid, folder = kids[new]
    for pid in targets:
        span = next((s, e) for tag, ident, s, e in _top_level(text) if ident == pid)
        text = text[:span[0]] + _producer_xml(pid, kid, folder, MusicClip(0, 0, new, name), rate, True) + text[span[1]:]
        # the entry names the bin clip too
        text = re.sub(rf'(<entry producer="{re.escape(pid)}"[^>]*>\s*<property name="kdenlive:id">)\d+(<)',
                      rf"\g<1>{kid}\g<2>", text)
    return text
