"""The music gets out of the way of speech (torch-free; a stage of the finishing chain, no timeline
or file format inside): the gain envelope made from the speech the engine finds in the timeline's
own sound (what is listened to: plugin/formats/dialogue.py; the speech: engine/features/speech.py).

- The envelope (`Ducking.plan`): for each speech region [a, b] the music falls by `depth_db` over
  `attack_s` before a (it is down when the first word starts: the edit is known in advance, so the
  duck looks ahead), stays down to b, and comes back over `release_s` after it. Regions closer
  than attack + release merge (no pumping between sentences). Between its keys the gain is a
  straight line in dB, which is also how Kdenlive's volume filter (MLT `level`, dB) interpolates.
- Where it lives: as the format's own gain keyframes on each music clip where the format has them
  (Kdenlive's volume effect, FCP7 XML's Audio Levels), the WAVs left at full level for the editor to
  change; elsewhere (OTIO, DaVinci Resolve, whose scripting API sets no volume keyframes) `baked`:
  in the WAVs, with the envelope in the music clips' metadata. The sidecar records it, so a
  regenerated take gets the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DUCK_DB = -12.0  # --duck auto
ATTACK_S = 0.15
RELEASE_S = 0.4


@dataclass(frozen=True)
class Ducking:
    depth_db: float
    attack_s: float
    release_s: float
    regions: list[tuple[float, float]]  # the speech found, timeline seconds
    keys: list[tuple[float, float]]  # (timeline seconds, dB), sorted; straight lines in dB between them
    baked: bool  # True: in the WAVs; False: as the format's keyframes, the WAVs at full level
    duration_s: float = 0.0

    @classmethod
    def plan(cls, regions: list[tuple[float, float]], duration_s: float, depth_db: float = DUCK_DB,
             attack_s: float = ATTACK_S, release_s: float = RELEASE_S, baked: bool = True) -> Ducking:
        merged: list[list[float]] = []
        for a, b in sorted(regions):
            if merged and a - attack_s <= merged[-1][1] + release_s:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        keys: list[tuple[float, float]] = []  # flat (0 dB) before the first and after the last
        for a, b in merged:
            keys += [(a - attack_s, 0.0), (a, depth_db), (b, depth_db), (b + release_s, 0.0)]
        times = sorted({0.0, duration_s, *(min(max(t, 0.0), duration_s) for t, _ in keys)})
        values = _interp(np.array(times), keys)
        return cls(depth_db, attack_s, release_s, [(float(a), float(b)) for a, b in regions],
                   [(round(t, 6), round(float(v), 4)) for t, v in zip(times, values)], baked, duration_s)

    def db_at(self, t: np.ndarray) -> np.ndarray:
        return _interp(np.asarray(t, np.float64), self.keys)

    def gains(self, start_sample: int, n: int, sr: int) -> np.ndarray:
        """The envelope (linear gain) over samples [start_sample, start_sample + n) of the timeline."""
        t = (start_sample + np.arange(n)) / sr
        return (10 ** (self.db_at(t) / 20)).astype(np.float32)

    def apply(self, audio: np.ndarray, start_sample: int, sr: int, out: np.ndarray | None = None,
              chunk: int = 1 << 20) -> np.ndarray:
        """audio ducked (a chunk of samples at a time: the envelope's float64 times are 8 bytes a
        sample); into `out` when given (`out=audio`: in place)."""
        out = np.empty(audio.shape, np.float32) if out is None else out
        for a in range(0, audio.shape[1], chunk):
            b = min(audio.shape[1], a + chunk)
            np.multiply(audio[:, a:b], self.gains(start_sample + a, b - a, sr)[None, :], out=out[:, a:b])
        return out

    def clip_keys(self, start_s: float, duration_s: float) -> list[tuple[float, float]]:
        """The envelope over one music clip: (seconds from the clip's start, dB), its edges included;
        [] when the clip is not ducked anywhere."""
        end = start_s + duration_s
        inside = [t for t, _ in self.keys if start_s < t < end]
        times = [start_s, *inside, end]
        values = self.db_at(np.array(times))
        if not np.any(values < 0):
            return []
        return [(round(t - start_s, 6), round(float(v), 4)) for t, v in zip(times, values)]

    def report(self) -> str:
        speech = sum(b - a for a, b in self.regions)
        where = "in the WAVs" if self.baked else "as gain keyframes on the music clips"
        return (f"ducking: {self.depth_db:g} dB under {len(self.regions)} speech regions ({speech:.1f} s), "
                f"{where}")


def _interp(t: np.ndarray, keys) -> np.ndarray:
    if not keys:
        return np.zeros_like(t, np.float64)
    kt = np.array([k[0] for k in keys], np.float64)
    kv = np.array([k[1] for k in keys], np.float64)
    return np.interp(t, kt, kv)
