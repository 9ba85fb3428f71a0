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
time, then finished by the score's chain (plugin/finish.py) with the new edit's hits and ending ->
a new scored timeline with its own sidecar. SCORED and its folder are never written.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from opentimelineio.opentime import RationalTime, TimeRange

from core.api import JobStatus, RegenerateRequest, WindowResult
from core.client import EngineClient, run_job
from core.errors import CutscoreError
from core.files import InUse, exclusive
from plugin.beats import track_beats
from plugin.ducking import Ducking
from plugin.ending import Ending
from plugin.finish import Finishing
from plugin.formats import writable
from plugin.names import STATE_FILE, take_name
from plugin.plan import make_plan
from plugin.render import StitchWindow, read_wav, render_music, resample, splice, to_samples, write_wav
from plugin.score import build_request, picture_segments
from plugin.state import ConformRecord, SegmentRecord, Sidecar, load_state, music_of, segments_of, sidecar_dir
from plugin.timeline import Timeline, read_timeline
from plugin.writeback import write_timeline

BRIDGE_S = 0.5  # at a seam whose old neighbour changed, this much of the kept music each side is made again
EDGE_BLEND_S = 0.03  # a generated span fades in from, and out to, the kept music over 30 ms
MARGIN_S = 1.5  # held context either side of a generated span (as regenerate samples a clip)


@dataclass
class Change:
    new_clip: int
    old_clip: int | None
    kind: str  # unchanged, moved, trimmed, new
    record_s: tuple[float, float]
    kept: list[tuple[float, float, float]] = field(default_factory=list)  # (new start, new end, old start) s


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
        return {"changes": [{"new_clip": c.new_clip, "old_clip": c.old_clip, "kind": c.kind,
                             "record_s": [round(x, 6) for x in c.record_s],
                             "kept": [[round(x, 6) for x in k] for k in c.kept]} for c in self.changes],
                "deleted": self.deleted, "kept_s": round(self.kept_s, 6), "generated_s": round(self.generated_s, 6)}


# ---- the change list --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Use:
    """A picture clip of an edit, in frames of the new edit's rate: which media, where in it, where."""

    index: int
    file: str | None  # the media file's name (None: the clip has none here)
    name: str
    src: tuple[int, int]
    rec: tuple[int, int]

    def same_media(self, other: _Use) -> bool:
        return self.file == other.file if self.file and other.file else self.name == other.name


def _file_name(media: str | None) -> str | None:
    """What identifies a clip's media across two exports of an edit: its file's name (a path or URL
    differs between machines and formats); None without one (then the clip's name does)."""
    if not media:
        return None
    import urllib.parse

    path = urllib.parse.unquote(urllib.parse.urlparse(media).path) if "://" in media else media
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _frames(s: float, rate: float) -> int:
    return int(round(s * rate))


def old_uses(state: Sidecar, rate: float) -> list[_Use]:
    """The old edit's picture clips as the score read them (its request)."""
    return [_Use(c.index, _file_name(c.media), c.name,
                 (_frames(c.source_start_s, rate), _frames(c.source_start_s + c.duration_s, rate)),
                 (_frames(c.start_s, rate), _frames(c.start_s + c.duration_s, rate))) for c in state.request.clips]


def new_uses(tl: Timeline) -> list[_Use]:
    rate = tl.duration.rate
    out = []
    for c in tl.clips:
        src = c.file_range
        out.append(_Use(c.index, _file_name(str(c.media_path) if c.media_path else c.media), c.name, (_frames(src.start_time.to_seconds(), rate), _frames(src.end_time_exclusive().to_seconds(), rate)),
                        (_frames(c.range.start_time.to_seconds(), rate), _frames(c.range.end_time_exclusive().to_seconds(), rate))))
    return out


