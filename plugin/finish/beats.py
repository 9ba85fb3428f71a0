"""The music's beats handed back to the editor (torch-free): librosa's beat tracker on the finished
score (after hit sync, ending, loudness and ducking, as it plays), downbeats picked from the beats
by the bar phase (4/4) whose beats carry the most low-frequency onset energy, and the markers each
format writes from them (plugin/formats/writeback.py, plugin/formats/kdenlive/writer.py, plugin/resolve.py).

Every marker cutscore writes says it is cutscore's (OTIO: metadata["cutscore"]["beat"]; FCP7 XML and
Kdenlive: the name/comment "cutscore beat" or "cutscore downbeat", Kdenlive also its own marker
category; Resolve: customData "cutscore-beat"), so a later score or regenerate replaces only those.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict

from plugin.finish.onsets import mono_of, onset_strength, tempo

BEATS_PER_BAR = 4


def _from_bool(v):  # sidecars and options before downbeats: True (every beat) or False
    return {True: "all", False: "off"}[v] if isinstance(v, bool) else v


# which beats are written as markers (`--beat-markers`): every beat is one marker every half second or
# so (305 on a two-minute Kdenlive project), more than an editor reads; the downbeats by default
_Which = Literal["downbeats", "all", "off"]
BeatMarkers = Annotated[_Which, BeforeValidator(_from_bool)]
BEAT_MARKERS: tuple[str, ...] = get_args(_Which)


class Beats(BaseModel):
    """Beat times of the whole score (seconds from the timeline's start) and which are downbeats."""

    model_config = ConfigDict(extra="forbid")

    times_s: list[float]
    downbeat: list[bool]
    tempo_bpm: float
    markers: BeatMarkers = "downbeats"  # which are written as markers (`--beat-markers`)

    def within(self, start_s: float, duration_s: float, rate: float) -> list[tuple[float, str]]:
        """(seconds from start_s, "beat" | "downbeat") of the beats whose nearest frame at the
        timeline's rate lies in [start_s, start_s + duration_s): a beat in the last half frame before
        a cut is marked on the next clip's first frame (never clamped onto this clip's last frame, a
        frame early)."""
        a, b = round(start_s * rate), round((start_s + duration_s) * rate)
        return [(max(t - start_s, 0.0), "downbeat" if d else "beat") for t, d in zip(self.times_s, self.downbeat)
                if a <= round(t * rate) < b]

    def in_range(self, rng) -> list[tuple[float, str]]:
        """within() a clip's TimeRange on the timeline, at its frame rate."""
        return self.within(rng.start_time.to_seconds(), rng.duration.to_seconds(), rng.start_time.rate)

    def marked(self, rng) -> list[tuple[float, str]]:
        """in_range() of the beats written as markers (`markers`)."""
        if self.markers == "off":
            return []
        return [b for b in self.in_range(rng) if self.markers == "all" or b[1] == "downbeat"]

    def replaced(self, start_s: float, end_s: float, new: Beats) -> Beats:
        """These beats with [start_s, end_s) taken from `new` (a regenerated clip's)."""
        keep = [(t, d) for t, d in zip(self.times_s, self.downbeat) if not start_s <= t < end_s]
        add = [(t, d) for t, d in zip(new.times_s, new.downbeat) if start_s <= t < end_s]
        both = sorted(keep + add)
        return self.model_copy(update={"times_s": [t for t, _ in both], "downbeat": [d for _, d in both]})


def track_beats(music: np.ndarray, sr: int, markers: BeatMarkers = "downbeats") -> Beats:
    """Beats and downbeats of (channels, samples) music."""
    import librosa

    y = mono_of(np.asarray(music, np.float32))
    hop = 512
    env = onset_strength(y, sr, hop)  # librosa's, a chunk at a time (plugin/finish/onsets.py)
    bpm = tempo(env, sr, hop)  # librosa's estimate, its tempogram a chunk at a time
    tempo_bpm, frames = librosa.beat.beat_track(onset_envelope=env, sr=sr, hop_length=hop, trim=False, bpm=bpm)
    frames = np.asarray(frames, int)
    times = librosa.frames_to_time(frames, sr=sr, hop_length=hop)
    down = _downbeats(y, sr, hop, frames)
    return Beats(times_s=[round(float(t), 6) for t in times], downbeat=down,
                 tempo_bpm=round(float(np.atleast_1d(tempo_bpm)[0]), 2), markers=markers)


def _downbeats(y: np.ndarray, sr: int, hop: int, frames: np.ndarray) -> list[bool]:
    """The bar phase whose beats have the strongest low-band (< 200 Hz) onsets: bars of four beats."""

    if len(frames) < BEATS_PER_BAR:
        return [i == 0 for i in range(len(frames))]
    low = onset_strength(y, sr, hop, n_mels=64, fmax=min(8000, sr / 2), below_hz=200, offset=1e-10)
    at = low[np.clip(frames, 0, len(low) - 1)]
    phase = int(np.argmax([at[p::BEATS_PER_BAR].mean() for p in range(BEATS_PER_BAR)]))
    return [(i - phase) % BEATS_PER_BAR == 0 for i in range(len(frames))]
