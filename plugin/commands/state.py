"""The sidecar: cutscore's state next to a scored timeline, one typed, versioned record (pydantic,
like core/api.py) that every reader and writer goes through. It lives in `<OUT stem>.cutscore/`
(sidecar_dir) with the takes' WAVs, as STATE_FILE (kept beside the timeline because Resolve drops
unknown metadata), and is found again from the music clips' WAV paths.

The names it owns (STATE_FILE, TRACK_NAME, the take naming) are spelled in plugin/names.py, which
stays standard-library only for the one reader outside our Python: plugin/resolve.py inside
DaVinci Resolve's own interpreter (plugin/resolve.py SidecarView). A file of an older version loads through
an explicit upgrade (`upgrade`); a newer or damaged one is refused in one line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.api import ScoreRequest, Settings, WindowResult
from core.errors import CutscoreError
from core.files import atomic_write_text
from plugin.commands.like import LikeRecord
from plugin.finish import HitSync
from plugin.finish.beats import Beats
from plugin.finish.ducking import Ducking
from plugin.finish.ending import Ending
from plugin.formats import Format, writable
from plugin.formats.timeline import music_track, read_timeline, wav_path
from plugin.formats.writeback import Segment, write_timeline
from plugin.names import STATE_FILE, TRACK_NAME, take_pattern, take_stem, take_version

STATE_VERSION = 2  # 1: the untyped dict of the sessions before the typed sidecar (same keys)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), populate_by_name=True)


class ConformRecord(_Record):
    """What a conform did (plugin/commands/conform.py): the scored timeline and the new edit, the change list
    (as `cutscore conform --json` prints it), the old clips deleted, the music kept (new start, new
    end, old start; seconds) and the spans generated."""

    old: str
    new: str
    changes: list[dict]
    deleted: list[int]
    kept: list[list[float]]
    generated: list[list[float]]


class SegmentRecord(_Record):
    """The music under one picture item (a clip or a gap): its timeline range and its current take."""

    kind: Literal["clip", "gap"]
    index: int = Field(ge=0)
    name: str
    start: float  # frames at `rate`, from the timeline's start
    duration: float
    rate: float = Field(gt=0)
    wav: str  # the take the timeline plays now (plugin/names.py take_name)

    @property
    def range(self) -> TimeRange:
        return TimeRange(RationalTime(self.start, self.rate), RationalTime(self.duration, self.rate))

    @classmethod
    def of(cls, kind: str, index: int, name: str, rng: TimeRange, wav: str) -> SegmentRecord:
        return cls(kind=kind, index=index, name=name, start=rng.start_time.value, duration=rng.duration.value,
                   rate=rng.duration.rate, wav=wav)


class Regeneration(_Record):
    """One regenerate of a clip: the new take, the request's seed, the span sampled, what it replaced."""

    clip: int
    seed: int
    window: int
    span_s: list[float]
    replaced: str
    wav: str
    latents: str
    like: LikeRecord | None = None  # the reference this take followed, when not the score's (`--like`, `--vary`)


class Choice(_Record):
    """The editor chose another take of a clip (the panel's takes list)."""

    clip: int
    from_: str = Field(alias="from")
    to: str


class Sidecar(_Record):
    version: Literal[2] = STATE_VERSION
    timeline: str  # the input timeline, absolute
    scored: str  # the timeline score wrote, absolute
    model: str
    settings: Settings
    loudness_lufs: float
    gain_db: float
    sample_rate: int  # the WAVs' rate
    model_sample_rate: int  # the engine's windows' rate
    request: ScoreRequest  # what the engine was asked (a regenerate asks again from it)
    windows: list[WindowResult] = Field(min_length=1)
    hit_sync: HitSync | None = None  # what hit sync did (plugin/finish/__init__.py)
    ending: Ending | None = None  # how the music starts and ends (None: a version-1 score, which had none)
    ducking: Ducking | None = None  # the music's gain under the dialogue (None: no speech, or --duck off)
    beats: Beats | None = None  # the music's beats and downbeats (plugin/finish/beats.py; None: an earlier score)
    segments: list[SegmentRecord] = Field(min_length=1)
    history: list[Regeneration] = []
    choices: list[Choice] = []
    conform: ConformRecord | None = None  # this music conformed from an earlier score (plugin/commands/conform.py)
    like: LikeRecord | None = None  # the reference the score followed (plugin/commands/like.py; its WAV in engine/)

    def clips(self) -> list[SegmentRecord]:
        return [s for s in self.segments if s.kind == "clip"]

    def clip(self, index: int) -> SegmentRecord | None:
        return next((s for s in self.clips() if s.index == index), None)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True), indent=2)

    def save(self, side: Path) -> None:
        atomic_write_text(side / STATE_FILE, self.to_json())

    def summary(self, side: Path) -> dict:
        """What a scored timeline's metadata says of the music (the sidecar has the rest)."""
        return {"model": self.model, "seed": self.settings.seed, "settings": self.settings.model_dump(),
                "sidecar": str(side.resolve()), "loudness_lufs": self.loudness_lufs, "gain_db": round(self.gain_db, 3),
                "sample_rate": self.sample_rate,
                "windows": [{"start_s": w.start_s, "duration_s": w.duration_s, "latents": w.latents} for w in self.windows]}

    def rebase(self, old: Path, new: Path) -> None:
        """The engine wrote into the partial folder `old`; point the record at the final one."""
        for w in self.windows:
            w.audio = str(new / Path(w.audio).relative_to(old.resolve()))
            w.latents = str(new / Path(w.latents).relative_to(old.resolve()))
        self.request.output_dir = str(new.resolve())
        if self.request.like is not None:
            self.request.like.audio = str(new / Path(self.request.like.audio).relative_to(old.resolve()))


