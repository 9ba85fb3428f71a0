"""Memory and time against the edit's length (issue 47): `cutscore score` of edits cut from the
shared real footage (shots of 4/6/3/5 s, bench_conform.long_edit) of 1, 5, 15 (and 60) minutes,
demo model, 2 sampling steps, each in a fresh process: its peak RSS and wall time, and the growth
per minute against the 1-minute edit; then, in another fresh process, a regenerate of the clip in
the middle of that edit (its peak RSS and wall time: the same in a long edit as in a short one).

    .venv/bin/python bench/bench_scale.py [--minutes 1,5,15] [--steps 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_conform import long_edit  # noqa: E402

from core.paths import DEMO_MODEL, ROOT  # noqa: E402

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from core.client import LocalEngine
from plugin.commands.score import ScoreOptions, score_timeline
eng = LocalEngine(device="cpu")
t = time.monotonic()
r = score_timeline({edit!r}, {out!r}, eng, ScoreOptions(model={model!r}, steps={steps}, seed=1))
wall = time.monotonic() - t
eng.close()
print(json.dumps({{"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "wall_s": wall,
                  "windows": len(r.windows), "clips": r.segments}}))
"""

REGEN = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from core.client import LocalEngine
from plugin.commands.regenerate import regenerate_clip
eng = LocalEngine(device="cpu")
t = time.monotonic()
regenerate_clip({scored!r}, {clip!r}, eng, seed=5)
wall = time.monotonic() - t
eng.close()
print(json.dumps({{"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "wall_s": wall}}))
"""


def _child(code: str) -> dict:
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def measure(minutes: float, steps: int, folder: Path) -> dict:
    sub = folder / f"{minutes:g}min"
    sub.mkdir()
    edit = long_edit(sub, minutes)
    scored = sub / "scored.otio"
    row = _child(CHILD.format(root=str(ROOT), edit=str(edit), out=str(scored), model=str(DEMO_MODEL), steps=steps))
    regen = _child(REGEN.format(root=str(ROOT), scored=str(scored), clip=str(row["clips"] // 4)))
    return {"minutes": minutes, **row, "regen_rss_mb": regen["rss_mb"], "regen_wall_s": regen["wall_s"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", default="1,5,15")
    ap.add_argument("--steps", type=int, default=2)
    args = ap.parse_args()
    rows = []
    print("| edit min | windows | peak RSS MB | wall s | MB per minute over 1 min | s per minute | "
          "regenerate peak RSS MB | regenerate s |")
    with tempfile.TemporaryDirectory() as tmp:
        for m in [float(x) for x in args.minutes.split(",")]:
            row = measure(m, args.steps, Path(tmp))
            rows.append(row)
            base = rows[0]
            per = (row["rss_mb"] - base["rss_mb"]) / (m - base["minutes"]) if m > base["minutes"] else float("nan")
            print(f"| {m:8g} | {row['windows']:7d} | {row['rss_mb']:11.0f} | {row['wall_s']:6.1f} | {per:24.1f} | "
                  f"{row['wall_s'] / m:12.1f} | {row['regen_rss_mb']:22.0f} | {row['regen_wall_s']:12.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
