"""The engine's job queue behind the HTTP server (server.py): where jobs live (a SQLite store that
survives restarts) and who runs them (one worker thread that owns the models, FIFO, cancel within
one sampler step). What a job does is engine/inference.py's `run`; a job is reported `done` only
after every file of its result is in place.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from pathlib import Path

from core.api import RETRYABLE_STATES, JobResult, JobStatus, Request, parse_request
from engine.inference import Pipelines, check_paths, discard_job_files, run

__all__ = ["JobManager", "JobStore", "Pipelines"]


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
            progress REAL, message TEXT, result TEXT, created REAL, updated REAL, idem TEXT)""")
        if "idem" not in {r[1] for r in self._db.execute("PRAGMA table_info(jobs)")}:  # a store from before keys
            self._db.execute("ALTER TABLE jobs ADD COLUMN idem TEXT")

    def add(self, req: Request, key: str | None = None) -> str:
        """A new queued job; with an idempotency key already seen, the job that key made (a client
        that lost the answer to its submit and sends it again gets one job, not two)."""
        job_id = uuid.uuid4().hex
        with self._lock:
            if key:
                row = self._db.execute("SELECT id FROM jobs WHERE idem = ?", (key,)).fetchone()
                if row:
                    return row[0]
            seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0]
            self._db.execute("INSERT INTO jobs (id, seq, request, state, stage, progress, message, result, created, "
                             "updated, idem) VALUES (?, ?, ?, 'queued', 'queued', 0, '', NULL, ?, ?, ?)",
                             (job_id, seq, req.model_dump_json(), time.time(), time.time(), key or None))
        return job_id

    def move(self, job_id: str, frm: str, to: str, **fields) -> bool:
        """Compare-and-set: the job goes from state `frm` to `to` only if it is still in `frm`."""
        cols = "".join(f", {k} = ?" for k in fields)
        with self._lock:
            cur = self._db.execute(f"UPDATE jobs SET state = ?{cols}, updated = ? WHERE id = ? AND state = ?",
                                   (to, *fields.values(), time.time(), job_id, frm))
        return cur.rowcount == 1

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
            marks = ", ".join("?" for _ in RETRYABLE_STATES)
            cur = self._db.execute("UPDATE jobs SET state = 'queued', stage = 'queued', progress = 0, message = '', "
                                   f"seq = (SELECT MAX(seq) + 1 FROM jobs) WHERE id = ? AND state IN ({marks})",
                                   (job_id, *RETRYABLE_STATES))
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

    def submit(self, req: Request, key: str | None = None) -> str:
        check_paths(req)
        job_id = self.store.add(req, key)
        self._wake.set()
        return job_id

    def cancel(self, job_id: str) -> bool:
        """A queued job is cancelled at once (and an earlier, killed attempt's files go with it); a
        running one stops within a sampler step. The state moves are compare-and-set, so a cancel
        that races the worker's start of the same job is one or the other, never both."""
        if self.store.get(job_id) is None:
            return False
        if self.store.move(job_id, "queued", "cancelled", message="cancelled before it started"):
            discard_job_files(self.store.request(job_id), job_id, everything=True)
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

    def _run(self, job_id: str) -> None:
        ev = self._cancel.setdefault(job_id, threading.Event())
        if not self.store.move(job_id, "queued", "running", stage="features", progress=0.0, message="starting"):
            self._cancel.pop(job_id, None)  # cancelled between being picked and being started
            return

        def progress(stage: str, frac: float, msg: str) -> None:  # a store write per sampler step
            self.store.update(job_id, stage=stage, progress=round(frac, 4), message=msg)

        try:
            outcome = run(self.store.request(job_id), self.pipelines, job_id, progress, ev)
            if outcome.state == "done":
                self.store.update(job_id, state="done", stage="done", progress=1.0, message="done",
                                  result=outcome.result)
            else:
                self.store.update(job_id, state=outcome.state, message=outcome.message)
        finally:
            self._cancel.pop(job_id, None)
