"""The panel's state, Qt-free: what is open, the settings, the per-second lanes, the
music, the job's progress. Widgets read it and render; the window's workers write it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.api import SAMPLER_NAMES
from core.model_config import model_sampling
from plugin.ducking import Ducking
from plugin.plan import Plan, make_plan
from plugin.score import ScoreOptions, default_model
from plugin.state import Sidecar
from plugin.timeline import read_timeline

OUTPUT_FORMATS = (".otio", ".kdenlive", ".xml")
SAMPLERS = tuple(sorted(SAMPLER_NAMES, key=lambda s: s != "dpmpp-2m"))  # the few-step sampler first


def weights_missing(model: str | None) -> bool:
    """Whether `model` is one cutscore fetches and its converted weights are not on this machine."""
    from core.paths import FETCHED_MODELS, installed_model

    return model in FETCHED_MODELS and installed_model(model) is None


class Settings(ScoreOptions):
    """The panel's settings: a score's options (plugin/score.py ScoreOptions, whose generation
    settings are core/api.py's, declared once) and the output format. sampler, steps and guidance
    None are the model's own, which the panel shows (model_sampling)."""

    output_format: str = ".otio"

    def new_seed(self) -> int:
        self.seed = random.randrange(0, 2**31 - 1)
        return self.seed

    def sampling(self) -> dict:
        """The sampler, steps and guidance the next Generate uses: these settings' where set, the
        model's own elsewhere."""
        own = model_sampling(self.model or default_model()[0])
        return {k: own[k] if getattr(self, k) is None else getattr(self, k) for k in own}


@dataclass
class PanelState:
    settings: Settings = field(default_factory=Settings)
    path: Path | None = None
    plan: Plan | None = None
    beats: np.ndarray | None = None  # per second of the timeline
    onsets: np.ndarray | None = None  # per second of the timeline
    rhythm: np.ndarray | None = None  # predicted, per second (after generation)
    music: np.ndarray | None = None  # (channels, samples) the continuous music, as the timeline plays it
    ducking: Ducking | None = None  # the music's gain under the dialogue (the sidecar's), None: not ducked
    music_rate: int = 48000
    scored_path: Path | None = None
    selected_clip: int | None = None
    stage: str = ""
    progress: float = 0.0
    message: str = ""
    error: str = ""
    error_details: str = ""
    busy: bool = False
    recent: list[str] = field(default_factory=list)
    user_hits: list[float] = field(default_factory=list)  # hit points placed in the panel, seconds
    selected_hit: int | None = None  # index into user_hits
    takes: dict[int, dict] = field(default_factory=dict)  # clip index -> {"name", "takes", "current"} (sidecar)
    started_at: float = 0.0  # when the running job started (monotonic), for the time left

    def open(self, path: str | Path, rate: float | None = None) -> Plan:
        """Read a timeline (raises CutscoreError with a one-line message on bad input)."""
        tl = read_timeline(path, rate=rate or (24.0 if str(path).lower().endswith(".edl") else None))
        self.path, self.plan = Path(path), make_plan(tl)
        self.beats = self.rhythm = self.music = self.ducking = None
        self.scored_path, self.selected_clip, self.error, self.error_details = None, None, "", ""
        self.user_hits, self.selected_hit, self.takes = [], None, {}
        self.onsets = self._onsets()
        self._reopen_scored()
        p = str(Path(path).resolve())
        self.recent = [p] + [r for r in self.recent if r != p][:9]
        return self.plan

    def _onsets(self) -> np.ndarray:
        from core.signal import onsets_from_cuts

        tl = self.plan.timeline
        return onsets_from_cuts([c.to_seconds() for c in tl.cuts], 0.0, tl.duration.to_seconds())

    def _reopen_scored(self) -> None:
        """A timeline cutscore scored (its sidecar found from the music's WAVs) opens with its music,
        takes and the hit points placed in the panel before."""
        from core.errors import CutscoreError
        from plugin.state import load_state

        try:
            loaded = load_state(self.path)
        except (CutscoreError, OSError, KeyError, ValueError):
            return
        self.scored_path = self.path
        self.load_music(loaded)
        saved = loaded[1]
        marks = {round(h.to_seconds(), 3) for h in self.plan.timeline.hits}
        self.user_hits = sorted(h for h in saved.request.hits_s if round(h, 3) not in marks)

    def load_music(self, loaded: tuple[Path, Sidecar] | None = None) -> None:
        """The scored music, its predicted rhythm and the clips' takes, from the sidecar (read once)."""
        from plugin.state import load_state, music_of, takes_of

        loaded = loaded or load_state(self.scored_path)
        self.music, self.music_rate, rhythm = music_of(self.scored_path, loaded)
        self.ducking = loaded[1].ducking
        if self.ducking is not None and not self.ducking.baked:  # the format's keyframes duck it when played
            self.music = self.ducking.apply(self.music, 0, self.music_rate)
        self.rhythm = np.asarray(rhythm, np.float32)
        self.takes = takes_of(self.scored_path, loaded)

    # -- hit points placed in the panel (the timeline's own markers are read-only here) ----------
    def add_hit(self, t: float) -> int:
        t = round(min(max(t, 0.0), self.duration_s), 3)
        if t not in self.user_hits:
            self.user_hits.append(t)
            self.user_hits.sort()
        self.selected_hit = self.user_hits.index(t)
        return self.selected_hit

    def move_hit(self, i: int, t: float) -> None:
        self.user_hits[i] = round(min(max(t, 0.0), self.duration_s), 3)
        moved = self.user_hits[i]
        self.user_hits.sort()
        self.selected_hit = self.user_hits.index(moved)

    def remove_hit(self, i: int | None = None) -> bool:
        i = self.selected_hit if i is None else i
        if i is None or not 0 <= i < len(self.user_hits):
            return False
        del self.user_hits[i]
        self.selected_hit = None
        return True

    def time_left_s(self, now: float) -> float | None:
        if not self.busy or self.progress <= 0.02 or not self.started_at:
            return None
        return (now - self.started_at) * (1 - self.progress) / self.progress

    @property
    def duration_s(self) -> float:
        return self.plan.timeline.duration.to_seconds() if self.plan else 0.0

    @property
    def clips(self):
        return self.plan.timeline.clips if self.plan else []

    def clip_at(self, t: float):
        return next((c for c in self.clips if c.range.start_time.to_seconds() <= t < c.range.end_time_exclusive().to_seconds()),
                    None)

    def scored_default_path(self) -> Path:
        assert self.path is not None
        fmt = self.settings.output_format
        if fmt == ".kdenlive" and self.path.suffix.lower() != ".kdenlive":
            fmt = ".otio"
        return self.path.with_name(f"{self.path.stem}-scored{fmt}")
