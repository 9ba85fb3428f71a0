"""The command line's and the panel's only door into the engine (torch-free at import).

Everything here imports the torch side lazily, when called, so `import engine.client` keeps torch
out of sys.modules (ARCHITECTURE.md, layers). The HTTP transport and the job queue are issue 6.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from engine.api import JobResult, JobStatus, Request
from engine.errors import CutscoreError
from engine.paths import token_path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORT = 8765


def _hf_cache() -> Path:
    return Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub")


def find_weights() -> dict[str, str]:
    """Where each kind of weights was found on this machine, or 'not found'."""
    hub = _hf_cache()
    found = {}
    candidates = {
        "demo model": [ROOT / "resources" / "models" / "demo" / "config.json"],
        "Stable Audio Open VAE": [hub / "models--stabilityai--stable-audio-open-1.0"],
        "CLIP ViT-B/32 (openai)": [hub / "models--timm--vit_base_patch32_clip_224.openai"],
        "Diff-V2M official checkpoint": [hub / "models--TaylorJi--Diff-V2M"],
    }
    for name, paths in candidates.items():
        hit = next((p for p in paths if p.exists()), None)
        found[name] = str(hit.parent if hit and hit.is_file() else hit) if hit else "not found"
    return found


def model_window_s(model: str) -> float:
    """The generation window of a model (a folder or a preset), read from its config without torch."""
    import json

    from engine.config import load_config

    p = Path(model)
    if p.is_dir() and (p / "config.json").exists():
        meta = json.loads((p / "config.json").read_text())
        return float(meta.get("model", meta).get("window_seconds", 30.0))
    try:
        return load_config(model).window_seconds
    except Exception:  # noqa: BLE001 - an unknown name fails later, in the engine, with its own message
        return 30.0


def find_server(port: int = DEFAULT_PORT) -> str | None:
    """The URL of a cutscore engine answering /health on loopback, or None."""
    import json
    import urllib.request

    url = f"http://127.0.0.1:{port}"
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=0.5) as r:
            info = json.loads(r.read())
        return f"{url} (model {info.get('model', '?')})"
    except Exception:  # noqa: BLE001 - no server is the normal case
        return None


def runtime_info() -> dict:
    import torch

    if torch.cuda.is_available():
        device = f"CUDA ({torch.cuda.get_device_name(0)})"
    else:
        device = f"CPU ({os.cpu_count()} cores, no GPU found)"
    return {"python": platform.python_version() + f" ({sys.executable})", "torch": torch.__version__,
            "device": device, "weights": find_weights(),
            "tools": {t: shutil.which(t) for t in ("ffmpeg", "melt")}}


def model_info(config_or_dir: str) -> dict:
    from engine.checkpoint import model_info as _info

    return _info(config_or_dir)


def import_official(checkpoint: str, out_dir, ema: bool = False, allow_pickle: bool = False,
                    config: str = "official") -> dict:
    from engine.checkpoint import import_official as _import

    return _import(checkpoint, out_dir, ema=ema, allow_pickle=allow_pickle, config=config)


def extract_features(video: str, start_s: float = 0.0, end_s: float | None = None, cuts_s=None,
                     clip_model: str | None = "ViT-B-32-quickgelu", clip_pretrained: str | None = "openai") -> dict:
    from engine.features import FeatureConfig, extract_report

    cfg = FeatureConfig(clip_model=clip_model, clip_pretrained=clip_pretrained or None)
    return extract_report(video, start_s=start_s, end_s=end_s, cuts_s=cuts_s, config=cfg)


# ---- the EngineClient protocol and its two transports ----------------------------------------------


ProgressFn = Callable[[JobStatus], None]
FINAL = ("done", "failed", "cancelled", "interrupted")


class EngineClient(Protocol):
    name: str

    def submit(self, request: Request) -> str: ...

    def status(self, job_id: str) -> JobStatus: ...

    def cancel(self, job_id: str) -> None: ...

    def retry(self, job_id: str) -> None: ...

    def wait(self, job_id: str, on_progress: ProgressFn | None = None, timeout: float | None = None) -> JobStatus: ...


def run_job(client: EngineClient, request: Request, on_progress: ProgressFn | None = None) -> JobResult:
    """Submit, follow the progress, and return the result; a failed job raises its one-line message."""
    job_id = client.submit(request)
    try:
        st = client.wait(job_id, on_progress)
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM: stop the job and let it end before the caller removes its files
        client.cancel(job_id)
        try:
            client.wait(job_id, timeout=60)
        except (CutscoreError, KeyboardInterrupt):
            pass
        raise
    if st.state != "done" or st.result is None:
        raise CutscoreError(f"engine job {st.state}: {st.message}" if st.message else f"engine job {st.state}")
    return st.result


class LocalEngine:
    """In-process: the same JobManager the server runs, over an in-memory store."""

    name = "local"

    def __init__(self, device: str | None = None):
        from engine.jobs import JobManager, JobStore, Pipelines

        self._mgr = JobManager(JobStore(":memory:"), Pipelines(device))

    def submit(self, request: Request) -> str:
        return self._mgr.submit(request)

    def status(self, job_id: str) -> JobStatus:
        st = self._mgr.store.get(job_id)
        if st is None:
            raise CutscoreError(f"no such job: {job_id}")
        return st

    def cancel(self, job_id: str) -> None:
        self._mgr.cancel(job_id)

    def retry(self, job_id: str) -> None:
        self._mgr.retry(job_id)

    def wait(self, job_id: str, on_progress: ProgressFn | None = None, timeout: float | None = None) -> JobStatus:
        import time

        t0, last = time.monotonic(), None
        while True:
            st = self.status(job_id)
            key = (st.state, st.stage, st.progress, st.message)
            if on_progress and key != last:
                on_progress(st)
                last = key
            if st.state in FINAL:
                return st
            if timeout is not None and time.monotonic() - t0 > timeout:
                raise CutscoreError(f"job {job_id} did not finish within {timeout} s")
            time.sleep(0.02)

    def close(self) -> None:
        self._mgr.close()


class HttpEngine:
    """Talks to `cutscore serve` on loopback with the bearer token from the user's config folder."""

    def __init__(self, url: str, token: str | None = None):
        self.url = url.rstrip("/")
        self.name = self.url
        if token is None:
            p = token_path()
            if not p.exists():
                raise CutscoreError(f"{p}: no engine token; start the engine once with `cutscore serve`")
            token = p.read_text().strip()
        self._token = token

    def _call(self, method: str, path: str, body: dict | None = None, timeout: float = 30) -> dict:
        import json
        import urllib.error
        import urllib.request

        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {self._token}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            try:
                detail = json.loads(e.read()).get("detail", e.reason)
            except Exception:  # noqa: BLE001
                detail = e.reason
            raise CutscoreError(f"engine at {self.url}: {detail} (HTTP {e.code})") from None
        except (urllib.error.URLError, OSError) as e:
            raise CutscoreError(f"engine at {self.url} is not reachable ({e}); start it with `cutscore serve`") from None

    def submit(self, request: Request) -> str:
        return self._call("POST", "/jobs", request.model_dump(mode="json"))["id"]

    def status(self, job_id: str) -> JobStatus:
        return JobStatus.model_validate(self._call("GET", f"/jobs/{job_id}"))

    def cancel(self, job_id: str) -> None:
        self._call("POST", f"/jobs/{job_id}/cancel")

    def retry(self, job_id: str) -> None:
        self._call("POST", f"/jobs/{job_id}/retry")

    def wait(self, job_id: str, on_progress: ProgressFn | None = None, timeout: float | None = None) -> JobStatus:
        """Follow the job's server-sent event stream until it ends."""
        import json
        import urllib.request

        req = urllib.request.Request(f"{self.url}/jobs/{job_id}/events",
                                     headers={"Authorization": f"Bearer {self._token}"})
        try:
            with urllib.request.urlopen(req, timeout=timeout or 3600) as r:
                for raw in r:
                    line = raw.decode().strip()
                    if not line.startswith("data:"):
                        continue
                    st = JobStatus.model_validate(json.loads(line[5:]))
                    if on_progress:
                        on_progress(st)
                    if st.state in FINAL:
                        return self.status(job_id)
        except OSError as e:
            raise CutscoreError(f"engine at {self.url}: the progress stream broke ({e})") from None
        return self.status(job_id)


