"""Conform (torch-free): the cut changed after scoring; keep the music the editor approved, move it
with the picture, and generate only the seconds that are new.

SCORED (its sidecar: the old edit's clips as the score read them, the music as it plays now) and
NEW (any timeline cutscore reads) -> the change list: each new picture clip matched to the old
clips that showed the same media (the resolved media file, else the name) over overlapping source
frames, as edit-compare tools do -> kept spans (new record seconds whose picture was in the old
edit: the old music copied sample for sample from where it played) and generated spans (the rest,
plus a bridge at every seam where the music's old neighbour changed, and the ending where it
changed) -> each generated span inpainted by the engine in the latent domain with the kept music
around it held (the old windows' latents moved with the picture), each window told its NEW start
time, then finished by the score's chain (plugin/finish/__init__.py) with the new edit's hits and ending ->
a new scored timeline with its own sidecar. SCORED and its folder are never written.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from opentimelineio.opentime import RationalTime, TimeRange

from core.api import JobStatus, ListenRequest, RegenerateRequest, WindowResult
from core.client import EngineClient, run_job
from core.errors import CutscoreError
from core.files import InUse, exclusive
from plugin.commands.changes import Change, changes_of, heard_before, new_uses, old_uses
from plugin.commands.plan import make_plan
from plugin.commands.score import build_request, write_segments
from plugin.commands.state import (
    ConformRecord,
    MusicReader,
    Sidecar,
    load_state,
    segments_of,
    sidecar_dir,
)
from plugin.finish import Finishing
from plugin.finish.beats import track_beats
from plugin.finish.ducking import ATTACK_S, DUCK_DB, RELEASE_S, Ducking
from plugin.finish.ending import Ending
from plugin.finish.render import StitchWindow, read_wav, render_music, resample, splice, to_samples, write_wav
from plugin.formats import writable
from plugin.formats.dialogue import dialogue_spans
from plugin.formats.timeline import Timeline, read_timeline
from plugin.formats.writeback import write_timeline
from plugin.names import STATE_FILE

BRIDGE_S = 0.5  # at a seam whose old neighbour changed, this much of the kept music each side is made again
EDGE_BLEND_S = 0.25  # a generated span fades in from, and out to, the old music that continued the kept over 250 ms
MARGIN_S = 1.5  # held context either side of a generated span (as regenerate samples a clip)
LEVEL_S = 0.1  # the level either side of a join, measured over this much
LEVEL_RAMP_S = 0.25  # the made music's level correction at a join fades to none over this much
MAX_MATCH_DB = 9.0  # at most this much level correction at a join


@dataclass
class ConformResult:
    out: Path
    sidecar: Path
    changes: list[Change]
    deleted: list[int]
    kept: list[tuple[float, float, float]]
    generated: list[tuple[float, float]]
    notices: list[str]
    music: np.ndarray
    sample_rate: int

    @property
    def kept_s(self) -> float:
        return sum(b - a for a, b, _ in self.kept)

    @property
    def generated_s(self) -> float:
        return sum(b - a for a, b in self.generated)

    def to_json(self) -> dict:
        return {"changes": [c.to_json() for c in self.changes],
                "deleted": self.deleted, "kept_s": round(self.kept_s, 6), "generated_s": round(self.generated_s, 6)}


# ---- the music kept and made -------------------------------------------------------------------------

def _runs(changes: list[Change]) -> list[list[float]]:
    """Kept spans merged where they continue each other in both edits: [new a, new b, old a]; across
    a stretch no new clip covers (a gap in the picture) too, when it is as long as it was."""
    runs: list[list[float]] = []
    clips = [c.record_s for c in changes]
    for a, b, o in sorted(k for c in changes for k in c.kept):
        prev = runs[-1] if runs else None
        between = prev is not None and not any(x < a - 1e-6 and y > prev[1] + 1e-6 for x, y in clips)
        if prev and between and abs((o - prev[2]) - (a - prev[0])) < 1e-6 and a >= prev[1] - 1e-6:
            prev[1] = b
        else:
            runs.append([a, b, o])
    return runs


def plan_music(changes: list[Change], old_end: float, new_end: float, old_ending: Ending | None,
               new_ending: Ending | None, tail_s: float = 0.0) -> tuple[list[tuple[float, float, float]], list[tuple[float, float]]]:
    """(kept, generated): the kept runs with a bridge taken off every seam where the music's old
    neighbour changed and the old ending kept out of the middle of the new edit; the generated spans
    are the rest of [0, new_end)."""
    same_end = _same_ending(old_ending, new_ending)
    runs = _runs(changes)
    if tail_s > 0 and runs and abs(runs[-1][1] - (new_end - tail_s)) < 1e-6 \
            and abs(runs[-1][2] + runs[-1][1] - runs[-1][0] - (old_end - tail_s)) < 1e-6:
        runs[-1][1] = new_end  # the last picture ends as it did: its ring past the last frame (--tail) with it
    kept = []
    for a, b, o in runs:
        ob = o + (b - a)
        if old_ending is not None and old_ending.kind != "cut" and not (same_end and abs((a - o) - (new_end - old_end)) < 1e-6):
            if ob > old_ending.start_s:  # the old decay, heard elsewhere than at the same end: made again
                b, ob = a + max(0.0, old_ending.start_s - o), min(ob, old_ending.start_s)
        if new_ending is not None and new_ending.kind != "cut" and not same_end:
            b = min(b, new_ending.start_s)  # the new ending's seconds, made with the new ending
        left_seam = not (a < 1e-6 and o < 1e-6)
        right_seam = not (abs(b - new_end) < 1e-6 and abs(ob - old_end) < 1e-6)
        a2 = a + BRIDGE_S if left_seam else a
        b2 = b - BRIDGE_S if right_seam else b
        if b2 - a2 > 1e-6:
            kept.append((a2, b2, o + (a2 - a)))
    generated, pos = [], 0.0
    for a, b, _ in kept:
        if a - pos > 1e-6:
            generated.append((pos, a))
        pos = b
    if new_end - pos > 1e-6:
        generated.append((pos, new_end))
    return kept, generated


def _same_ending(old: Ending | None, new: Ending | None) -> bool:
    """Whether the new edit ends as the old did (the same kind, decaying over as long)."""
    if old is None or new is None or old.kind != new.kind:
        return old is None and new is None
    return abs((old.end_s - old.start_s) - (new.end_s - new.start_s)) < 1e-6


# ---- the command ---------------------------------------------------------------------------------------

def conform(scored_path: str | Path, new_path: str | Path, out_path: str | Path, client: EngineClient,
            seed: int | None = None, force: bool = False, rate: float | None = None,
            on_progress: Callable[[JobStatus], None] | None = None) -> ConformResult:
    scored_path, new_path, out_path = Path(scored_path), Path(new_path), Path(out_path)
    if out_path.resolve() in (scored_path.resolve(), new_path.resolve()):
        raise CutscoreError(f"{out_path}: is an input; conform writes a NEW timeline, choose another -o")
    writable(out_path, new_path)
    side_out = sidecar_dir(out_path)
    if not force and (out_path.exists() or side_out.exists()):
        raise CutscoreError(f"{out_path if out_path.exists() else side_out}: already exists; choose another -o or "
                            "pass --force")
    if not out_path.parent.is_dir():
        raise CutscoreError(f"{out_path.parent}: no such folder for the output")
    side, state = load_state(scored_path)
    if side.resolve() == side_out.resolve():
        raise CutscoreError(f"{out_path}: would write into {side}, the scored timeline's own music; choose another -o")
    try:
        with exclusive(side_out):
            return _conform(scored_path, side, state, new_path, out_path, side_out, client, seed, rate, on_progress)
    except InUse:
        raise CutscoreError(f"{out_path}: in use: another cutscore is writing this output now") from None


@dataclass
class _Plan:
    """What a conform keeps and makes: the change list, the kept and generated spans, the old music
    and the new music with the kept spans copied in."""

    changes: list[Change]
    deleted: list[int]
    kept: list[tuple[float, float, float]]
    generated: list[tuple[float, float]]
    picture: list[tuple[float, float, float]]  # where each old second of picture plays now
    ending: Ending | None
    tail: RationalTime  # the ring past the last frame the score had (`--tail`), kept
    old_music: MusicReader  # the old score's music, read a piece at a time
    music: np.ndarray


def _plan(scored_path: Path, side: Path, state: Sidecar, tl: Timeline, new_path: Path) -> _Plan:
    r = tl.duration.rate
    changes, deleted = changes_of(old_uses(state.request.clips, r), new_uses(tl), r)
    if not any(c.kept for c in changes):
        raise CutscoreError(f"{new_path}: shares no picture with the edit {scored_path.name} scored; nothing to keep: "
                            "score it instead")
    sr = state.sample_rate
    old_music = MusicReader(side, state)
    old_end = sum(s.duration for s in state.segments) / state.segments[0].rate
    tail_s = sum(s.duration for s in state.segments if s.kind == "gap" and s.name == "tail") / state.segments[0].rate
    tail = RationalTime(round(tail_s * tl.duration.rate), tl.duration.rate)
    new_end = (tl.duration + tail).to_seconds()
    ending = Ending.plan(state.ending.kind, tl.duration.to_seconds(), 1 / tl.rate, [c.to_seconds() for c in tl.cuts],
                         tail.to_seconds()) if state.ending is not None else None
    picture = [k for c in changes for k in c.kept]
    kept, generated = plan_music(changes, old_end, new_end, state.ending, ending, tail.to_seconds())
    for c in changes:  # each clip's kept spans: the music actually copied under it
        c.kept = [(max(a, c.record_s[0]), min(b, c.record_s[1]), o + max(0.0, c.record_s[0] - a))
                  for a, b, o in kept if min(b, c.record_s[1]) - max(a, c.record_s[0]) > 1e-6]
    music = np.zeros((old_music.channels, to_samples(tl.duration + tail, sr)), np.float32)
    for a, b, o in kept:
        n0, n1, o0 = round(a * sr), round(b * sr), round(o * sr)
        music[:, n0:n1] = old_music.read(o0, o0 + (n1 - n0))
    return _Plan(changes, deleted, kept, generated, picture, ending, tail, old_music, music)


def _conform(scored_path, side, state: Sidecar, new_path, out_path, side_out, client, seed, rate, on_progress):
    tl = read_timeline(new_path, rate=rate)
    p = _plan(scored_path, side, state, tl, new_path)
    work = side_out.with_name(side_out.name + ".partial")
    if work.exists():
        shutil.rmtree(work)
    (work / "engine").mkdir(parents=True)
    notices = list(tl.warnings)
    try:
        settings = state.settings.model_copy(update={"seed": seed} if seed is not None else {})
        if state.like is not None:  # the new seconds follow the score's reference too, laid from the first frame
            shutil.copy(side / "engine" / state.like.audio, work / "engine" / state.like.audio)
        req = build_request(make_plan(tl, window_s=_window_s(state), tail=p.tail), state.model, settings,
                            work / "engine", rhythm=moved_rhythm(state.request.rhythm, p.picture, p.music.shape[1] / state.sample_rate),
                            like=state.like)
        lat = _moved_latents(state, req, p.kept)
        ducking = _ducking(state, tl, p, out_path, work / "engine", client, on_progress, notices)
        targets = sorted({round(t.to_seconds(), 6) for t in tl.cuts + tl.hits}) if state.hit_sync else []
        chain = Finishing(state.sample_rate, targets, p.ending, state.gain_db, state.loudness_lufs, ducking)
        _make(client, req, lat, p, chain, state, on_progress)
        result = ConformResult(out_path, side_out, p.changes, p.deleted, p.kept, p.generated, notices, p.music,
                               state.sample_rate)
        new_state = state.model_copy(update={
            "timeline": str(new_path.resolve()), "scored": str(out_path.resolve()), "settings": settings,
            "request": req, "windows": _windows(req, lat, p.music, state.sample_rate, state.model_sample_rate,
                                                work / "engine"),
            "ending": p.ending, "ducking": ducking,
            "segments": write_segments(tl, p.music, state.sample_rate, work, p.tail),
            "beats": track_beats(p.music, state.sample_rate, markers=state.beats.markers if state.beats else "downbeats"),
            "history": [], "choices": [],
            "conform": ConformRecord(old=str(scored_path.resolve()), new=str(new_path.resolve()),
                                     changes=result.to_json()["changes"], deleted=p.deleted,
                                     kept=[list(k) for k in p.kept], generated=[list(g) for g in p.generated])})
        new_state.rebase(work / "engine", side_out / "engine")
        (work / STATE_FILE).write_text(new_state.to_json())
        if side_out.exists():
            shutil.rmtree(side_out)
        os.replace(work, side_out)
        write_timeline(out_path, new_path, tl.otio, segments_of(side_out, new_state, writable(out_path, new_path)),
                       new_state.summary(side_out), tl.duration.rate)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return result


def _make(client, req, lat, p: _Plan, chain: Finishing, state: Sidecar, on_progress) -> None:
    """Every generated span sampled, finished and spliced into p.music (in order)."""
    sr = state.sample_rate
    for k, (g0, g1) in enumerate(p.generated):
        parts = _parts(req, g0, g1)
        for j, (i, p0, p1) in enumerate(parts):
            edges = _continuations(p.old_music, p.kept, p0, p1, sr, int(EDGE_BLEND_S * sr))
            p.music = _generate(client, req, i, p0, p1, lat, p.music, chain, state, k, on_progress, edges,
                                open_end=g1 if j + 1 < len(parts) else None)


def moved_rhythm(old: list[float | None], picture: list[tuple[float, float, float]], end_s: float) -> list[float | None]:
    """The rhythm curve the editor drew (per timeline second; None where the prediction stands) moved
    with the picture it was drawn over; new seconds get the prediction."""
    if not any(v is not None for v in old):
        return []
    out: list[float | None] = []
    for s in range(int(np.ceil(end_s - 1e-6))):
        t = s + 0.5
        o = next((o + t - a for a, b, o in picture if a <= t < b), None)
        out.append(old[int(o)] if o is not None and int(o) < len(old) else None)
    return out


def _ducking(state: Sidecar, tl: Timeline, p: _Plan, out_path: Path, work: Path, client: EngineClient,
             on_progress, notices: list[str]) -> Ducking | None:
    """The new edit's ducking: the speech the old score heard, moved with the sound it was heard in
    (plugin/commands/changes.py heard_before); the seconds of sound the old score never heard listened to now
    (a listen job over only those). The depth and timing as the score had them; the WAVs carry it as
    they did (baked) or not (keyframes)."""
    old = state.ducking
    if old is None and not state.request.dialogue:
        return None  # --duck off, or the old edit had no sound to listen to
    moved, unheard = heard_before(state.request.dialogue, old.regions if old else [], dialogue_spans(tl))
    heard: list[tuple[float, float]] = []
    if unheard:
        res = run_job(client, ListenRequest(duration_s=p.music.shape[1] / state.sample_rate, dialogue=unheard, output_dir=str(work.resolve())),
                      on_progress)
        heard = [tuple(r) for r in res.speech_s]
        notices += res.warnings
    baked = old.baked if old else not writable(out_path).gain_keyframes
    if baked and heard:
        notices += [f"speech at {a:.2f}-{b:.2f} s is new under music the conform kept: the WAVs keep that music "
                    "as it was (not ducked there); a format with gain keyframes (Kdenlive, FCP7 XML) ducks it"
                    for a, b in heard if any(min(b, y) > max(a, x) for x, y, _ in p.kept)]
    if not moved and not heard:
        return None
    depth, attack, release = (old.depth_db, old.attack_s, old.release_s) if old else (DUCK_DB, ATTACK_S, RELEASE_S)
    return Ducking.plan(sorted(moved + heard), (tl.duration + p.tail).to_seconds(), depth, attack, release, baked=baked)


def _window_s(state: Sidecar) -> float:
    from core.model_config import model_window_s

    return model_window_s(state.model)


def _fps(state: Sidecar) -> float:
    from core.model_config import load_config

    cfg = load_config(state.model)
    return cfg.sample_rate / cfg.downsampling


def _moved_latents(state: Sidecar, req, kept) -> list[np.ndarray]:
    """Each new window's latents: the old windows' frames moved with the picture where the music is
    kept, zeros elsewhere (to be sampled)."""
    fps = _fps(state)
    old = [(w, np.load(w.latents)) for w in sorted(state.windows, key=lambda w: w.start_s)]
    shape = old[0][1].shape
    out = []
    for w in req.windows:
        lat = np.zeros(shape, np.float32)
        for f in range(shape[-1]):
            t = w.start_s + (f + 0.5) / fps
            src = next((o + (t - a) for a, b, o in kept if a <= t < b), None)
            if src is None:
                continue
            ow, olat = next(((ow, ol) for ow, ol in reversed(old) if ow.start_s + ow.overlap_s <= src), old[0])
            g = int((src - ow.start_s) * fps)
            if 0 <= g < olat.shape[-1]:
                lat[..., f] = olat[..., g]
        out.append(lat)
    return out


def _parts(req, g0: float, g1: float) -> list[tuple[int, float, float]]:
    """The window that samples a generated span: one that holds it whole (the one with the most room
    around it), else the span split among the windows that own its seconds (a window owns from the
    middle of its overlap with the one before to the middle of its overlap with the next)."""
    ws = req.windows
    whole = [(min(g0 - w.start_s, w.start_s + w.duration_s - g1), i) for i, w in enumerate(ws)
             if w.start_s - 1e-6 <= g0 and g1 <= w.start_s + w.duration_s + 1e-6]
    if whole:
        return [(max(whole)[1], g0, g1)]
    parts = []
    for i, w in enumerate(ws):
        lo = w.start_s + (w.overlap_s / 2 if i > 0 else 0.0)
        hi = ws[i + 1].start_s + ws[i + 1].overlap_s / 2 if i + 1 < len(ws) else w.start_s + w.duration_s
        a, b = max(g0, lo), min(g1, hi)
        if b - a > 1e-6:
            parts.append((i, a, b))
    return parts


def _continuations(old: MusicReader, kept, p0: float, p1: float, sr: int, n: int) -> dict:
    """The old music that continued the kept music at a generated span's edges: after the kept run
    that ends at p0 (what played next in the old score), before the one that starts at p1; the span
    fades from and to these, so each join is the old music's own for its first and last n samples."""
    out = {}
    for a, b, o in kept:
        if abs(b - p0) < 1e-6:
            s = round((o + b - a) * sr)
            if s + n <= old.samples:
                out["left"] = old.read(s, s + n)
        if abs(a - p1) < 1e-6:
            s = round(o * sr)
            if s - n >= 0:
                out["right"] = old.read(s - n, s)
    return out


