"""Continuation (issue 16) side by side in one run: does the music continue through the joins
between generation windows? On a long held-out synthetic timeline scored with the shipped demo
model, independent windows vs continuation (the previous window's overlap latents held):

    .venv/bin/python bench/bench_continuation.py [--minutes 3]

For each join (the middle of a window overlap) and, as a reference, for each cut inside a window:
the chroma cosine similarity, the log-mel spectrum cosine similarity (timbre) and the tempo
difference between the 3 s before and the 3 s after.
Higher chroma similarity and smaller tempo jumps at the joins mean one piece rather than a medley;
the cuts show how much the music changes where the picture asks it to.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.bench_demo import timeline_for  # noqa: E402
from core.client import LocalEngine  # noqa: E402
from plugin.commands.score import ScoreOptions, score_timeline  # noqa: E402

SPAN_S = 3.0


def around(y, sr, t):
    a, b = int((t - SPAN_S) * sr), int((t + SPAN_S) * sr)
    return (y[max(a, 0):int(t * sr)], y[int(t * sr):min(b, len(y))]) if a >= 0 and b <= len(y) else None


def measures(y, sr, times):
    import librosa

    chroma, mel, tempo = [], [], []

    def cos(a, b):
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))

    for t in times:
        seg = around(y, sr, t)
        if seg is None:
            continue
        chroma.append(cos(*[librosa.feature.chroma_stft(y=s, sr=sr).mean(1) for s in seg]))
        m = [librosa.power_to_db(librosa.feature.melspectrogram(y=s, sr=sr, n_mels=64)).mean(1) for s in seg]
        mel.append(cos(*[v - v.mean() for v in m]))
        bpm = [float(np.atleast_1d(librosa.feature.tempo(y=s, sr=sr))[0]) for s in seg]
        tempo.append(abs(bpm[0] - bpm[1]))
    return chroma, mel, tempo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=3.0)
    args = ap.parse_args()
    from engine.train.synth import write_corpus

    eng = LocalEngine(device="cpu")
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        dur = args.minutes * 60
        write_corpus(d / "src", 1, 4242, dur)
        key = sorted(json.loads((d / "src" / "cuts.json").read_text()))[0]
        cuts = json.loads((d / "src" / "cuts.json").read_text())[key]
        tl = timeline_for(d / "src" / f"{key}.avi", cuts, dur, d)
        print(f"{'windows':<14} {'where':<22} {'n':>3} {'chroma cos':>11} {'log-mel cos':>12} {'|tempo diff|':>13}")
        for cont in (False, True):
            r = score_timeline(tl, d / f"o{int(cont)}.otio", eng,
                               ScoreOptions(seed=0, continuation=cont, hit_sync=False, force=True))
            y, sr = r.music.mean(0), r.sample_rate
            joins = [w.start_s + w.overlap_s / 2 for w in r.windows[1:]]
            edges = [(w.start_s, w.start_s + w.duration_s) for w in r.windows]
            inner = [c for c in cuts if any(a + SPAN_S < c < b - SPAN_S for a, b in edges)
                     and all(abs(c - j) > SPAN_S for j in joins)]
            label = "continuation" if cont else "independent"
            for where, times in (("joins", joins), ("cuts inside a window", inner)):
                ch, me, te = measures(y, sr, times)
                print(f"{label:<14} {where:<22} {len(ch):>3} {np.mean(ch):>11.3f} {np.mean(me):>12.3f} "
                      f"{np.median(te):>9.1f} bpm")
    eng.close()


if __name__ == "__main__":
    main()
