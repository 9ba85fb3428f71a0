"""How the music starts and ends with the picture (torch-free): a gain envelope over the timeline.

- The start: a 10 ms raised-cosine rise from silence, so the first sample is 0 and nothing clicks.
- `ring` (the default): the music decays to silence by the last frame as an exponential decay (a
  straight line in dB, as a room's reverb falls), from the edit's final cut when it lies in the last
  seconds (the cut is a hit point: the music lands on it, then rings out), else over the last RING_S
  seconds; it reaches ENDING_FLOOR_DB at the start of the last frame, which stays below it. With a
  tail (`score --tail S`) the same ring runs on S seconds past the picture's last frame, on music
  generated that far, and reaches the floor at the tail's last frame instead.
- `fade`: a raised-cosine fade over the last FADE_S seconds, silent from the last frame on.
- `cut`: the music as generated, stopped at the last frame (what an editor gets by trimming).

The envelope is a function of timeline time, so a regenerated take under the last clip gets the
same ending (plugin/commands/regenerate.py applies it to the new span only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

EndingKind = Literal["ring", "fade", "cut"]  # how the music ends (`--ending`), named once
ENDINGS: tuple[str, ...] = get_args(EndingKind)
START_S = 0.010  # the rise from silence at the first frame
RING_S = 3.0  # a ring that does not start at the final cut lasts this long
RING_MAX_S = 5.0  # the final cut starts the ring when it lies within this many seconds of the end...
RING_MIN_S = 1.5  # ...and at least this many (a shorter ring would fall faster than music does)
FADE_S = 2.0
ENDING_FLOOR_DB = -60.0


@dataclass(frozen=True)
class Ending:
    kind: str  # ring, fade or cut
    start_s: float  # where the decay or fade begins (timeline seconds); the end for `cut`
    end_s: float  # the music's end: the timeline's, or its tail's
    frame_s: float  # one frame: the decay reaches the floor one frame before the end

    @classmethod
    def plan(cls, kind: str, duration_s: float, frame_s: float, cuts_s: list[float], tail_s: float = 0.0) -> Ending:
        """duration_s: the picture's; tail_s: how far past it a ring may run (only a ring has one)."""
        if kind not in ENDINGS:
            raise ValueError(f"{kind!r}: not an ending; choose one of {', '.join(ENDINGS)}")
        if tail_s and kind != "ring":
            raise ValueError(f"a tail lets a ring run past the last frame; {kind!r} ends on it (use --ending ring)")
        silent_from = duration_s - frame_s
        if kind == "cut":
            return cls(kind, duration_s, duration_s, frame_s)
        if kind == "fade":
            return cls(kind, max(0.0, silent_from - FADE_S), duration_s, frame_s)
        final = [c for c in cuts_s if RING_MIN_S <= silent_from - c <= RING_MAX_S]
        start = final[-1] if final else max(0.0, silent_from - RING_S)
        return cls(kind, start, duration_s + tail_s, frame_s)

    def gains(self, start_sample: int, n: int, sr: int) -> np.ndarray:
        """The envelope over samples [start_sample, start_sample + n) of the timeline."""
        t = (start_sample + np.arange(n)) / sr
        g = np.ones(n, np.float64)
        rise = t < START_S
        g[rise] = 0.5 - 0.5 * np.cos(np.pi * t[rise] / START_S)
        if self.kind == "cut":
            return g.astype(np.float32)
        silent_from = self.end_s - self.frame_s
        span = max(silent_from - self.start_s, 1e-3)
        inside = (t >= self.start_s) & (t < silent_from)
        x = (t[inside] - self.start_s) / span  # 0 -> 1 across the decay
        if self.kind == "fade":
            g[inside] *= 0.5 + 0.5 * np.cos(np.pi * x)
        else:  # ring: a straight line in dB down to the floor
            g[inside] *= 10 ** (ENDING_FLOOR_DB / 20 * x)
        g[t >= silent_from] = 0.0
        return g.astype(np.float32)

    def apply(self, audio: np.ndarray, start_sample: int, sr: int, chunk: int = 1 << 20,
              out: np.ndarray | None = None) -> np.ndarray:
        """audio (channels, samples) starting at `start_sample` of the timeline, shaped (a chunk of
        samples at a time: the envelope's float64 times are 8 bytes a sample of the whole piece);
        into `out` when given (`out=audio`: in place)."""
        out = np.empty(audio.shape, np.float32) if out is None else out
        for a in range(0, audio.shape[1], chunk):
            b = min(audio.shape[1], a + chunk)
            out[:, a:b] = audio[:, a:b] * self.gains(start_sample + a, b - a, sr)[None, :]
        return out


def ending_report(audio: np.ndarray, sr: int, frame_s: float, hop_s: float = 0.05) -> dict:
    """What a listener measures: the last frame's peak (dBFS), the start's first 10 ms peak, and the
    largest step in short-term level (dB between 50 ms frames, where either is above the floor) in
    the last second against the largest anywhere before it (the music's own)."""
    mono = np.abs(audio).max(axis=0) if audio.ndim == 2 else np.abs(audio)
    last = mono[-max(1, int(round(frame_s * sr))):]
    hop = max(1, int(hop_s * sr))
    frames = len(mono) // hop
    rms = np.sqrt(np.mean(np.square(audio[:, :frames * hop].reshape(audio.shape[0], frames, hop)), axis=(0, 2)))
    level = 20 * np.log10(np.maximum(rms, 1e-5))  # -100 dBFS floor
    audible = np.maximum(level[1:], level[:-1]) > ENDING_FLOOR_DB  # a step below the floor is not heard
    steps = np.where(audible, np.abs(np.diff(level)), 0.0)
    tail = int(round(1.0 / hop_s))
    own = steps[:-tail] if len(steps) > tail else steps
    return {"last_frame_peak_dbfs": float(20 * np.log10(max(float(last.max()), 1e-10))),
            "first_10ms_peak_dbfs": float(20 * np.log10(max(float(mono[: int(0.01 * sr)].max()), 1e-10))),
            "last_second_max_step_db": float(steps[-tail:].max()) if len(steps) else 0.0,
            "own_max_step_db": float(own.max()) if len(own) else 0.0}
