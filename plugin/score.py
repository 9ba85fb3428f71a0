"""Scoring a timeline and regenerating one clip's music (torch-free; the model is reached only
through an EngineClient).

score:      timeline -> plan -> engine (windows) -> stitch, resample, exact length, loudness ->
            one 24-bit WAV per picture item in `<OUT stem>.cutscore/` -> a NEW timeline with the
            "cutscore music" track. cutscore's state (model, seed, settings, windows, latents, gain)
            is kept in `<OUT stem>.cutscore/cutscore.json` (a sidecar, because Resolve drops unknown
            metadata) and summarised under metadata["cutscore"].
regenerate: scored timeline -> its sidecar (found from the music clips' WAV paths) -> the engine
            re-samples the clip's span by inpainting with the neighbours' latents held -> the clip's
            new WAV is a new versioned file, its edges blended into the old audio so the joins
            stay continuous; the other WAVs are not touched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from engine.api import ClipSpan, JobStatus, RegenerateRequest, ScoreRequest, Settings, WindowSpec
from engine.client import EngineClient, run_job
from engine.errors import CutscoreError
from engine.files import atomic_write, atomic_write_text
from plugin.plan import Plan, make_plan
from plugin.render import (
    StitchWindow,
    apply_gain,
    loudness_gain_db,
    read_wav,
    render_music,
    to_samples,
    write_wav,
)
from plugin.timeline import ADAPTERS, Limits, Timeline, _unique_sorted, read_timeline
from plugin.writeback import Segment, check_output, music_track, write_scored

STATE_FILE = "cutscore.json"
STATE_VERSION = 1
EDGE_BLEND_S = 0.03  # a regenerated clip fades from the old audio into the new over its first/last 30 ms
REGEN_MARGIN_S = 1.5  # a regenerate samples the clip plus this much context either side (held)
ROOT = Path(__file__).resolve().parent.parent
DEMO_MODEL = ROOT / "resources" / "models" / "demo"


@dataclass
class ScoreOptions:
    model: str | None = None
    seed: int = 0
    steps: int | None = None
    guidance: float | None = None
    sampler: str | None = None
    loudness: float = -14.0
    sample_rate: int = 48000
    force: bool = False
    hits_s: list[float] = field(default_factory=list)  # extra hit points (Resolve's markers), seconds
    hit_sync: bool = True  # move the nearest strong onset onto each cut and hit point (plugin/hitsync.py)
    at_cuts: str = "continue"  # "change": a window starting at a cut begins afresh
    continuation: bool = True  # False: every window sampled independently (for comparison)


def default_model() -> tuple[str, str | None]:
    """(model, notice): the shipped demo model when it exists, else the debug model."""
    if (DEMO_MODEL / "config.json").exists():
        return str(DEMO_MODEL), None
    return "debug", ("no trained model is installed: using the random `debug` model, whose music is noise-like; "
                     "see README.md, 'Weights'")


def sidecar_dir(out: Path) -> Path:
    return out.with_name(out.stem + ".cutscore")


def build_request(plan: Plan, model: str, settings: Settings, output_dir: Path) -> ScoreRequest:
    tl = plan.timeline
    clips = [ClipSpan(index=c.index, name=c.name, start_s=c.range.start_time.to_seconds(),
                      duration_s=c.range.duration.to_seconds(),
                      media=str(c.media_path) if c.media_path else None,
                      source_start_s=c.file_range.start_time.to_seconds()) for c in tl.clips]
    return ScoreRequest(model=model, duration_s=tl.duration.to_seconds(), clips=clips,
                        cuts_s=[c.to_seconds() for c in tl.cuts], hits_s=[h.to_seconds() for h in tl.hits],
                        windows=[WindowSpec(start_s=w.start.to_seconds(), duration_s=w.duration.to_seconds(),
                                            overlap_s=w.overlap.to_seconds()) for w in plan.windows],
                        settings=settings, output_dir=str(output_dir.resolve()))


def picture_segments(tl: Timeline) -> list[tuple[str, int, str, TimeRange]]:
    """Every item of the flattened picture in order: (kind, index, name, range)."""
    items, pos, gap_n = [], RationalTime(0, tl.duration.rate), 0
    for c in tl.clips:
        if c.range.start_time > pos:
            items.append(("gap", gap_n, f"gap {gap_n}", TimeRange(pos, c.range.start_time - pos)))
            gap_n += 1
        items.append(("clip", c.index, c.name, c.range))
        pos = c.range.end_time_exclusive()
    if pos < tl.duration:
        items.append(("gap", gap_n, f"gap {gap_n}", TimeRange(pos, tl.duration - pos)))
    return items


def _windows_audio(results) -> list[StitchWindow]:
    out = []
    for w in sorted(results, key=lambda r: r["start_s"]):
        audio, _ = read_wav(w["audio"])
        out.append(StitchWindow(w["start_s"], w["duration_s"], w["overlap_s"], audio))
    return out


def _cut(music: np.ndarray, r: TimeRange, sr: int) -> np.ndarray:
    return music[:, to_samples(r.start_time, sr):to_samples(r.end_time_exclusive(), sr)]


def score_timeline(timeline_path: str | Path, out_path: str | Path, client: EngineClient, opts: ScoreOptions,
                   rate: float | None = None, relink: str | None = None,
                   on_progress: Callable[[JobStatus], None] | None = None, limits: Limits = Limits()) -> dict:
    timeline_path, out_path = Path(timeline_path), Path(out_path)
    if out_path.resolve() == timeline_path.resolve():
        raise CutscoreError(f"{out_path}: is the input; cutscore never modifies your timeline, choose another -o")
    check_output(timeline_path, out_path)
    if out_path.exists() and not opts.force:
        raise CutscoreError(f"{out_path}: already exists; choose another -o or pass --force")
    if not out_path.parent.is_dir():
        raise CutscoreError(f"{out_path.parent}: no such folder for the output")
    side = sidecar_dir(out_path)
    if side.exists() and not opts.force:
        raise CutscoreError(f"{side}: already exists (the music of an earlier score); pass --force to replace it")
    tl = read_timeline(timeline_path, rate=rate, relink=relink, limits=limits)
    if opts.hits_s:
        extra = [RationalTime.from_seconds(s, tl.duration.rate).round() for s in opts.hits_s]
        tl.hits = _unique_sorted([h for h in tl.hits + extra if h <= tl.duration])
    model = opts.model
    notices = list(tl.warnings)
    if model is None:
        model, notice = default_model()
        if notice:
            notices.append(notice)
    from engine.client import model_window_s

    plan = make_plan(tl, window_s=model_window_s(model))
    work = side.with_name(side.name + ".partial")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    try:
        settings = Settings(seed=opts.seed, steps=opts.steps, guidance=opts.guidance, sampler=opts.sampler,
                            at_cuts=opts.at_cuts, continuation=opts.continuation)
        req = build_request(plan, model, settings, work / "engine")
        result = run_job(client, req, on_progress)
        notices.extend(result.warnings)
        windows = [w.model_dump() for w in result.windows]
        music = render_music(_windows_audio(windows), result.sample_rate, tl.duration, opts.sample_rate)
        targets = sorted({round(t.to_seconds(), 6) for t in tl.cuts + tl.hits})
        music, sync = _hit_sync(music, opts.sample_rate, targets, opts.hit_sync, notices)
        gain = loudness_gain_db(music, opts.sample_rate, opts.loudness)
        music = apply_gain(music, gain)
        segments = []
        for kind, idx, name, rng in picture_segments(tl):
            wav = side / f"{kind}{idx:03d}-v1.wav"
            write_wav(work / wav.name, _cut(music, rng, opts.sample_rate), opts.sample_rate)
            segments.append(Segment(kind, idx, name, rng, wav))
        state = {
            "version": STATE_VERSION, "timeline": str(timeline_path.resolve()), "scored": str(out_path.resolve()),
            "model": model, "settings": settings.model_dump(), "loudness_lufs": opts.loudness, "gain_db": gain,
            "sample_rate": opts.sample_rate, "model_sample_rate": result.sample_rate,
            "request": json.loads(req.model_dump_json()), "windows": windows, "hit_sync": sync,
            "segments": [{"kind": s.kind, "index": s.index, "name": s.name, "start": s.range.start_time.value,
                          "duration": s.range.duration.value, "rate": s.range.duration.rate, "wav": s.wav.name}
                         for s in segments],
        }
        _rebase_state(state, work / "engine", side / "engine")
        (work / STATE_FILE).write_text(json.dumps(state, indent=2))
        if side.exists():
            shutil.rmtree(side)
        os.replace(work, side)
        meta = {"model": model, "seed": opts.seed, "settings": settings.model_dump(), "sidecar": str(side.resolve()),
                "loudness_lufs": opts.loudness, "gain_db": round(gain, 3), "sample_rate": opts.sample_rate,
                "windows": [{"start_s": w["start_s"], "duration_s": w["duration_s"], "latents": w["latents"]}
                            for w in state["windows"]]}
        write_scored(tl, segments, meta, out_path)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return {"out": str(out_path), "sidecar": str(side), "segments": len(segments), "model": model,
            "gain_db": gain, "notices": notices, "cuts_s": [c.to_seconds() for c in tl.cuts],
            "music": music, "sample_rate": opts.sample_rate, "windows": state["windows"]}


def _hit_sync(music: np.ndarray, sr: int, targets: list[float], enabled: bool, notices: list[str]):
    """(music, the sidecar's hit_sync record or None)."""
    from plugin import hitsync

    if not enabled or not targets:
        return music, None
    why = hitsync.available()
    if why:
        notices.append(why)
        return music, None
    music, report = hitsync.sync_hits(music, sr, targets)
    return music, hitsync.summary(report)


def load_state(scored_path: str | Path, scored: otio.schema.Timeline | None = None) -> tuple[Path, dict]:
    from plugin.timeline import load_otio

    scored_path = Path(scored_path)
    side = find_sidecar(scored if scored is not None else load_otio(scored_path), scored_path)
    path = side / STATE_FILE
    if not path.is_file():
        raise CutscoreError(f"{path}: is not a file; keep the `.cutscore` folder as `cutscore score` wrote it")
    try:
        state = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CutscoreError(f"{path}: damaged ({e}); score the timeline again") from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise CutscoreError(f"{path}: written by another cutscore version; score the timeline again")
    missing = [k for k in ("segments", "windows", "request", "sample_rate", "gain_db") if k not in state]
    if missing or not state["segments"] or not state["windows"]:
        raise CutscoreError(f"{path}: damaged (no {', '.join(missing) or 'segments or windows'}); "
                            "score the timeline again")
    for w in state["windows"]:
        for k in ("audio", "latents"):
            if not Path(str(w.get(k, ""))).is_file():
                raise CutscoreError(f"{path}: names {w.get(k)!r}, which is missing; keep the `.cutscore` folder "
                                    "whole, or score the timeline again")
    return side, state


def music_of(scored_path: str | Path) -> tuple[np.ndarray, int, list[float]]:
    """The current music of a scored timeline (its segments' WAVs in order), its rate, and the
    predicted rhythm per second of the timeline."""
    side, state = load_state(scored_path)
    audio = np.concatenate([read_wav(side / s["wav"])[0] for s in state["segments"]], axis=1)
    total = int(np.ceil(sum(s["duration"] for s in state["segments"]) / state["segments"][0]["rate"]))
    rhythm = [0.0] * total
    for w in state["windows"]:
        for k, v in enumerate(w["rhythm"]):
            t = int(w["start_s"]) + k
            if t < total and (k >= w["overlap_s"] or rhythm[t] == 0.0):
                rhythm[t] = v
    return audio, state["sample_rate"], rhythm


def export_scored(scored_path: str | Path, out_path: str | Path, force: bool = False) -> Path:
    """Write the current scored timeline in another format (by out_path's suffix)."""
    side, state = load_state(scored_path)
    out_path = Path(out_path)
    if out_path.exists() and not force:
        raise CutscoreError(f"{out_path}: already exists; choose another name")
    tl = read_timeline(state["timeline"])
    segments = [Segment(s["kind"], s["index"], s["name"],
                        TimeRange(RationalTime(s["start"], s["rate"]), RationalTime(s["duration"], s["rate"])),
                        side / s["wav"]) for s in state["segments"]]
    meta = {"model": state["model"], "seed": state["settings"]["seed"], "sidecar": str(side.resolve())}
    write_scored(tl, segments, meta, out_path)
    return out_path


def _rebase_state(state: dict, old: Path, new: Path) -> None:
    """The engine wrote into the partial folder; point the state at the final one."""
    for w in state["windows"]:
        for k in ("audio", "latents"):
            w[k] = str(new / Path(w[k]).relative_to(old.resolve()))
    state["request"]["output_dir"] = str(new.resolve())


# ---- regenerate -------------------------------------------------------------------------------------

def find_sidecar(scored: otio.schema.Timeline, scored_path: Path) -> Path:
    """The `.cutscore` folder of a scored timeline: found from its music clips' WAV paths (which
    survive Resolve and Kdenlive), else beside the timeline under the name `score` gave it (a
    .otioz bundle carries copies of the WAVs inside the archive)."""
    track = music_track(scored)
    beside = sidecar_dir(scored_path)
    if track is None:
        raise CutscoreError(f"{scored_path}: has no '{'cutscore music'}' track; score it first with `cutscore score`")
    for clip in track.find_clips():
        p = wav_path(clip)
        if p is not None and (p.parent / STATE_FILE).exists():
            return p.parent
    if (beside / STATE_FILE).exists():
        return beside
    raise CutscoreError(f"{scored_path}: the music's folder with {STATE_FILE} was not found next to its WAVs; "
                        "keep the `.cutscore` folder beside the WAVs")


def regenerate_clip(scored_path: str | Path, clip: str, client: EngineClient, out_path: str | Path | None = None,
                    seed: int | None = None, force: bool = False,
                    on_progress: Callable[[JobStatus], None] | None = None) -> dict:
    from plugin.timeline import load_otio

    scored_path = Path(scored_path)
    scored = load_otio(scored_path)
    side, state = load_state(scored_path, scored)
    segs = [s for s in state["segments"] if s["kind"] == "clip"]
    target = next((s for s in segs if str(s["index"]) == clip), None) or next((s for s in segs if s["name"] == clip), None)
    if target is None:
        names = ", ".join(f"{s['index']} {s['name']!r}" for s in segs)
        raise CutscoreError(f"{scored_path}: no clip {clip!r}; the clips are {names}")
    rate = target["rate"]
    rng = TimeRange(RationalTime(target["start"], rate), RationalTime(target["duration"], rate))
    a_s, b_s = rng.start_time.to_seconds(), rng.end_time_exclusive().to_seconds()
    windows = state["windows"]
    mid = (a_s + b_s) / 2
    wi = next(i for i, w in enumerate(windows) if w["start_s"] <= mid <= w["start_s"] + w["duration_s"]
              or i == len(windows) - 1)
    w = windows[wi]
    region = (max(a_s, w["start_s"]), min(b_s, w["start_s"] + w["duration_s"]))
    # regenerate by the clip: sample the clip plus a margin each side, not the whole window
    span = (max(w["start_s"], region[0] - REGEN_MARGIN_S), min(w["start_s"] + w["duration_s"], region[1] + REGEN_MARGIN_S))
    old_seed = w["seed"] - wi
    new_seed = seed if seed is not None else int.from_bytes(os.urandom(4), "little")
    if new_seed == old_seed:
        new_seed += 1
    req_data = dict(state["request"])
    req_data["settings"] = dict(req_data["settings"], seed=new_seed)
    req = RegenerateRequest(**{k: v for k, v in req_data.items() if k != "kind"}, window=wi, region_start_s=region[0],
                            region_end_s=region[1], latents=w["latents"], span_start_s=span[0], span_end_s=span[1])
    takes = [int(m.group(1)) for p in side.glob(f"clip{target['index']:03d}-v*.wav")
             if (m := re.fullmatch(r"clip\d+-v(\d+)", p.stem))]
    version = 1 + max(takes, default=0)
    out_path = Path(out_path) if out_path else scored_path.with_name(f"{scored_path.stem}-r{version}{scored_path.suffix}")
    if out_path.exists() and not force:
        raise CutscoreError(f"{out_path}: already exists; choose another -o or pass --force")
    if not out_path.parent.is_dir():
        raise CutscoreError(f"{out_path.parent}: no such folder for the output")
    if out_path.suffix.lower() != scored_path.suffix.lower():
        raise CutscoreError(f"{out_path}: regenerate writes the scored timeline's own format "
                            f"({scored_path.suffix}); name the output {out_path.stem}{scored_path.suffix}")
    result = run_job(client, req, on_progress)
    new_w = result.windows[0].model_dump()  # the span [span_start, span_end), not the whole window
    sr = state["sample_rate"]
    span_range = TimeRange(RationalTime.from_seconds(new_w["start_s"], rate).round(),
                           RationalTime.from_seconds(new_w["duration_s"], rate).round())
    music = render_music([StitchWindow(0.0, new_w["duration_s"], 0.0, read_wav(new_w["audio"])[0])],
                         state["model_sample_rate"], span_range.duration, sr)
    if state.get("hit_sync"):  # the same warps as the score, so the new take lands its hits too
        targets = [o["target_s"] - new_w["start_s"] for o in state["hit_sync"]["offsets"]]
        music, _ = _hit_sync(music, sr, [t for t in targets if 0 < t < new_w["duration_s"]], True, [])
    music = apply_gain(music, state["gain_db"])
    old_audio, _ = read_wav(side / target["wav"])
    new_audio = _splice(old_audio, music, to_samples(span_range.start_time - rng.start_time, sr),
                        (to_samples(RationalTime.from_seconds(region[0], rate) - rng.start_time, sr),
                         to_samples(RationalTime.from_seconds(region[1], rate) - rng.start_time, sr)),
                        int(EDGE_BLEND_S * sr))
    wav = side / f"clip{target['index']:03d}-v{version}.wav"
    write_wav(wav, new_audio, sr)
    target_wav_old = target["wav"]
    target["wav"] = wav.name
    state.setdefault("history", []).append({"clip": target["index"], "seed": new_seed, "window": wi,
                                            "span_s": list(span), "replaced": target_wav_old, "wav": wav.name,
                                            "latents": new_w["latents"]})
    atomic_write_text(side / STATE_FILE, json.dumps(state, indent=2))
    _write_regenerated(scored_path, scored, side / target_wav_old, wav, out_path, target["name"])
    return {"out": str(out_path), "wav": str(wav), "clip": target["index"], "name": target["name"], "seed": new_seed,
            "window": wi}


def _splice(old: np.ndarray, span_audio: np.ndarray, span_offset: int, region: tuple[int, int], n: int) -> np.ndarray:
    """The clip's audio: the old take outside `region` (samples from the clip's start), the new
    span's audio inside it (span_audio starts span_offset samples after the clip's start), blended
    over n samples at the region's edges so it starts and ends on the old audio."""
    a, b = max(region[0], 0), min(region[1], old.shape[1])
    new = old.copy()
    src = span_audio[:, a - span_offset:b - span_offset]
    new[:, a:a + src.shape[1]] = src
    new[:, a:b] = _blend_edges(old[:, a:b], new[:, a:b], n)
    return new


def _blend_edges(old: np.ndarray, new: np.ndarray, n: int) -> np.ndarray:
    """Start and end exactly on the old audio (continuous with the untouched neighbours), fading
    into the new audio over n samples at each edge."""
    n = min(n, new.shape[1] // 2)
    if n <= 0 or old.shape != new.shape:
        return new
    out = new.copy()
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n, dtype=np.float64))  # 0 -> 1
    out[:, :n] = old[:, :n] * (1 - ramp) + new[:, :n] * ramp
    out[:, -n:] = old[:, -n:] * ramp + new[:, -n:] * (1 - ramp)  # ends exactly on the old audio
    return out.astype(np.float32)


