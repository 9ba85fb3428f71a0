"""Ducking (issue 34) on real speech: the demo edit with three espeak-ng lines on a dialogue track and
a fourth on a muted track (tests/speech.py), scored by the shipped demo model. Per seed and depth:
the speech found against the synthesiser's own regions (recall, and found/known time), the music's
level change inside the speech and outside it against the same music unducked (the .xml score's
WAVs, which carry the ducking as keyframes), their difference (promise: the depth +- 1.5 dB), and
the raw inside-minus-outside level of the ducked music (the music's own variation included).
Writes out/ducking.png: the level of the ducked, ended score against the unducked, the speech
shaded, and its spectrogram.

    .venv/bin/python bench/bench_ducking.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.client import LocalEngine  # noqa: E402
from core.paths import DEMO_MODEL, ROOT  # noqa: E402
from plugin.commands.score import ScoreOptions, score_timeline  # noqa: E402
from plugin.commands.state import load_state  # noqa: E402
from tests import speech  # noqa: E402
from tests.test_ducking import _apart, _music, _recall  # noqa: E402


def _plot(ducked, plain, sr, regions, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.signal import spectrogram

    hop = int(0.05 * sr)
    n = ducked.shape[1] // hop

    def level(y):
        return 10 * np.log10(np.mean(np.square(y[:, : n * hop].reshape(y.shape[0], n, hop)), axis=(0, 2)) + 1e-10)

    t = np.arange(n) * 0.05
    fig, (a, b) = plt.subplots(2, 1, figsize=(12, 6.5), sharex=True)
    for s, e in regions:
        a.axvspan(s, e, color="tab:orange", alpha=0.25)
    a.plot(t, level(plain), color="0.6", lw=1, label="unducked")
    a.plot(t, level(ducked), color="tab:blue", lw=1.2, label="ducked (-12 dB), ring ending")
    a.set_ylabel("level, dBFS (50 ms RMS)")
    a.set_ylim(-90, 0)
    a.legend(loc="lower left")
    a.set_title("cutscore: the demo model's music under three spoken lines (shaded: speech Silero VAD found)")
    f, tt, sxx = spectrogram(ducked.mean(axis=0), sr, nperseg=2048, noverlap=1536)
    b.pcolormesh(tt, f / 1000, 10 * np.log10(sxx + 1e-12), shading="auto", vmin=-120, vmax=-30, cmap="magma")
    b.set_ylim(0, 8)
    b.set_ylabel("kHz")
    b.set_xlabel("timeline seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    eng = LocalEngine()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src, known = speech.dialogue_timeline(tmp)
        print(f"{'depth dB':>8} {'seed':>4} {'recall':>6} {'found/known':>11} {'inside dB':>9} {'outside dB':>10} "
              f"{'apart dB':>8} {'raw in-out dB':>13} {'promise':>7}")
        for depth in (-12.0, -6.0):
            for seed in range(args.seeds):
                music = {}
                for suffix in (".otio", ".xml"):
                    out = tmp / f"s{seed}{int(-depth)}-{suffix[1:]}{suffix}"
                    score_timeline(src, out, eng, ScoreOptions(model=str(DEMO_MODEL), seed=seed, duck_db=depth))
                    side, state = load_state(out)
                    music[suffix] = _music(side, state)
                regions = state.ducking.regions
                m = _apart(music[".otio"][0], music[".xml"][0], state.sample_rate, regions, state.request.duration_s)
                ratio = sum(b - a for a, b in regions) / sum(b - a for a, b in known)
                ok = abs(m["apart_db"] + depth) <= 1.5 and _recall(regions, known) >= 0.95
                print(f"{depth:>8g} {seed:>4} {_recall(regions, known):>6.2f} {ratio:>11.2f} {m['in_db']:>9.2f} "
                      f"{m['out_db']:>10.2f} {m['apart_db']:>8.2f} {m['raw_in_minus_out_db']:>13.2f} "
                      f"{'held' if ok else 'FAILS':>7}")
                if depth == -12.0 and seed == 0 and (ROOT / "out").is_dir():
                    _plot(music[".otio"][0], music[".xml"][0], state.sample_rate, regions, ROOT / "out" / "ducking.png")
    eng.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
