"""The paper's evaluation (table 4; docs/MODEL_SPEC.md "Evaluation") and rhythm metrics that need no
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

from core.signal import ONSET_WINDOW_S, cut_hit_rate, detect_onsets, match_count, onset_f_measure  # noqa: F401

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
    from core.errors import CutscoreError
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
