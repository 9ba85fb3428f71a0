"""From the engine's windows to continuous music, and the WAV files (torch-free; the first stage of
the finishing chain, plugin/finish/__init__.py runs the rest):

1. stitch: place each window at its start time; equal-power crossfade (cos/sin) across each
   window's overlap with the previous one;
2. resample to the project rate (48 kHz by default, soxr HQ);
3. cut to the timeline's exact length in samples (computed from RationalTime with exact fractions);
then the gain, the 24-bit WAVs (score.py cuts one per picture item at sample-exact boundaries, so
playback across segments is seamless) and splicing a new span into a take with blended edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from opentimelineio.opentime import RationalTime

from core.files import atomic_write


def exact_rate(rate: float) -> Fraction:
    return Fraction(rate).limit_denominator(1001)


def to_samples(t: RationalTime, sample_rate: int) -> int:
    """A timeline time -> the sample index at sample_rate, exact for NTSC rates (30000/1001 etc.)."""
    return round(Fraction(t.value).limit_denominator(10**6) / exact_rate(t.rate) * sample_rate)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return y.T, sr  # (channels, samples)


def write_wav(path: str | Path, audio: np.ndarray, sr: int, subtype: str = "PCM_24") -> None:
    """Atomic: written to a temp file in the same folder, then renamed."""
    import soundfile as sf

    atomic_write(path, lambda tmp: sf.write(str(tmp), np.ascontiguousarray(audio.T), sr, subtype=subtype,
                                            format="WAV"))


@dataclass
class StitchWindow:
    start_s: float
    duration_s: float
    overlap_s: float
    audio: np.ndarray | Path  # (channels, samples) at the model rate, or its WAV (read when it is stitched)


def stitch(windows: list[StitchWindow], total_s: float, sr: int) -> np.ndarray:
    """Equal-power crossfades: over an overlap of L samples the outgoing window is weighted by
    cos and the incoming by sin of the same ramp, so the power of uncorrelated music stays flat.
    Windows given as WAVs are read one at a time: only the music and one window are in memory."""
    n = int(round(total_s * sr))
    out = None
    for i, w in enumerate(windows):
        a = w.audio if isinstance(w.audio, np.ndarray) else read_wav(w.audio)[0]
        a = a.astype(np.float32, copy=False)
        if out is None:
            out = np.zeros((a.shape[0], n), np.float32)
        start = int(round(w.start_s * sr))
        gain = np.ones(a.shape[1], np.float32)
        fade_in = int(round(w.overlap_s * sr)) if i > 0 else 0
        if fade_in:
            ramp = np.linspace(0, np.pi / 2, fade_in, endpoint=False, dtype=np.float64)
            gain[:fade_in] = np.sin(ramp)
        if i + 1 < len(windows):
            fade_out = int(round(windows[i + 1].overlap_s * sr))
            if fade_out:
                ramp = np.linspace(0, np.pi / 2, fade_out, endpoint=False, dtype=np.float64)
                gain[-fade_out:] = np.cos(ramp)
        end = min(start + a.shape[1], n)
        out[:, start:end] += a[:, : end - start] * gain[: end - start]
    return out


def resample(audio: np.ndarray, sr_in: int, sr_out: int, chunk: int = 1 << 18) -> np.ndarray:
    """soxr HQ (what librosa uses underneath, without librosa's heavy import), streamed a chunk at a
    time into the answer: the same samples as one call over the whole (soxr's stream is exact), with
    no whole-length copies besides the answer."""
    if sr_in == sr_out:
        return audio
    import soxr

    channels, n = audio.shape
    stream = soxr.ResampleStream(sr_in, sr_out, channels, dtype="float32", quality="HQ")
    out = np.empty((channels, int(np.ceil(n * sr_out / sr_in)) + 64), np.float32)
    at = 0
    for a in range(0, max(n, 1), chunk):
        part = stream.resample_chunk(np.ascontiguousarray(audio[:, a:a + chunk].T, dtype=np.float32),
                                     last=a + chunk >= n)
        if at + len(part) > out.shape[1]:  # never expected: grow rather than lose samples
            out = np.concatenate([out, np.empty((channels, at + len(part) - out.shape[1]), np.float32)], axis=1)
        out[:, at:at + len(part)] = part.T
        at += len(part)
    return out[:, :at]


def fit_length(audio: np.ndarray, n: int) -> np.ndarray:
    if audio.shape[1] >= n:
        return audio[:, :n]
    return np.pad(audio, ((0, 0), (0, n - audio.shape[1])))


def render_music(windows: list[StitchWindow], model_sr: int, total: RationalTime, sr: int) -> np.ndarray:
    """Steps 1-3: the continuous music at `sr`, exactly the timeline's length (before loudness)."""
    music = stitch(windows, total.to_seconds() + 0.05, model_sr)
    music = resample(music, model_sr, sr)
    return fit_length(music, to_samples(total, sr))


def apply_gain(audio: np.ndarray, gain_db: float, out: np.ndarray | None = None) -> np.ndarray:
    """audio at gain_db (into `out` when given: `out=audio` changes it in place)."""
    g = np.float32(10 ** (gain_db / 20))
    if out is None:
        return (audio * g).astype(np.float32)
    return np.multiply(audio, g, out=out)


def splice(old: np.ndarray, span_audio: np.ndarray, span_offset: int, region: tuple[int, int], n: int) -> np.ndarray:
    """The clip's audio: the old take outside `region` (samples from the clip's start), the new
    span's audio inside it (span_audio starts span_offset samples after the clip's start), blended
    over n samples at the region's edges so it starts and ends on the old audio."""
    a, b = max(region[0], 0), min(region[1], old.shape[1])
    new = old.copy()
    src = span_audio[:, a - span_offset:b - span_offset]
    new[:, a:a + src.shape[1]] = src
    new[:, a:b] = blend_edges(old[:, a:b], new[:, a:b], n)
    return new


def blend_edges(old: np.ndarray, new: np.ndarray, n: int) -> np.ndarray:
    """Start and end exactly on the old audio (continuous with the untouched neighbours), fading
    into the new audio over n samples at each edge (crossfade())."""
    n = min(n, new.shape[1] // 2)
    if n <= 0 or old.shape != new.shape:
        return new
    out = new.copy()
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n, dtype=np.float64))  # 0 -> 1
    out[:, :n] = crossfade(old[:, :n], new[:, :n], ramp)
    out[:, -n:] = crossfade(old[:, -n:], new[:, -n:], 1 - ramp)  # ends exactly on the old audio
    return out.astype(np.float32)


CORR_N = 480  # the local energies a crossfade compensates are measured over this many samples (10 ms at 48 kHz)
MAX_FADE_GAIN = 2.0  # the compensation never lifts a fade by more than 6 dB


def crossfade(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """a fading into b (w: b's weight per sample, 0..1), the mix's local power held at what the
    weights give the two signals' powers: a plain fade of two takes of related music dips where
    they are out of phase (a partly anti-correlated pair cancels) and a fade of unrelated music
    sags by 3 dB in its middle; identical signals fade as they are (the gain is 1)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    k = CORR_N

    def local(x: np.ndarray) -> np.ndarray:
        c = np.concatenate([[0.0], np.cumsum(x.sum(0))])
        i = np.arange(x.shape[1])
        lo, hi = np.clip(i - k // 2, 0, x.shape[1]), np.clip(i + k // 2 + 1, 0, x.shape[1])
        return (c[hi] - c[lo]) / (hi - lo)

    ea, eb, eab = local(a64 ** 2), local(b64 ** 2), local(a64 * b64)
    wa, wb = 1 - w, w
    target = wa * ea + wb * eb
    actual = wa ** 2 * ea + wb ** 2 * eb + 2 * wa * wb * eab
    gain = np.sqrt(np.clip(target, 0, None) / np.maximum(actual, 1e-12 + 1e-6 * target))
    gain = np.clip(np.where(target > 1e-12, gain, 1.0), 1 / MAX_FADE_GAIN, MAX_FADE_GAIN)
    return (a64 * wa + b64 * wb) * gain
