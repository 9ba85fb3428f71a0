"""Conform (issue 44) measured on the shipped demo model: an edit is scored, re-edited as an editor
would (nothing; a clip's tail trimmed 12 frames with ripple; a head trimmed; a clip deleted; a new
3 s clip inserted; two clips swapped; a clip moved to the end; a slip; the same edit re-exported as
FCP7 XML), and each re-edit conformed. Per re-edit:
- kinds: the change list against the truth of how the re-edit was made (written here, not read
  from the code under test);
- kept: the kept spans bit-identical to the old score's track at the stated old time;
- seams: at every edge where generated music meets kept music, the join as it is made (the seam's
  own frame boundary and the 250 ms fade from the old music's continuation into the new, frames
  aligned to the seam): its worst 50 ms level step (dB) and spectral flux, against the 95th
  percentile of the worst over as many neighbouring frame boundaries inside the kept music (a seam
  "out" is one above it);
- hits: |offset| of the nearest onset to each new cut inside generated music (median, ms);
- time: the conform against a full score of the new edit (same settings, one run each).
Edits: the demo edit (20 s, 5 clips) and a long edit (--minutes, default 2) of shots of 4/6/3/5 s cut
from the shared real footage. Writes out/conform_seam.png (a seam's spectrogram).

    .venv/bin/python bench/bench_conform.py [--minutes 2] [--steps N] [--only demo|long]
"""

from __future__ import annotations

import argparse
import copy
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import opentimelineio as otio
from opentimelineio.opentime import RationalTime as RT
from opentimelineio.opentime import TimeRange as TR

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.client import LocalEngine  # noqa: E402
from core.paths import DEMO_MODEL, ROOT  # noqa: E402
from plugin.commands.conform import EDGE_BLEND_S, conform  # noqa: E402
from plugin.commands.score import ScoreOptions, score_timeline  # noqa: E402
from plugin.commands.state import load_state, music_of  # noqa: E402
from plugin.finish.hitsync import onset_floor, strongest_onset  # noqa: E402
from plugin.formats.timeline import read_timeline  # noqa: E402

KINDS = ["none", "trim_tail", "trim_head", "delete", "insert", "swap", "move_end", "slip", "reexport"]


def long_edit(folder: Path, minutes: float) -> Path:
    """Shots of 4/6/3/5 s from the real clips in turn (source starts walking through each file)."""
    src = ROOT.parent / "shared" / "media"
    files = [(src / "testvideo.mp4", 24.0), (ROOT / "tests" / "fixtures" / "counter.mp4", 10.0)]
    files = [(p, d) for p, d in files if p.exists()]
    for p, _ in files:
        shutil.copy(p, folder / p.name)
    rate = 25.0
    tl = otio.schema.Timeline(name="long edit")
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    tl.tracks.append(track)
    total, k, pos = minutes * 60, 0, {p.name: 0.0 for p, _ in files}
    lengths = [4, 6, 3, 5]
    while sum(c.duration().to_seconds() for c in track) < total:
        p, dur = files[k % len(files)]
        n = min(lengths[k % 4], dur - 0.5)
        start = pos[p.name] if pos[p.name] + n <= dur else 0.0
        pos[p.name] = (start + n * 0.37 + 0.3) % max(dur - n, 0.1)
        track.append(otio.schema.Clip(name=f"shot {k}", media_reference=otio.schema.ExternalReference(
            target_url=p.name, available_range=TR(RT(0, rate), RT(round(dur * rate), rate))),
            source_range=TR(RT(round(start * rate), rate), RT(round(n * rate), rate))))
        k += 1
    path = folder / "long.otio"
    otio.adapters.write_to_file(tl, str(path))
    return path


def reedit(src: Path, kind: str, out: Path, at: int) -> tuple[Path, list[str], list[int]]:
    """The re-edit, and its truth: the kind of each new clip and the old clips deleted."""
    tl = otio.adapters.read_from_file(str(src))
    v = tl.video_tracks()[0]
    clips = [c for c in v if isinstance(c, otio.schema.Clip)]
    n, r = len(clips), clips[0].source_range.duration.rate
    kinds, deleted = ["unchanged"] * n, []
    if kind == "trim_tail":
        c = clips[at]
        c.source_range = TR(c.source_range.start_time, c.source_range.duration - RT(12, r))
        kinds[at:] = ["trimmed"] + ["moved"] * (n - at - 1)
    elif kind == "trim_head":
        c = clips[at]
        c.source_range = TR(c.source_range.start_time + RT(12, r), c.source_range.duration - RT(12, r))
        kinds[at:] = ["trimmed"] + ["moved"] * (n - at - 1)
    elif kind == "delete":
        v.remove(clips[at])
        kinds = kinds[:at] + ["moved"] * (n - at - 1)
        deleted = [at]
    elif kind == "insert":  # 3 s of footage no clip of the edit shows
        new = copy.deepcopy(clips[0])
        new.name = "insert"
        new.media_reference = otio.schema.ExternalReference(target_url="unused.mp4")
        new.source_range = TR(RT(0, r), RT(round(3 * r), r))
        v.insert(v.index(clips[at]), new)
        kinds = kinds[:at] + ["new"] + ["moved"] * (n - at)
    elif kind == "swap":
        i = v.index(clips[at])
        v.remove(clips[at + 1])
        v.insert(i, clips[at + 1].clone())
        kinds[at:at + 2] = ["moved", "moved"]
    elif kind == "move_end":
        v.remove(clips[at])
        v.append(clips[at].clone())
        kinds = kinds[:at] + ["moved"] * (n - at)
    elif kind == "slip":
        c = clips[at]
        c.source_range = TR(c.source_range.start_time + RT(round(r / 2), r), c.source_range.duration)
        kinds[at] = "trimmed"
    if kind == "reexport":
        out = out.with_suffix(".xml")
    otio.adapters.write_to_file(tl, str(out), adapter_name="fcp_xml" if kind == "reexport" else None)
    return out, kinds, deleted


