"""The editor's side's door to the engine (torch-free at import): the EngineClient protocol and its
transports (in-process, loopback HTTP, a spawned private server), `connect`, and `run_tool`, which
runs the engine's own command line (engine/tools.py: training, evaluation, features, model info) in
a child process.

`import core.client` keeps torch out of sys.modules (docs/ARCHITECTURE.md, layers): the in-process
transport imports the engine's job runner (engine.service.jobs) when it is first used, the one import
from core into the engine, named in pyproject.toml's contracts.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable
from typing import Protocol

# imported here, not where first used: a first `import httpx` from several threads at once (the
# soak's clients, a panel's pollers) once handed one of them the half-initialised module
# ("module 'httpx' has no attribute 'Client'", the slow soak of 2026-12-06)
import httpx

from core.api import FINAL_STATES, JobResult, JobStatus, Request, protocol
from core.errors import CutscoreError, EngineUnreachable
from core.paths import DEFAULT_PORT, ROOT, token_path
from core.tool_options import Serve, command_of, to_json

# ---- the EngineClient protocol and its two transports ----------------------------------------------


ProgressFn = Callable[[JobStatus], None]


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


class EngineAnswered(CutscoreError):
    """The engine answered with an HTTP error: its one-line detail, and the status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class EngineClient(Protocol):
    name: str

    def submit(self, request: Request, key: str | None = None) -> str: ...

    def status(self, job_id: str) -> JobStatus: ...

    def cancel(self, job_id: str) -> None: ...

    def retry(self, job_id: str) -> None: ...

    def wait(self, job_id: str, on_progress: ProgressFn | None = None, timeout: float | None = None) -> JobStatus: ...


def run_job(client: EngineClient, request: Request, on_progress: ProgressFn | None = None) -> JobResult:
    """Submit, follow the progress, and return the result; a failed job raises its one-line message.
    A submit whose connection drops is sent once more under the same idempotency key: one job."""
    import uuid

    key = uuid.uuid4().hex
    try:
        job_id = client.submit(request, key=key)
    except CutscoreError as e:
        if not isinstance(e, EngineUnreachable):
            raise
        time.sleep(1.0)
        job_id = client.submit(request, key=key)
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
    """In-process: the engine's own job runner (engine/service/jobs.py JobManager: one worker thread,
    first in first out, cancel within a sampler step) over a store in memory; the models stay loaded
    for the process. The same runner `cutscore serve` uses over its SQLite file."""

    name = "local"

    def __init__(self, device: str | None = None):
        from engine.service.jobs import JobManager, JobStore, Pipelines  # the one import into the engine

        self._manager = JobManager(JobStore(":memory:"), Pipelines(device))

    def submit(self, request: Request, key: str | None = None) -> str:
        return self._manager.submit(request, key)

    def status(self, job_id: str) -> JobStatus:
        st = self._manager.store.get(job_id)
        if st is None:
            raise CutscoreError(f"no such job: {job_id}")
        return st

    def cancel(self, job_id: str) -> None:
        self._manager.cancel(job_id)

    def retry(self, job_id: str) -> None:
        self._manager.retry(job_id)

    def wait(self, job_id: str, on_progress: ProgressFn | None = None, timeout: float | None = None) -> JobStatus:
        t0, last = time.monotonic(), None
        while True:
            st = self.status(job_id)
            key = (st.state, st.stage, st.progress, st.message)
            if on_progress and key != last:
                on_progress(st)
                last = key
            if st.state in FINAL_STATES:
                return st
            if timeout is not None and time.monotonic() - t0 > timeout:
                raise CutscoreError(f"job {job_id} did not finish within {timeout} s")
            time.sleep(0.02)

    def close(self) -> None:
        self._manager.close()  # the running job ends within one sampler step


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
        return httpx.Client(base_url=self.url, timeout=timeout, headers={"Authorization": f"Bearer {self._token}"})

    def _unreachable(self, e: Exception) -> EngineUnreachable:
        return EngineUnreachable(f"engine at {self.url} is not reachable ({e}); start it with `cutscore serve`")

    def _call(self, method: str, path: str, body: dict | None = None, timeout: float = 30,
              headers: dict | None = None) -> dict:
        try:
            with self._client(timeout) as c:
                r = c.request(method, path, json=body, headers=headers)
        except httpx.TransportError as e:
            raise self._unreachable(e) from None
        if r.is_error:
            try:
                detail = r.json().get("detail", r.reason_phrase)
            except ValueError:
                detail = r.reason_phrase
            raise EngineAnswered(f"engine at {self.url}: {detail} (HTTP {r.status_code})", r.status_code)
        return r.json() if r.content else {}

    def _protocol(self) -> str | None:
        """The protocol digest the engine answers at /health (None from a cutscore older than the digest)."""
        try:
            return self._call("GET", "/health", timeout=5).get("protocol")
        except CutscoreError:
            return None

    def submit(self, request: Request, key: str | None = None) -> str:
        """key: an idempotency key (the `Idempotency-Key` header); sending the same key again, after a
        submit whose answer was lost, returns the job the first one made."""
        headers = {"Idempotency-Key": key} if key else None
        try:
            return self._call("POST", "/jobs", request.model_dump(mode="json"), headers=headers)["id"]
        except EngineAnswered as e:
            if e.status != 422 or self._protocol() == protocol():
                raise
            raise CutscoreError(f"engine at {self.url} runs another version of cutscore and refuses this one's "
                                "requests; stop it and start `cutscore serve` again") from None

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
                    if st.state in FINAL_STATES:
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

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self._tmp = tempfile.mkdtemp(prefix="cutscore-engine-")
        self._proc = tool_process(Serve(host="127.0.0.1", port=port, model=model, store=f"{self._tmp}/jobs.sqlite3"),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
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


# ---- the engine's own command line, in a child process -------------------------------------------

def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGKILL when this process dies, however it dies."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def tool_process(options, **popen):
    """A child running `python -m engine.tools COMMAND OPTIONS-JSON` (engine/tools.py; `options` is the
    command's record, core/tool_options.py), which ends when this process ends (PR_SET_PDEATHSIG on Linux; elsewhere the child watches its parent)."""
    import os
    import subprocess

    # the user's folder stays the working folder (their relative paths); cutscore's own is on the path
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, CUTSCORE_PARENT_PID=str(os.getpid()), PYTHONPATH=path)
    extra = {"preexec_fn": _die_with_parent} if sys.platform.startswith("linux") else {}
    return subprocess.Popen([sys.executable, "-m", "engine.tools", command_of(options), to_json(options)], env=env,
                            **extra, **popen)


