"""Hit sync (torch-free): the model conditions per second, so a hit it places for a cut at 13.52 s
can land anywhere in second 13. After decoding, the strongest musical onset within +-250 ms of each
cut and hit point is moved onto its exact frame by a local time-warp of the audio:

- the onset envelope (librosa) finds the onsets and their strength; where none is near a target,
  nothing is warped;
- each warp is a time map [a, onset, b] -> [a, target, b] rendered by Rubber Band (pyrubberband's
  timemap_stretch: pitch unchanged) over a span reaching at most 0.6 s to either side and never
  past the midpoint to a neighbouring target; every sample outside [a, b] stays bit-identical, and
  the span's edges blend into the untouched audio over 5 ms;
- the offsets before and after go into the sidecar (cutscore.json "hit_sync").

Rubber Band's command line (Debian: rubberband-cli) must be installed; without it the music is
left as generated and the result says why.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass

import numpy as np

SEARCH_S = 0.25  # look for an onset this far either side of a target
SPAN_S = 0.6  # a warp reaches at most this far either side of its target
EDGE_S = 0.005  # blend into the untouched audio at the span's edges
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


def available() -> str | None:
    """None when hit sync can run here, else why not."""
    if shutil.which("rubberband") is None:
        return "hit sync skipped: Rubber Band is not installed (apt-get install rubberband-cli, brew install rubberband)"
    return None


def _envelope(mono: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    import librosa

    env = librosa.onset.onset_strength(y=mono, sr=sr, hop_length=HOP)
    peaks = librosa.util.peak_pick(env, pre_max=3, post_max=3, pre_avg=5, post_avg=5, delta=0.1 * float(env.max() or 1),
                                   wait=3)
    return env, peaks


def onset_floor(mono: np.ndarray, sr: int) -> float:
    """An onset must reach 5 % of the piece's strongest: a steady pad's flicker is no hit."""
    env, _ = _envelope(mono, sr)
    return 0.05 * float(env.max()) if env.size else 0.0


def strongest_onset(mono: np.ndarray, sr: int, target_s: float, floor: float = 0.0) -> float | None:
    """The time of the strongest onset within +-SEARCH_S of target_s (above `floor`), or None."""
    lo = max(0, int((target_s - SEARCH_S - 0.2) * sr))
    hi = min(len(mono), int((target_s + SEARCH_S + 0.2) * sr))
    if hi - lo < 4 * HOP:
        return None
    env, peaks = _envelope(mono[lo:hi], sr)
    best, best_v = None, floor
    for p in peaks:
        t = lo / sr + p * HOP / sr
        if abs(t - target_s) <= SEARCH_S and env[p] > best_v:
            best, best_v = t, float(env[p])
    return best


def _warp_span(seg: np.ndarray, sr: int, src: int, dst: int) -> np.ndarray:
    """seg (C, N) with its sample `src` moved to `dst`, length unchanged, pitch unchanged."""
    import pyrubberband

    n = seg.shape[1]
    out = pyrubberband.timemap_stretch(seg.T.astype(np.float32), sr, [(0, 0), (src, dst), (n, n)])
    out = np.asarray(out, np.float32).reshape(-1, seg.shape[0]).T if seg.shape[0] > 1 else \
        np.asarray(out, np.float32).reshape(1, -1)
    if out.shape[1] < n:
        out = np.pad(out, ((0, 0), (0, n - out.shape[1])))
    out = out[:, :n]
    k = min(int(EDGE_S * sr), n // 4)
    if k > 0:
        ramp = np.linspace(0.0, 1.0, k, dtype=np.float32)
        out[:, :k] = seg[:, :k] * (1 - ramp) + out[:, :k] * ramp
        out[:, -k:] = seg[:, -k:] * ramp + out[:, -k:] * (1 - ramp)
    return out


def sync_hits(music: np.ndarray, sr: int, targets_s: list[float]) -> tuple[np.ndarray, list[HitOffset]]:
    """music (C, N) with the strongest onset near each target moved onto it; the offsets."""
    music = np.array(music, np.float32, copy=True)
    targets = sorted(t for t in targets_s if 0 < t < music.shape[1] / sr)
    report = []
    floor = onset_floor(music.mean(0), sr) if targets else 0.0
    for i, t in enumerate(targets):
        mono = music.mean(0)
        onset = strongest_onset(mono, sr, t, floor)
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
            music[:, ia:ib] = _warp_span(music[:, ia:ib], sr, int(round(after * sr)) - ia, int(round(t * sr)) - ia)
            after = strongest_onset(music.mean(0), sr, t, floor)
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
