"""The engine's jobs: what a job does (features -> rhythm -> sampling -> decoding -> writing, per
window), where jobs live (a SQLite store that survives restarts) and who runs them (one worker
thread that owns the models, FIFO, cancel within one sampler step).

Both transports use this: LocalEngine runs a JobManager in-process, the HTTP server (server.py)
runs one behind its routes. Results are written atomically (temp file + rename) into the request's
output folder, and a job is reported `done` only after every file of its result is in place.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from engine.api import (
    JobResult,
    JobStatus,
    RegenerateRequest,
    Request,
    WindowResult,
    WindowSpec,
    parse_request,
)
from engine.errors import CutscoreError
from engine.files import atomic_write


class JobCancelled(Exception):
    pass


# ---- paths: the engine reads only the plan's media and writes only under output_dir -------------

def check_paths(req: Request) -> None:
    if ".." in Path(req.output_dir).parts:
        raise CutscoreError(f"{req.output_dir}: the output folder must not climb out with '..'")
    out = Path(req.output_dir).resolve()
    for c in req.clips:
        if c.media is not None and not Path(c.media).is_absolute():
            raise CutscoreError(f"clip {c.index}: media path must be absolute: {c.media}")
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


# ---- what a job does ------------------------------------------------------------------------------

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


def _clip_features(req: Request, pipe, warnings: list[str]) -> dict[int, object]:
    from engine.features import FeatureConfig, extract

    cfg = FeatureConfig(clip_model=pipe.cfg.clip_model, clip_pretrained=pipe.cfg.clip_pretrained)
    feats = {}
    for c in req.clips:
        if not c.media:
            continue
        if not Path(c.media).is_file():
            warnings.append(f"clip {c.index} {c.name!r}: media not found ({c.media}); cut-only conditioning")
            continue
        try:
            feats[c.index] = extract(c.media, c.source_start_s, c.source_start_s + c.duration_s, cuts_s=[], config=cfg)
        except CutscoreError as e:
            warnings.append(f"clip {c.index} {c.name!r}: {e}; cut-only conditioning")
    return feats


def window_features(req: Request, index: int, clip_feats: dict, clip_dim: int = 512):
    """Per-second features of one window, from the clips under each second's middle; the scene
    onsets are the timeline's cuts and hit points (the editor's cuts ARE the scene transitions)."""
    from engine.features.cuts import onsets_from_cuts
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
    return out


def _span(req: RegenerateRequest, i: int, clip_feats: dict, cfg, known):
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


def execute(req: Request, pipelines: Pipelines, job_id: str, progress: Callable[[str, float, str], None],
            cancelled: threading.Event) -> JobResult:
    """Run one request; progress(stage, fraction, message) is called per sampler step."""
    import soundfile as sf
    import torch

    check_paths(req)
    out = Path(req.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    progress("features", 0.0, "loading the model")
    pipe = pipelines.get(req.model)
    warnings: list[str] = []
    progress("features", 0.02, "reading the picture")
    clip_feats = _clip_features(req, pipe, warnings)
    indices = [req.window] if isinstance(req, RegenerateRequest) else list(range(len(req.windows)))
    s = req.settings
    steps = s.steps or pipe.cfg.diffusion.steps
    results = []
    prev = None  # (window spec, its latents) for continuation
    for n, i in enumerate(indices):
        if cancelled.is_set():
            raise JobCancelled()
        w = req.windows[i]
        wf = window_features(req, i, clip_feats, pipe.cfg.encoders.clip_dim)
        progress("rhythm", 0.1 + 0.85 * n / len(indices), f"window {n + 1}/{len(indices)}: predicting the rhythm")

        def on_step(k: int, total: int, n=n) -> None:
            if cancelled.is_set():
                raise JobCancelled()
            frac = 0.1 + 0.85 * (n + k / total) / len(indices)
            progress("sampling", frac, f"window {n + 1}/{len(indices)}: sampling step {k}/{total}")

        seed = s.seed + i  # each window its own noise, reproducible from the one seed
        kw = dict(steps=steps, guidance=s.guidance, sampler=s.sampler, callback=on_step)
        if isinstance(req, RegenerateRequest):
            known = torch.from_numpy(np.load(req.latents))
            if req.span_start_s is not None:
                w, wf, known = _span(req, i, clip_feats, pipe.cfg, known)
                gen = pipe.regenerate(wf, known, req.region_start_s - w.start_s, req.region_end_s - w.start_s,
                                      seed=seed, trim=True, **kw)
            else:
                gen = pipe.regenerate(wf, known, req.region_start_s - w.start_s, req.region_end_s - w.start_s,
                                      seed=seed, **kw)
        else:
            hold = _continuation(req, i, prev, pipe.cfg) if prev is not None else None
            gen = pipe.generate(wf, seed=seed, inpaint=hold, **kw)
            prev = (w, gen.latents)
        progress("writing", 0.1 + 0.85 * (n + 1) / len(indices), f"window {n + 1}/{len(indices)}: writing")
        stem = f"window{i:02d}-{job_id[:8]}"
        wav, lat = _inside(out, f"{stem}.wav"), _inside(out, f"{stem}.npy")
        atomic_write(wav, lambda p, g=gen: sf.write(p, g.audio.T, g.sample_rate, subtype="FLOAT", format="WAV"))
        atomic_write(lat, lambda p, g=gen: _save_npy(p, g.latents.numpy()))
        results.append(WindowResult(index=i, start_s=w.start_s, duration_s=w.duration_s, overlap_s=w.overlap_s,
                                    audio=str(wav), latents=str(lat), rhythm=[float(v) for v in gen.rhythm[:, 0]],
                                    seed=seed))
    result = JobResult(kind=req.kind, model=req.model, sample_rate=pipe.cfg.sample_rate, windows=results,
                       warnings=warnings)
    progress("done", 1.0, "done")
    return result


# ---- where jobs live ---------------------------------------------------------------------------------

class JobStore:
    """SQLite: one row a job (request JSON, state, stage, progress, message, result JSON)."""

    def __init__(self, path: str | Path = ":memory:"):
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL" if self.path != ":memory:" else "PRAGMA journal_mode=MEMORY")
        self._db.execute("""CREATE TABLE IF NOT EXISTS jobs (
            id TEXT PRIMARY KEY, seq INTEGER, request TEXT NOT NULL, state TEXT NOT NULL, stage TEXT,
            progress REAL, message TEXT, result TEXT, created REAL, updated REAL)""")

    def add(self, req: Request) -> str:
        job_id = uuid.uuid4().hex
        with self._lock:
            seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0]
            self._db.execute("INSERT INTO jobs VALUES (?, ?, ?, 'queued', 'queued', 0, '', NULL, ?, ?)",
                             (job_id, seq, req.model_dump_json(), time.time(), time.time()))
        return job_id

    def update(self, job_id: str, **fields) -> None:
        if "result" in fields and fields["result"] is not None:
            fields["result"] = fields["result"].model_dump_json()
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self._lock:
            self._db.execute(f"UPDATE jobs SET {cols}, updated = ? WHERE id = ?", (*fields.values(), time.time(), job_id))

    def get(self, job_id: str) -> JobStatus | None:
        with self._lock:
            row = self._db.execute("SELECT id, state, stage, progress, message, result FROM jobs WHERE id = ?",
                                   (job_id,)).fetchone()
        if row is None:
            return None
        result = JobResult.model_validate_json(row[5]) if row[5] else None
        return JobStatus(id=row[0], state=row[1], stage=row[2] or "", progress=row[3] or 0.0, message=row[4] or "",
                         result=result)

    def request(self, job_id: str) -> Request:
        with self._lock:
            row = self._db.execute("SELECT request FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return parse_request(json.loads(row[0]))

    def next_queued(self) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1").fetchone()
        return row[0] if row else None

    def mark_interrupted(self) -> list[str]:
        """At start-up: a job left `running` by a process that died is `interrupted`."""
        with self._lock:
            ids = [r[0] for r in self._db.execute("SELECT id FROM jobs WHERE state = 'running'")]
            self._db.execute("UPDATE jobs SET state = 'interrupted', message = 'the engine stopped while this job ran; "
                             "retry it' WHERE state = 'running'")
        return ids

    def retry(self, job_id: str) -> bool:
        with self._lock:
            cur = self._db.execute("UPDATE jobs SET state = 'queued', stage = 'queued', progress = 0, message = '', "
                                   "seq = (SELECT MAX(seq) + 1 FROM jobs) WHERE id = ? AND state IN "
                                   "('interrupted', 'failed', 'cancelled')", (job_id,))
        return cur.rowcount == 1


# ---- who runs them ---------------------------------------------------------------------------------

class JobManager:
    """One worker thread, FIFO over the store; cancel is checked at every sampler step."""

    def __init__(self, store: JobStore, pipelines: Pipelines | None = None):
        self.store = store
        self.pipelines = pipelines or Pipelines()
        self._cancel: dict[str, threading.Event] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.store.mark_interrupted()
        self._thread = threading.Thread(target=self._loop, name="cutscore-worker", daemon=True)
        self._thread.start()

    def submit(self, req: Request) -> str:
        check_paths(req)
        job_id = self.store.add(req)
        self._wake.set()
        return job_id

    def cancel(self, job_id: str) -> bool:
        st = self.store.get(job_id)
        if st is None:
            return False
        if st.state == "queued":
            self.store.update(job_id, state="cancelled", message="cancelled before it started")
        else:
            self._cancel.setdefault(job_id, threading.Event()).set()
        return True

    def retry(self, job_id: str) -> bool:
        ok = self.store.retry(job_id)
        self._wake.set()
        return ok

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        for ev in self._cancel.values():
            ev.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            job_id = self.store.next_queued()
            if job_id is None:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            self._run(job_id)

    @staticmethod
    def _own_files(req: Request, job_id: str, everything: bool) -> list[Path]:
        """The files a run of this job writes into its output folder (window<i>-<id>.wav/.npy), and
        the temporaries of a run that was killed mid-write; only those unless `everything`."""
        out = Path(req.output_dir)
        if not out.is_dir():
            return []
        stem = f"-{job_id[:8]}"
        temps = [p for p in out.glob(f".window*{stem}.*.tmp.*")]
        return temps + [p for p in out.glob(f"window*{stem}.*")] if everything else temps

    def _run(self, job_id: str) -> None:
        ev = self._cancel.setdefault(job_id, threading.Event())
        self.store.update(job_id, state="running", stage="features", progress=0.0, message="starting")
        last = [""]

        def progress(stage: str, frac: float, msg: str) -> None:  # a store write per sampler step
            last[0] = msg
            self.store.update(job_id, stage=stage, progress=round(frac, 4), message=msg)

        try:
            req = self.store.request(job_id)
            for p in self._own_files(req, job_id, everything=False):
                p.unlink(missing_ok=True)  # a killed run's half-written temporaries
            result = execute(req, self.pipelines, job_id, progress, ev)
            self.store.update(job_id, state="done", stage="done", progress=1.0, message="done", result=result)
        except JobCancelled:
            self._discard(job_id)
            self.store.update(job_id, state="cancelled", message=f"cancelled after: {last[0]}")
        except CutscoreError as e:
            self._discard(job_id)
            self.store.update(job_id, state="failed", message=str(e))
        except Exception as e:  # noqa: BLE001 - a job's crash must not kill the worker
            self._discard(job_id)
            self.store.update(job_id, state="failed", message=f"internal error: {type(e).__name__}: {e}")
        finally:
            self._cancel.pop(job_id, None)

    def _discard(self, job_id: str) -> None:
        """A job that did not finish leaves no window files: nothing would ever read them."""
        try:
            for p in self._own_files(self.store.request(job_id), job_id, everything=True):
                p.unlink(missing_ok=True)
        except (OSError, ValueError):
            pass
