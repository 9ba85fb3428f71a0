"""Regenerate by the clip (issue 16), side by side in one run: the time to regenerate one ~3 s clip
(the clip plus margins sampled) against scoring that clip's 3 s alone and against regenerating its
whole window (the previous behaviour), on synthetic timelines of growing length, with the shipped
demo model:

    .venv/bin/python bench/bench_regenerate.py [--minutes 1 3]
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_demo import timeline_for  # noqa: E402
from core.client import LocalEngine  # noqa: E402
from plugin.commands import regenerate as rg  # noqa: E402
from plugin.commands import score as sc  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[1.0, 3.0])
    args = ap.parse_args()
    from engine.train.synth import write_corpus

    eng = LocalEngine(device="cpu")
    opts = sc.ScoreOptions(seed=0, hit_sync=False, force=True)
    print(f"{'timeline':>9} {'clip s':>7} {'regen clip':>11} {'score clip alone':>17} {'regen window':>13} "
          f"{'clip/alone':>11}")
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        for minutes in args.minutes:
            dur = minutes * 60
            write_corpus(d / f"src{minutes}", 1, 99, dur)
            cuts_all = json.loads((d / f"src{minutes}" / "cuts.json").read_text())
            key = sorted(cuts_all)[0]
            cuts = cuts_all[key]
            tl = timeline_for(d / f"src{minutes}" / f"{key}.avi", cuts, dur, d)
            out = d / f"scored{minutes}.otio"
            sc.score_timeline(tl, out, eng, opts)
            bounds = [0.0, *cuts, dur]
            k = min(range(1, len(bounds) - 1), key=lambda i: abs((bounds[i + 1] - bounds[i]) - 3.0))
            clip_s = bounds[k + 1] - bounds[k]
            t0 = time.perf_counter()
            rg.regenerate_clip(out, str(k), eng, d / f"r{minutes}.otio", seed=1, force=True)
            t_clip = time.perf_counter() - t0
            (d / f"alone{minutes}").mkdir(exist_ok=True)
            alone = timeline_for(d / f"src{minutes}" / f"{key}.avi", [], clip_s, d / f"alone{minutes}")
            t0 = time.perf_counter()
            sc.score_timeline(alone, d / f"alone{minutes}.otio", eng, opts)
            t_alone = time.perf_counter() - t0
            margin, rg.REGEN_MARGIN_S = rg.REGEN_MARGIN_S, 1e9  # the span becomes the whole window
            t0 = time.perf_counter()
            rg.regenerate_clip(out, str(k), eng, d / f"w{minutes}.otio", seed=2, force=True)
            t_window = time.perf_counter() - t0
            rg.REGEN_MARGIN_S = margin
            print(f"{minutes:>7.0f} m {clip_s:>7.1f} {t_clip:>10.2f}s {t_alone:>16.2f}s {t_window:>12.2f}s "
                  f"{t_clip / t_alone:>11.2f}")
    eng.close()


if __name__ == "__main__":
    main()