def upgrade(data: dict) -> dict:
    """A state file of an earlier version as this version reads it (explicit, one step a version)."""
    if data.get("version") == 1:  # untyped: the same keys; history and choices only once used
        data = {**data, "version": 2, "history": data.get("history", []), "choices": data.get("choices", [])}
    return data


def parse(text: str, path: Path) -> Sidecar:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CutscoreError(f"{path}: damaged ({e}); score the timeline again") from None
    if not isinstance(data, dict) or data.get("version") not in (1, STATE_VERSION):
        raise CutscoreError(f"{path}: written by another cutscore version; score the timeline again")
    try:
        return Sidecar.model_validate(upgrade(data))
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the record"
        raise CutscoreError(f"{path}: damaged ({where}: {first['msg']}); score the timeline again") from None


def sidecar_dir(out: Path) -> Path:
    return out.with_name(out.stem + ".cutscore")


def load_state(scored_path: str | Path, scored: otio.schema.Timeline | None = None) -> tuple[Path, Sidecar]:
    """(the sidecar folder, its record) of a scored timeline; every file it names is checked."""
    from plugin.formats.timeline import load_otio

    scored_path = Path(scored_path)
    side = find_sidecar(scored if scored is not None else load_otio(scored_path), scored_path)
    path = side / STATE_FILE
    if not path.is_file():
        raise CutscoreError(f"{path}: is not a file; keep the `.cutscore` folder as `cutscore score` wrote it")
    state = parse(path.read_text(), path)
    recorded = Path(state.request.output_dir)
    if recorded != (side / "engine").resolve() and not recorded.is_dir() and (side / "engine").is_dir():
        state.rebase(recorded, side / "engine")  # the folder was moved (another disk, another machine)
    for w in state.windows:
        for name in (w.audio, w.latents):
            if not Path(name).is_file():
                raise CutscoreError(f"{path}: names {name!r}, which is missing; keep the `.cutscore` folder "
                                    "whole, or score the timeline again")
    return side, state


class MusicReader:
    """A scored timeline's current music, read by sample ranges: its segments' WAVs tile it, and a
    range reads only the part of each WAV it covers (a conform keeps pieces of a long score without
    holding the score)."""

    def __init__(self, side: Path, state: Sidecar):
        import soundfile as sf

        self.sample_rate = state.sample_rate
        self._parts: list[tuple[int, int, Path]] = []  # (first sample, frames, WAV)
        at, self.channels = 0, 1
        for s in state.segments:
            info = sf.info(str(side / s.wav))
            self._parts.append((at, info.frames, side / s.wav))
            at, self.channels = at + info.frames, max(self.channels, info.channels)
        self.samples = at

    def read(self, a: int, b: int) -> np.ndarray:
        """Samples [a, b) of the music, (channels, b - a); silence outside it."""
        import soundfile as sf

        out = np.zeros((self.channels, max(0, b - a)), np.float32)
        for first, frames, wav in self._parts:
            lo, hi = max(a, first), min(b, first + frames)
            if lo < hi:
                y, _ = sf.read(str(wav), start=lo - first, stop=hi - first, dtype="float32", always_2d=True)
                out[:, lo - a:hi - a] = y.T if y.shape[1] == self.channels else np.repeat(y.T, self.channels, axis=0)
        return out

    def between(self, start_s: float, end_s: float) -> tuple[np.ndarray, float]:
        """The music from start_s to end_s (timeline seconds, clamped to the score) and the second it
        starts at: only the parts of the WAVs in the range are read."""
        a = min(self.samples, max(0, round(start_s * self.sample_rate)))
        b = min(self.samples, max(a, round(end_s * self.sample_rate)))
        return self.read(a, b), a / self.sample_rate