def changes_of(old: list[_Use], new: list[_Use], rate: float) -> tuple[list[Change], list[int]]:
    """Each new clip's kind and kept spans (seconds), and the old clips no new clip keeps."""
    changes, used = [], set()
    for n in new:
        cands = [o for o in old if o.same_media(n) and min(n.src[1], o.src[1]) > max(n.src[0], o.src[0])]
        # the most shared source frames first, then the use whose place in the edit is nearest
        cands.sort(key=lambda o: (-(min(n.src[1], o.src[1]) - max(n.src[0], o.src[0])),
                                  abs((o.rec[0] - o.src[0]) - (n.rec[0] - n.src[0]))))
        covered: list[tuple[int, int]] = []
        kept = []
        for o in cands:
            for a, b in _minus((max(n.src[0], o.src[0]), min(n.src[1], o.src[1])), covered):
                kept.append((n.rec[0] + a - n.src[0], n.rec[0] + b - n.src[0], o.rec[0] + a - o.src[0]))
                covered.append((a, b))
                used.add(o.index)
        kept.sort()
        best = cands[0] if cands else None
        if best is None:
            kind = "new"
        elif best.src == n.src and len(cands) == 1 or best.src == n.src and covered == [n.src]:
            kind = "unchanged" if best.rec == n.rec else "moved"
        else:
            kind = "trimmed"
        changes.append(Change(n.index, best.index if best else None, kind, (n.rec[0] / rate, n.rec[1] / rate),
                              [(a / rate, b / rate, c / rate) for a, b, c in kept]))
    return changes, sorted(o.index for o in old if o.index not in used)


