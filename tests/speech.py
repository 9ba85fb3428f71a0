"""Real speech for the ducking tests: sentences spoken by espeak-ng (Debian's speech synthesiser),
placed at known times on audio tracks of test timelines over the demo's media (the shared
pyscenedetect test video, licence in resources/demo/).

The known speech regions are measured on the synthesiser's own output (where its 20 ms level is
above -45 dBFS, pauses under 300 ms bridged), not taken from cutscore's detector.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import opentimelineio as otio
import soundfile as sf
from opentimelineio.opentime import RationalTime, TimeRange

from tests.conftest import ROOT

DEMO = ROOT / "resources" / "demo" / "demo.otio"
SR = 48000
LINES = [  # (timeline seconds, sentence) on the dialogue track
    (1.5, "The tide came in over the rocks."),
    (6.5, "We waited for the boat until dark."),
    (12.0, "Nobody said a word on the way home."),
]
MUTED = (9.0, "This scratch line is on a muted track.")  # on a disabled track: must not duck


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def say(text: str, path: Path) -> Path:
    """The sentence as a 48 kHz mono WAV (espeak-ng, then resampled)."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-s", "165", "-w", str(raw), text], check=True, capture_output=True)
    y, sr = sf.read(str(raw), dtype="float32")
    raw.unlink()
    import soxr

    y = soxr.resample(y, sr, SR).astype(np.float32) * 0.7
    sf.write(str(path), y, SR, subtype="PCM_16")
    return path


def active(y: np.ndarray, sr: int, floor_db: float = -45.0, bridge_s: float = 0.3) -> list[tuple[float, float]]:
    """Where a signal is audible: 20 ms frames above floor_db, gaps under bridge_s joined."""
    hop = int(0.02 * sr)
    frames = len(y) // hop
    rms = np.sqrt(np.mean(np.square(y[: frames * hop].reshape(frames, hop)), axis=1))
    on = 20 * np.log10(np.maximum(rms, 1e-9)) > floor_db
    regions: list[list[float]] = []
    for i in np.flatnonzero(on):
        t = i * hop / sr
        if regions and t - regions[-1][1] <= bridge_s:
            regions[-1][1] = t + hop / sr
        else:
            regions.append([t, t + hop / sr])
    return [(a, b) for a, b in regions]


def lines(folder: Path) -> tuple[list[tuple[float, Path]], Path, list[tuple[float, float]]]:
    """The spoken lines as WAVs, the muted one, and the known speech regions in timeline seconds."""
    placed, known = [], []
    for i, (at, text) in enumerate(LINES):
        wav = say(text, folder / f"line{i}.wav")
        placed.append((at, wav))
        y, sr = sf.read(str(wav), dtype="float32")
        known += [(at + a, at + b) for a, b in active(y, sr)]
    muted = say(MUTED[1], folder / "scratch.wav")
    return placed, muted, known


def _audio_clip(wav: Path, rate: float, name: str) -> otio.schema.Clip:
    n = sf.info(str(wav)).frames / SR
    dur = RationalTime(int(n * rate), rate)
    ref = otio.schema.ExternalReference(target_url=str(wav.resolve()),
                                        available_range=TimeRange(RationalTime(0, rate), RationalTime(int(n * rate) + 1, rate)))
    return otio.schema.Clip(name=name, media_reference=ref, source_range=TimeRange(RationalTime(0, rate), dur))


def _track(name: str, placed: list[tuple[float, Path]], rate: float) -> otio.schema.Track:
    track = otio.schema.Track(name=name, kind=otio.schema.TrackKind.Audio)
    pos = 0
    for at, wav in placed:
        start = int(round(at * rate))
        if start > pos:
            track.append(otio.schema.Gap(source_range=TimeRange(RationalTime(0, rate), RationalTime(start - pos, rate))))
        clip = _audio_clip(wav, rate, wav.stem)
        track.append(clip)
        pos = start + int(clip.source_range.duration.value)
    return track


