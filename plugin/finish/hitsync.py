"""Hit sync (torch-free): the model conditions per second, so a hit it places for a cut at 13.52 s
can land anywhere in second 13. After decoding, the strongest musical onset within +-250 ms of each
cut and hit point is moved onto its exact frame by a slip edit, as an editor slips a hit by hand:

- the onset envelope (librosa) finds the onsets and their strength; where none is near a target,
  nothing is moved;
- inside a span reaching at most 0.6 s to either side of the target (never past the midpoint to a
  neighbouring target), the audio from a splice point 40 ms before the onset (or target) to a
  splice point at the span's end is played later or earlier by the offset: a stretch of the sound
  before the hit is repeated (the hit comes later) or skipped (earlier). The delay is fine-tuned within
  +-5 ms to the lag at which the audio matches itself best at both splices, and each splice is a
  10 ms crossfade between two copies of the same music in phase: the pitch cannot change and the
  splices cut no notch (a phase vocoder's span, blended back into untouched audio, is out of phase
  with it at the span's edges: the Rubber Band warps used before cut notches 30-44 dB deep there);
- every sample outside the span stays bit-identical; the offsets before and after go into the
  sidecar (cutscore.json "hit_sync").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from plugin.finish.onsets import mono_of, onset_strength

SEARCH_S = 0.25  # look for an onset this far either side of a target
SPAN_S = 0.6  # a warp reaches at most this far either side of its target
FADE_S = 0.010  # each splice's crossfade
TUNE_S = 0.005  # the delay is tuned this far either side of the offset, for the best match at the splices
LEAD_S = 0.04  # the first splice sits this far before the earlier of onset and target
MIN_SHIFT_S = 0.001  # closer than this is already on the frame
MARGIN_S = 0.03  # the onset and target keep at least this much audio inside the span
HOP = 256
PASSES = 3  # warps per target at most


@dataclass
class HitOffset:
    target_s: float
    before_ms: float | None  # strongest onset within +-250 ms minus the target, None when none
    after_ms: float | None  # the same after the warp (measured again)
    warped: bool


def _envelope(mono: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    import librosa

    env = librosa.onset.onset_strength(y=mono, sr=sr, hop_length=HOP)
    peaks = librosa.util.peak_pick(env, pre_max=3, post_max=3, pre_avg=5, post_avg=5, delta=0.1 * float(env.max() or 1),
                                   wait=3)
    return env, peaks


def onset_floor(mono: np.ndarray, sr: int) -> float:
    """An onset must reach 5 % of the piece's strongest: a steady pad's flicker is no hit (the
    piece's onset strength a chunk at a time, plugin/finish/onsets.py: memory flat in its length)."""
    env = onset_strength(mono, sr, HOP)
    return 0.05 * float(env.max()) if env.size else 0.0


def strongest_onset(y: np.ndarray, sr: int, target_s: float, floor: float = 0.0) -> float | None:
    """The time of the strongest onset within +-SEARCH_S of target_s (above `floor`), or None. `y`
    is the mono mix, or (C, N) music whose mix is taken only around the target."""
    lo = max(0, int((target_s - SEARCH_S - 0.2) * sr))
    hi = min(y.shape[-1], int((target_s + SEARCH_S + 0.2) * sr))
    if hi - lo < 4 * HOP:
        return None
    env, peaks = _envelope(mono_of(y[..., lo:hi]), sr)
    best, best_v = None, floor
    for p in peaks:
        t = lo / sr + p * HOP / sr
        if abs(t - target_s) <= SEARCH_S and env[p] > best_v:
            best, best_v = t, float(env[p])
    return best


def _match(music: np.ndarray, p: int, lags: np.ndarray, w: int) -> np.ndarray:
    """Normalised correlation, for each lag, of music[p-w:p+w] with music[p-w-lag:p+w-lag] (channels summed)."""
    ref = music[:, p - w:p + w]
    out = np.empty(len(lags))
    for i, lag in enumerate(lags):
        other = music[:, p - w - lag:p + w - lag]
        den = float(np.sqrt((ref * ref).sum() * (other * other).sum()))
        out[i] = float((ref * other).sum()) / den if den > 0 else 0.0
    return out


def _slip_span(music: np.ndarray, sr: int, ia: int, ib: int, src: int, dst: int) -> np.ndarray | None:
    """The span music[:, ia:ib] with the sample `src` played at about `dst` (within TUNE_S): the audio
    between two splice points inside the span delayed by the lag that matches best at both (the sound
    before the hit repeated or skipped may come from before the span: only the span is written).
    None when the span has no room for the splices."""
    n_all = music.shape[1]
    f, tune, d = max(2, int(FADE_S * sr) // 2 * 2), int(TUNE_S * sr), dst - src
    half = f // 2
    lags = np.arange(d - tune, d + tune + 1)
    lags = lags[lags != 0]
    first = min(src, dst)
    p1 = max(ia + half, first - int(LEAD_S * sr))  # before the hit: repeat or skip the sound that precedes it
    p2 = ib - half  # at the span's end: back onto the untouched audio
    if (p1 + half > first or p1 - half - int(lags.max()) < 0 or p2 - max(src, dst) < f
            or p2 + half - int(lags.min()) > n_all):
        return None
    lag = int(lags[int(np.argmax(_match(music, p1, lags, half) + _match(music, p2, lags, half)))])
    out = music[:, ia:ib].copy()
    out[:, p1 - half - ia:p2 + half - ia] = music[:, p1 - half - lag:p2 + half - lag]
    ramp = (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, f))).astype(np.float32)
    i1, i2 = slice(p1 - half - ia, p1 + half - ia), slice(p2 - half - ia, p2 + half - ia)
    out[:, i1] = music[:, p1 - half:p1 + half] * (1 - ramp) + out[:, i1] * ramp
    out[:, i2] = out[:, i2] * (1 - ramp) + music[:, p2 - half:p2 + half] * ramp
    return out