def _generate(client, req, i, p0, p1, lat, music, chain: Finishing, state, k, on_progress, edges: dict,
              open_end: float | None = None):
    """One generated part: the engine inpaints [p0, p1) of window i with the moved latents around it
    held; the new audio is finished by the chain and spliced into the music, fading from and to the
    kept music at its edges (open_end: the generated span's end when the next part of it follows,
    which fades in from this one's audio written past p1, never past the span)."""
    w = req.windows[i]
    p1 = min(p1, w.start_s + w.duration_s)  # _parts' spans lie inside to 1e-6: the window's end in floats may round below
    path = Path(req.output_dir) / f"known-{k:03d}-w{i:02d}.npy"
    np.save(path, lat[i])
    s0, s1 = max(w.start_s, p0 - MARGIN_S), min(w.start_s + w.duration_s, p1 + MARGIN_S)
    rr = RegenerateRequest(**req.model_dump(exclude={"kind", "settings", "dialogue"}), settings=req.settings,
                           window=i, region_start_s=p0, region_end_s=p1, latents=str(path),
                           span_start_s=s0, span_end_s=s1)
    res = run_job(client, rr, on_progress).windows[0]
    sr, rate = chain.sample_rate, 1000.0  # a millisecond grid places the span's samples
    span = TimeRange(RationalTime(round(res.start_s * rate), rate), RationalTime(round(res.duration_s * rate), rate))
    new = render_music([StitchWindow(0.0, res.duration_s, 0.0, read_wav(res.audio)[0])], state.model_sample_rate,
                       span.duration, sr)
    start = to_samples(span.start_time, sr)
    new = chain.run(new, start)
    new = _level_matched(new, start, music, round(p0 * sr), round(p1 * sr), sr, edges)
    full = np.zeros_like(music)
    full[:, start:start + new.shape[1]] = new[:, :max(0, music.shape[1] - start)]
    blend = int(EDGE_BLEND_S * sr)
    end = min(round(p1 * sr) + 2 * blend, round(open_end * sr)) if open_end is not None else round(p1 * sr)
    region = (round(p0 * sr), min(end, start + new.shape[1]))
    base = music.copy()  # inside the span, its edges hold the old music's continuations to fade from
    if "left" in edges:
        base[:, region[0]:region[0] + blend] = edges["left"][:, :base.shape[1] - region[0]]
    if "right" in edges and open_end is None:
        base[:, region[1] - blend:region[1]] = edges["right"]
    out = splice(base, full, 0, region, blend)
    fps = _fps(state)
    got = np.load(res.latents)
    a0 = int(round((s0 - w.start_s) * fps))
    n = min(got.shape[-1], lat[i].shape[-1] - a0)
    f0, f1 = int((p0 - w.start_s) * fps), int(np.ceil((p1 - w.start_s) * fps))
    lat[i][..., max(f0, a0):min(f1, a0 + n)] = got[..., max(f0, a0) - a0:min(f1, a0 + n) - a0]
    return out


