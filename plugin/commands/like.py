"""A reference the music follows (issue 45; torch-free, the timeline side): the temp music an editor cut
to, or any audio file, decoded, laid from the timeline's first frame and written beside the engine's
windows as one WAV (`like.wav`), which the engine reads window by window, encodes with the model's own
VAE and noises to the strength's level before sampling (engine/inference.py `reference`,
engine/model/sampling.py `from_reference`).

SOURCE is an audio file (WAV, FLAC, OGG: soundfile; anything else ffmpeg decodes), `track:NAME` (the
timeline's own audio track of that name as the timeline plays it: muted clips and tracks silent, FCP7
XML's Audio Levels and Kdenlive's volume effects, fades and track fader applied), or a take of the music itself (`--vary`). The sidecar records what it was
(LikeRecord, with the sha256 of the decoded samples as provenance): the user needs the rights to it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from core.errors import CutscoreError
from plugin.finish.render import resample, write_wav
from plugin.formats.dialogue import track_spans
from plugin.formats.timeline import music_track

LIKE_STRENGTH = 0.4  # the default strength, chosen from bench/bench_like.py (see the README)
VARY = {"subtle": 0.7, "strong": 0.45}  # `--vary`: the take itself as the reference at these strengths
SILENT_DBFS = -60.0  # a reference whose peak is below this is refused as silent
RIGHTS = ("the music follows {what} at strength {strength:g}: you need the rights to the reference "
          "(its sha256 is recorded in the sidecar)")


class LikeRecord(BaseModel):
    """The reference a score or a take followed."""

    model_config = ConfigDict(extra="forbid")

    source: str  # as given: a file, `track:NAME`, or `take:WAV` (--vary)
    path: str | None = None  # the file, absolute (None for a track or a take)
    track: str | None = None
    sha256: str  # of the decoded reference (float32 samples at sample_rate, interleaved)
    strength: float = Field(ge=0, le=1)
    sample_rate: int
    audio: str  # the decoded reference's WAV, a file name in the sidecar's engine folder
    start_s: float = 0.0  # the timeline second the WAV begins at (a take's window only, for --vary)

    def describe(self) -> str:
        what = f"track {self.track!r}" if self.track else self.source
        return f"{what} at strength {self.strength:g} (sha256 {self.sha256[:12]}…)"


def prepare(source: str, tl, strength: float, dest: Path, sample_rate: int, end_s: float,
            relink=None) -> LikeRecord:
    """Decode SOURCE for timeline `tl` (a plugin.formats.timeline.Timeline) into the WAV `dest` at sample_rate,
    at most end_s long (a longer reference is cut at the edit's end; a shorter one leaves the rest of
    the edit without). One-line refusals: a file that cannot be decoded, a track the timeline lacks,
    a silent reference, a strength outside 0..1."""
    if not 0.0 <= strength <= 1.0:
        raise CutscoreError(f"--like-strength {strength:g} is outside 0..1 (0: no reference, 1: the reference as it is)")
    track = source[len("track:"):] if source.startswith("track:") else None
    if track is not None:
        audio = track_audio(tl, track, sample_rate, end_s, relink)
        what, path = f"the timeline's track {track!r}", None
    else:
        path = Path(source).expanduser().resolve()
        audio = decode(path, sample_rate)
        what = str(path)
    return record(audio[:, :round(end_s * sample_rate)], what, source, str(path) if path else None, track, strength,
                  dest, sample_rate)


def record(audio: np.ndarray, what: str, source: str, path: str | None, track: str | None, strength: float,
           dest: Path, sample_rate: int, start_s: float = 0.0) -> LikeRecord:
    """The reference `audio` (channels, samples, from the timeline's second start_s) written to `dest`,
    refused when silent."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak <= 10 ** (SILENT_DBFS / 20):
        raise CutscoreError(f"{what}: the reference is silent (peak {20 * np.log10(max(peak, 1e-12)):.0f} dBFS) under "
                            "the edit: choose audio that plays there")
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    write_wav(dest, audio, sample_rate, subtype="FLOAT")
    sha = hashlib.sha256(audio.T.astype("<f4").tobytes()).hexdigest()
    return LikeRecord(source=source, path=path, track=track, sha256=sha, strength=strength, sample_rate=sample_rate,
                      audio=dest.name, start_s=start_s)


def decode(path: Path, sample_rate: int, start_s: float = 0.0, duration_s: float | None = None) -> np.ndarray:
    """An audio file (or a piece of it) as stereo float32 at sample_rate: soundfile where it reads the
    format, else ffmpeg (MP3 on an older libsndfile, AAC, a video's soundtrack)."""
    if not path.is_file():
        raise CutscoreError(f"{path}: no such file: give the reference's path (a WAV, FLAC, OGG or MP3 file), "
                            "or track:NAME for one of the timeline's audio tracks")
    import soundfile as sf

    try:
        info = sf.info(str(path))
        a = round(start_s * info.samplerate)
        b = info.frames if duration_s is None else min(info.frames, a + round(duration_s * info.samplerate))
        y, sr = sf.read(str(path), start=a, stop=max(a, b), dtype="float32", always_2d=True)
        y = y.T
    except (sf.LibsndfileError, RuntimeError, TypeError):
        y, sr = _ffmpeg(path, sample_rate, start_s, duration_s), sample_rate
    if y.shape[0] == 1:
        y = np.repeat(y, 2, axis=0)
    elif y.shape[0] > 2:
        y = np.stack([y[0::2].mean(0), y[1::2].mean(0)])
    return resample(np.ascontiguousarray(y, dtype=np.float32), sr, sample_rate)


def _ffmpeg(path: Path, sample_rate: int, start_s: float, duration_s: float | None) -> np.ndarray:
    if shutil.which("ffmpeg") is None:
        raise CutscoreError(f"{path}: cannot be decoded without ffmpeg (apt-get install -y ffmpeg), or give a WAV, "
                            "FLAC or OGG file")
    cmd = ["ffmpeg", "-v", "error", "-nostdin", "-ss", f"{start_s:.6f}", "-i", str(path)]
    cmd += ["-t", f"{duration_s:.6f}"] if duration_s is not None else []
    cmd += ["-vn", "-f", "f32le", "-ac", "2", "-ar", str(sample_rate), "pipe:1"]
    r = subprocess.run(cmd, capture_output=True)
    if r.returncode != 0 or not r.stdout:
        why = (r.stderr.decode("utf-8", "replace").strip().splitlines() or ["no audio stream"])[-1]
        raise CutscoreError(f"{path}: cannot be decoded as audio ({why}): give a WAV, FLAC, OGG or MP3 file")
    return np.frombuffer(r.stdout, "<f4").reshape(-1, 2).T.copy()


def track_audio(tl, name: str, sample_rate: int, end_s: float, relink=None) -> np.ndarray:
    """The timeline's audio track named `name` (or `A<n>`, the n-th audio track as the editor's
    application numbers them: FCP7 XML and EDL tracks have no names) as the timeline plays it, mixed
    to stereo."""
    track = find_track(tl, name)
    out = np.zeros((2, round(end_s * sample_rate)), np.float32)
    for span, clip in track_spans(tl, track, relink):
        a = round(span.start_s * sample_rate)
        if a >= out.shape[1]:
            continue
        y = decode(Path(span.media), sample_rate, span.source_start_s, span.duration_s) * clip_level(clip)
        avail = getattr(clip.media_reference, "available_range", None)
        t = (avail.start_time.to_seconds() if avail else 0.0) + span.source_start_s + np.arange(y.shape[1]) / sample_rate
        y *= volume_gains(clip, t)[None, :]
        n = min(y.shape[1], out.shape[1] - a, round(span.duration_s * sample_rate))
        out[:, a:a + n] += y[:, :n]
    out *= volume_gains(track, np.arange(out.shape[1]) / sample_rate)[None, :]
    return out


def track_sources(tl) -> list[str]:
    """`track:NAME` for each of the timeline's audio tracks but cutscore's own (`A<n>`, the n-th audio
    track, where it has no name): what the panel's Like list offers."""
    ours = music_track(tl.otio)
    return [f"track:{t.name or f'A{i + 1}'}" for i, t in enumerate(tl.otio.audio_tracks()) if t is not ours]


def find_track(tl, name: str):
    """The audio track `track:NAME` names: by its name, else `A<n>`; never cutscore's own."""
    tracks = tl.otio.audio_tracks()
    ours = music_track(tl.otio)
    track = next((t for t in tracks if t.name == name and t is not ours), None)
    if track is None and name[:1] in "Aa" and name[1:].isdigit() and 1 <= int(name[1:]) <= len(tracks):
        track = tracks[int(name[1:]) - 1]
    if track is None or track is ours:
        listed = ", ".join(f"A{i + 1}" + (f" {t.name!r}" if t.name else "") for i, t in enumerate(tracks)
                           if t is not ours) or "none"
        why = "is cutscore's own music" if track is ours and track is not None else f"has no audio track {name!r}"
        raise CutscoreError(f"{tl.path}: {why} (its audio tracks: {listed}): give --like track:NAME with one of them")
    return track


def clip_level(clip) -> float:
    """A clip's level as linear gain: FCP7 XML's Audio Levels filter (its `level` parameter, 1 = 0 dB;
    keyframed levels by their mean), as the fcp_xml adapter keeps it among the clip's effects; 1
    where the timeline says nothing (OTIO has no level of its own)."""
    gain = 1.0
    for effect in clip.effects:
        md = effect.metadata.get("fcp_xml") or {}
        if str(md.get("effectid", "")).lower() != "audiolevels":
            continue
        params = md.get("parameter")
        for p in params if isinstance(params, list) else [params]:
            if not hasattr(p, "get") or p.get("parameterid") != "level":
                continue
            keys = p.get("keyframe")
            keys = keys if isinstance(keys, list) else [keys] if keys is not None else []
            values = [float(k.get("value")) for k in keys if hasattr(k, "get") and k.get("value") is not None]
            gain *= float(np.mean(values)) if values else float(p.get("value", 1.0))
    return gain


def volume_gains(item, t: np.ndarray) -> np.ndarray:
    """The linear gain MLT's volume filters on a Kdenlive clip or track play at times `t` (the clip's
    source seconds; the track's timeline seconds): plugin/formats/kdenlive/adapter.py `_volumes` keeps them.
    Each filter acts inside its in..out only; their gains multiply."""
    gain = np.ones(len(t))
    for f in (item.metadata.get("kdenlive") or {}).get("volume") or []:
        x0, x1 = f["range"] if f["range"] else (0.0, np.inf)
        kt, kv = zip(*f["keys"])
        v = np.interp(t - x0, kt, kv)
        g = 10 ** (v / 20) if f["db"] else v
        gain *= np.where((t >= x0) & (t < x1), g, 1.0)
    return gain.astype(np.float32)