def sync_hits(music: np.ndarray, sr: int, targets_s: list[float],
              inplace: bool = False) -> tuple[np.ndarray, list[HitOffset]]:
    """music (C, N) with the strongest onset near each target moved onto it; the offsets. `inplace`:
    the warps are written into `music` itself (the finishing chain: no copy of a long piece)."""
    music = np.asarray(music, np.float32) if inplace else np.array(music, np.float32, copy=True)
    targets = sorted(t for t in targets_s if 0 < t < music.shape[1] / sr)
    report = []
    floor = onset_floor(mono_of(music), sr) if targets else 0.0
    for i, t in enumerate(targets):
        onset = strongest_onset(music, sr, t, floor)
        if onset is None:
            report.append(HitOffset(t, None, None, False))
            continue
        before = float((onset - t) * 1000)
        if abs(onset - t) < MIN_SHIFT_S:
            report.append(HitOffset(t, before, before, False))
            continue
        left = (t + targets[i - 1]) / 2 if i > 0 else 0.0
        right = (t + targets[i + 1]) / 2 if i + 1 < len(targets) else music.shape[1] / sr
        a, b = max(t - SPAN_S, left), min(t + SPAN_S, right)
        if min(onset, t) - a < MARGIN_S or b - max(onset, t) < MARGIN_S:
            report.append(HitOffset(t, before, before, False))  # too close to a neighbour to warp safely
            continue
        ia, ib = int(round(a * sr)), int(round(b * sr))
        best_seg, best = music[:, ia:ib].copy(), onset
        after = onset
        for _ in range(PASSES):  # the detector sees a warped attack a little differently: refine,
            if after is None or abs(after - t) < MIN_SHIFT_S or not a + MARGIN_S < after < b - MARGIN_S:
                break  # keeping the pass that came closest
            moved = _slip_span(music, sr, ia, ib, int(round(after * sr)), int(round(t * sr)))
            if moved is None:
                break
            music[:, ia:ib] = moved
            after = strongest_onset(music, sr, t, floor)
            if after is not None and abs(after - t) < abs(best - t):
                best_seg, best = music[:, ia:ib].copy(), after
        music[:, ia:ib] = best_seg
        report.append(HitOffset(t, before, float((best - t) * 1000), bool(best != onset)))
    return music, report


def summary(report: list[HitOffset]) -> dict:
    """Median / 95th percentile |offset| and the share within 250 ms, before and after."""
    def stats(key):
        vals = [abs(getattr(r, key)) for r in report if getattr(r, key) is not None]
        n = len(report) or 1
        return {"median_ms": float(np.median(vals)) if vals else None,
                "p95_ms": float(np.percentile(vals, 95)) if vals else None,
                "within_250ms": len(vals) / n}
    return {"targets": len(report), "before": stats("before_ms"), "after": stats("after_ms"),
            "offsets": [asdict(r) for r in report]}
