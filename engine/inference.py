"""How music is generated from a request (the engine's inference, one recipe for every transport):
request -> per-clip picture features -> per window: its features and scene onsets (the editor's
cuts and hit points) -> continuation (the overlap held at the previous window's latents) or
inpainting (a regenerate's span, its neighbours held) -> sampling -> audio and latents written into
the request's output folder, atomically. It owns the seed rule (window i of a request seeded s
samples with s + i) and returns the seeds it used.

`run` is one attempt at one job with its outcome (done, cancelled, failed), its files discarded
when it did not finish: the job runner (service/jobs.py, behind the HTTP server) and the in-process
engine (core.client.LocalEngine) both call it. docs/ARCHITECTURE.md has the whole flow.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.api import (
    JobResult,
    ListenRequest,
    RegenerateRequest,
    Request,
    ScoreRequest,
    WindowResult,
    WindowSpec,
)
from core.errors import CutscoreError
from core.files import atomic_write

ProgressFn = Callable[[str, float, str], None]  # (stage, fraction, message), called per sampler step


class JobCancelled(Exception):
    pass


# ---- paths: the engine reads only the plan's media and writes only under output_dir -------------

def check_paths(req: Request) -> None:
    if ".." in Path(req.output_dir).parts:
        raise CutscoreError(f"{req.output_dir}: the output folder must not climb out with '..'")
    out = Path(req.output_dir).resolve()
    for d in req.dialogue if isinstance(req, ScoreRequest | ListenRequest) else []:
        if not Path(d.media).is_absolute():
            raise CutscoreError(f"dialogue: media path must be absolute: {d.media}")
    if isinstance(req, ListenRequest):
        return
    for c in req.clips:
        if c.media is not None and not Path(c.media).is_absolute():
            raise CutscoreError(f"clip {c.index}: media path must be absolute: {c.media}")
    if req.like is not None and not (Path(req.like.audio).is_absolute() and Path(req.like.audio).is_file()):
        raise CutscoreError(f"{req.like.audio}: the reference must be an absolute path to a WAV that exists")
    if isinstance(req, RegenerateRequest):
        lat = Path(req.latents).resolve()
        if out not in lat.parents:
            raise CutscoreError(f"{req.latents}: the latents to hold must lie inside the output folder {out}")


def _inside(out: Path, name: str) -> Path:
    p = (out / name).resolve()
    if out.resolve() not in p.parents:
        raise CutscoreError(f"{name}: would be written outside the output folder {out}")
    return p


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array)


# ---- the recipe -----------------------------------------------------------------------------------

class Pipelines:
    """Models loaded once per process and kept warm (the worker owns this)."""

    def __init__(self, device: str | None = None, compile: str | None = None):
        self.device, self.compile = device, compile
        self._loaded: dict[str, object] = {}
        self._lock = threading.Lock()

    def get(self, name: str):
        from engine.model.pipeline import Pipeline

        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = Pipeline.load(name, device=self.device, compile=self.compile)
            return self._loaded[name]


class ClipFeatures:
    """Each picture clip's per-second features (engine/features), read when a window first needs
    them and forgotten once the windows have passed the clip: a long edit never holds them all, and
    the first window samples after reading only its own clips. A regenerate reads only the clips
    under its window. Media that is missing or unreadable: cut-only conditioning, with a warning."""

    def __init__(self, req: Request, pipe, warnings: list[str]):
        from engine.features import FeatureConfig

        self._cfg = FeatureConfig(clip_model=pipe.cfg.clip_model, clip_pretrained=pipe.cfg.clip_pretrained)
        self._clips = {c.index: c for c in req.clips if c.media}
        self._warnings = warnings
        self._feats: dict[int, object] = {}
        clips = req.clips
        if isinstance(req, RegenerateRequest):  # only the clips under its one window: the same cost in a long edit
            w = req.windows[req.window]
            clips = [c for c in clips if c.start_s < w.start_s + w.duration_s and w.start_s < c.start_s + c.duration_s]
        for c in clips:  # told at once, before any sampling
            if c.media and not Path(c.media).is_file():
                warnings.append(f"clip {c.index} {c.name!r}: media not found ({c.media}); cut-only conditioning")
                self._feats[c.index] = None

    def get(self, index: int):
        if index not in self._feats and index in self._clips:
            from engine.features import extract

            c = self._clips[index]
            try:
                self._feats[index] = extract(c.media, c.source_start_s, c.source_start_s + c.duration_s, cuts_s=[],
                                             config=self._cfg)
            except CutscoreError as e:
                self._warnings.append(f"clip {c.index} {c.name!r}: {e}; cut-only conditioning")
                self._feats[index] = None
        return self._feats.get(index)

    def forget_before(self, t: float) -> None:
        """Drop the features of clips that end before timeline second t (the windows go forward)."""
        for i in [i for i in self._feats if i in self._clips and self._clips[i].start_s + self._clips[i].duration_s <= t]:
            if self._feats[i] is not None:
                del self._feats[i]


def window_features(req: Request, index: int, clip_feats: ClipFeatures | dict, clip_dim: int = 512):
    """Per-second features of one window, from the clips under each second's middle; the scene
    onsets are the timeline's cuts and hit points (the editor's cuts ARE the scene transitions)."""
    from core.signal import onsets_from_cuts
    from engine.model.pipeline import WindowFeatures

    w = req.windows[index]
    m = int(math.ceil(w.duration_s - 1e-9))
    out = WindowFeatures.zeros(m, w.start_s, w.duration_s, clip_dim=clip_dim)
    for s in range(m):
        t = w.start_s + min(s + 0.5, w.duration_s - 1e-3)
        clip = next((c for c in req.clips if c.start_s <= t < c.start_s + c.duration_s), None)
        f = clip_feats.get(clip.index) if clip is not None else None
        if f is None:
            continue
        k = min(int(t - clip.start_s), f.seconds - 1)
        out.clip[s], out.color[s], out.beat[s] = f.clip[k][:clip_dim], f.color[k], f.beat[k]
    out.scene[:] = onsets_from_cuts(list(req.cuts_s) + list(req.hits_s), w.start_s, w.duration_s)
    out.rhythm = edited_rhythm(req.rhythm, w.start_s, m)
    return out


def edited_rhythm(curve: list[float | None], start_s: float, seconds: int) -> np.ndarray | None:
    """The editor's per-timeline-second curve for a window's seconds: second s takes the value of
    the timeline second its middle lies in; NaN where the prediction stands. None: nothing edited."""
    if not any(v is not None for v in curve):
        return None
    k = np.floor(start_s + np.arange(seconds) + 0.5).astype(int)
    return np.array([curve[i] if i < len(curve) and curve[i] is not None else np.nan for i in k], np.float32)


def _span(req: RegenerateRequest, i: int, clip_feats: ClipFeatures, cfg, known):
    """The sub-window [span_start_s, span_end_s) of window i: its spec, features and known latents
    (the window's frames from the span's start on), so sampling costs the span, not the window."""
    w = req.windows[i]
    sub = WindowSpec(start_s=req.span_start_s, duration_s=req.span_end_s - req.span_start_s)
    sub_req = req.model_copy(update={"windows": [*req.windows[:i], sub, *req.windows[i + 1:]]})
    wf = window_features(sub_req, i, clip_feats, cfg.encoders.clip_dim)
    fps = cfg.sample_rate / cfg.downsampling
    a0 = int(round((sub.start_s - w.start_s) * fps))
    shifted = known.new_zeros(known.shape)
    shifted[..., :known.shape[-1] - a0] = known[..., a0:]
    return sub, wf, shifted


def _continuation(req: Request, i: int, prev, cfg):
    """(known latents, t0, t1) holding this window's overlap at the previous window's latents for
    the same seconds, or None (no overlap, continuation off, or a window that starts at a cut with
    at_cuts="change")."""
    import torch

    s, w = req.settings, req.windows[i]
    if not s.continuation or w.overlap_s <= 0:
        return None
    if s.at_cuts == "change" and any(abs(c - w.start_s) < 1e-3 for c in req.cuts_s):
        return None
    pw, lat = prev
    fps = cfg.sample_rate / cfg.downsampling  # latent frames per second
    a0 = int(round((w.start_s - pw.start_s) * fps))
    n = min(int(w.overlap_s * fps), lat.shape[-1] - a0)
    if n <= 0 or a0 < 0:
        return None
    known = torch.zeros_like(lat)
    known[..., :n] = lat[..., a0:a0 + n]
    return known, (n + 0.5) / fps, cfg.window_seconds + 1.0  # regenerate from frame n on


def window_seed(seed: int, index: int) -> int:
    """The seed rule: each window its own noise, reproducible from the request's one seed."""
    return seed + index


