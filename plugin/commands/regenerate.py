"""Regenerating one clip's music (torch-free): scored timeline -> its sidecar (found from the music
clips' WAV paths) -> the engine re-samples the clip's span (+- REGEN_MARGIN_S of held context) by
inpainting with the neighbours' latents held -> the clip's new take is a new versioned WAV, its edges
blended into the old audio so the joins stay continuous; the other WAVs are not touched.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from core.api import JobStatus, RegenerateRequest
from core.client import EngineClient, run_job
from core.errors import CutscoreError
from core.files import InUse, exclusive
from plugin.commands.like import LIKE_STRENGTH, VARY, LikeRecord, prepare, record
from plugin.commands.score import editor_rhythm, like_request
from plugin.commands.state import Choice, Regeneration, SegmentRecord, Sidecar, load_state, segments_of
from plugin.finish import Finishing
from plugin.finish.beats import BeatMarkers
from plugin.finish.render import (
    StitchWindow,
    read_wav,
    render_music,
    splice,
    to_samples,
    write_wav,
)
from plugin.formats import find, writable
from plugin.formats.writeback import write_timeline
from plugin.names import same_segment, take_name, take_pattern, take_version

EDGE_BLEND_S = 0.03  # a regenerated clip fades from the old audio into the new over its first/last 30 ms


REGEN_MARGIN_S = 1.5  # a regenerate samples the clip plus this much context either side (held)


@dataclass
class RegenerateResult:
    out: Path  # the regenerated timeline
    wav: Path  # the clip's new take
    clip: int
    name: str
    seed: int  # the request's seed (the engine seeds the window from it: engine/inference.py window_seed)
    window: int
    like: LikeRecord | None = None  # the reference the take followed


@dataclass
class _Where:
    """What a regenerate re-samples: the clip's segment and range, the window holding its middle, the
    region (the clip within that window) and the span sampled (the region +- the margin)."""

    target: SegmentRecord
    rng: TimeRange
    window: int
    region: tuple[float, float]
    span: tuple[float, float]


def _locate(state: Sidecar, clip: str, scored_path: Path) -> _Where:
    segs = state.clips()
    target = next((s for s in segs if str(s.index) == clip), None) or next((s for s in segs if s.name == clip), None)
    if target is None:
        names = ", ".join(f"{s.index} {s.name!r}" for s in segs)
        raise CutscoreError(f"{scored_path}: no clip {clip!r}; the clips are {names}")
    rng = target.range
    a_s, b_s = rng.start_time.to_seconds(), rng.end_time_exclusive().to_seconds()
    mid = (a_s + b_s) / 2
    wi = next(i for i, w in enumerate(state.windows) if w.start_s <= mid <= w.start_s + w.duration_s
              or i == len(state.windows) - 1)
    w = state.windows[wi]
    region = (max(a_s, w.start_s), min(b_s, w.start_s + w.duration_s))
    # regenerate by the clip: sample the clip plus a margin each side, not the whole window
    span = (max(w.start_s, region[0] - REGEN_MARGIN_S), min(w.start_s + w.duration_s, region[1] + REGEN_MARGIN_S))
    return _Where(target, rng, wi, region, span)


def regenerate_clip(scored_path: str | Path, clip: str, client: EngineClient, out_path: str | Path | None = None,
                    seed: int | None = None, force: bool = False,
                    on_progress: Callable[[JobStatus], None] | None = None,
                    hits_s: list[float] | None = None, rhythm_file: str | None = None,
                    rhythm: list[float | None] | None = None, beat_markers: BeatMarkers | None = None,
                    like: str | None = None, like_strength: float | None = None,
                    vary: str | None = None) -> RegenerateResult:
    """hits_s: hit points to add to the score's (seconds from the timeline start, e.g. placed in the
    panel since): scene onsets for the clip's new take, kept in the sidecar's request. rhythm_file /
    rhythm: the editor's curve (plugin/commands/rhythm.py) in place of the score's, kept in the sidecar's
    request; None: the score's. beat_markers: None as the score did. like / like_strength: a reference
    for this take (plugin/commands/like.py; None: the score's, which a regenerate follows); vary: "subtle" or
    "strong", the current take itself as the reference (plugin.commands.like.VARY)."""
    if vary is not None and like is not None:
        raise CutscoreError("--vary takes the clip's current take as the reference: leave --like out, or --vary")
    if vary is not None and vary not in VARY:
        raise CutscoreError(f"--vary {vary!r}: choose {' or '.join(VARY)}")
    from plugin.formats.timeline import load_otio

    scored_path = Path(scored_path)
    sequence = None
    fmt = find(scored_path)
    if fmt is not None and fmt.patches_input and scored_path.is_file():  # the sequence its music is on
        from plugin.formats.kdenlive.writer import music_sequence

        sequence = music_sequence(scored_path.read_text(encoding="utf-8"))
    scored = load_otio(scored_path, sequence=sequence)
    side, _ = load_state(scored_path, scored)
    try:
        with exclusive(side):
            return _regenerate(scored_path, scored, clip, client, out_path, seed, force, on_progress, hits_s,
                               _Edits(rhythm_file, rhythm, beat_markers, like, like_strength, vary))
    except InUse:
        raise CutscoreError(f"{side}: in use: another cutscore is writing this music now; wait for it to finish") \
            from None


@dataclass
class _Edits:
    """What a regenerate changes of the score's asking besides the seed."""

    rhythm_file: str | None = None
    rhythm: list[float | None] | None = None
    beat_markers: BeatMarkers | None = None
    like: str | None = None
    like_strength: float | None = None
    vary: str | None = None


def _reference(scored_path: Path, side: Path, state: Sidecar, at: _Where, version: int,
               edits: _Edits) -> LikeRecord | None:
    """The reference of this take, written into the engine's folder: the one asked (`--like`), the
    current take (`--vary`), the score's at another strength, or None (the score's as it was, or none)."""
    engine = side / "engine"
    dest = engine / f"like-clip{at.target.index:03d}-v{version}.wav"
    if edits.vary is not None:  # the music under the window the take is sampled in, not the whole score's
        from plugin.commands.state import MusicReader

        w = state.windows[at.window]
        audio, first = MusicReader(side, state).between(w.start_s, w.start_s + w.duration_s)
        return record(audio, f"the take {at.target.wav}", f"take:{at.target.wav}", None, None, VARY[edits.vary],
                      dest, state.sample_rate, start_s=first)
    if edits.like is not None:
        from plugin.formats.timeline import read_timeline

        tl = read_timeline(scored_path) if edits.like.startswith("track:") else None
        strength = edits.like_strength if edits.like_strength is not None else (
            state.like.strength if state.like else LIKE_STRENGTH)
        return prepare(edits.like, tl, strength, dest, state.sample_rate, state.request.duration_s)
    if edits.like_strength is not None:
        if state.like is None:
            raise CutscoreError(f"{scored_path}: --like-strength without a reference: the score followed none; "
                                "give --like SOURCE")
        return state.like.model_copy(update={"strength": edits.like_strength})
    return None


def _request(state: Sidecar, at: _Where, seed: int, hits_s: list[float] | None, edits: _Edits,
             like: LikeRecord | None = None) -> RegenerateRequest:
    """The score's request again, for the clip's span with a new seed (and any hit points added, the
    editor's new curve in place of the score's)."""
    base = state.request
    if edits.rhythm_file is not None or edits.rhythm is not None:
        base.rhythm = editor_rhythm(edits.rhythm_file, edits.rhythm or [], base.duration_s, state.model)
    if hits_s is not None:
        on_frames = (RationalTime.from_seconds(float(h), at.target.rate).round().to_seconds() for h in hits_s)
        base.hits_s = sorted({round(h, 6) for h in [*base.hits_s, *on_frames] if 0 <= h <= base.duration_s})
    if like is not None:
        base = base.model_copy(update={"like": like_request(like, Path(base.output_dir))})
    return RegenerateRequest(**base.model_dump(exclude={"kind", "settings", "dialogue"}),
                             settings=base.settings.model_copy(update={"seed": seed}), window=at.window,
                             region_start_s=at.region[0], region_end_s=at.region[1],
                             latents=state.windows[at.window].latents, span_start_s=at.span[0], span_end_s=at.span[1])


def _regenerate(scored_path: Path, scored, clip: str, client: EngineClient, out_path, seed, force, on_progress,
                hits_s, edits: _Edits) -> RegenerateResult:
    side, state = load_state(scored_path, scored)  # again, under the lock: the state as the last writer left it
    at = _locate(state, clip, scored_path)
    target = at.target
    if not (side / target.wav).is_file():
        raise CutscoreError(f"{side / target.wav}: the music of clip {target.index} ({target.name!r}) is missing; "
                            f"restore the file into {side.name}, or score the timeline again with `cutscore score`")
    new_seed = seed if seed is not None else int.from_bytes(os.urandom(4), "little")
    if new_seed == state.request.settings.seed:  # the score's own seed would sample the same take again
        new_seed += 1
    takes = [v for p in side.glob("*.wav") if same_segment(p.name, target.wav) and (v := take_version(p.name))]
    version = 1 + max(takes, default=0)
    out_path = _output_path(scored_path, out_path, version, force)
    engine_dir = Path(state.request.output_dir)
    before = set(engine_dir.iterdir()) if engine_dir.is_dir() else set()
    landed: list[bool] = []
    try:
        like = _reference(scored_path, side, state, at, version, edits)
        req = _request(state, at, new_seed, hits_s, edits, like)
        return _take(scored_path, scored, side, state, at, new_seed, version, out_path,
                     run_job(client, req, on_progress), landed, edits, like)
    except BaseException:  # an attempt whose take the sidecar does not record leaves none of its files
        if not landed:
            new = (set(engine_dir.iterdir()) if engine_dir.is_dir() else set()) - before
            for p in [*new, side / take_name("clip", target.index, version)]:
                if p.is_file():
                    p.unlink()
        raise


def _take(scored_path, scored, side, state: Sidecar, at: _Where, new_seed, version, out_path, result,
          landed: list, edits: _Edits, like: LikeRecord | None = None) -> RegenerateResult:
    """The engine's new span spliced into the clip's WAV as take `version`, recorded (then `landed`
    holds True), written out."""
    target, rate, sr = at.target, at.target.rate, state.sample_rate
    new_w = result.windows[0]  # the span [span_start, span_end), not the whole window
    span_range = TimeRange(RationalTime.from_seconds(new_w.start_s, rate).round(),
                           RationalTime.from_seconds(new_w.duration_s, rate).round())
    music = _span_music(state, new_w, span_range)
    old_audio, _ = read_wav(side / target.wav)
    new_audio = splice(old_audio, music, to_samples(span_range.start_time - at.rng.start_time, sr),
                        (to_samples(RationalTime.from_seconds(at.region[0], rate) - at.rng.start_time, sr),
                         to_samples(RationalTime.from_seconds(at.region[1], rate) - at.rng.start_time, sr)),
                        int(EDGE_BLEND_S * sr))
    wav = side / take_name("clip", target.index, version)
    write_wav(wav, new_audio, sr)
    replaced, target.wav = target.wav, wav.name
    _new_beats(side, state, at, edits.beat_markers)
    state.history.append(Regeneration(clip=target.index, seed=new_seed, window=at.window, span_s=list(at.span),
                                      replaced=replaced, wav=wav.name, latents=new_w.latents, like=like))
    state.save(side)
    landed.append(True)
    _write_regenerated(scored_path, scored, side / replaced, wav, out_path, state, target.name)
    return RegenerateResult(out=out_path, wav=wav, clip=target.index, name=target.name, seed=new_seed,
                            window=at.window, like=like)


BEAT_CONTEXT_S = 20.0  # the music either side of a regenerated clip the beat tracker hears


def _new_beats(side: Path, state: Sidecar, at: _Where, markers: BeatMarkers | None) -> None:
    """The sidecar's beats with the clip's own tracked again in the music as it now plays, heard with
    BEAT_CONTEXT_S either side (not the whole score: a regenerate costs the same in a long edit); the
    other clips' beats, and their markers, stay."""
    from plugin.commands.state import MusicReader
    from plugin.finish.beats import track_beats

    a, b = at.rng.start_time.to_seconds(), at.rng.end_time_exclusive().to_seconds()
    audio, t0 = MusicReader(side, state).between(a - BEAT_CONTEXT_S, b + BEAT_CONTEXT_S)
    new = track_beats(audio, state.sample_rate)
    new = new.model_copy(update={"times_s": [round(t + t0, 6) for t in new.times_s]})
    old = state.beats
    state.beats = (old.replaced(a, b, new) if old is not None else new).model_copy(
        update={"markers": (old.markers if old is not None else "downbeats") if markers is None else markers})


def _output_path(scored_path: Path, out_path: str | Path | None, version: int, force: bool) -> Path:
    """Where the regenerated timeline goes: -o, else `<scored>-r<take>`, in the scored timeline's format."""
    out_path = Path(out_path) if out_path else scored_path.with_name(f"{scored_path.stem}-r{version}{scored_path.suffix}")
    if out_path.exists() and not force:
        raise CutscoreError(f"{out_path}: already exists; choose another -o or pass --force")
    if not out_path.parent.is_dir():
        raise CutscoreError(f"{out_path.parent}: no such folder for the output")
    if find(out_path) is not find(scored_path):
        raise CutscoreError(f"{out_path}: regenerate writes the scored timeline's own format "
                            f"({scored_path.suffix}); name the output {out_path.stem}{scored_path.suffix}")
    return out_path


def _span_music(state: Sidecar, new_w, span: TimeRange) -> np.ndarray:
    """The engine's new span as the score's music was made: rendered at the score's rate, then the
    score's finishing chain replayed over it (plugin/finish/__init__.py: its hits, its ending where the span
    reaches it, its gain, its baked ducking)."""
    sr = state.sample_rate
    music = render_music([StitchWindow(0.0, new_w.duration_s, 0.0, read_wav(new_w.audio)[0])],
                         state.model_sample_rate, span.duration, sr)
    return Finishing.of(state).run(music, to_samples(span.start_time, sr))


def _write_regenerated(scored_path: Path, scored: otio.schema.Timeline, old: Path, wav: Path,
                       out_path: Path, state: Sidecar, name: str = "") -> None:
    """The scored timeline with the segment `name` playing `wav` in place of `old` (the sidecar,
    already saved, records it), written by the one writer of scored timelines."""
    side = wav.parent
    write_timeline(out_path, scored_path, scored, segments_of(side, state, writable(out_path, scored_path)),
                   state.summary(side), state.segments[0].rate, retake=(old, wav, name))


def choose_take(scored_path: str | Path, clip: int, take: str, out_path: str | Path | None = None) -> Choice:
    """Make the timeline play `take` (a WAV name from takes_of) for the clip: the sidecar records the
    choice and the scored timeline (or out_path, in the same format) points the clip's music at it."""
    from plugin.formats.timeline import load_otio

    scored_path = Path(scored_path)
    scored = load_otio(scored_path)
    side, state = load_state(scored_path, scored)
    target = state.clip(clip)
    if target is None:
        raise CutscoreError(f"{scored_path}: no clip {clip}")
    if not take_pattern(target.wav).fullmatch(take) or not (side / take).exists():
        raise CutscoreError(f"{take}: not a take of clip {clip} in {side}")
    choice = Choice(clip=clip, from_=target.wav, to=take)
    if choice.from_ != take:
        target.wav = take
        state.choices.append(choice)
        state.save(side)
        _write_regenerated(scored_path, scored, side / choice.from_, side / take, Path(out_path or scored_path),
                           state, target.name)
    return choice