def _level_matched(new: np.ndarray, start: int, music: np.ndarray, r0: int, r1: int, sr: int, edges: dict) -> np.ndarray:
    """The new audio's level at each edge of the generated span [r0, r1) brought to the kept
    music's beside it (LEVEL_S measured each side, at most MAX_MATCH_DB), the correction fading to
    none over LEVEL_RAMP_S into the span: the model may start a span louder or softer than the
    music it continues, and a step the music itself never makes is heard as a seam."""
    n, ramp = int(LEVEL_S * sr), int(LEVEL_RAMP_S * sr)

    def db(x: np.ndarray) -> float | None:
        return 10 * np.log10(float(np.mean(x ** 2)) + 1e-12) if x.size >= n // 2 else None

    gain_db = np.zeros(new.shape[1])
    for side in ("left", "right"):
        if side not in edges:
            continue
        kept = music[:, r0 - n:r0] if side == "left" else music[:, r1:r1 + n]
        a = (r0 - start) if side == "left" else (r1 - start - n)
        made, ref = db(new[:, max(a, 0):a + n]), db(kept)
        if made is None or ref is None:
            continue
        d = float(np.clip(ref - made, -MAX_MATCH_DB, MAX_MATCH_DB))
        x = np.arange(new.shape[1]) - (r0 - start if side == "left" else r1 - start)
        w = np.clip(1 - (x if side == "left" else -x) / ramp, 0, 1)  # 1 at the edge, 0 ramp samples in
        gain_db += d * (0.5 - 0.5 * np.cos(np.pi * w))
    return (new * (10 ** (gain_db / 20))[None, :]).astype(np.float32)


def _windows(req, lat, music, sr, model_sr, folder: Path) -> list[WindowResult]:
    """The new edit's windows as a later regenerate reads them: the latents (moved and made) and
    the window's music at the model's rate."""
    out = []
    for i, w in enumerate(req.windows):
        lp, ap = folder / f"window{i:02d}-conform.npy", folder / f"window{i:02d}-conform.wav"
        np.save(lp, lat[i])
        a, b = round(w.start_s * sr), round((w.start_s + w.duration_s) * sr)
        clip = np.zeros((music.shape[0], b - a), np.float32)
        clip[:, :max(0, min(b, music.shape[1]) - a)] = music[:, a:b]
        write_wav(ap, resample(clip, sr, model_sr), model_sr, subtype="FLOAT")
        out.append(WindowResult(index=i, start_s=w.start_s, duration_s=w.duration_s, overlap_s=w.overlap_s,
                                audio=str(ap.resolve()), latents=str(lp.resolve()), rhythm=[], seed=req.settings.seed or 0))
    return out
