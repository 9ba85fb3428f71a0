"""Overhead of the HTTP transport against the in-process engine, side by side in one run.

    .venv/bin/python bench/bench_service.py

A small job (a 2 s window, 1 sampler step, the debug model, no media) is run N times through
LocalEngine and through a real `cutscore serve` on loopback (token, SQLite store, SSE progress).
The model is warm in both before timing starts.
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.api import ClipSpan, ScoreRequest, Settings, WindowSpec  # noqa: E402
from core.client import HttpEngine, LocalEngine, run_job  # noqa: E402

N = 20


def request(out: Path, i: int) -> ScoreRequest:
    return ScoreRequest(model="debug", duration_s=2.0, clips=[ClipSpan(index=0, start_s=0, duration_s=2.0)],
                        windows=[WindowSpec(start_s=0, duration_s=2.0)], settings=Settings(seed=i, steps=1),
                        output_dir=str(out / f"job{i}"))


def timed(client, out: Path) -> float:
    run_job(client, request(out, 999))  # warm
    t0 = time.perf_counter()
    for i in range(N):
        run_job(client, request(out, i))
    return (time.perf_counter() - t0) / N


def main():
    tmp = Path(tempfile.mkdtemp(prefix="cutscore-bench-"))
    env = dict(os.environ, CUTSCORE_CONFIG_DIR=str(tmp / "config"), CUTSCORE_CACHE_DIR=str(tmp / "cache"))
    os.environ.update(CUTSCORE_CONFIG_DIR=env["CUTSCORE_CONFIG_DIR"], CUTSCORE_CACHE_DIR=env["CUTSCORE_CACHE_DIR"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "ui.cli", "serve", "--port", str(port), "--model", "debug",
                             "--store", str(tmp / "jobs.sqlite3")], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        local = LocalEngine(device="cpu")
        t_local = timed(local, tmp / "local")
        local.close()
        t_http = timed(HttpEngine(f"http://127.0.0.1:{port}"), tmp / "http")
    finally:
        proc.terminate()
        proc.wait()
    print(f"small job (2 s window, 1 step, debug model), mean of {N}, {os.cpu_count()} cores")
    print(f"{'transport':<14} {'s / job':>9}")
    print(f"{'in-process':<14} {t_local:>9.4f}")
    print(f"{'HTTP loopback':<14} {t_http:>9.4f}")
    print(f"ratio HTTP / in-process: {t_http / t_local:.2f}  (overhead {1000 * (t_http - t_local):.1f} ms a job)")


if __name__ == "__main__":
    main()
