"""The demo model against its goals (issue 15), side by side in one run. On held-out synthetic
timelines: the corpus's own music, the demo VAE's reconstruction of it, the demo model's music with
all conditions and with the rhythm and scene conditions zeroed; for each, the spectral flatness
(50 Hz-4 kHz, median over frames: pitched music near 0, white noise 0.56), the chroma entropy (bits;
uniform 3.58; measured at 22,050 Hz whatever the rate) and the cut-onset F-measure (+-100 ms). A
reference row gives the scale of the chroma entropy: one C major triad held for 5 s, each note with
7 harmonics at 1/k (3.03 bits; a pure sine reads 1.44). With --demo-dir, the same numbers for the
music `make demo` wrote (its WAVs in timeline order).

    .venv/bin/python bench/bench_demo.py [--heldout DIR] [--count 20] [--steps 20] [--demo-dir out/demo]
        [--guidance 1.5,3]

DIR holds held-out pairs made by `cutscore train synth --music gm` (default: a fresh set with a
seed the demo model never saw, written to a temporary folder). Each pair becomes an OTIO timeline
with one clip per shot, planned into the model's windows like `cutscore score` plans it; each window
is generated independently from the same features `cutscore score` uses (the request, the clip
features, the window features) and the windows are stitched with equal-power crossfades. Unlike
`cutscore score` it does not continue windows, sync hits or normalise loudness: it measures the model.
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

from core.api import Settings  # noqa: E402
from engine.eval.metrics import chroma_entropy, detect_onsets, onset_f_measure, spectral_flatness  # noqa: E402
from engine.inference import ClipFeatures, window_features  # noqa: E402
from engine.model.pipeline import Pipeline  # noqa: E402
from plugin.commands.plan import make_plan  # noqa: E402
from plugin.commands.score import build_request  # noqa: E402
from plugin.finish.render import StitchWindow, stitch  # noqa: E402
from plugin.formats.timeline import read_timeline  # noqa: E402

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


def score(pipe, tl_path: Path, work: Path, steps: int, seed: int, ablate=frozenset(), guidance: float | None = None):
    tl = read_timeline(tl_path)
    plan = make_plan(tl, window_s=pipe.cfg.window_seconds)
    req = build_request(plan, "demo", Settings(seed=seed, steps=steps), work)
    feats = ClipFeatures(req, pipe, [])
    wins = []
    for i, w in enumerate(req.windows):
        g = pipe.generate(window_features(req, i, feats, pipe.cfg.encoders.clip_dim), seed=seed + i, steps=steps, guidance=guidance,
                          ablate=ablate)
        wins.append(StitchWindow(w.start_s, w.duration_s, w.overlap_s, g.audio))
    return stitch(wins, tl.duration.to_seconds(), pipe.cfg.sample_rate), [c.to_seconds() for c in tl.cuts]


def measures(y: np.ndarray, sr: int, cuts: list[float]) -> tuple[float, float, float]:
    return spectral_flatness(y, sr), chroma_entropy(y, sr), onset_f_measure(detect_onsets(y, sr), cuts)[0]


def demo_music(folder: Path) -> tuple[np.ndarray, int, list[float]]:
    """The music `make demo` wrote (its sidecar's clip WAVs in timeline order) and the demo's cuts."""
    import soundfile as sf

    from plugin.commands.state import parse
    from plugin.names import STATE_FILE

    side = next(folder.glob("*.cutscore"))
    state = parse((side / STATE_FILE).read_text(), side / STATE_FILE)
    parts, sr = [], 48000
    for seg in sorted(state.segments, key=lambda s: s.start):
        y, sr = sf.read(side / seg.wav, dtype="float32", always_2d=True)
        parts.append(y.mean(1))
    return np.concatenate(parts), sr, list(state.request.cuts_s)


def triad_chroma_bits(sr: int = 16000) -> float:
    """The chroma entropy of one held C major triad (C4 E4 G4, harmonics 1-7 at 1/k), 5 s."""
    t = np.arange(5 * sr) / sr
    y = sum(np.sin(2 * np.pi * k * 440 * 2 ** ((n - 69) / 12) * t) / k for n in (60, 64, 67) for k in range(1, 8))
    return chroma_entropy(y.astype(np.float32), sr)


def main():
    import librosa
    import soundfile as sf
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "resources" / "models" / "demo"))
    ap.add_argument("--heldout", help="a folder from `cutscore train synth --music gm` (default: a fresh one, seed 777)")
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--demo-dir", type=Path, help="the output folder of `make demo` (default: not measured)")
    ap.add_argument("--guidance", default="", help="extra rows: the demo model at these guidance scales "
                    "(comma-separated; the main rows use the model's own)")
    ap.add_argument("--spectrogram", type=Path, help="write a PNG: the first held-out timeline's corpus music, "
                    "its VAE reconstruction and the demo model's music (and --demo-dir's), as log spectrograms")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cutscore-demo-bench-"))
    if args.heldout:
        held = Path(args.heldout)
    else:
        from engine.train.synth import write_corpus

        held = tmp / "heldout"
        write_corpus(held, args.count, seed=777, duration_s=30.0, music="gm")
    cuts_all = json.loads((held / "cuts.json").read_text())
    pipe = Pipeline.load(args.model, device="cpu")
    sr = pipe.cfg.sample_rate
    extra = [float(g) for g in args.guidance.split(",") if g.strip()]
    rows = {"corpus": [], "vae": [], "full": [], "ablated": [], **{f"g{g}": [] for g in extra}}
    examples = []  # (title, audio, sample rate, cuts) of the first timeline, for --spectrogram
    t0 = time.time()
    for k, video in enumerate(sorted(held.glob("*.avi"))[: args.count]):
        cuts = cuts_all[video.stem]
        ref, rsr = sf.read(held / f"{video.stem}.wav", dtype="float32")
        rows["corpus"].append(measures(ref, rsr, cuts))
        x = torch.from_numpy(ref if rsr == sr else librosa.resample(ref, orig_sr=rsr, target_sr=sr))
        rec = pipe.vae.decode(pipe.vae.encode(x[None, None]), num_samples=len(x))[0, 0].numpy()
        rows["vae"].append(measures(rec, sr, cuts))
        if k == 0:
            examples += [("corpus (FluidSynth)", ref, rsr, cuts), ("demo VAE reconstruction", rec, sr, cuts)]
        tl_path = timeline_for(video, cuts, 30.0, tmp)
        runs = [("full", frozenset(), None), ("ablated", frozenset({"rhythm", "scene"}), None),
                *((f"g{g}", frozenset(), g) for g in extra)]
        for name, abl, guidance in runs:
            music, tl_cuts = score(pipe, tl_path, tmp / f"{video.stem}-{name}", args.steps, seed=k, ablate=abl,
                                   guidance=guidance)
            mono = music.mean(0) if music.ndim == 2 else music
            rows[name].append(measures(mono, sr, tl_cuts))
            if k == 0 and name == "full":
                examples.append(("demo model", mono, sr, tl_cuts))
    n = len(rows["full"])
    print(f"{n} held-out synthetic timelines (30 s, cuts on whole seconds), {args.steps} DPM-Solver++ steps, "
          f"{time.time() - t0:.0f} s")
    print(f"{'music':<40} {'flatness':>9} {'chroma bits':>12} {'cut-onset F':>12} {'F std':>6}")
    labels = (("corpus", "the corpus's own music"), ("vae", "the demo VAE's reconstruction of it"),
              ("full", f"demo model, all conditions (g {pipe.cfg.diffusion.guidance:g})"),
              ("ablated", "demo model, rhythm + scene zeroed"), *((f"g{g}", f"demo model, guidance {g:g}") for g in extra))
    for name, label in labels:
        m = np.asarray(rows[name])
        print(f"{label:<40} {np.median(m[:, 0]):>9.4f} {np.mean(m[:, 1]):>12.3f} {np.mean(m[:, 2]):>12.3f} "
              f"{np.std(m[:, 2]):>6.3f}")
    print(f"{'reference: one major triad held':<40} {'':>9} {triad_chroma_bits():>12.3f}")
    ratio = np.mean(np.asarray(rows["full"])[:, 2]) / max(np.mean(np.asarray(rows["ablated"])[:, 2]), 1e-9)
    print(f"cut-onset F ratio, all conditions / zeroed: {ratio:.2f}  (goal: F >= 0.6 and ratio >= 2)")
    if args.demo_dir:
        y, dsr, cuts = demo_music(args.demo_dir)
        f, c, o = measures(y, dsr, cuts)
        print(f"{'`make demo` music (' + str(args.demo_dir) + ')':<40} {f:>9.4f} {c:>12.3f} {o:>12.3f}"
              f"  (goal: flatness <= 0.03, chroma <= 3.0 bits)")
        examples.append(("`make demo` (resources/demo, real footage)", y, dsr, cuts))
    if args.spectrogram:
        spectrograms(examples, args.spectrogram)
        print(f"wrote {args.spectrogram}")


def spectrograms(examples, path: Path) -> None:
    import librosa
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(examples), 1, figsize=(10, 2.2 * len(examples)), constrained_layout=True)
    for ax, (title, y, sr, cuts) in zip(np.atleast_1d(axes), examples):
        y = librosa.resample(np.asarray(y, np.float32), orig_sr=sr, target_sr=16000) if sr != 16000 else y
        S = librosa.amplitude_to_db(np.abs(librosa.stft(np.asarray(y, np.float32), n_fft=1024, hop_length=256)), ref=np.max)
        ax.imshow(S, origin="lower", aspect="auto", cmap="magma", vmin=-80, vmax=0,
                  extent=(0, len(y) / 16000, 0, 8000))
        for c in cuts:
            ax.axvline(c, color="#4fc3ff", lw=0.8, ls="--")
        ax.set_ylim(0, 4000)
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_ylabel("Hz")
    np.atleast_1d(axes)[-1].set_xlabel("seconds (dashed: cuts)")
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
