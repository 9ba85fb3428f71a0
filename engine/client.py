"""The command line's and the panel's door to generation (torch-free at import): the EngineClient
protocol and its transports (in-process, loopback HTTP, a spawned private server) and `connect`.

`import engine.client` keeps torch out of sys.modules (ARCHITECTURE.md, layers): the in-process
transport imports the engine when it is first used. Everything that is not a generation job
(training, evaluation, features, model info) lives in its own module, which the CLI calls directly.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from typing import Protocol

from engine.api import JobResult, JobStatus, Request
from engine.errors import CutscoreError
from engine.paths import DEFAULT_PORT, ROOT, token_path

# ---- the EngineClient protocol and its two transports ----------------------------------------------


ProgressFn = Callable[[JobStatus], None]
FINAL = ("done", "failed", "cancelled", "interrupted")


def find_server(port: int = DEFAULT_PORT) -> str | None:
    """The URL of a cutscore engine answering /health on loopback, or None."""
    import urllib.request

    url = f"http://127.0.0.1:{port}"
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=0.5) as r:
            info = json.loads(r.read())
        return f"{url} (model {info.get('model', '?')})"
    except Exception:  # noqa: BLE001 - no server is the normal case
        return None


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
        from engine.service.jobs import JobManager, JobStore, Pipelines

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

    def _client(self, timeout: float | None):
        import httpx

        return httpx.Client(base_url=self.url, timeout=timeout, headers={"Authorization": f"Bearer {self._token}"})

    def _unreachable(self, e: Exception) -> CutscoreError:
        return CutscoreError(f"engine at {self.url} is not reachable ({e}); start it with `cutscore serve`")

    def _call(self, method: str, path: str, body: dict | None = None, timeout: float = 30) -> dict:
        import httpx

        try:
            with self._client(timeout) as c:
                r = c.request(method, path, json=body)
        except httpx.TransportError as e:
            raise self._unreachable(e) from None
        if r.is_error:
            try:
                detail = r.json().get("detail", r.reason_phrase)
            except ValueError:
                detail = r.reason_phrase
            raise CutscoreError(f"engine at {self.url}: {detail} (HTTP {r.status_code})")
        return r.json() if r.content else {}

    def submit(self, request: Request) -> str:
        return self._call("POST", "/jobs", request.model_dump(mode="json"))["id"]

    def status(self, job_id: str) -> JobStatus:
        return JobStatus.model_validate(self._call("GET", f"/jobs/{job_id}"))

    def cancel(self, job_id: str) -> None:
        self._call("POST", f"/jobs/{job_id}/cancel")

    def retry(self, job_id: str) -> None:
        self._call("POST", f"/jobs/{job_id}/retry")

    def wait(self, job_id: str, on_progress: ProgressFn | None = None, timeout: float | None = None) -> JobStatus:
        """Follow the job's server-sent event stream (text/event-stream, one JSON status per
        `data:` line) until the job ends."""
        import json

        import httpx

        try:
            with self._client(timeout or 3600) as c, c.stream("GET", f"/jobs/{job_id}/events") as r:
                if r.is_error:
                    raise CutscoreError(f"engine at {self.url}: the progress stream was refused (HTTP {r.status_code})")
                for line in r.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    st = JobStatus.model_validate(json.loads(line[5:]))
                    if on_progress:
                        on_progress(st)
                    if st.state in FINAL:
                        return self.status(job_id)
        except httpx.TransportError as e:
            if isinstance(e, httpx.ConnectError):
                raise self._unreachable(e) from None
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

        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except Exception:  # noqa: BLE001
                self._proc.kill()
        shutil.rmtree(self._tmp, ignore_errors=True)


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