class SpawnedEngine(HttpEngine):
    """A private `cutscore serve` in a child process (its own port and job store), for a UI that
    must stay responsive while the model works: the heavy work never shares the UI's process."""

    def __init__(self, model: str | None = None, startup_timeout: float = 180.0):
        import socket
        import subprocess
        import tempfile
        import time

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self._tmp = tempfile.mkdtemp(prefix="cutscore-engine-")
        cmd = [sys.executable, "-m", "ui.cli", "serve", "--port", str(port), "--store", f"{self._tmp}/jobs.sqlite3"]
        if model:
            cmd += ["--model", model]
        self._proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        url = f"http://127.0.0.1:{port}"
        t0 = time.monotonic()
        while not find_server(port):
            if self._proc.poll() is not None:
                raise CutscoreError(f"the engine did not start: {(self._proc.stderr.read() or '').strip()[-300:]}")
            if time.monotonic() - t0 > startup_timeout:
                self.close()
                raise CutscoreError(f"the engine did not answer within {startup_timeout:.0f} s")
            time.sleep(0.2)
        super().__init__(url)

    def close(self) -> None:
        import shutil

        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except Exception:  # noqa: BLE001
                self._proc.kill()
        shutil.rmtree(self._tmp, ignore_errors=True)


def cut_alignment(audio, sr: int, cuts_s: list[float]) -> dict:
    """How well music follows the cuts: onsets within 100 ms of a cut (torch-free)."""
    import numpy as np

    from engine.metrics import detect_onsets, match_count, onset_f_measure

    on = detect_onsets(audio, sr)
    f, p, r = onset_f_measure(on, cuts_s)
    nearest = [float(1000 * (on[np.argmin(np.abs(on - c))] - c)) if len(on) else float("nan") for c in cuts_s]
    return {"f": f, "p": p, "r": r, "hit": match_count(on, cuts_s), "nearest_ms": nearest, "onsets": len(on)}


