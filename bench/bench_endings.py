"""Endings (issue 34): how the music ends on the last frame with `--ending ring|fade|cut`, on the
demo timeline and on the demo edit trimmed to end on a cut 2 s before its end, scored with the
shipped demo model (real music). Columns: the last frame's peak (promise: below -60 dBFS for ring
and fade), the first 10 ms's peak, the largest short-term level step in the last second against the
music's own largest step elsewhere (promise: not larger), and where the ring or fade begins.

    .venv/bin/python bench/bench_endings.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import opentimelineio as otio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.client import LocalEngine  # noqa: E402
from core.paths import DEMO_MODEL  # noqa: E402
from plugin.commands.score import ScoreOptions, score_timeline  # noqa: E402
from plugin.commands.state import load_state  # noqa: E402
from plugin.finish.ending import ENDING_FLOOR_DB, ENDINGS, ending_report  # noqa: E402
from tests.test_ending import DEMO, _ends_on_a_cut  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    eng = LocalEngine()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        timelines = {"demo (last cut 3.0 s before the end)": DEMO, "ends on a cut 2 s before the end": _ends_on_a_cut(tmp)}
        print(f"{'timeline':<38} {'ending':<6} {'seed':>4} {'last frame dBFS':>15} {'first 10 ms dBFS':>16} "
              f"{'last-s step dB':>14} {'own step dB':>11} {'from s':>7} {'promise':>7}")
        for label, src in timelines.items():
            rate = otio.adapters.read_from_file(str(src)).duration().rate
            for ending in ENDINGS:
                for seed in range(args.seeds):
                    out = tmp / f"{abs(hash(label))}-{ending}-{seed}.otio"
                    r = score_timeline(src, out, eng, ScoreOptions(model=str(DEMO_MODEL), seed=seed, ending=ending,
                                                                 force=True))
                    rep = ending_report(r.music, r.sample_rate, 1 / rate)
                    start = load_state(out)[1].ending.start_s
                    ok = ending == "cut" or (rep["last_frame_peak_dbfs"] < ENDING_FLOOR_DB
                                             and rep["last_second_max_step_db"] <= rep["own_max_step_db"])
                    print(f"{label:<38} {ending:<6} {seed:>4} {rep['last_frame_peak_dbfs']:>15.1f} "
                          f"{rep['first_10ms_peak_dbfs']:>16.1f} {rep['last_second_max_step_db']:>14.1f} "
                          f"{rep['own_max_step_db']:>11.1f} {start:>7.2f} {('-' if ending == 'cut' else 'held' if ok else 'FAILS'):>7}")
    eng.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
