"""The editor's rhythm (issue 35) on the shipped demo model: the demo edit scored with a span of the
energy lane raised to the predicted curve's top and lowered to its bottom (and to the model's range
bottom, the panel's "Lower" before a prediction exists), same seed. Per seed: inside the span the
RMS ratio, the detected onsets' strength ratio (librosa's onset envelope at its peak-picked onsets)
and count, and the envelope's mean ratio (log-mel flux, nearly level-blind, shown for honesty);
outside the span how far the raised and the lowered music's level curves are apart (RMS of their 50 ms
levels' difference, dB; tests/test_rhythm.py level_distance) against the seed-to-seed spread (the
same region, no edit, seed s against seed s + 1), in the window the span does not reach (0-8 s), in
the rest of the windows it does more than EDGE_S from the span (8-12.5 s and 19.5-20 s: the span's
window is sampled on the prediction, then the span again with the rest held, so this is the same
music), and at the span's edges (the EDGE_S either side: the decoder's reach, shown, not promised).
Promise: ratios >= 1.5 at the prediction's bottom, outside within the spread.
Writes out/rhythm_span.png: the three levels (raised, lowered, no edit) with the span shaded.

    .venv/bin/python bench/bench_rhythm.py [--seeds 3] [--span 13 19]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.client import LocalEngine  # noqa: E402
from core.paths import ROOT  # noqa: E402
from tests.test_rhythm import level_distance, prediction_extremes, score_span, span_measures  # noqa: E402

# the music within this of the span's edges is not promised to stay: the VAE decoder's reach (about
# 0.35 s here) and the window's per-second grid (a window starting 7.97 s edits from 12.97 s)
EDGE_S = 0.5


def _plot(curves: dict, sr: int, span, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hop = int(0.05 * sr)
    fig, ax = plt.subplots(figsize=(12, 4))
    ax.axvspan(*span, color="tab:orange", alpha=0.2, label="edited span")
    for (name, y), color in zip(curves.items(), ("tab:red", "tab:blue", "0.55")):
        n = len(y) // hop
        lev = 10 * np.log10(np.mean(np.square(y[: n * hop].reshape(n, hop)), axis=1) + 1e-10)
        ax.plot(np.arange(n) * 0.05, lev, color=color, lw=1.1, label=name)
    ax.set_ylim(-70, 0)
    ax.set_xlabel("timeline seconds")
    ax.set_ylabel("level, dBFS (50 ms RMS, gain removed)")
    ax.set_title("cutscore: the demo model following an edited energy lane (seed 0)")
    ax.legend(loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--span", type=int, nargs=2, default=(13, 19), metavar=("FROM", "TO"))
    args = ap.parse_args()
    span = tuple(args.span)
    client = LocalEngine()
    a, b = span
    outside = {"0-8 s": [(0, 8)], f"8-{a - EDGE_S:g}, {b + EDGE_S:g}-20 s": [(8, a - EDGE_S), (b + EDGE_S, 20)],
               "edges": [(a - EDGE_S, a), (b, b + EDGE_S)]}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        plain, t_plains = [], []
        for s in range(args.seeds + 1):
            t0 = time.perf_counter()
            plain.append(score_span(client, tmp, s, span, None))
            t_plains.append(time.perf_counter() - t0)
        t_plain = float(np.mean(t_plains[1:]))  # the first loads the model; the engine warm, as below
        t_edits = []
        sr = plain[0][1]
        top, bottom = prediction_extremes(plain[0][2])
        lo = -3.0  # the model's range bottom (core/model_config.py rhythm_range for 10 s windows)
        for s in range(args.seeds):
            t0 = time.perf_counter()
            up = score_span(client, tmp, s, span, top)[0]
            t_edits.append(time.perf_counter() - t0)
            downs = {"pred. bottom": score_span(client, tmp, s, span, bottom)[0],
                     "range bottom": score_span(client, tmp, s, span, lo)[0]}
            mu = span_measures(up, sr, *span)
            for name, down in downs.items():
                md = span_measures(down, sr, *span)
                onsets = mu["onsets"] / md["onsets"] if md["onsets"] > 0 else float("inf")  # none lowered
                row = [s, name, mu["rms"] / md["rms"], onsets, mu["count"], md["count"],
                       mu["env"] / md["env"]]
                for parts in outside.values():
                    row += [level_distance(up, down, sr, parts), level_distance(plain[s][0], plain[s + 1][0], sr, parts)]
                rows.append(row)
            if s == 0:
                _plot({f"raised to {top:+.2f}": up, f"lowered to {bottom:+.2f}": downs["pred. bottom"],
                       "no edit": plain[0][0]}, sr, span, ROOT / "out" / "rhythm_span.png")
    print(f"demo model, span {span[0]}-{span[1]} s raised to the prediction's top {top:+.2f}; lowered to its "
          f"bottom {bottom:+.2f} or the range bottom {lo:+.1f}")
    head = ["seed", "lowered to", "RMS x", "onset str x", "onsets up", "onsets down", "env mean x"]
    for k in outside:
        head += [f"up-down {k} dB", f"seed spread {k} dB"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in r) + " |")
    pred = [r for r in rows if r[1] == "pred. bottom"]
    for what, ok in (("in the span, RMS and onset strength >= 1.5x", all(r[2] >= 1.5 and r[3] >= 1.5 for r in pred)),
                     ("outside, in the window the span does not reach, within the seed spread",
                      all(r[7] <= r[8] for r in pred)),
                     (f"outside, in the windows it reaches, beyond {EDGE_S} s of its edges, within the seed spread",
                      all(r[9] <= r[10] for r in pred))):
        print(f"{what} (pred. bottom rows): {'holds' if ok else 'does NOT hold'}")
    t_edit = float(np.mean(t_edits))
    print(f"score time (warm engine, mean over seeds): no edit {t_plain:.1f} s, the span raised {t_edit:.1f} s ("
          f"{t_edit / t_plain:.2f}x: the windows the span reaches are sampled twice)")
    print("plot: out/rhythm_span.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