def _sample_window(req: Request, i: int, pipe, wf, clip_feats: ClipFeatures, prev, seed: int, kw: dict):
    """One window's generation: a regenerate's inpainting (of its span when it has one), else a
    fresh window continuing the previous one's overlap. Returns (spec sampled, generation)."""
    import torch

    w = req.windows[i]
    if isinstance(req, RegenerateRequest):
        known = torch.from_numpy(np.load(req.latents))
        trim = req.span_start_s is not None
        if trim:
            w, wf, known = _span(req, i, clip_feats, pipe.cfg, known)
        return w, pipe.regenerate(wf, known, req.region_start_s - w.start_s, req.region_end_s - w.start_s,
                                  seed=seed, trim=trim, like=reference(req, w, pipe), **kw)
    hold = _continuation(req, i, prev, pipe.cfg) if prev is not None else None
    return w, pipe.generate(wf, seed=seed, inpaint=hold, like=reference(req, w, pipe), **kw)


def reference(req: Request, w: WindowSpec, pipe):
    """(latents, strength) of the request's reference under the seconds w samples, encoded by the
    model's own VAE (read from the WAV for those seconds only, resampled to the model's rate), or
    None: no reference, strength 0 (the music is then what it is without one), or a reference that
    ended before w (the rest of the edit has none). A reference ending inside w is silence after; one
    starting inside it (like.start_s: a take's window only, --vary) is silence before."""
    like = req.like
    if like is None or like.strength <= 0:
        return None
    import soundfile as sf
    import soxr

    info = sf.info(like.audio)
    a = round((w.start_s - like.start_s) * info.samplerate)
    b = min(info.frames, round((w.start_s + w.duration_s - like.start_s) * info.samplerate))
    if a >= info.frames or b <= 0:
        return None
    audio, _ = sf.read(like.audio, start=max(a, 0), stop=b, dtype="float32", always_2d=True)
    if a < 0:
        audio = np.concatenate([np.zeros((-a, audio.shape[1]), np.float32), audio])
    if info.samplerate != pipe.cfg.sample_rate:
        audio = soxr.resample(audio, info.samplerate, pipe.cfg.sample_rate, quality="HQ")
    return pipe.encode(audio.T), like.strength


