"""The paper's evaluation (table 4; MODEL_SPEC.md "Evaluation") and rhythm metrics that need no
network.

- FAD (VGGish, 16 kHz) and FD and KL (PANNs CNN14, 16 kHz; KL pairs files by name), computed with
  the networks of engine/eval/embeddings.py when their packages and weights are on this machine, else the
  column reads "unavailable: <what to install or download>"; density and coverage (k = 5, the `prdc`
  package) on LAION-CLAP audio embeddings the same way. The ImageBind score is not implemented: its
  column says so.
- Rhythm: onset F-measure of the music against the video's cuts (+-100 ms), the share of cuts with
  an onset within 100 ms, and the rhythm predictor's error against the ground-truth ODF_LR.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ONSET_WINDOW_S = 0.1
DC_K = 5  # the paper's k for density and coverage


# ---- distribution metrics ------------------------------------------------------------------------

def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2) (the FAD / FD formula)."""
    from scipy import linalg

    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(sigma1 @ sigma2, disp=False)
    if not np.isfinite(covmean).all():
        eps = np.eye(len(mu1)) * 1e-6
        covmean = linalg.sqrtm((sigma1 + eps) @ (sigma2 + eps))
    covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def frechet_from_embeddings(a: np.ndarray, b: np.ndarray) -> float:
    return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = 1e-8) -> float:
    """Mean over paired rows of KL(p || q); rows are class distributions (PANNs' 527 classes)."""
    p = np.clip(np.asarray(p, np.float64), eps, None)
    q = np.clip(np.asarray(q, np.float64), eps, None)
    p, q = p / p.sum(-1, keepdims=True), q / q.sum(-1, keepdims=True)
    return float(np.mean(np.sum(p * np.log(p / q), axis=-1)))


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020) of fake embeddings against real ones, by the authors'
    `prdc` package: density = mean over fake of (real k-NN balls containing it) / k; coverage = share
    of real samples whose k-NN ball holds at least one fake sample."""
    import contextlib
    import io

    from prdc import compute_prdc

    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        m = compute_prdc(real_features=np.asarray(real, np.float64), fake_features=np.asarray(fake, np.float64),
                         nearest_k=k)
    return float(m["density"]), float(m["coverage"])


# ---- rhythm metrics ---------------------------------------------------------------------------------

CHROMA_SR = 22050  # librosa's default rate: chroma_entropy measures there
ONSET_FRAME_S = 512 / 22050  # librosa's default frame hop at its default rate: 23.2 ms


def detect_onsets(audio: np.ndarray, sr: int) -> np.ndarray:
    """Onset times (s) of music: librosa's onset detector on the mono mix, with its frames at 23.2 ms
    whatever the rate. librosa sizes its peak picking in frames from seconds (pre_max and wait 30 ms,
    averages 100 ms) and its defaults assume 22,050 Hz with a 512 hop; at 16 kHz the same hop is 32 ms,
    pre_max and wait round to 0 frames, and one hit reads as two onsets a frame apart."""
    import librosa

    y = audio.mean(axis=0) if audio.ndim == 2 else audio
    hop = max(1, int(round(sr * ONSET_FRAME_S)))
    return librosa.onset.onset_detect(y=y.astype(np.float32), sr=sr, hop_length=hop, units="time", backtrack=False)


def match_count(est: np.ndarray, ref: np.ndarray, window: float = ONSET_WINDOW_S) -> int:
    """Largest one-to-one matching of sorted times within +-window (greedy in time order is optimal
    for points on a line with a symmetric window)."""
    est, ref = np.sort(np.asarray(est, float)), np.sort(np.asarray(ref, float))
    i = j = hits = 0
    while i < len(est) and j < len(ref):
        if abs(est[i] - ref[j]) <= window:
            hits, i, j = hits + 1, i + 1, j + 1
        elif est[i] < ref[j]:
            i += 1
        else:
            j += 1
    return hits


def onset_f_measure(est, ref, window: float = ONSET_WINDOW_S) -> tuple[float, float, float]:
    """(F, precision, recall) of estimated onsets against reference times (the cuts)."""
    if len(est) == 0 or len(ref) == 0:
        return 0.0, 0.0, 0.0
    hits = match_count(est, ref, window)
    p, r = hits / len(est), hits / len(ref)
    return (0.0 if hits == 0 else 2 * p * r / (p + r)), p, r


def cut_hit_rate(onsets, cuts, window: float = ONSET_WINDOW_S) -> float:
    """Share of cuts with an onset within +-window."""
    onsets = np.asarray(onsets, float)
    if len(cuts) == 0:
        return float("nan")
    return float(np.mean([np.any(np.abs(onsets - c) <= window) for c in cuts])) if len(onsets) else 0.0


def _distribution_metrics(gen: list[Path], ref: list[Path]) -> dict[str, object]:
    """FAD (VGGish), FD and KL (PANNs CNN14 16 kHz; KL(ref || gen) per pair, averaged), density and
    coverage (LAION-CLAP), ImageBind: a number where the network loads here, else what is missing."""
    from engine.eval import embeddings as emb
    from engine.features.audio import load_audio

    avail = emb.available()
    out: dict[str, object] = {}
    audio = {p: load_audio(p) for p in gen + ref}
    if avail["vggish"] is None:
        net = emb.VGGish()
        g = np.concatenate([net.embed(*audio[p]) for p in gen])
        r = np.concatenate([net.embed(*audio[p]) for p in ref])
        out["FAD"] = frechet_from_embeddings(g, r) if len(g) > 1 and len(r) > 1 else \
            "unavailable: FAD needs at least 2 s of audio on each side"
    else:
        out["FAD"] = f"unavailable: {avail['vggish']}"
    if avail["panns"] is None:
        net = emb.Cnn14()
        ge, gp = zip(*(net.embed(*audio[p]) for p in gen))
        re_, rp = zip(*(net.embed(*audio[p]) for p in ref))
        out["FD"] = frechet_from_embeddings(np.stack(ge), np.stack(re_)) if len(gen) > 1 else \
            "unavailable: FD needs at least two files on each side"
        out["KL"] = kl_divergence(np.stack(rp), np.stack(gp))
    else:
        out["FD"] = out["KL"] = f"unavailable: {avail['panns']}"
    if avail["clap"] is None:
        net = emb.Clap()
        g = np.concatenate([net.embed(*audio[p]) for p in gen])
        r = np.concatenate([net.embed(*audio[p]) for p in ref])
        if len(r) > DC_K:
            out["Density"], out["Coverage"] = density_coverage(r, g, k=DC_K)
        else:
            out["Density"] = out["Coverage"] = (f"unavailable: density and coverage need more than {DC_K} reference "
                                                f"chunks of 10 s ({len(r)} here)")
    else:
        out["Density"] = out["Coverage"] = f"unavailable: {avail['clap']}"
    out["IB"] = "unavailable: the ImageBind score is not implemented in cutscore (it needs ImageBind-Huge)"
    return out


def evaluate(generated: str | Path, reference: str | Path, videos: str | Path | None = None) -> dict:
    """The table for two folders of audio paired by file name (and their videos, for the cuts)."""
    from engine.errors import CutscoreError
    from engine.features.audio import load_audio

    gen_dir, ref_dir = Path(generated), Path(reference)
    for d in (gen_dir, ref_dir):
        if not d.is_dir():
            raise CutscoreError(f"{d}: not a folder of audio files")
    exts = {".wav", ".flac", ".mp3", ".ogg"}
    gen = {p.stem: p for p in gen_dir.iterdir() if p.suffix.lower() in exts}
    ref = {p.stem: p for p in ref_dir.iterdir() if p.suffix.lower() in exts}
    pairs = sorted(set(gen) & set(ref))
    if not pairs:
        raise CutscoreError(f"{gen_dir} and {ref_dir} share no file names; KL and the rhythm metrics pair files by name")
    table: dict[str, object] = {"files": len(pairs)}
    table.update(_distribution_metrics([gen[n] for n in pairs], [ref[n] for n in pairs]))
    if videos:
        import json

        from engine.features.cuts import detect_cuts

        vids = {p.stem: p for p in Path(videos).iterdir() if p.suffix.lower() in {".mp4", ".mov", ".mkv", ".avi"}}
        known = Path(videos) / "cuts.json"  # true cuts when known (an edit, the synthetic corpus)
        known_cuts = json.loads(known.read_text()) if known.exists() else {}
        fs, hits = [], []
        for name in pairs:
            if name not in vids:
                continue
            cuts = known_cuts[name] if name in known_cuts else detect_cuts(vids[name])
            y, sr = load_audio(gen[name])
            on = detect_onsets(y, sr)
            fs.append(onset_f_measure(on, cuts)[0])
            if cuts:
                hits.append(cut_hit_rate(on, cuts))
        table["onset F (cuts, +-100 ms)"] = float(np.mean(fs)) if fs else "unavailable: no videos paired by name"
        table["cuts with an onset (+-100 ms)"] = float(np.mean(hits)) if hits else "unavailable: no cuts"
    return table


def cut_alignment(audio, sr: int, cuts_s: list[float]) -> dict:
    """How well music follows the cuts: onsets within 100 ms of a cut (torch-free)."""
    import numpy as np

    on = detect_onsets(audio, sr)
    f, p, r = onset_f_measure(on, cuts_s)
    nearest = [float(1000 * (on[np.argmin(np.abs(on - c))] - c)) if len(on) else float("nan") for c in cuts_s]
    return {"f": f, "p": p, "r": r, "hit": match_count(on, cuts_s), "nearest_ms": nearest, "onsets": len(on)}


def spectral_flatness(audio: np.ndarray, sr: int, fmin: float = 50.0, fmax: float = 4000.0) -> float:
    """Median over frames of the power spectrum's flatness (geometric / arithmetic mean) between
    fmin and fmax (n_fft 2048 at 44.1 kHz scaled to sr, hop a quarter). Pitched music is near 0,
    white noise about 0.56. Frames 60 dB below the loudest are left out (silence is not noise)."""
    import librosa

    y = np.asarray(audio, np.float32)
    y = y.mean(0) if y.ndim == 2 else y
    n_fft = int(2 ** round(np.log2(2048 * sr / 44100)))
    p = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=n_fft // 4)) ** 2
    f = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    band = p[(f >= fmin) & (f <= fmax)]
    energy = band.sum(0)
    keep = energy > energy.max() * 1e-6 if energy.size and energy.max() > 0 else np.zeros_like(energy, bool)
    if not keep.any():
        return float("nan")
    band = band[:, keep] + 1e-12
    flat = np.exp(np.log(band).mean(0)) / band.mean(0)
    return float(np.median(flat))


def chroma_entropy(audio: np.ndarray, sr: int) -> float:
    """Entropy in bits of the average chroma (12 pitch classes): uniform (no key) is log2 12 = 3.58,
    music in a key well below. Measured at librosa's default rate (22,050 Hz, the rate its chroma's
    2048-point frames are made for: 10.8 Hz bins) whatever the audio's rate: with 2048 points at
    48 kHz the bins are 23 Hz, wider than a semitone below G4, and the same notes read as
    0.4 bits flatter (one held triad 2.95 bits at 16 kHz, 3.34 at 48 kHz)."""
    import librosa

    y = np.asarray(audio, np.float32)
    y = y.mean(0) if y.ndim == 2 else y
    if sr != CHROMA_SR:
        y = librosa.resample(y, orig_sr=sr, target_sr=CHROMA_SR)
    c = librosa.feature.chroma_stft(y=y, sr=CHROMA_SR).mean(1)
    c = c / max(float(c.sum()), 1e-12)
    return float(-(c * np.log2(np.maximum(c, 1e-12))).sum())