def _relay(stream, to) -> None:
    """Copy a child's output to ours as it comes (progress bars included), for sys.stdout as it is
    now (a test's capture, the panel's log)."""
    import os

    fd = stream.fileno()
    while chunk := os.read(fd, 65536):
        sink = to()
        sink.write(chunk.decode("utf-8", "replace"))
        sink.flush()


def run_tool(options) -> int:
    """Run an engine command (engine/tools.py COMMANDS) with its options (core/tool_options.py); its
    output is ours, its exit code is returned; Ctrl-C or SIGTERM here stops it first."""
    import subprocess
    import threading

    proc = tool_process(options, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    relays = [threading.Thread(target=_relay, args=(proc.stdout, lambda: sys.stdout), daemon=True),
              threading.Thread(target=_relay, args=(proc.stderr, lambda: sys.stderr), daemon=True)]
    for t in relays:
        t.start()
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    finally:
        for t in relays:
            t.join(5)
    return code


def tool_lines(options, on_line: Callable[[str], None], proc_holder: list | None = None) -> str:
    """Run an engine command, calling on_line with each line (and progress-bar update) it writes to
    stderr; its stdout on success, its one-line error as a CutscoreError. proc_holder gets the child
    (the panel stops it on Cancel)."""
    import subprocess
    import threading

    proc = tool_process(options, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc_holder is not None:
        proc_holder.append(proc)
    stdout: list[bytes] = []  # read beside stderr: a large answer must not fill its pipe and stall the child
    reader = threading.Thread(target=lambda: stdout.append(proc.stdout.read()), daemon=True)
    reader.start()
    last, buf = "", b""
    while chunk := proc.stderr.read1(4096):
        buf += chunk
        *lines, buf = buf.replace(b"\r", b"\n").split(b"\n")
        for raw in lines:
            if line := raw.decode("utf-8", "replace").strip():
                last = line
                on_line(line)
    reader.join()
    if proc.wait() != 0:
        raise CutscoreError(last.removeprefix("cutscore: error: ") or f"the engine's {command_of(options)} exited {proc.returncode}")
    return b"".join(stdout).decode("utf-8", "replace")


def tool_json(options) -> dict:
    """An engine command's JSON answer (its --json output); its one-line error as a CutscoreError."""
    import dataclasses

    if "json" in {f.name for f in dataclasses.fields(options)}:
        options = dataclasses.replace(options, json=True)
    return json.loads(tool_lines(options, lambda line: None))