def dialogue_timeline(folder: Path) -> tuple[Path, list[tuple[float, float]]]:
    """The demo edit (20 s, five shots) with a dialogue track of three lines and a muted track with
    a fourth, as .otio; and the known speech regions."""
    placed, muted, known = lines(folder)
    tl = otio.adapters.read_from_file(str(DEMO))
    for c in tl.find_clips():
        c.media_reference.target_url = str((DEMO.parent / c.media_reference.target_url).resolve())
    rate = tl.video_tracks()[0][0].source_range.duration.rate
    tl.tracks.append(_track("Dialogue", placed, rate))
    scratch = _track("Scratch VO", [(MUTED[0], muted)], rate)
    scratch.enabled = False
    tl.tracks.append(scratch)
    out = folder / "dialogue.otio"
    otio.adapters.write_to_file(tl, str(out))
    return out, known


def dialogue_project(folder: Path) -> tuple[Path, list[tuple[float, float]]]:
    """tests/fixtures/timelines/short_edit.kdenlive (12 s, 30000/1001) with a "Dialogue" audio track
    holding the first two lines as Kdenlive bin clips, and the known speech regions. The track is
    written by cutscore's Kdenlive writer (whose tracks the real Kdenlive 22.12 and 26.08 keep, see
    tests/test_kdenlive*.py) and renamed, so it is an editor's track like any other."""
    from plugin.formats.kdenlive.writer import patch_project
    from plugin.formats.writeback import Segment
    from plugin.names import BIN_NAME, TRACK_NAME
    from tests.conftest import FIXTURES

    placed, _muted, known = lines(folder)
    placed, known = placed[:2], [k for k in known if k[0] < 10]
    shutil.copy(ROOT / "resources" / "demo" / "testvideo.mp4", folder)
    rate = 30000 / 1001
    text = (FIXTURES / "timelines" / "short_edit.kdenlive").read_text(encoding="utf-8")
    clips = [Segment("clip", i, f"line {i}", TimeRange(RationalTime(int(round(at * rate)), rate),
                                                       RationalTime(int(sf.info(str(w)).frames / SR * rate), rate)), w)
             for i, (at, w) in enumerate(placed)]
    text = patch_project(text, clips)
    text = (text.replace(f">{TRACK_NAME}<", ">Dialogue<").replace(f"{TRACK_NAME}: ", "").replace(f">{BIN_NAME}<", ">Voice<")
            .replace("cutscore_", "voice_"))
    out = folder / "dialogue.kdenlive"
    out.write_text(text, encoding="utf-8")
    return out, known


NEW_LINE = "A gull cried over the empty harbour."


def with_insert(src: Path, folder: Path) -> tuple[Path, float, list[tuple[float, float]]]:
    """`dialogue_timeline`'s edit re-edited: 3 s of footage the edit never used inserted before its
    third shot ("rock", at 9.009 s), everything after rippled, the dialogue moved with it, and a new
    line spoken over the insert. Returns the new .otio, the ripple (s) and the new line's known speech."""
    tl = otio.adapters.read_from_file(str(src))
    v = tl.video_tracks()[0]
    clips = [c for c in v if isinstance(c, otio.schema.Clip)]
    rate = clips[0].source_range.duration.rate
    insert = clips[0].clone()
    insert.name = "insert"
    insert.source_range = TimeRange(RationalTime(round(40 * rate), rate), RationalTime(90, rate))
    at, shift = clips[2].range_in_parent().start_time.to_seconds(), 90 / rate
    v.insert(v.index(clips[2]), insert)
    placed, _muted, _known = lines(folder)
    new = say(NEW_LINE, folder / "new_line.wav")
    moved = [(t + shift if t >= at else t, w) for t, w in placed] + [(at + 0.5, new)]
    dialogue = next(t for t in tl.tracks if t.name == "Dialogue")
    tl.tracks[tl.tracks.index(dialogue)] = _track("Dialogue", sorted(moved), rate)
    y, sr = sf.read(str(new), dtype="float32")
    start = round((at + 0.5) * rate) / rate
    out = folder / "dialogue-insert.otio"
    otio.adapters.write_to_file(tl, str(out))
    return out, shift, [(start + a, start + b) for a, b in active(y, sr)]