def _minus(span: tuple[int, int], taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of span not in any of taken."""
    parts = [span]
    for a, b in taken:
        parts = [p for x, y in parts for p in ((x, min(y, a)), (max(x, b), y)) if p[1] > p[0]]
    return parts


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
               new_ending: Ending | None) -> tuple[list[tuple[float, float, float]], list[tuple[float, float]]]:
    """(kept, generated): the kept runs with a bridge taken off every seam where the music's old
    neighbour changed and the old ending kept out of the middle of the new edit; the generated spans
    are the rest of [0, new_end)."""
    same_end = _same_ending(old_ending, new_ending, old_end, new_end)
    kept = []
    for a, b, o in _runs(changes):
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


def _same_ending(old: Ending | None, new: Ending | None, old_end: float, new_end: float) -> bool:
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


def _conform(scored_path, side, state: Sidecar, new_path, out_path, side_out, client, seed, rate, on_progress):
    tl = read_timeline(new_path, rate=rate)
    r = tl.duration.rate
    changes, deleted = changes_of(old_uses(state, r), new_uses(tl), r)
    if not any(c.kept for c in changes):
        raise CutscoreError(f"{new_path}: shares no picture with the edit {scored_path.name} scored; nothing to keep: "
                            "score it instead")
    sr = state.sample_rate
    old_music, _, _ = music_of(scored_path, (side, state))
    old_end = sum(s.duration for s in state.segments) / state.segments[0].rate
    new_end = tl.duration.to_seconds()
    kind = state.ending.kind if state.ending is not None else "cut"
    new_ending = Ending.plan(kind, new_end, 1 / tl.rate, [c.to_seconds() for c in tl.cuts]) \
        if state.ending is not None else None
    picture = [k for c in changes for k in c.kept]  # where each old second of picture plays now
    kept, generated = plan_music(changes, old_end, new_end, state.ending, new_ending)
    for c in changes:  # each clip's kept spans: the music actually copied under it
        c.kept = [(max(a, c.record_s[0]), min(b, c.record_s[1]), o + max(0.0, c.record_s[0] - a))
                  for a, b, o in kept if min(b, c.record_s[1]) - max(a, c.record_s[0]) > 1e-6]
    music = np.zeros((old_music.shape[0], to_samples(tl.duration, sr)), np.float32)
    for a, b, o in kept:
        n0, n1, o0 = round(a * sr), round(b * sr), round(o * sr)
        music[:, n0:n1] = old_music[:, o0:o0 + (n1 - n0)]
    work = side_out.with_name(side_out.name + ".partial")
    if work.exists():
        shutil.rmtree(work)
    (work / "engine").mkdir(parents=True)
    notices = list(tl.warnings)
    try:
        plan = make_plan(tl, window_s=_window_s(state))
        settings = state.settings.model_copy(update={"seed": seed} if seed is not None else {})
        req = build_request(plan, state.model, settings, work / "engine")
        lat = _moved_latents(state, req, kept)
        ducking = moved_ducking(state.ducking, picture, new_end)
        chain = Finishing(sr, sorted({round(t.to_seconds(), 6) for t in tl.cuts + tl.hits}) if state.hit_sync else [],
                          new_ending, state.gain_db, state.loudness_lufs, ducking)
        for k, (g0, g1) in enumerate(generated):
            parts = _parts(req, g0, g1)
            for j, (i, p0, p1) in enumerate(parts):
                music = _generate(client, req, i, p0, p1, lat, music, chain, state, k, on_progress,
                                  open_end=j + 1 < len(parts))
        windows = _windows(req, lat, music, sr, state.model_sample_rate, work / "engine")
        records = _write_segments(tl, music, sr, work)
        new_state = Sidecar(timeline=str(new_path.resolve()), scored=str(out_path.resolve()), model=state.model,
                            settings=settings, loudness_lufs=state.loudness_lufs, gain_db=state.gain_db,
                            sample_rate=sr, model_sample_rate=state.model_sample_rate, request=req, windows=windows,
                            hit_sync=state.hit_sync, ending=new_ending, ducking=ducking,
                            beats=track_beats(music, sr, markers=state.beats.markers if state.beats else True),
                            segments=records,
                            conform=ConformRecord(old=str(scored_path.resolve()), new=str(new_path.resolve()),
                                                  changes=ConformResult(out_path, side_out, changes, deleted, kept,
                                                                        generated, [], music, sr).to_json()["changes"],
                                                  deleted=deleted, kept=[list(k) for k in kept],
                                                  generated=[list(g) for g in generated]))
        if ducking is not None and any(c.kind == "new" for c in changes):
            notices.append("the speech under new clips is not listened to by a conform: the music ducks under the "
                           "dialogue of the kept picture only; score the new edit to duck under all of it")
        new_state.rebase(work / "engine", side_out / "engine")
        (work / STATE_FILE).write_text(new_state.to_json())
        if side_out.exists():
            shutil.rmtree(side_out)
        os.replace(work, side_out)
        write_timeline(out_path, new_path, tl.otio, segments_of(side_out, new_state, writable(out_path, new_path)),
                       new_state.summary(side_out), r)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return ConformResult(out_path, side_out, changes, deleted, kept, generated, notices, music, sr)


def moved_ducking(old: Ducking | None, picture: list[tuple[float, float, float]], new_end: float) -> Ducking | None:
    """The old score's ducking under the speech it found, the speech moved with the picture it came
    with (the kept picture's sync sound); the WAVs carry it as they did (baked) or not (keyframes)."""
    if old is None:
        return None
    regions = []
    for ra, rb in old.regions:
        for a, b, o in picture:
            x, y = max(ra, o), min(rb, o + (b - a))
            if y > x:
                regions.append((a + x - o, a + y - o))
    return Ducking.plan(sorted(regions), new_end, old.depth_db, old.attack_s, old.release_s, baked=old.baked)


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
    """A generated span split among the windows that own its seconds (a window owns from the middle
    of its overlap with the one before to the middle of its overlap with the next)."""
    ws = req.windows
    parts = []
    for i, w in enumerate(ws):
        lo = w.start_s + (w.overlap_s / 2 if i > 0 else 0.0)
        hi = ws[i + 1].start_s + ws[i + 1].overlap_s / 2 if i + 1 < len(ws) else w.start_s + w.duration_s
        a, b = max(g0, lo), min(g1, hi)
        if b - a > 1e-6:
            parts.append((i, a, b))
    return parts


def _generate(client, req, i, p0, p1, lat, music, chain: Finishing, state, k, on_progress, open_end=False):
    """One generated part: the engine inpaints [p0, p1) of window i with the moved latents around it
    held; the new audio is finished by the chain and spliced into the music, fading from and to the
    kept music at its edges (open_end: the next part follows, which fades in from this one's audio
    written past p1)."""
    w = req.windows[i]
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
    full = np.zeros_like(music)
    full[:, start:start + new.shape[1]] = new[:, :max(0, music.shape[1] - start)]
    blend = int(EDGE_BLEND_S * sr)
    region = (round(p0 * sr), min(round(p1 * sr) + (2 * blend if open_end else 0), start + new.shape[1]))
    out = splice(music, full, 0, region, blend)
    fps = _fps(state)
    got = np.load(res.latents)
    a0 = int(round((s0 - w.start_s) * fps))
    n = min(got.shape[-1], lat[i].shape[-1] - a0)
    f0, f1 = int((p0 - w.start_s) * fps), int(np.ceil((p1 - w.start_s) * fps))
    lat[i][..., max(f0, a0):min(f1, a0 + n)] = got[..., max(f0, a0) - a0:min(f1, a0 + n) - a0]
    return out


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


def _write_segments(tl: Timeline, music: np.ndarray, sr: int, work: Path) -> list[SegmentRecord]:
    records = []
    for kind, idx, name, rng in picture_segments(tl):
        wav = take_name(kind, idx, 1)
        write_wav(work / wav, music[:, to_samples(rng.start_time, sr):to_samples(rng.end_time_exclusive(), sr)], sr)
        records.append(SegmentRecord.of(kind, idx, name, rng, wav))
    return records