def music_of(scored_path: str | Path, loaded: tuple[Path, Sidecar] | None = None) -> tuple[np.ndarray, int, list[float]]:
    """The current music of a scored timeline (its segments' WAVs in order), its rate, and the
    predicted rhythm per second of the timeline. loaded: load_state's answer, when the caller has it."""
    side, state = loaded or load_state(scored_path)
    music = MusicReader(side, state)
    return music.read(0, music.samples), state.sample_rate, predicted_rhythm(state)


def predicted_rhythm(state: Sidecar) -> list[float]:
    """The predicted rhythm per second of the timeline (second t: the window second whose middle
    lies in [t, t+1), as engine/inference.py edited_rhythm maps the editor's curve; past an overlap
    the later window's)."""
    total = int(np.ceil(sum(s.duration for s in state.segments) / state.segments[0].rate - 1e-6))
    rhythm: list[float | None] = [None] * total
    for w in sorted(state.windows, key=lambda w: w.start_s):
        for k, v in enumerate(w.rhythm):
            t = int(np.floor(w.start_s + k + 0.5))
            if t < total and (k + 0.5 >= w.overlap_s or rhythm[t] is None):
                rhythm[t] = v
    return [0.0 if v is None else v for v in rhythm]


def segments_of(side: Path, state: Sidecar, fmt: Format) -> list[Segment]:
    """The music clips a scored timeline in `fmt` holds, from the sidecar: each segment's current take,
    the ducking over it (as the format's gain keyframes over a full-level WAV, or described beside a
    WAV that holds it) and its beat markers."""
    d = state.ducking
    # keys go out as keyframes when the WAVs are at full level; WAVs already ducked (an .otio score)
    # carry it themselves, and a format without keyframes (OTIO) records the keys beside them
    keys_out = d is not None and (not d.baked or not fmt.gain_keyframes)
    b = state.beats
    return [Segment(s.kind, s.index, s.name, s.range, side / s.wav,
                    d.clip_keys(s.range.start_time.to_seconds(), s.range.duration.to_seconds()) if keys_out else [],
                    bool(d and d.baked), b.marked(s.range) if b else [])
            for s in state.segments]


def export_scored(scored_path: str | Path, out_path: str | Path, force: bool = False) -> Path:
    """Write the current scored timeline in another format (by out_path's suffix)."""
    side, state = load_state(scored_path)
    out_path = Path(out_path)
    if out_path.exists() and not force:
        raise CutscoreError(f"{out_path}: already exists; choose another name")
    tl = read_timeline(state.timeline)
    write_timeline(out_path, tl.path, tl.otio, segments_of(side, state, writable(out_path, tl.path)),
                   state.summary(side), tl.duration.rate)
    return out_path


def find_sidecar(scored: otio.schema.Timeline, scored_path: Path) -> Path:
    """The `.cutscore` folder of a scored timeline: found from its music clips' WAV paths (which
    survive Resolve and Kdenlive), else beside the timeline under the name `score` gave it (a
    .otioz bundle carries copies of the WAVs inside the archive)."""
    track = music_track(scored)
    beside = sidecar_dir(scored_path)
    if track is None:
        raise CutscoreError(f"{scored_path}: has no '{TRACK_NAME}' track; score it first with `cutscore score`")
    for clip in track.find_clips():
        p = wav_path(clip)
        if p is not None and (p.parent / STATE_FILE).exists():
            return p.parent
    if (beside / STATE_FILE).exists():
        return beside
    raise CutscoreError(f"{scored_path}: the music's folder with {STATE_FILE} was not found next to its WAVs; "
                        "keep the `.cutscore` folder beside the WAVs")


def takes_of(scored_path: str | Path, loaded: tuple[Path, Sidecar] | None = None) -> dict[int, dict]:
    """Per clip index of a scored timeline: its name, every take's WAV name in order (v1 is the
    score's, then one per regenerate) and the take the timeline plays now. loaded: as music_of."""
    side, state = loaded or load_state(scored_path)
    by_stem: dict[str, list[str]] = {}  # the folder listed once (a long score has thousands of takes)
    for p in side.glob("*.wav"):
        by_stem.setdefault(take_stem(p.name), []).append(p.name)
    out = {}
    for seg in state.clips():
        pattern = take_pattern(seg.wav)
        takes = sorted((n for n in by_stem.get(take_stem(seg.wav), []) if pattern.fullmatch(n)), key=take_version)
        out[seg.index] = {"name": seg.name, "takes": takes, "current": seg.wav}
    return out
