"""What several test modules share (no test module imports another): an in-test engine for the
plugin's unit tests, the Kdenlive fixtures with their media, readers of MLT XML written for the tests
(independent of cutscore's own reading code), and OTIO's own view of a timeline's cuts."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest
from opentimelineio.opentime import RationalTime, TimeRange

from core.api import JobResult, JobStatus, WindowResult
from tests import kdenlive_app, kdenlive_root
from tests.conftest import FIXTURES, ROOT

TL = FIXTURES / "timelines"


class SineEngine:
    """An in-test EngineClient: each window is a sine whose pitch is the window's index, so the
    stitching can be checked sample by sample. (Plugin unit tests only; the real engine is below.)"""

    name = "sine"

    def __init__(self, sr=8000):
        self.sr, self.requests = sr, []

    def submit(self, request, key=None):
        import soundfile as sf

        self.requests.append(request)
        out = Path(request.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        wins = []
        for i, w in enumerate(request.windows):
            n = int(round(w.duration_s * self.sr))
            t = np.arange(n) / self.sr
            audio = np.stack([0.3 * np.sin(2 * np.pi * (110 + 55 * i) * t)] * 2).astype(np.float32)
            wav = out / f"w{i}.wav"
            sf.write(wav, audio.T, self.sr, subtype="FLOAT")
            np.save(out / f"w{i}.npy", np.zeros((1, 4, 10), np.float32))
            wins.append(WindowResult(index=i, start_s=w.start_s, duration_s=w.duration_s, overlap_s=w.overlap_s,
                                     audio=str(wav), latents=str(out / f"w{i}.npy"), rhythm=[0.0], seed=i))
        self._result = JobResult(kind="score", model="sine", sample_rate=self.sr, windows=wins)
        return "job"

    def wait(self, job_id, on_progress=None, timeout=None):
        st = JobStatus(id=job_id, state="done", stage="done", progress=1.0, result=self._result)
        if on_progress:
            on_progress(st)
        return st


class RecordingClient:
    """A real engine, with the requests sent to it kept for the test to read."""

    def __init__(self, engine):
        self.engine, self.requests = engine, []

    def submit(self, request, key=None):
        self.requests.append(request)
        return self.engine.submit(request, key)

    def __getattr__(self, name):
        return getattr(self.engine, name)


def otio_cuts(tl: otio.schema.Timeline) -> list:
    """Independently: OTIO's flatten, then the running sum of the items' own durations; a nested
    composition (an FCPX compound clip, an Avid nest) adds its own cuts, found the same way inside it,
    that fall within the part the outer track shows."""
    cuts, end = _flat_cuts([t for t in tl.video_tracks() if t.enabled])
    return sorted(set(round(c, 9) for c in cuts if 0 < c < end))


def _flat_cuts(tracks: list) -> tuple[list, float]:
    flat = otio.algorithms.flatten_stack(tracks) if len(tracks) > 1 else tracks[0]
    pos, cuts = 0.0, []
    items = [i for i in flat if not isinstance(i, otio.schema.Transition)]
    for k, item in enumerate(items):
        if isinstance(item, (otio.schema.Stack, otio.schema.Track)) and item.enabled:
            inner = item.clone()
            inner.source_range = None
            shown = item.trimmed_range()
            a, b = shown.start_time.to_seconds(), shown.end_time_exclusive().to_seconds()
            nested = ([t for t in inner if isinstance(t, otio.schema.Track) and t.kind == otio.schema.TrackKind.Video
                       and t.enabled] if isinstance(inner, otio.schema.Stack) else [inner])
            if nested:
                cuts += [pos + c - a for c in _flat_cuts(nested)[0] if a < c < b]
        pos += item.duration().to_seconds()
        if k < len(items) - 1:  # the boundaries between items; the last item's end is the edit's
            cuts.append(pos)
    return cuts, flat.duration().to_seconds()


def kdenlive_project(tmp_path: Path, name: str) -> Path:
    """A fixture copied into tmp_path with its media; Kdenlive 26.08 writes media paths relative to
    the document's `root`, which is set to the copy's folder (as Kdenlive does when a project moves)."""
    dst = tmp_path / name
    text = (TL / name).read_text(encoding="utf-8")
    dst.write_text(re.sub(r'(<mlt\b[^>]*\broot=")[^"]*"', lambda m: f'{m.group(1)}{tmp_path}"', text, count=1),
                   encoding="utf-8")
    shutil.copy(ROOT / "resources" / "demo" / "testvideo.mp4", tmp_path)
    kdenlive_app.make_media(dst)
    # the project's storage folder (thumbnails, proxies) moves with it; 26.08 asks for it otherwise
    storage = re.search(r'name="kdenlive:docproperties.storagefolder">([^<]+)<', text)
    if storage:
        (tmp_path / storage.group(1)).mkdir(exist_ok=True)
    return dst


def props(el):
    return {p.get("name"): p.text or "" for p in el.findall("property")}


def mlt_rate(root: ET.Element) -> float:
    prof = root.find("profile")
    return int(prof.get("frame_rate_num")) / int(prof.get("frame_rate_den", "1"))


def mlt_frames(value: str, rate: float) -> int:
    """MLT time: frames, or a clock ("00:00:05.000") as Kdenlive 26.08 writes it."""
    if ":" not in value:
        return int(value)
    h, m, sec = value.split(":")
    return round((int(h) * 3600 + int(m) * 60 + float(sec)) * rate)


def kdenlive26_prefix():
    reason = kdenlive_root.why_not()
    if reason:
        pytest.fail(f"Kdenlive 26.08 root: {reason}")  # CI must run these: fail, in one line
    return kdenlive_root.prefix()


def tone(path: Path, seconds: float = 10.0, freq: float = 440.0, amp: float = 0.4, sr: int = 48000,
         channels: int = 2) -> Path:
    """A sine WAV."""
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, np.stack([amp * np.sin(2 * np.pi * freq * t)] * channels).T, sr)
    return path


def temp_track_timeline(tmp_path: Path) -> Path:
    """FCP7 XML (the fcp_xml adapter's writing, then two lines an editor's application writes): a
    picture clip over 6 s, and an audio track of three 2 s clips of one 440 Hz tone: A as it is, B with
    Audio Levels at 0.5 (-6 dB), C disabled (muted)."""
    wav = tone(tmp_path / "tone.wav")
    tl = otio.schema.Timeline("temp")
    v, a = otio.schema.Track("V1", kind="Video"), otio.schema.Track("", kind="Audio")
    vid = otio.schema.ExternalReference(target_url=(ROOT / "resources" / "demo" / "testvideo.mp4").as_uri(),
                                        available_range=TimeRange(RationalTime(0, 25), RationalTime(500, 25)))
    v.append(otio.schema.Clip("pic", media_reference=vid, source_range=TimeRange(RationalTime(0, 25), RationalTime(150, 25))))
    for i, name in enumerate("ABC"):
        ref = otio.schema.ExternalReference(target_url=wav.as_uri(), available_range=TimeRange(RationalTime(0, 25), RationalTime(250, 25)))
        a.append(otio.schema.Clip(name, media_reference=ref, source_range=TimeRange(RationalTime(25 * i, 25), RationalTime(50, 25))))
    tl.tracks.extend([v, a])
    path = tmp_path / "temp.xml"
    otio.adapters.write_to_file(tl, str(path), adapter_name="fcp_xml")
    text = path.read_text()
    levels = ("<filter><effect><name>Audio Levels</name><effectid>audiolevels</effectid>"
              "<effectcategory>audiolevels</effectcategory><effecttype>audiolevels</effecttype>"
              "<mediatype>audio</mediatype><parameter><parameterid>level</parameterid><name>Level</name>"
              "<valuemin>0</valuemin><valuemax>3.98109</valuemax><value>0.5</value></parameter></effect></filter>")
    assert text.count("<name>B</name>") == 1 and text.count("<name>C</name>") == 1
    text = text.replace("<name>B</name>", "<name>B</name>" + levels).replace("<name>C</name>",
                                                                             "<name>C</name><enabled>FALSE</enabled>")
    path.write_text(text)
    return path


def kdenlive_temp_track(tmp_path: Path) -> Path:
    """A Kdenlive 22.12 project (tests/fixtures/timelines/short_edit.kdenlive, 12 s at 30000/1001)
    with an audio track "Temp" of three 2.5 s clips of one 440 Hz tone at 3 s intervals, written by
    cutscore's Kdenlive writer (whose tracks the real Kdenlive keeps) and renamed, then given what an
    editor adds in Kdenlive: the first clip disabled (its producer's `set.test_audio`, which melt plays
    as silence); on the second clip the Volume effect keyframed from -12 dB to 0 over its first 2 s; the third clip starting 1 s into its file with a 1 s fade in (MLT's gain 0 -> end 1 over
    the filter's in..out, source frames); the track's mixer fader at -3 dB."""
    from plugin.formats.kdenlive.writer import patch_project
    from plugin.formats.writeback import Segment
    from plugin.names import BIN_NAME, TRACK_NAME

    wav = tone(tmp_path / "tone.wav")
    shutil.copy(ROOT / "resources" / "demo" / "testvideo.mp4", tmp_path)
    rate = 30000 / 1001
    text = (TL / "short_edit.kdenlive").read_text(encoding="utf-8")
    text = patch_project(text, [Segment("clip", i, f"t{i}", TimeRange(RationalTime(round(i * 3 * rate), rate),
                                                                      RationalTime(round(2.5 * rate), rate)), wav)
                                for i in range(3)])
    text = (text.replace(f">{TRACK_NAME}<", ">Temp<").replace(f"{TRACK_NAME}: ", "").replace(f">{BIN_NAME}<", ">Temp music<")
            .replace("cutscore_", "temp_"))
    text = text.replace('<entry producer="temp_producer2" in="0" out="74">', '<entry producer="temp_producer2" in="30" out="104">')

    def filt(fid: str, props: dict, span: str = "") -> str:
        body = "".join(f'<property name="{k}">{v}</property>' for k, v in {"mlt_service": "volume", **props}.items())
        return f'<filter id="{fid}"{span}>{body}</filter>'

    def inside(text: str, start: str, end: str, what: str) -> str:
        i = text.index(start)
        j = text.index(end, i)
        return text[:j] + what + text[j:]

    text = inside(text, '<producer id="temp_producer0"', "</producer>", '<property name="set.test_audio">1</property>')
    text = inside(text, '<entry producer="temp_producer1"', "</entry>",
                  filt("t1", {"kdenlive_id": "volume", "level": "00:00:00.000=-12;00:00:02.000=0"}))
    text = inside(text, '<entry producer="temp_producer2"', "</entry>",
                  filt("t2", {"kdenlive_id": "fadein", "gain": "0", "end": "1"}, ' in="30" out="59"'))
    text = inside(text, '<tractor id="temp_tractor0"', "</tractor>", filt("t3", {"internal_added": "237", "level": "-3"}))
    out = tmp_path / "temp.kdenlive"
    out.write_text(text, encoding="utf-8")
    return out