def generate(req: Request, pipelines: Pipelines, stem: str, progress: ProgressFn,
             cancelled: threading.Event) -> JobResult:
    """The request's windows (a regenerate: its one window), written as window<i>-<stem>.wav/.npy;
    a listen request: only the speech in its sound."""
    check_paths(req)
    if isinstance(req, ListenRequest):
        from engine.features.speech import SPEECH_SR, VAD

        warnings: list[str] = []
        speech = _speech(req, progress, warnings)
        progress("done", 1.0, "done")
        return JobResult(kind="listen", model=VAD, sample_rate=SPEECH_SR, windows=[], warnings=warnings, speech_s=speech)
    out = Path(req.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    progress("features", 0.0, "loading the model")
    pipe = pipelines.get(req.model)
    _check_rhythm(req, pipe.cfg.window_seconds)
    warnings: list[str] = []
    clip_feats = ClipFeatures(req, pipe, warnings)
    speech = _speech(req, progress, warnings)
    indices = [req.window] if isinstance(req, RegenerateRequest) else list(range(len(req.windows)))
    s = req.settings
    results, prev = [], None  # prev: (window spec, its latents) for continuation
    for n, i in enumerate(indices):
        if cancelled.is_set():
            raise JobCancelled()
        label = f"window {n + 1}/{len(indices)}"
        progress("features", 0.1 + 0.85 * n / len(indices), f"{label}: reading the picture")
        clip_feats.forget_before(req.windows[i].start_s)
        wf = window_features(req, i, clip_feats, pipe.cfg.encoders.clip_dim)
        progress("rhythm", 0.1 + 0.85 * n / len(indices), f"{label}: predicting the rhythm")

        def on_step(k: int, total: int, n=n, label=label) -> None:
            if cancelled.is_set():
                raise JobCancelled()
            progress("sampling", 0.1 + 0.85 * (n + k / total) / len(indices), f"{label}: sampling step {k}/{total}")

        seed = window_seed(s.seed, i)
        kw = dict(steps=s.steps or pipe.cfg.diffusion.steps, guidance=s.guidance, sampler=s.sampler, callback=on_step)
        w, gen = _sample_window(req, i, pipe, wf, clip_feats, prev, seed, kw)
        if not isinstance(req, RegenerateRequest):
            prev = (w, gen.latents)
        progress("writing", 0.1 + 0.85 * (n + 1) / len(indices), f"{label}: writing")
        results.append(_write_window(out, f"window{i:02d}-{stem}", i, w, gen, seed))
    progress("done", 1.0, "done")
    return JobResult(kind=req.kind, model=req.model, sample_rate=pipe.cfg.sample_rate, windows=results,
                     warnings=warnings, speech_s=speech)


def _check_rhythm(req: Request, window_s: float) -> None:
    from core.model_config import rhythm_range

    lo, hi = rhythm_range(window_s)
    for k, v in enumerate(req.rhythm):
        if v is not None and not lo - 1e-6 <= v <= hi + 1e-6:
            raise CutscoreError(f"rhythm value {v:g} at {k} s is outside the model's range [{lo:.2f}, {hi:.2f}]")


def _speech(req: Request, progress: ProgressFn, warnings: list[str]) -> list[tuple[float, float]]:
    """The speech in a score's (or a listen request's) dialogue (engine/features/speech.py), for the
    music's ducking."""
    if isinstance(req, RegenerateRequest) or not req.dialogue:
        return []
    from engine.features.speech import detect_speech

    progress("speech", 0.05, f"listening for speech in {len(req.dialogue)} audio clips")
    found = detect_speech(req.dialogue, req.duration_s, warnings,
                          lambda f: progress("speech", 0.05 + 0.04 * f, "listening for speech"))
    progress("speech", 0.09, f"speech: {len(found)} regions, {sum(b - a for a, b in found):.1f} s")
    return found


def _write_window(out: Path, stem: str, i: int, w: WindowSpec, gen, seed: int) -> WindowResult:
    import soundfile as sf

    wav, lat = _inside(out, f"{stem}.wav"), _inside(out, f"{stem}.npy")
    atomic_write(wav, lambda p: sf.write(p, gen.audio.T, gen.sample_rate, subtype="FLOAT", format="WAV"))
    atomic_write(lat, lambda p: _save_npy(p, gen.latents.numpy()))
    return WindowResult(index=i, start_s=w.start_s, duration_s=w.duration_s, overlap_s=w.overlap_s, audio=str(wav),
                        latents=str(lat), rhythm=[float(v) for v in gen.rhythm[:, 0]], seed=seed)


# ---- one attempt at a job, with its outcome ---------------------------------------------------------

@dataclass
class Outcome:
    state: str  # done, cancelled or failed
    message: str
    result: JobResult | None = None


def job_files(req: Request, job_id: str, everything: bool) -> list[Path]:
    """The files a run of this job writes into its output folder (window<i>-<id>.wav/.npy), and
    the temporaries of a run that was killed mid-write; only those unless `everything`."""
    out = Path(req.output_dir)
    if not out.is_dir():
        return []
    stem = f"-{job_id[:8]}"
    temps = list(out.glob(f".window*{stem}.*.tmp.*"))
    return temps + list(out.glob(f"window*{stem}.*")) if everything else temps


def discard_job_files(req: Request, job_id: str, everything: bool) -> None:
    try:
        for p in job_files(req, job_id, everything):
            p.unlink(missing_ok=True)
    except OSError:
        pass


def run(req: Request, pipelines: Pipelines, job_id: str, progress: ProgressFn, cancelled: threading.Event) -> Outcome:
    """One attempt: a killed run's temporaries cleared first; a job that does not finish leaves no
    window files (nothing would ever read them); a crash is a failed job, never a dead worker."""
    last = [""]

    def noted(stage: str, frac: float, msg: str) -> None:
        last[0] = msg
        progress(stage, frac, msg)

    discard_job_files(req, job_id, everything=False)
    try:
        return Outcome("done", "done", generate(req, pipelines, job_id[:8], noted, cancelled))
    except JobCancelled:
        outcome = Outcome("cancelled", f"cancelled after: {last[0]}")
    except CutscoreError as e:
        outcome = Outcome("failed", str(e))
    except Exception as e:  # noqa: BLE001 - a job's crash must not kill the worker
        outcome = Outcome("failed", f"internal error: {type(e).__name__}: {e}")
    discard_job_files(req, job_id, everything=True)
    return outcome