def _write_regenerated(scored_path: Path, scored: otio.schema.Timeline, old: Path, wav: Path,
                       out_path: Path, name: str = "") -> None:
    """The scored timeline with the clip's music pointing at `wav` instead of `old`."""
    suffix = scored_path.suffix.lower()
    if suffix == ".kdenlive":
        from plugin.kdenlive_writer import replace_clip_wav

        atomic_write_text(out_path, replace_clip_wav(scored_path.read_text(encoding="utf-8"), old, wav,
                                                     f"cutscore music: {name}"))
        return
    track = music_track(scored)
    take = take_pattern(old.name)
    found = 0
    for c in track.find_clips():  # found by its WAV's take name, which survives editors that drop metadata
        p = wav_path(c)
        if p is not None and take.fullmatch(p.name):
            new_url = wav.resolve().as_uri() if out_path.suffix.lower() == ".xml" else str(wav.resolve())
            c.media_reference.target_url = new_url  # FCP7 XML: a file:// URL; OTIO: a plain path (Resolve)
            found += 1
    if not found:
        raise CutscoreError(f"{scored_path}: no music clip plays a take of {old.name}; was the music track edited?")
    side = wav.parent
    out_suffix = out_path.suffix.lower()
    kwargs = {}
    if out_suffix in (".otioz", ".otiod"):
        for c in track.find_clips():  # the bundle's own copies of the other takes: the sidecar's originals
            p = wav_path(c)
            if p is not None and not p.is_absolute() and (side / p.name).exists():
                c.media_reference.target_url = str((side / p.name).resolve())
        from opentimelineio.adapters.file_bundle_utils import MediaReferencePolicy

        kwargs["media_policy"] = MediaReferencePolicy.MissingIfNotFile
    atomic_write(out_path, lambda tmp: otio.adapters.write_to_file(scored, str(tmp), adapter_name=ADAPTERS[out_suffix],
                                                                   **kwargs))


def take_pattern(wav_name: str) -> re.Pattern:
    """Any take of the same music segment: clip003-v1.wav, clip003-v2.wav, ..."""
    stem = wav_name.rsplit("-v", 1)[0]
    return re.compile(re.escape(stem) + r"-v\d+\.wav")


def wav_path(clip: otio.schema.Clip) -> Path | None:
    url = getattr(clip.media_reference, "target_url", None)
    if not url:
        return None
    if url.startswith("file://"):
        return Path(urllib.parse.unquote(urllib.parse.urlparse(url).path))
    return Path(url)
