"""Memory and time against the edit's length (issue 47): `cutscore score` of edits cut from the
shared real footage (shots of 4/6/3/5 s, bench_conform.long_edit) of 1, 5, 15 (and 60) minutes,
demo model, 2 sampling steps, each in a fresh process: its peak RSS and wall time, and the growth
per minute against the 1-minute edit; then, in another fresh process, a regenerate of the clip in
the middle of that edit (its peak RSS and wall time: the same in a long edit as in a short one);
and the panel opening each scored edit, offscreen (open and first paint, the first time and again;
with --before, an earlier checkout's panel on the same scores, side by side).

    .venv/bin/python bench/bench_scale.py [--minutes 1,5,15] [--steps 2] [--before DIR] [--keep DIR [--reuse]]
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

# the panel opening the scored edit, offscreen, as `cutscore panel SCORED` does: the open, the first
# paint; twice (the second finds the takes' peaks kept from the first)
PANEL = """
import json, os, resource, sys, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
sys.path.insert(0, {root!r})
from PyQt6.QtWidgets import QApplication
from ui.panel.window import PanelWindow
app = QApplication([])
walls = []
for _ in range(2):
    win = PanelWindow()
    t = time.monotonic()
    ok = win.open({scored!r})
    win.show()
    app.processEvents()
    win.grab()
    walls.append(time.monotonic() - t)
    assert ok, win.state.error
    win.close()
print(json.dumps({{"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "wall_s": walls[0],
                  "again_s": walls[1]}}), flush=True)
os._exit(0)
"""


def _child(code: str) -> dict:
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def measure(minutes: float, steps: int, folder: Path, before: Path | None, reuse: bool) -> dict:
    sub = folder / f"{minutes:g}min"
    sub.mkdir(exist_ok=True)
    scored = sub / "scored.otio"
    if reuse and scored.exists():
        from plugin.commands.state import load_state

        state = load_state(scored)[1]
        row = {"wall_s": float("nan"), "rss_mb": float("nan"), "windows": len(state.windows), "clips": len(state.segments)}
    else:
        edit = long_edit(sub, minutes)
        row = _child(CHILD.format(root=str(ROOT), edit=str(edit), out=str(scored), model=str(DEMO_MODEL), steps=steps))
    for old in scored.with_suffix(".cutscore").glob("*.peaks.npz"):
        old.unlink()  # the first open computes them
    panel = {f"panel_{k}": v for k, v in _child(PANEL.format(root=str(ROOT), scored=str(scored))).items()}
    if before is not None:
        panel.update({f"before_{k}": v for k, v in _child(PANEL.format(root=str(before), scored=str(scored))).items()})
    regen = _child(REGEN.format(root=str(ROOT), scored=str(scored), clip=str(row["clips"] // 4)))
    return {"minutes": minutes, **row, **panel, "regen_rss_mb": regen["rss_mb"], "regen_wall_s": regen["wall_s"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", default="1,5,15")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--before", type=Path, help="a checkout of earlier code (git worktree add DIR REV): its panel "
                                                "opens the same scores, side by side")
    ap.add_argument("--keep", type=Path, help="score into this folder and keep it; with --reuse, score only "
                                              "the edits it does not hold yet")
    ap.add_argument("--reuse", action="store_true")
    args = ap.parse_args()
    rows = []
    print("| edit min | windows | peak RSS MB | wall s | MB per minute over 1 min | s per minute | "
          "regenerate peak RSS MB | regenerate s | panel open s (again) | panel peak RSS MB |"
          + (" earlier panel open s (again) | earlier panel peak RSS MB |" if args.before else ""))
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for m in [float(x) for x in args.minutes.split(",")]:
            row = measure(m, args.steps, folder, args.before, args.reuse)
            rows.append(row)
            base = rows[0]
            per = (row["rss_mb"] - base["rss_mb"]) / (m - base["minutes"]) if m > base["minutes"] else float("nan")
            line = (f"| {m:8g} | {row['windows']:7d} | {row['rss_mb']:11.0f} | {row['wall_s']:6.1f} | {per:24.1f} | "
                    f"{row['wall_s'] / m:12.1f} | {row['regen_rss_mb']:22.0f} | {row['regen_wall_s']:12.1f} | "
                    f"{row['panel_wall_s']:8.2f} ({row['panel_again_s']:.2f}) | {row['panel_rss_mb']:17.0f} |")
            if args.before:
                line += (f" {row['before_wall_s']:18.2f} ({row['before_again_s']:.2f}) | "
                         f"{row['before_rss_mb']:25.0f} |")
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
