"""`cutscore serve`: the local engine as an HTTP server on 127.0.0.1 (FastAPI + uvicorn). It keeps
the models warm, runs one job at a time from a SQLite queue that survives restarts, and answers:

    GET  /health               no token: {"status", "models", "version"}
    POST /jobs                 submit a ScoreRequest / RegenerateRequest -> {"id", "state"}; an
                               `Idempotency-Key` header seen before returns that key's job
    GET  /jobs/{id}            JobStatus (state, stage, progress, message, result)
    GET  /jobs/{id}/events     server-sent events: a JobStatus each time it changes, until it ends
    POST /jobs/{id}/cancel     stops a running job within one sampler step
    POST /jobs/{id}/retry      re-queues an interrupted, failed or cancelled job

Every route but /health needs `Authorization: Bearer <token>`; the token is created on first start
in the user's config folder with mode 0600 and read from there by HttpEngine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import secrets
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from core.api import FINAL_STATES, parse_request, protocol
from core.errors import CutscoreError
from core.paths import DEFAULT_PORT, config_dir, token_path
from engine.service.jobs import JobManager, JobStore, Pipelines

VERSION = "0.1.0"


def ensure_token(path: Path | None = None) -> tuple[str, Path]:
    path = path or token_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        return path.read_text().strip(), path
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token, path


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _submit(manager: JobManager, request: Request) -> str:
    """A job from the request's JSON body; 422 for a body that is not a valid request, 400 for one the
    engine cannot run."""
    try:
        job_id = manager.submit(parse_request(await request.json()), request.headers.get("idempotency-key"))
    except (ValidationError, ValueError) as e:
        if isinstance(e, ValidationError):
            err = e.errors()[0]
            msg = f"{'.'.join(str(x) for x in err['loc']) or 'body'}: {err['msg']}"
        else:
            msg = str(e)
        raise HTTPException(status_code=422, detail=f"invalid request: {msg}") from None
    except CutscoreError as e:
        raise HTTPException(status_code=400, detail=str(e)) from None
    return job_id


async def _event_stream(manager: JobManager, job_id: str):
    """Server-sent events: the job's status (without its result) each time it changes, until it ends."""
    last = None
    while True:
        st = manager.store.get(job_id)
        data = st.model_dump_json(exclude={"result"})
        if data != last:
            last = data
            yield f"data: {data}\n\n"
        if st.state in FINAL_STATES:
            return
        await asyncio.sleep(0.05)


def create_app(manager: JobManager, token: str, preload: str | None = None) -> FastAPI:
    app = FastAPI(title="cutscore engine", version=VERSION)

    def auth(request: Request) -> None:
        header = request.headers.get("authorization", "")
        if not secrets.compare_digest(header, f"Bearer {token}"):
            raise HTTPException(status_code=401, detail="missing or wrong bearer token (see `cutscore serve` output)")

    def status_or_404(job_id: str):
        st = manager.store.get(job_id)
        if st is None:
            raise HTTPException(status_code=404, detail=f"no such job: {job_id}")
        return st

    @app.get("/health")
    def health():
        return {"status": "ok", "version": VERSION, "protocol": protocol(), "model": preload or "loaded on first job",
                "models": sorted(manager.pipelines._loaded)}

    @app.post("/jobs", dependencies=[Depends(auth)])
    async def submit(request: Request):
        return {"id": await _submit(manager, request), "state": "queued"}

    @app.get("/jobs/{job_id}", dependencies=[Depends(auth)])
    def get_job(job_id: str):
        return json.loads(status_or_404(job_id).model_dump_json())

    @app.get("/jobs/{job_id}/events", dependencies=[Depends(auth)])
    async def events(job_id: str):
        status_or_404(job_id)
        return StreamingResponse(_event_stream(manager, job_id), media_type="text/event-stream")

    @app.post("/jobs/{job_id}/cancel", dependencies=[Depends(auth)])
    def cancel(job_id: str):
        status_or_404(job_id)
        manager.cancel(job_id)
        return {"id": job_id, "cancel": "requested"}

    @app.post("/jobs/{job_id}/retry", dependencies=[Depends(auth)])
    def retry(job_id: str):
        status_or_404(job_id)
        if not manager.retry(job_id):
            raise HTTPException(status_code=409, detail="only interrupted, failed or cancelled jobs can be retried")
        return {"id": job_id, "state": "queued"}

    return app


def serve(host: str = "127.0.0.1", port: int = DEFAULT_PORT, model: str | None = None, store: str | Path | None = None,
          announce=lambda message: None, compile: str | None = None) -> None:
    """compile: a torch.compile mode for every model's DiT (Pipeline), e.g. "reduce-overhead" on a GPU."""
    import socket

    import uvicorn

    token, tpath = ensure_token()
    store_path = Path(store) if store else config_dir() / "jobs.sqlite3"
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is not "in use"
        try:
            s.bind((host, port))
        except OSError as e:
            raise CutscoreError(f"cannot listen on {host}:{port} ({e.strerror}); is another engine running? "
                                f"try --port") from None
    pipelines = Pipelines(compile=compile)
    if model:
        pipelines.get(model)  # warm before the first request
    manager = JobManager(JobStore(store_path), pipelines)
    app = create_app(manager, token, preload=model)
    if not is_loopback(host):
        announce(f"warning: listening on {host}, reachable from other machines; anyone with the token can use this GPU")
    announce(f"cutscore engine listening on http://{host}:{port}")
    announce(f"token: {tpath} (mode 0600); jobs: {store_path}")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        manager.close()
