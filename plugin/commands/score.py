"""Scoring a timeline (torch-free; the model is reached only through an EngineClient):
timeline -> plan -> engine (windows) -> stitch, resample, exact length, loudness -> hit sync -> one
24-bit WAV per picture item in `<OUT stem>.cutscore/` -> a NEW timeline with the "cutscore music"
track. cutscore's state (model, seed, settings, windows, latents, gain) goes to the sidecar
(plugin/commands/state.py, typed) and is summarised under metadata["cutscore"]. docs/ARCHITECTURE.md follows
one score through every module.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from opentimelineio.opentime import RationalTime, TimeRange
from pydantic import Field

from core.api import AudioSpan, ClipSpan, JobStatus, Like, ScoreRequest, Settings, WindowResult, WindowSpec
from core.client import EngineClient, run_job
from core.errors import CutscoreError
from core.files import InUse, exclusive
from core.paths import DEMO_MODEL
from plugin.commands.like import LIKE_STRENGTH, LikeRecord, prepare
from plugin.commands.plan import Plan, make_plan
from plugin.commands.state import SegmentRecord, Sidecar, segments_of, sidecar_dir
from plugin.finish import Finishing
from plugin.finish.beats import BeatMarkers, Beats
from plugin.finish.ducking import ATTACK_S, DUCK_DB, RELEASE_S, Ducking
from plugin.finish.ending import Ending, EndingKind
from plugin.finish.render import (
    StitchWindow,
    render_music,
    to_samples,
    write_wav,
)
from plugin.formats import writable
from plugin.formats.dialogue import dialogue_spans
from plugin.formats.picture import unique_sorted
from plugin.formats.timeline import Limits, Timeline, read_timeline
from plugin.formats.writeback import write_timeline
from plugin.names import STATE_FILE, take_name


class ScoreOptions(Settings):
    """What a score is asked: the generation Settings (core/api.py: seed, steps, guidance, sampler,
    at_cuts, continuation; None = the model's own, declared there once) and the score's own."""

    model: str | None = None  # a folder or preset; None: the demo model, else debug (default_model)
    loudness: float = Field(default=-14.0, ge=-70, le=0)  # integrated loudness target, LUFS
    sample_rate: int = Field(default=48000, ge=8000, le=192000)  # the WAVs' rate
    force: bool = False
    hits_s: list[float] = Field(default_factory=list)  # extra hit points (Resolve's markers), seconds
    hit_sync: bool = True  # move the nearest strong onset onto each cut and hit point (plugin/finish/hitsync.py)
    ending: EndingKind = "ring"  # how the music ends on the last frame (plugin/finish/ending.py)
    tail_s: float = Field(default=0.0, ge=0, le=30)  # a ring may run this far past the last frame (--tail)
    sequence: str | None = None  # a Kdenlive project's sequence other than the active one (name or uuid)
    # ducking under the timeline's dialogue (plugin/finish/ducking.py): the depth in dB, None = off
    duck_db: float | None = Field(default=DUCK_DB, ge=-60, lt=0)
    duck_attack_s: float = Field(default=ATTACK_S, ge=0, le=5)
    duck_release_s: float = Field(default=RELEASE_S, ge=0, le=5)
    # the editor's rhythm (plugin/commands/rhythm.py): a file (`--rhythm FILE`), or one value per timeline
    # second (the panel's energy lane; None where the prediction stands); checked against the model
    rhythm_file: str | None = None
    rhythm: list[float | None] = Field(default_factory=list)
    beat_markers: BeatMarkers = "downbeats"  # which of the music's beats are markers on its clips (plugin/finish/beats.py)
    # a reference the music follows (plugin/commands/like.py): an audio file or `track:NAME`; None: none
    like: str | None = None
    like_strength: float = Field(default=LIKE_STRENGTH, ge=0, le=1)

    def settings(self) -> Settings:
        return Settings(**self.model_dump(include=set(Settings.model_fields)))


@dataclass
class ScoreResult:
    """What a score wrote and heard: the command line and the panel report it."""

    out: Path  # the scored timeline
    sidecar: Path  # its `.cutscore` folder
    segments: int  # music WAVs written (one per picture clip or gap)
    model: str
    gain_db: float  # applied to reach the loudness target
    notices: list[str]  # warnings for the user (offline media, the model's)
    cuts_s: list[float]
    music: np.ndarray  # (channels, samples) the whole score at sample_rate
    sample_rate: int
    windows: list[WindowResult]
    ducking: Ducking | None = None  # the envelope under the speech found (None: none found, or --duck off)
    beats: Beats | None = None  # the music's beats and downbeats (markers when beats.markers)
    like: LikeRecord | None = None  # the reference followed (`--like`)


def default_model() -> tuple[str, str | None]:
    """(model, notice): the shipped demo model when it exists, else the debug model."""
    if (DEMO_MODEL / "config.json").exists():
        return str(DEMO_MODEL), None
    return "debug", ("no trained model is installed: using the random `debug` model, whose music is noise-like; "
                     "see README.md, 'Weights'")


def build_request(plan: Plan, model: str, settings: Settings, output_dir: Path,
                  dialogue: list[AudioSpan] | None = None, rhythm: list[float | None] | None = None,
                  like: LikeRecord | None = None) -> ScoreRequest:
    tl = plan.timeline
    clips = [ClipSpan(index=c.index, name=c.name, start_s=c.range.start_time.to_seconds(),
                      duration_s=c.range.duration.to_seconds(),
                      media=str(c.media_path) if c.media_path else None,
                      source_start_s=c.file_range.start_time.to_seconds()) for c in tl.clips]
    return ScoreRequest(model=model, duration_s=plan.windows[-1].end.to_seconds(), clips=clips,
                        cuts_s=[c.to_seconds() for c in tl.cuts], hits_s=[h.to_seconds() for h in tl.hits],
                        windows=[WindowSpec(start_s=w.start.to_seconds(), duration_s=w.duration.to_seconds(),
                                            overlap_s=w.overlap.to_seconds()) for w in plan.windows],
                        settings=settings, output_dir=str(output_dir.resolve()), dialogue=dialogue or [],
                        rhythm=rhythm or [], like=like_request(like, output_dir))


def like_request(like: LikeRecord | None, engine_dir: Path) -> Like | None:
    """What the engine is told of a reference (its WAV in the engine's folder); None at strength 0,
    where the music is what it is without one."""
    if like is None or like.strength <= 0:
        return None
    return Like(audio=str((engine_dir / like.audio).resolve()), strength=like.strength, start_s=like.start_s)


def picture_segments(tl: Timeline, tail: RationalTime | None = None) -> list[tuple[str, int, str, TimeRange]]:
    """Every item of the flattened picture in order: (kind, index, name, range); a tail past the
    picture's end (`--tail`) is one more gap, named "tail"."""
    items, pos, gap_n = [], RationalTime(0, tl.duration.rate), 0
    for c in tl.clips:
        if c.range.start_time > pos:
            items.append(("gap", gap_n, f"gap {gap_n}", TimeRange(pos, c.range.start_time - pos)))
            gap_n += 1
        items.append(("clip", c.index, c.name, c.range))
        pos = c.range.end_time_exclusive()
    if pos < tl.duration:
        items.append(("gap", gap_n, f"gap {gap_n}", TimeRange(pos, tl.duration - pos)))
        gap_n += 1
    if tail is not None and tail.value > 0:
        items.append(("gap", gap_n, "tail", TimeRange(tl.duration, tail)))
    return items


def _windows_audio(results: list[WindowResult]) -> list[StitchWindow]:
    return [StitchWindow(w.start_s, w.duration_s, w.overlap_s, Path(w.audio))  # read as they are stitched
            for w in sorted(results, key=lambda r: r.start_s)]


def _cut(music: np.ndarray, r: TimeRange, sr: int) -> np.ndarray:
    return music[:, to_samples(r.start_time, sr):to_samples(r.end_time_exclusive(), sr)]


def score_timeline(timeline_path: str | Path, out_path: str | Path, client: EngineClient, opts: ScoreOptions,
                   rate: float | None = None, relink: str | None = None,
                   on_progress: Callable[[JobStatus], None] | None = None, limits: Limits = Limits()) -> ScoreResult:
    timeline_path, out_path = Path(timeline_path), Path(out_path)
    _check_paths(timeline_path, out_path, opts.force)
    try:
        with exclusive(sidecar_dir(out_path)):  # the sidecar is what two writers would tear apart
            return _score(timeline_path, out_path, client, opts, rate, relink, on_progress, limits)
    except InUse:
        raise CutscoreError(f"{out_path}: in use: another cutscore is writing this output now; wait for it to "
                            "finish, or choose another -o") from None


def _score(timeline_path: Path, out_path: Path, client: EngineClient, opts: ScoreOptions, rate, relink,
           on_progress, limits: Limits) -> ScoreResult:
    side = _check_paths(timeline_path, out_path, opts.force)  # again: the holder before us may have written it
    tl = read_timeline(timeline_path, rate=rate, relink=relink, limits=limits, sequence=opts.sequence)
    if opts.hits_s:
        extra = [RationalTime.from_seconds(s, tl.duration.rate).round() for s in opts.hits_s]
        tl.hits = unique_sorted([h for h in tl.hits + extra if h <= tl.duration])
    notices = list(tl.warnings)
    model, notice = (opts.model, None) if opts.model is not None else default_model()
    notices += [notice] if notice else []
    plan, tail = _plan(tl, model, opts, timeline_path)
    end = tl.duration + tail
    rhythm = editor_rhythm(opts.rhythm_file, opts.rhythm, end.to_seconds(), model)
    work = side.with_name(side.name + ".partial")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    try:
        dialogue = dialogue_spans(tl, relink) if opts.duck_db is not None else []
        like = None
        if opts.like:
            (work / "engine").mkdir()
            like = prepare(opts.like, tl, opts.like_strength, work / "engine" / "like.wav", opts.sample_rate,
                           end.to_seconds(), relink)
        req = build_request(plan, model, opts.settings(), work / "engine", dialogue, rhythm, like)
        result = run_job(client, req, on_progress)
        notices.extend(result.warnings)
        music = render_music(_windows_audio(result.windows), result.sample_rate, end, opts.sample_rate)
        chain = _finishing(tl, opts, tail, _ducking(opts, result.speech_s, end.to_seconds(), out_path))
        music = chain.run(music)
        gain, sync, ending, ducking, beats = chain.gain_db, chain.hit_sync, chain.ending, chain.ducking, chain.beats
        records = write_segments(tl, music, opts.sample_rate, work, tail)
        state = Sidecar(timeline=str(timeline_path.resolve()), scored=str(out_path.resolve()), model=model,
                        settings=req.settings, loudness_lufs=opts.loudness, gain_db=gain, sample_rate=opts.sample_rate,
                        model_sample_rate=result.sample_rate, request=req, windows=result.windows, hit_sync=sync,
                        ending=ending, ducking=ducking, beats=beats, like=like,
                        segments=records)
        _commit_sidecar(state, work, side)
        fmt = writable(out_path, timeline_path)
        write_timeline(out_path, timeline_path, tl.otio, segments_of(side, state, fmt), state.summary(side),
                       tl.duration.rate)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return ScoreResult(out=out_path, sidecar=side, segments=len(records), model=model, gain_db=gain, notices=notices,
                       cuts_s=[c.to_seconds() for c in tl.cuts], music=music, sample_rate=opts.sample_rate,
                       windows=state.windows, ducking=ducking, beats=beats, like=like)


def _finishing(tl: Timeline, opts: ScoreOptions, tail: RationalTime, ducking: Ducking | None) -> Finishing:
    """The finishing chain of this score (plugin/finish/__init__.py): its cuts and hit points to sync, its
    ending, the loudness to measure, the ducking planned from the speech found, the beats to track."""
    targets = sorted({round(t.to_seconds(), 6) for t in tl.cuts + tl.hits}) if opts.hit_sync else []
    ending = Ending.plan(opts.ending, tl.duration.to_seconds(), 1 / tl.rate, [c.to_seconds() for c in tl.cuts],
                         tail.to_seconds())
    return Finishing(opts.sample_rate, targets, ending, None, opts.loudness, ducking, whole=True,
                     beat_markers=opts.beat_markers)


def _plan(tl: Timeline, model: str, opts: ScoreOptions, timeline_path: Path) -> tuple[Plan, RationalTime]:
    """The windows (the model's length), and the tail a ring may run past the picture (`--tail`)."""
    from core.model_config import model_window_s

    if opts.tail_s and opts.ending != "ring":
        raise CutscoreError(f"{timeline_path}: --tail lets a ring run past the last frame; --ending {opts.ending} ends "
                            "on it: use --ending ring, or leave --tail out")
    tail = RationalTime.from_seconds(opts.tail_s, tl.duration.rate).round()
    return make_plan(tl, window_s=model_window_s(model), tail=tail), tail


def editor_rhythm(path: str | None, values: list[float | None], duration_s: float, model: str) -> list[float | None]:
    """The editor's curve for a request (plugin/commands/rhythm.py), checked against the model's range; []
    when there is none."""
    from core.model_config import model_window_s, rhythm_range
    from plugin.commands.rhythm import load_rhythm, rhythm_grid

    lo, hi = rhythm_range(model_window_s(model))
    if path:
        return load_rhythm(path, duration_s, lo, hi)
    if any(v is not None for v in values):
        return rhythm_grid(list(enumerate(values)), duration_s, lo, hi, "the energy lane")
    return []


def _check_paths(timeline_path: Path, out_path: Path, force: bool) -> Path:
    """The sidecar folder of out_path, once nothing the user has would be overwritten unasked."""
    if out_path.resolve() == timeline_path.resolve():
        raise CutscoreError(f"{out_path}: is the input; cutscore never modifies your timeline, choose another -o")
    writable(out_path, timeline_path)
    if out_path.exists() and not force:
        raise CutscoreError(f"{out_path}: already exists; choose another -o or pass --force")
    if not out_path.parent.is_dir():
        raise CutscoreError(f"{out_path.parent}: no such folder for the output")
    side = sidecar_dir(out_path)
    if side.exists() and not force:
        raise CutscoreError(f"{side}: already exists (the music of an earlier score); pass --force to replace it")
    return side


def _ducking(opts: ScoreOptions, speech_s, duration_s: float, out_path: Path) -> Ducking | None:
    if opts.duck_db is None or not speech_s:
        return None
    return Ducking.plan([tuple(r) for r in speech_s], duration_s, opts.duck_db, opts.duck_attack_s,
                        opts.duck_release_s, baked=not writable(out_path).gain_keyframes)


def write_segments(tl, music: np.ndarray, sr: int, work: Path, tail: RationalTime | None = None) -> list[SegmentRecord]:
    """The music under each picture clip or gap, as take v1 WAVs written into the work folder (they
    reach the sidecar folder when it is committed)."""
    records = []
    for kind, idx, name, rng in picture_segments(tl, tail):
        wav = take_name(kind, idx, 1)
        write_wav(work / wav, _cut(music, rng, sr), sr)
        records.append(SegmentRecord.of(kind, idx, name, rng, wav))
    return records


def _commit_sidecar(state: Sidecar, work: Path, side: Path) -> None:
    """The state into the work folder, then the work folder in place of the sidecar, in one rename."""
    state.rebase(work / "engine", side / "engine")
    (work / STATE_FILE).write_text(state.to_json())
    if side.exists():
        shutil.rmtree(side)
    os.replace(work, side)
