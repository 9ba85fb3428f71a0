"""Visual beats (docs/MODEL_SPEC.md "Visual features"): frame differences -> a visual rhythm curve ->
peak picking -> per-second beat strength, 0 where no peak.

- Frames: the small grey stream (64 px wide, about 10 fps) from video.py.
- Curve: mean absolute difference of consecutive grey frames, in [0, 1] (divided by 255), placed
  at the later frame's time; the first frame gets 0.
- Peaks: scipy.signal.find_peaks with prominence >= 0.02 (2 % of the full grey range: camera noise
  and compression shimmer stay below it, a hand wave or a pan's speed-up does not) and at least
  0.3 s between peaks (a beat faster than 200 per minute is not a visual beat).
- Strength: each peak's prominence, scaled by the curve's largest prominence in the range so the
  strongest beat is 1; a second keeps its strongest peak.
"""

from __future__ import annotations

import numpy as np

PROMINENCE = 0.02
MIN_DISTANCE_S = 0.3


def rhythm_curve(grey: np.ndarray) -> np.ndarray:
    """(N, h, w) uint8 -> (N,) mean absolute difference to the previous frame, in [0, 1]."""
    if len(grey) < 2:
        return np.zeros(len(grey), np.float32)
    d = np.abs(np.diff(grey.astype(np.int16), axis=0)).mean(axis=(1, 2)) / 255.0
    return np.concatenate([[0.0], d]).astype(np.float32)


def beat_strength(grey: np.ndarray, times: np.ndarray, seconds: int) -> np.ndarray:
    """Per-second beat strength (seconds,) in [0, 1]."""
    from scipy.signal import find_peaks

    curve = rhythm_curve(grey)
    out = np.zeros(seconds, np.float32)
    if len(curve) < 3:
        return out
    fps = (len(times) - 1) / max(times[-1] - times[0], 1e-6)
    peaks, props = find_peaks(curve, prominence=PROMINENCE, distance=max(1, int(round(MIN_DISTANCE_S * fps))))
    if len(peaks) == 0:
        return out
    prom = props["prominences"] / props["prominences"].max()
    for p, v in zip(peaks, prom):
        s = int(min(max(np.floor(times[p]), 0), seconds - 1))
        out[s] = max(out[s], v)
    return out
