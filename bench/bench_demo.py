"""The demo model against its goal, side by side in one run: on held-out synthetic timelines, the
cut-onset F-measure (+-100 ms) of its music, with all conditions and with the rhythm and scene
conditions zeroed, next to the corpus's own music (the ceiling).

    .venv/bin/python bench/bench_demo.py [--heldout DIR] [--count 20] [--steps 20]

DIR holds held-out pairs made by `cutscore train synth` (default: a fresh set with a seed the demo
model never saw, written to a temporary folder). Each pair becomes an OTIO timeline with one clip
per shot, is planned into the model's windows and scored through the same code as `cutscore score`
(features of each clip's media, window by window, equal-power crossfades).
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import opentimelineio as otio  # noqa: E402
from opentimelineio.opentime import RationalTime, TimeRange  # noqa: E402

from engine.api import Settings  # noqa: E402
from engine.eval.metrics import detect_onsets, onset_f_measure  # noqa: E402
from engine.model.pipeline import Pipeline  # noqa: E402
from engine.service.jobs import _clip_features, window_features  # noqa: E402
from plugin.plan import make_plan  # noqa: E402
from plugin.render import StitchWindow, stitch  # noqa: E402
from plugin.score import build_request  # noqa: E402
from plugin.timeline import read_timeline  # noqa: E402

FPS = 10


def timeline_for(video: Path, cuts: list[float], duration: float, out: Path) -> Path:
    tl = otio.schema.Timeline(name=video.stem)
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    tl.tracks.append(track)
    bounds = [0.0, *cuts, duration]
    for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
        ref = otio.schema.ExternalReference(target_url=str(video.resolve()))
        track.append(otio.schema.Clip(name=f"shot {i}", media_reference=ref,
                                      source_range=TimeRange(RationalTime(round(a * FPS), FPS),
                                                             RationalTime(round((b - a) * FPS), FPS))))
    p = out / f"{video.stem}.otio"
    otio.adapters.write_to_file(tl, str(p))
    return p


def score(pipe, tl_path: Path, work: Path, steps: int, seed: int, ablate=frozenset()):
    tl = read_timeline(tl_path)
    plan = make_plan(tl, window_s=pipe.cfg.window_seconds)
    req = build_request(plan, "demo", Settings(seed=seed, steps=steps), work)
    feats = _clip_features(req, pipe, [])
    wins = []
    for i, w in enumerate(req.windows):
        g = pipe.generate(window_features(req, i, feats, pipe.cfg.encoders.clip_dim), seed=seed + i, steps=steps,
                          ablate=ablate)
        wins.append(StitchWindow(w.start_s, w.duration_s, w.overlap_s, g.audio))
    return stitch(wins, tl.duration.to_seconds(), pipe.cfg.sample_rate), [c.to_seconds() for c in tl.cuts]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "resources" / "models" / "demo"))
    ap.add_argument("--heldout", help="a folder from `cutscore train synth` (default: a fresh one, seed 777)")
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cutscore-demo-bench-"))
    if args.heldout:
        held = Path(args.heldout)
    else:
        from engine.train.synth import write_corpus

        held = tmp / "heldout"
        write_corpus(held, args.count, seed=777, duration_s=30.0)
    cuts_all = json.loads((held / "cuts.json").read_text())
    pipe = Pipeline.load(args.model, device="cpu")
    rows = {"full": [], "ablated": [], "reference": []}
    t0 = time.time()
    for k, video in enumerate(sorted(held.glob("*.avi"))[: args.count]):
        cuts = cuts_all[video.stem]
        tl_path = timeline_for(video, cuts, 30.0, tmp)
        sr = pipe.cfg.sample_rate
        for name, abl in (("full", frozenset()), ("ablated", frozenset({"rhythm", "scene"}))):
            music, tl_cuts = score(pipe, tl_path, tmp / f"{video.stem}-{name}", args.steps, seed=k, ablate=abl)
            rows[name].append(onset_f_measure(detect_onsets(music, sr), tl_cuts)[0])
        import soundfile as sf

        ref, rsr = sf.read(held / f"{video.stem}.wav", dtype="float32")
        rows["reference"].append(onset_f_measure(detect_onsets(ref, rsr), cuts)[0])
    n = len(rows["full"])
    print(f"{n} held-out synthetic timelines (30 s, cuts on whole seconds), {args.steps} DPM-Solver++ steps, "
          f"{time.time() - t0:.0f} s")
    print(f"{'music':<44} {'cut-onset F (+-100 ms)':>22} {'std':>6}")
    for name, label in (("full", "demo model, all conditions"), ("ablated", "demo model, rhythm + scene zeroed"),
                        ("reference", "the corpus's own music (ceiling)")):
        print(f"{label:<44} {np.mean(rows[name]):>22.3f} {np.std(rows[name]):>6.3f}")
    ratio = np.mean(rows["full"]) / max(np.mean(rows["ablated"]), 1e-9)
    print(f"ratio all conditions / ablated: {ratio:.2f}  (goal: F >= 0.6 and ratio >= 2)")


if __name__ == "__main__":
    main()
