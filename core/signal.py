"""Signal helpers on numpy arrays that both sides use (torch-free): the loudness gain the score
applies, the per-second scene onsets of a window from the editor's cuts, and the music's onsets
measured against the cuts (the demo's and the evaluation's cut alignment).
"""

from __future__ import annotations

import numpy as np

PEAK_LIMIT = 10 ** (-1 / 20)  # -1 dBFS
ONSET_WINDOW_S = 0.1  # an onset within +-100 ms of a cut hits it
ONSET_FRAME_S = 512 / 22050  # librosa's default frame hop at its default rate: 23.2 ms


# ---- loudness -------------------------------------------------------------------------------------

def loudness_gain_db(audio: np.ndarray, sr: int, target_lufs: float, peak_limit: float = PEAK_LIMIT) -> float:
    """audio (channels, samples): the gain that brings the integrated loudness to the target,
    lowered so the peak stays at or below peak_limit. Silence and clips under 0.4 s get 0 dB."""
    import pyloudnorm

    if audio.shape[1] < int(0.4 * sr) or not np.any(audio):
        return 0.0
    loud = integrated_loudness(audio, sr, pyloudnorm.Meter(sr))
    if not np.isfinite(loud):
        return 0.0
    gain = target_lufs - loud
    peak = float(max(audio.max(), -audio.min()))  # max |x| without a copy of the piece
    if peak * 10 ** (gain / 20) > peak_limit:
        gain = 20 * np.log10(peak_limit / peak)
    return float(gain)


def integrated_loudness(audio: np.ndarray, sr: int, meter, chunk: int = 1 << 20) -> float:
    """pyloudnorm's Meter.integrated_loudness (ITU-R BS.1770-4) of audio (channels, samples), the
    same number, a chunk of samples at a time: the K-weighting filters run with their state carried
    across chunks (the same samples as over the whole) and each 400 ms block's mean square is taken
    over the same samples as pyloudnorm's, whose float64 copies of the whole piece were the largest
    part of a long score's loudness step."""
    from scipy.signal import lfilter

    channels, n = audio.shape
    if n < meter.block_size * sr:
        raise ValueError("Audio must have length greater than the block size.")
    stages = list(meter._filters.values())
    state = [[np.zeros(max(len(f.a), len(f.b)) - 1) for f in stages] for _ in range(channels)]
    t_g, step = meter.block_size, 1.0 - meter.overlap
    blocks = int(np.round((n / sr - t_g) / (t_g * step))) + 1
    bounds = [(int(t_g * (j * step) * sr), int(t_g * (j * step + 1) * sr)) for j in range(blocks)]
    z = np.zeros((channels, blocks))
    keep = np.zeros((channels, 0))  # the filtered samples a block still needs, from sample `start`
    start, j = 0, 0
    for a in range(0, n, chunk):
        x = audio[:, a:min(n, a + chunk)].astype(np.float64)
        for ch in range(channels):
            for k, f in enumerate(stages):
                y, state[ch][k] = lfilter(f.b, f.a, x[ch], zi=state[ch][k])
                x[ch] = f.passband_gain * y
        keep = np.concatenate([keep, x], axis=1)
        end = start + keep.shape[1]
        while j < blocks and bounds[j][1] <= end:
            lo, hi = bounds[j]
            for ch in range(channels):
                z[ch, j] = (1.0 / (t_g * sr)) * np.sum(np.square(keep[ch, lo - start:hi - start]))
            j += 1
        drop = (bounds[j][0] if j < blocks else end) - start
        keep, start = keep[:, drop:], start + drop
    while j < blocks:  # blocks past the end (pyloudnorm's rounding): the samples there are
        lo, hi = bounds[j]
        for ch in range(channels):
            z[ch, j] = (1.0 / (t_g * sr)) * np.sum(np.square(keep[ch, max(lo - start, 0):hi - start]))
        j += 1
    return _gated(z, channels)


def _gated(z: np.ndarray, channels: int) -> float:
    """pyloudnorm's gating of the blocks' mean squares (absolute -70 LKFS, relative -10 LU)."""
    import warnings

    g = [1.0, 1.0, 1.0, 1.41, 1.41]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        levels = [-0.691 + 10.0 * np.log10(np.sum([g[i] * z[i, j] for i in range(channels)])) for j in range(z.shape[1])]
        kept = [j for j, v in enumerate(levels) if v >= -70.0]
        avg = [np.mean([z[i, j] for j in kept]) for i in range(channels)]
        relative = -0.691 + 10.0 * np.log10(np.sum([g[i] * avg[i] for i in range(channels)])) - 10.0
        kept = [j for j, v in enumerate(levels) if v > relative and v > -70.0]
        avg = np.nan_to_num(np.array([np.mean([z[i, j] for j in kept]) for i in range(channels)]))
    with np.errstate(divide="ignore"):
        return float(-0.691 + 10.0 * np.log10(np.sum([g[i] * avg[i] for i in range(channels)])))


def normalise_loudness(audio: np.ndarray, sr: int, target_lufs: float = -23.0, peak_limit: float = 0.99) -> np.ndarray:
    return (audio * np.float32(10 ** (loudness_gain_db(audio, sr, target_lufs, peak_limit) / 20))).astype(np.float32)


# ---- cuts and onsets ------------------------------------------------------------------------------

def onsets_from_cuts(cuts_s, start_s: float, duration_s: float) -> np.ndarray:
    """Cuts (seconds, in the same clock as start_s) -> (M,) 0/1: second m holds a cut in
    [start + m, start + m + 1). A cut exactly at start_s counts (the new scene starts here)."""
    m = int(np.ceil(duration_s - 1e-9))
    e = np.zeros(m, np.float32)
    for c in cuts_s:
        rel = float(c) - start_s
        if 0 <= rel < duration_s:
            e[min(int(np.floor(rel + 1e-9)), m - 1)] = 1.0
    return e


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


def cut_alignment(audio, sr: int, cuts_s: list[float]) -> dict:
    """How well music follows the cuts: onsets within 100 ms of a cut (torch-free)."""


    on = detect_onsets(audio, sr)
    f, p, r = onset_f_measure(on, cuts_s)
    nearest = [float(1000 * (on[np.argmin(np.abs(on - c))] - c)) if len(on) else float("nan") for c in cuts_s]
    return {"f": f, "p": p, "r": r, "hit": match_count(on, cuts_s), "nearest_ms": nearest, "onsets": len(on)}