def frame_measures(music: np.ndarray, sr: int, hop_s: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Per 50 ms frame boundary: the level step (dB) and the spectral flux (log-magnitude) between
    the frames either side."""
    mono = music.mean(0)
    hop = int(hop_s * sr)
    n = len(mono) // hop
    frames = mono[:n * hop].reshape(n, hop)
    level = 20 * np.log10(np.maximum(np.sqrt((frames ** 2).mean(1)), 1e-5))
    spec = np.log1p(np.abs(np.fft.rfft(frames * np.hanning(hop), axis=1)))
    flux = np.sqrt((np.maximum(np.diff(spec, axis=0), 0) ** 2).sum(1))
    return np.abs(np.diff(level)), flux


def _worst_of(x: np.ndarray, inside: np.ndarray, k: int) -> np.ndarray:
    """The largest of every k neighbouring values that all lie inside."""
    return np.array([x[i:i + k].max() for i in range(len(x) - k + 1) if inside[i:i + k].all()])


def _at_seam(music: np.ndarray, sr: int, e: float, side: int, k: int) -> tuple[float, float]:
    """The worst level step and flux over the seam's k frame boundaries: the one at the seam and
    those into the generated side (side +1: after e, -1: before), frames aligned to the seam."""
    first = e - 0.05 if side > 0 else e - 0.05 * k
    a = max(0, round(first * sr))
    step, flux = frame_measures(music[:, a:a + round(0.05 * (k + 1) * sr)], sr)
    return float(step.max()), float(flux.max())


def measure(old_scored: Path, r, truth_kinds, truth_deleted, sr: int) -> dict:
    old = music_of(old_scored)[0]
    music = music_of(r.out)[0]
    exact = all(np.array_equal(music[:, round(a * sr):round(b * sr)],
                               old[:, round(o * sr):round(o * sr) + round(b * sr) - round(a * sr)]) for a, b, o in r.kept)
    step, flux = frame_measures(music, sr)
    inside = np.zeros(len(step), bool)
    for a, b, _ in r.kept:
        inside[int(a / 0.05) + 1:int(b / 0.05) - 1] = True
    # a seam is the seam's own frame boundary and the fade from the old music's continuation into the
    # new (EDGE_BLEND_S, on the generated side): its worst step and flux over those k boundaries, frames
    # aligned to the seam, against the worst over k neighbouring boundaries anywhere inside kept music
    k = round(EDGE_BLEND_S / 0.05) + 1
    p_step = np.percentile(_worst_of(step, inside, k), 95)
    p_flux = np.percentile(_worst_of(flux, inside, k), 95)
    seams = [(e, +1 if abs(e - g[0]) < 1e-6 else -1) for g in r.generated for e in g
             if any(abs(e - a) < 1e-6 or abs(e - b) < 1e-6 for a, b, _ in r.kept)]
    at = [_at_seam(music, sr, e, side, k) for e, side in seams]
    at_steps, at_flux = [s for s, _ in at], [f for _, f in at]
    worst_step, worst_flux = max(at_steps, default=0.0), max(at_flux, default=0.0)
    tl = read_timeline(r.out)
    cuts = [c.to_seconds() for c in tl.cuts if any(a <= c.to_seconds() <= b for a, b in r.generated)]
    mono = music.mean(0)  # |offset| as hit sync defines it: its strongest onset within 250 ms of the cut
    floor = onset_floor(mono, sr)
    found = [strongest_onset(mono, sr, c, floor) for c in cuts]
    offs = [1000 * abs(t - c) for t, c in zip(found, cuts) if t is not None]
    return {"kinds_ok": [c.kind for c in r.changes] == truth_kinds and r.deleted == truth_deleted,
            "kinds": "".join(c.kind[0] for c in r.changes), "exact": exact, "kept_s": r.kept_s,
            "generated_s": r.generated_s, "seams": len(seams), "step": worst_step, "p95_step": p_step,
            "flux": worst_flux, "p95_flux": p_flux, "hits": len(offs),
            "steps_over": sum(s > p_step for s in at_steps), "flux_over": sum(f > p_flux for f in at_flux),
            "hit_median_ms": float(np.median(offs)) if offs else float("nan")}


def run(name: str, edit: Path, eng, steps: int | None, at: int, out: Path) -> list[dict]:
    opts = ScoreOptions(model=str(DEMO_MODEL), seed=1, steps=steps, duck_db=None)
    scored = edit.with_name(f"{edit.stem}-scored.otio")
    t = time.monotonic()
    score_timeline(edit, scored, eng, opts)
    print(f"{name}: scored in {time.monotonic() - t:.1f} s", flush=True)
    sr = load_state(scored)[1].sample_rate
    rows = []
    for kind in KINDS:
        new, kinds, deleted = reedit(edit, kind, edit.with_name(f"{edit.stem}-{kind}.otio"), at)
        t = time.monotonic()
        r = conform(scored, new, edit.with_name(f"{edit.stem}-{kind}-conformed.otio"), eng)
        row = {"edit": name, "re-edit": kind, "conform_s": time.monotonic() - t, **measure(scored, r, kinds, deleted, sr)}
        if kind == "trim_tail":
            t = time.monotonic()
            score_timeline(new, edit.with_name(f"{edit.stem}-{kind}-full.otio"), eng, opts)
            row["full_s"] = time.monotonic() - t
            _plot(r, sr, out / f"conform_seam_{name}.png")
        rows.append(row)
        print(_line(row), flush=True)
    return rows


def _plot(r, sr: int, path: Path) -> None:
    import librosa
    import librosa.display
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    music = music_of(r.out)[0].mean(0)
    seam = r.generated[0][0]
    a, b = max(0, int((seam - 2) * sr)), int((seam + 3) * sr)
    S = librosa.amplitude_to_db(np.abs(librosa.stft(music[a:b], n_fft=1024, hop_length=256)), ref=np.max)
    fig, ax = plt.subplots(figsize=(10, 4))
    librosa.display.specshow(S, sr=sr, hop_length=256, x_axis="time", y_axis="log", ax=ax)
    for g0, g1 in r.generated:
        if a / sr <= g0 <= b / sr:
            ax.axvspan(g0 - a / sr, min(g1, b / sr) - a / sr, color="white", alpha=0.15)
            ax.axvline(g0 - a / sr, color="w", lw=1)
            ax.axvline(min(g1, b / sr) - a / sr, color="w", lw=1)
    ax.set_title(f"conform seam at {seam:.3f} s (shaded: generated, the rest kept sample for sample)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _line(r: dict) -> str:
    full = f"{r['full_s']:6.1f}" if "full_s" in r else "     -"
    ratio = f"{r['conform_s'] / r['full_s']:5.2f}" if "full_s" in r else "    -"
    return (f"| {r['edit']:<5} | {r['re-edit']:<9} | {r['kinds']:<12.12} | {'yes' if r['kinds_ok'] else 'NO':<3} | "
            f"{'yes' if r['exact'] else 'NO':<3} | {r['kept_s']:7.2f} | {r['generated_s']:5.2f} | {r['seams']:2d} | "
            f"{r['step']:5.1f} / {r['p95_step']:4.1f} | {r['flux']:5.1f} / {r['p95_flux']:4.1f} | {r['hits']:2d} | "
            f"{r['hit_median_ms']:6.1f} | {r['conform_s']:6.1f} | {full} | {ratio} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's)")
    ap.add_argument("--only", choices=["demo", "long"])
    args = ap.parse_args()
    out = ROOT / "out"
    out.mkdir(exist_ok=True)
    eng = LocalEngine(device="cpu")
    print("| edit  | re-edit   | kinds (u/m/t/n) | ok | exact | kept s | made s | seams | seam step dB / p95 | "
          "seam flux / p95 | hits | hit median ms | conform s | full score s | ratio |")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.only in (None, "demo"):
            for f in ("demo.otio", "testvideo.mp4"):
                shutil.copy(ROOT / "resources" / "demo" / f, folder / f)
            rows += run("demo", folder / "demo.otio", eng, args.steps, 1, out)
        if args.only in (None, "long"):
            rows += run("long", long_edit(folder, args.minutes), eng, args.steps, 5, out)
    eng.close()
    seams = sum(r["seams"] for r in rows)
    print(f"kinds right: {sum(r['kinds_ok'] for r in rows)}/{len(rows)}; kept spans bit-identical: "
          f"{sum(r['exact'] for r in rows)}/{len(rows)}; seams above the kept music's 95th percentile: level step "
          f"{sum(r['steps_over'] for r in rows)}/{seams}, spectral flux {sum(r['flux_over'] for r in rows)}/{seams} "
          f"(music like the kept would put 5 % of its frame boundaries there); hits median "
          f"{np.nanmedian([r['hit_median_ms'] for r in rows]):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
