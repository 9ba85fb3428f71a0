"""Music like a reference (issue 45) measured on the shipped demo model: the demo edit and a longer
edit of the shared real footage, each scored with `--like` at strengths 0, 0.2, ... 1 and three seeds,
against two references the model never heard:
- "gm": a FluidSynth rendering (Debian's FluidR3 GM SoundFont) of a score written here in F# minor at
  132 BPM with a drum kit, marimba arpeggios and synth brass (the demo's corpus: C major, held chords,
  no drums, other instruments);
- "real": Frozen-Bubble's in-game music by Matthias Le Bidan (GPL-2, Debian's fb-music-high: a
  tracker module with a clear tempo, decoded by ffmpeg; `apt-get install -y fb-music-high`).
Per row (the mean over the seeds): the chroma profile's correlation with the reference's (key),
the tempo (librosa's beat tracker) against the reference's (ratio error, octave-folded), the
multi-resolution STFT distance to the reference and to the same seed's score without one, the hits
(|offset| of hit sync's strongest onset at each cut, median ms), and the wall time per window.
Then `--vary`: the distance of subtle and strong takes (and of new seeds) to the take they vary.
Writes out/like_spectrograms.png (strengths 0, the default and 1 on the demo edit).

    .venv/bin/python bench/bench_like.py [--minutes 1] [--seeds 3] [--only demo|long]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_conform import long_edit  # noqa: E402

from core.client import LocalEngine  # noqa: E402
from core.paths import DEMO_MODEL, ROOT  # noqa: E402
from plugin.commands.like import LIKE_STRENGTH, VARY  # noqa: E402
from plugin.commands.regenerate import regenerate_clip  # noqa: E402
from plugin.commands.score import ScoreOptions, score_timeline  # noqa: E402
from plugin.commands.state import load_state  # noqa: E402
from plugin.finish.hitsync import onset_floor, strongest_onset  # noqa: E402
from plugin.finish.render import read_wav, resample  # noqa: E402

STRENGTHS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
REAL = Path("/usr/share/games/frozen-bubble/snd/frozen-mainzik-2p.xm")
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


def gm_reference(folder: Path, seconds: float) -> Path:
    """F# minor, 132 BPM: kick/snare/hats, marimba arpeggios of i-VI-III-VII, synth brass on the bar."""
    import mido

    tpb, bpm = 480, 132
    mid = mido.MidiFile(ticks_per_beat=tpb)
    tr = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)),
                         mido.Message("program_change", channel=0, program=12),  # marimba
                         mido.Message("program_change", channel=1, program=62)])  # synth brass 1
    mid.tracks.append(tr)
    chords = [(54, 57, 61), (50, 54, 57), (57, 61, 64), (52, 56, 59)]  # F#m, D, A, E
    events = []
    bars = int(seconds * bpm / 60 / 4) + 1
    for bar in range(bars):
        chord = chords[bar % 4]
        t0 = bar * 4 * tpb
        events += [(t0, mido.Message("note_on", channel=1, note=n + 12, velocity=70)) for n in chord]
        events += [(t0 + 4 * tpb - 10, mido.Message("note_off", channel=1, note=n + 12)) for n in chord]
        for k in range(16):  # sixteenth-note arpeggio
            t, n = t0 + k * tpb // 4, chord[k % 3] + 24 + (12 if k % 8 >= 6 else 0)
            events += [(t, mido.Message("note_on", channel=0, note=n, velocity=90)),
                       (t + tpb // 4 - 5, mido.Message("note_off", channel=0, note=n))]
        for beat in range(4):
            t = t0 + beat * tpb
            drum = 36 if beat in (0, 2) else 38  # kick on 1 and 3, snare on 2 and 4
            events += [(t, mido.Message("note_on", channel=9, note=drum, velocity=110)),
                       (t + 60, mido.Message("note_off", channel=9, note=drum))]
            for h in (0, tpb // 2):
                events += [(t + h, mido.Message("note_on", channel=9, note=42, velocity=60)),
                           (t + h + 30, mido.Message("note_off", channel=9, note=42))]
    now = 0
    for t, msg in sorted(events, key=lambda e: e[0]):
        tr.append(msg.copy(time=t - now))
        now = t
    midi, wav = folder / "gm.mid", folder / "gm.wav"
    mid.save(str(midi))
    subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", "48000", "-F", str(wav), str(SOUNDFONT), str(midi)],
                   check=True, capture_output=True)
    return wav


def _mono(x: np.ndarray) -> np.ndarray:
    return x.mean(0) if x.ndim == 2 else x


def chroma_profile(y: np.ndarray, sr: int) -> np.ndarray:
    import librosa

    c = librosa.feature.chroma_stft(y=_mono(y), sr=sr, n_fft=4096, hop_length=2048)
    return c.mean(1)


def tempo(y: np.ndarray, sr: int) -> float:
    import librosa

    t, _ = librosa.beat.beat_track(y=_mono(y), sr=sr, hop_length=512)
    return float(np.atleast_1d(t)[0])


def tempo_error(a: float, b: float) -> float:
    """|a / b - 1| with the octave folded (a tracker's half or double tempo counts as agreement)."""
    return min(abs(a * k / b - 1) for k in (0.5, 1.0, 2.0))


def mrstft(a: np.ndarray, b: np.ndarray, sr: int, band_sr: int) -> float:
    """Multi-resolution STFT distance (spectral convergence + log-magnitude L1, FFT 512/1024/2048) of
    the two at the model's rate (the band the model makes at all) and the same RMS (the score's
    loudness target is not the reference's)."""
    import librosa

    x, y = (resample(_mono(v)[None].astype(np.float32), sr, band_sr)[0] for v in (a, b))
    x, y = x / max(np.sqrt(np.mean(x ** 2)), 1e-9), y / max(np.sqrt(np.mean(y ** 2)), 1e-9)
    n = min(len(x), len(y))
    out = 0.0
    for fft in (512, 1024, 2048):
        X = np.abs(librosa.stft(x[:n], n_fft=fft, hop_length=fft // 4))
        Y = np.abs(librosa.stft(y[:n], n_fft=fft, hop_length=fft // 4))
        out += np.linalg.norm(Y - X) / max(np.linalg.norm(Y), 1e-9) + np.mean(np.abs(np.log(X + 1e-5) - np.log(Y + 1e-5)))
    return out / 3


def hit_median_ms(music: np.ndarray, sr: int, cuts: list[float]) -> float:
    mono = _mono(music)
    floor = onset_floor(mono, sr)
    found = [strongest_onset(mono, sr, c, floor) for c in cuts]
    offs = [1000 * abs(t - c) for t, c in zip(found, cuts) if t is not None]
    return float(np.median(offs)) if offs else float("nan")


def run_edit(name: str, edit: Path, refs: dict[str, Path], seeds: int, eng) -> tuple[list[dict], dict]:
    rows, keep = [], {}
    plain: dict[int, np.ndarray] = {}
    for ref_name, ref in refs.items():
        for strength in STRENGTHS:
            acc = []
            for seed in range(1, seeds + 1):
                out = edit.with_name(f"{edit.stem}-{ref_name}-{strength:g}-{seed}.otio")
                t = time.monotonic()
                r = score_timeline(edit, out, eng, ScoreOptions(model=str(DEMO_MODEL), seed=seed, duck_db=None,
                                                                like=str(ref), like_strength=strength))
                wall = time.monotonic() - t
                side, state = load_state(out)
                like, sr = read_wav(side / "engine" / state.like.audio)
                band = state.model_sample_rate
                music = r.music[:, :like.shape[1]]
                if strength == 0:
                    plain[seed] = r.music
                if seed == 1 and name == "demo" and ref_name == "gm":
                    keep[strength] = (r.music, r.sample_rate)
                acc.append({"chroma": float(np.corrcoef(chroma_profile(music, sr), chroma_profile(like, sr))[0, 1]),
                            "tempo": tempo(music, sr), "ref_tempo": tempo(like, sr),
                            "to_ref": mrstft(music, like, sr, band), "to_plain": mrstft(r.music, plain[seed], sr, band),
                            "hits": hit_median_ms(r.music, sr, r.cuts_s), "per_window": wall / len(r.windows)})
                shutil.rmtree(side)
            row = {"edit": name, "ref": ref_name, "strength": strength,
                   **{k: float(np.nanmean([a[k] for a in acc])) for k in acc[0]},
                   "tempo_err": float(np.mean([tempo_error(a["tempo"], a["ref_tempo"]) for a in acc]))}
            rows.append(row)
            print(_line(row), flush=True)
    return rows, keep


def run_vary(edit: Path, seeds: int, eng) -> list[tuple[str, float]]:
    """Distance of `--vary` takes and new seeds to the take they vary (clip 1 of the edit)."""
    scored = edit.with_name(f"{edit.stem}-vary.otio")
    score_timeline(edit, scored, eng, ScoreOptions(model=str(DEMO_MODEL), seed=1, duck_db=None))
    side, state = load_state(scored)
    seg = state.clip(1)
    take, sr = read_wav(side / seg.wav)
    band = state.model_sample_rate
    pristine = side.with_name("pristine.cutscore")
    shutil.copytree(side, pristine)
    out = []
    for how in ("subtle", "strong", None):
        d = []
        for seed in range(seeds):
            shutil.rmtree(side)  # each take varies the score's own take (a regenerate makes its take current)
            shutil.copytree(pristine, side)
            r = regenerate_clip(scored, "1", eng, edit.with_name("vary.otio"), seed=100 + seed, vary=how, force=True)
            d.append(mrstft(read_wav(r.wav)[0], take, sr, band))
        out.append((f"vary {how} ({VARY[how]:g})" if how else "a new seed", float(np.mean(d))))
    return out


def spectrograms(keep: dict, path: Path) -> None:
    import librosa
    import librosa.display
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [s for s in (0.0, LIKE_STRENGTH, 1.0) if s in keep] or sorted(keep)
    fig, axes = plt.subplots(len(shown), 1, figsize=(11, 3 * len(shown)), sharex=True)
    for ax, s in zip(np.atleast_1d(axes), shown):
        music, sr = keep[s]
        S = librosa.amplitude_to_db(np.abs(librosa.stft(_mono(music), n_fft=2048, hop_length=512)), ref=np.max)
        librosa.display.specshow(S, sr=sr, hop_length=512, x_axis="time", y_axis="log", ax=ax)
        ax.set_title(f"demo edit like the GM reference, strength {s:g}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


HEADER = ("| edit  | ref  | strength | chroma r | tempo / ref bpm | tempo err | STFT to ref | STFT to no-ref | "
          "hits median ms | s per window |")


def _line(r: dict) -> str:
    return (f"| {r['edit']:<5} | {r['ref']:<4} | {r['strength']:8.1f} | {r['chroma']:8.2f} | "
            f"{r['tempo']:6.1f} / {r['ref_tempo']:5.1f} | {r['tempo_err']:9.2f} | {r['to_ref']:11.3f} | "
            f"{r['to_plain']:14.3f} | {r['hits']:14.1f} | {r['per_window']:12.1f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--only", choices=["demo", "long"])
    args = ap.parse_args()
    if not REAL.exists() or shutil.which("fluidsynth") is None or not SOUNDFONT.exists():
        print("needs: apt-get install -y fb-music-high fluidsynth fluid-soundfont-gm", file=sys.stderr)
        return 2
    out = ROOT / "out"
    out.mkdir(exist_ok=True)
    eng = LocalEngine(device="cpu")
    rows, keep = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        refs = {"gm": gm_reference(folder, 60 * max(args.minutes, 0.5) + 10), "real": REAL}
        print(HEADER, flush=True)
        if args.only in (None, "demo"):
            for f in ("demo.otio", "testvideo.mp4"):
                shutil.copy(ROOT / "resources" / "demo" / f, folder / f)
            got, keep = run_edit("demo", folder / "demo.otio", refs, args.seeds, eng)
            rows += got
            vary = run_vary(folder / "demo.otio", args.seeds, eng)
        if args.only in (None, "long"):
            rows += run_edit("long", long_edit(folder, args.minutes), refs, args.seeds, eng)[0]
    eng.close()
    if keep:
        spectrograms(keep, out / "like_spectrograms.png")
        print("\n| take | STFT distance to the take it varies |")
        for what, d in vary:
            print(f"| {what:<22} | {d:.3f} |")
    for (edit, ref) in sorted({(r["edit"], r["ref"]) for r in rows}):
        sims = [r["to_ref"] for r in rows if r["edit"] == edit and r["ref"] == ref]
        rising = all(b <= a + 1e-9 for a, b in zip(sims, sims[1:]))
        print(f"{edit}/{ref}: distance to the reference falls as the strength rises: {'yes' if rising else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
