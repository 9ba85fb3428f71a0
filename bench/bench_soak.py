"""The engine under load and faults (issue 36): jobs per minute, GET /jobs/{id} latency and the
server's memory while 4 clients submit debug-model jobs, a third of them are cancelled, and the
server is SIGKILLed and restarted twice.

    .venv/bin/python bench/bench_soak.py [--jobs 100] [--clients 4] [--kills 2]

A real `cutscore serve` on loopback (SQLite store, token), real HTTP clients (HttpEngine). Each job
is a 3-window debug score (2 s windows, 2 sampler steps) writing into its own folder. After the run
every job must be done or cancelled (interrupted ones are retried to done), no job seen done twice,
no file in a job's folder but those of its final result. tests/test_soak.py runs the same soak.
"""

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.api import FINAL_STATES, ClipSpan, ScoreRequest, Settings, WindowSpec  # noqa: E402
from core.client import HttpEngine  # noqa: E402
from core.errors import EngineUnreachable  # noqa: E402

ENDED = FINAL_STATES


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(out: Path, i: int) -> ScoreRequest:
    wins = [WindowSpec(start_s=0, duration_s=2.0), WindowSpec(start_s=1.5, duration_s=2.0, overlap_s=0.5),
            WindowSpec(start_s=3.0, duration_s=2.0, overlap_s=0.5)]
    return ScoreRequest(model="debug", duration_s=5.0, clips=[ClipSpan(index=0, start_s=0, duration_s=5.0)],
                        cuts_s=[2.5], windows=wins, settings=Settings(seed=i, steps=2), output_dir=str(out / f"job{i:03d}"))


class Server:
    """`cutscore serve` in a subprocess; kill() is SIGKILL, start() waits for /health."""

    def __init__(self, work: Path):
        self.work, self.port, self.proc = work, _free_port(), None
        self.env = dict(os.environ, CUTSCORE_CONFIG_DIR=str(work / "config"), CUTSCORE_CACHE_DIR=str(work / "cache"))

    def start(self) -> "Server":
        import urllib.request

        self.proc = subprocess.Popen([sys.executable, "-m", "ui.cli", "serve", "--port", str(self.port), "--store",
                                      str(self.work / "jobs.sqlite3"), "--model", "debug"], cwd=ROOT, env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.time()
        while time.time() - t0 < 120:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1):
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("the engine did not start")

    def client(self) -> HttpEngine:
        return HttpEngine(f"http://127.0.0.1:{self.port}", token=(self.work / "config" / "token").read_text().strip())

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def _retrying(fn, deadline: float):
    """Call fn until the engine answers (it is down while being restarted)."""
    while True:
        try:
            return fn()
        except EngineUnreachable:
            if time.time() > deadline:
                raise
            time.sleep(0.3)


