"""The finishing chain (torch-free; no timeline and no file format inside): what turns the music the
engine's windows stitch into (plugin/finish/render.py) into the music a timeline plays. One list of stages,
run in order over the whole score by `cutscore score` and replayed over a piece of it (a regenerated
span, a conform's new seconds) with what the score recorded, so a take is finished as the score was:

1. hit_sync: the strongest onset near each cut and hit point moved onto it (plugin/finish/hitsync.py);
2. ending: the 10 ms rise at the start and the ending (plugin/finish/ending.py);
3. gain: to the loudness target, measured once over the whole score, then the recorded gain;
4. beats: the music's beats and downbeats as it plays (the whole score only; plugin/finish/beats.py);
5. ducking: the dip under the dialogue, baked into the music where the format has no gain
   keyframes (plugin/finish/ducking.py).

The sidecar (plugin/commands/state.py) records the chain's state (hit sync's targets and offsets, the ending,
the gain, the beats, the ducking); `Finishing.of` reads it back for a replay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict

from core.signal import loudness_gain_db
from plugin.finish.beats import BeatMarkers, Beats, track_beats
from plugin.finish.ducking import Ducking
from plugin.finish.ending import Ending
from plugin.finish.hitsync import HitOffset
from plugin.finish.render import apply_gain


class HitSync(BaseModel):
    """What hit sync did to the whole score (the sidecar's "hit_sync"): |offset| statistics before
    and after, and every target with its offsets."""

    model_config = ConfigDict(extra="allow")

    targets: int
    before: dict
    after: dict
    offsets: list[HitOffset]

    def targets_s(self) -> list[float]:
        return [o.target_s for o in self.offsets]


@dataclass
class Finishing:
    """The chain's settings and state. A score builds it with gain_db None (measured on the run) and
    `whole` set; a replay (Finishing.of a sidecar) applies what was recorded."""

    sample_rate: int
    hit_targets_s: list[float]  # timeline seconds; [] = hit sync off
    ending: Ending | None
    gain_db: float | None  # None: measured to loudness_lufs on the first run over the whole score
    loudness_lufs: float = -14.0
    ducking: Ducking | None = None
    whole: bool = False  # a run over the whole score: hit sync's report recorded, the beats tracked
    beat_markers: BeatMarkers = "downbeats"
    hit_sync: HitSync | None = None  # set by a run over the whole score
    beats: Beats | None = None  # set by a run with `track`
    stages: list[tuple[str, Callable]] = field(default_factory=lambda: list(STAGES))

    @classmethod
    def of(cls, state) -> Finishing:
        """The chain a scored timeline's sidecar recorded, to replay over a piece of its music."""
        return cls(sample_rate=state.sample_rate, hit_targets_s=state.hit_sync.targets_s() if state.hit_sync else [],
                   ending=state.ending, gain_db=state.gain_db, loudness_lufs=state.loudness_lufs,
                   ducking=state.ducking, hit_sync=state.hit_sync, beats=state.beats)

    def run(self, music: np.ndarray, start_sample: int = 0) -> np.ndarray:
        """(C, N) music that starts start_sample samples into the timeline, finished in place (float32
        music is written into and returned: a long piece is never copied whole)."""
        music = np.asarray(music, np.float32)
        for _name, stage in self.stages:
            music = stage(self, music, start_sample)
        return music


def _hit_sync(ch: Finishing, music: np.ndarray, start: int) -> np.ndarray:
    from plugin.finish import hitsync

    sr = ch.sample_rate
    targets = [t - start / sr for t in ch.hit_targets_s]
    targets = [t for t in targets if 0 < t < music.shape[1] / sr]
    if not targets:
        return music
    music, report = hitsync.sync_hits(music, sr, targets, inplace=True)
    if ch.whole:
        ch.hit_sync = HitSync(**hitsync.summary(report))
    return music


def _ending(ch: Finishing, music: np.ndarray, start: int) -> np.ndarray:
    return ch.ending.apply(music, start, ch.sample_rate, out=music) if ch.ending is not None else music


def _gain(ch: Finishing, music: np.ndarray, start: int) -> np.ndarray:
    if ch.gain_db is None:
        ch.gain_db = loudness_gain_db(music, ch.sample_rate, ch.loudness_lufs)  # the level outside the speech
    return apply_gain(music, ch.gain_db, out=music)


def _beats(ch: Finishing, music: np.ndarray, start: int) -> np.ndarray:
    if ch.whole:  # as it plays, before any ducking
        ch.beats = track_beats(music, ch.sample_rate, markers=ch.beat_markers)
    return music


def _ducking(ch: Finishing, music: np.ndarray, start: int) -> np.ndarray:
    # a format with gain keyframes ducks the full-level WAVs itself (the keys, kept as they were)
    if ch.ducking is not None and ch.ducking.baked:
        return ch.ducking.apply(music, start, ch.sample_rate, out=music)
    return music


STAGES: list[tuple[str, Callable]] = [("hit_sync", _hit_sync), ("ending", _ending), ("gain", _gain),
                                      ("beats", _beats), ("ducking", _ducking)]


def warm(sample_rate: int = 48000) -> None:
    """Run the chain once over two seconds of quiet noise, for an application to call off its UI
    thread while the editor looks: librosa's first beat tracking and onset detection import numba
    and load (or compile) their functions, holding Python's lock for a few hundred ms, which the
    first score's finishing would otherwise do while the panel waits to redraw."""
    noise = np.random.default_rng(0).standard_normal((2, 2 * sample_rate)).astype(np.float32) * 0.01
    Finishing(sample_rate, [1.0], None, 0.0, whole=True).run(noise)