def preprocess(*args, **kwargs) -> dict:
    from engine.train.preprocess import preprocess as _pre

    return _pre(*args, **kwargs)


def fit(config: str) -> str:
    from engine.train.fit import fit as _fit
    from engine.train.fit import read_train_config

    _fit(config)
    return str(Path(read_train_config(config).out_dir) / "model")


def synth(out: str, count: int, seed: int, duration_s: float, music: str = "synth") -> list:
    from engine.train.synth import write_corpus

    return write_corpus(out, count=count, seed=seed, duration_s=duration_s, music=music)


def evaluate(generated: str, reference: str, videos: str | None = None) -> dict:
    from engine.metrics import evaluate as _eval

    return _eval(generated, reference, videos)


def serve(host: str = "127.0.0.1", port: int = DEFAULT_PORT, model: str | None = None, store=None,
          announce=lambda message: None):
    from engine.server import serve as _serve

    _serve(host=host, port=port, model=model, store=store, announce=announce)


def connect(engine: str | None = None, spawn: bool = False) -> EngineClient:
    """`--engine URL`, `--engine local`, or (None) a running local server if one answers, else
    in-process (or, with spawn, a private server in a child process: what the panel uses)."""
    if engine == "local":
        return LocalEngine()
    if engine:
        import urllib.parse

        u = urllib.parse.urlparse(engine)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise CutscoreError(f"--engine {engine!r}: not an engine URL; pass e.g. http://127.0.0.1:8765 or `local`")
        return HttpEngine(engine)
    url = f"http://127.0.0.1:{DEFAULT_PORT}"
    if find_server() and token_path().exists():
        return HttpEngine(url)
    return SpawnedEngine() if spawn else LocalEngine()