def run_soak(work: Path, jobs: int = 100, clients: int = 4, kills: int = 2, seed: int = 0,
             time_limit: float = 1500.0) -> dict:
    """The soak; returns what it measured and saw (see the module docstring)."""
    rng = random.Random(seed)
    server = Server(work).start()
    deadline = time.time() + time_limit
    lock = threading.Lock()
    ids: dict[int, str] = {}
    cancel_at = {i: rng.choice(["queued", "running"]) for i in rng.sample(range(jobs), jobs // 3)}
    seen: dict[str, list[str]] = {}
    latencies: list[float] = []
    finished = []
    mem = {}
    incarnation = [0]
    done_in_incarnation = [0]

    def poll(client, job_id):
        t0 = time.perf_counter()
        st = _retrying(lambda: client.status(job_id), deadline)
        with lock:
            latencies.append(time.perf_counter() - t0)
            seen.setdefault(job_id, []).append(st.state)
        return st

    def worker(k: int) -> None:
        client = server.client()
        for i in range(k, jobs, clients):
            # one key per job: a submit whose answer a SIGKILL lost is sent again, and is one job
            job_id = _retrying(lambda i=i: client.submit(request(work / "out", i), key=f"soak-{seed}-{i}"), deadline)
            with lock:
                ids[i] = job_id
            if cancel_at.get(i) == "queued":
                _retrying(lambda j=job_id: client.cancel(j), deadline)
            while time.time() < deadline:
                st = poll(client, job_id)
                if cancel_at.get(i) == "running" and st.state == "running":
                    _retrying(lambda j=job_id: client.cancel(j), deadline)
                    cancel_at[i] = "sent"
                if st.state == "interrupted":
                    _retrying(lambda j=job_id: client.retry(j), deadline)
                    continue
                if st.state in ("done", "failed", "cancelled"):
                    with lock:
                        finished.append((i, st.state))
                        done_in_incarnation[0] += st.state == "done"
                        if done_in_incarnation[0] == 10 and incarnation[0] == kills:
                            mem["after_10_mb"] = server.rss_mb()
                    break
                time.sleep(0.05)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    t0 = time.time()
    for t in threads:
        t.start()
    kill_points = [int(jobs * (n + 1) / (kills + 2)) for n in range(kills)]
    try:
        for point in kill_points:
            while len(finished) < point and time.time() < deadline:
                time.sleep(0.1)
            server.kill()
            time.sleep(1.0)
            with lock:
                incarnation[0] += 1
                done_in_incarnation[0] = 0
            server.start()
            mem.setdefault("restarts", 0)
            mem["restarts"] += 1
        for t in threads:
            t.join(max(1.0, deadline - time.time()))
        elapsed = time.time() - t0
        mem["end_mb"] = server.rss_mb()
        client = server.client()
        final = {i: client.status(j) for i, j in ids.items()}
    finally:
        server.stop()
    out = work / "out"
    orphans = []
    for i, st in final.items():
        folder = out / f"job{i:03d}"
        keep = {Path(w.audio).name for w in st.result.windows} | {Path(w.latents).name for w in st.result.windows} \
            if st.state == "done" and st.result else set()
        orphans += [str(p) for p in (folder.iterdir() if folder.is_dir() else []) if p.name not in keep]
    lat = sorted(latencies)
    return {
        "jobs": jobs, "submitted": len(ids), "elapsed_s": elapsed,
        "states": {s: sum(1 for st in final.values() if st.state == s) for s in ENDED + ("queued", "running")},
        "cancel_asked": len(cancel_at),
        # a job seen done and later in any other state ran (or was queued to run) again
        "done_twice": [j for j, s in seen.items() if "done" in s and set(s[s.index("done"):]) != {"done"}],
        "orphans": orphans, "jobs_per_min": 60 * sum(1 for st in final.values() if st.state == "done") / elapsed,
        "p50_ms": 1000 * lat[len(lat) // 2] if lat else float("nan"),
        "p95_ms": 1000 * lat[int(len(lat) * 0.95)] if lat else float("nan"), "polls": len(lat), **mem,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--kills", type=int, default=2)
    ap.add_argument("--time-limit", type=float, default=1200.0, help="seconds the run may take")
    ap.add_argument("--json", type=Path, help="also write the run's record here (tests/test_soak.py reads it)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cutscore-soak-") as tmp:
        r = run_soak(Path(tmp), args.jobs, args.clients, args.kills, time_limit=args.time_limit)
    if args.json:
        args.json.write_text(json.dumps(r, default=str))
    print(f"soak: {r['jobs']} jobs, {args.clients} clients, {r['cancel_asked']} cancels asked, "
          f"{r.get('restarts', 0)} SIGKILL restarts, {r['elapsed_s']:.0f} s")
    print("| jobs/min (done) | GET /jobs/{id} p50 ms | p95 ms | polls | RSS after 10 jobs MB | RSS at end MB | ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    a, b = r.get("after_10_mb", float("nan")), r.get("end_mb", float("nan"))
    print(f"| {r['jobs_per_min']:.1f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['polls']} | {a:.0f} | {b:.0f} | "
          f"{b / a:.3f} |")
    print("final states: " + json.dumps(r["states"]) + f"; seen done twice: {len(r['done_twice'])}; "
          f"orphan files: {len(r['orphans'])}")


if __name__ == "__main__":
    main()
