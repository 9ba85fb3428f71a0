"""The panel's state, Qt-free (STYLE.md 14): what is open, the settings, the per-second lanes, the
music, the job's progress. Widgets read it and render; the window's workers write it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from plugin.plan import Plan, make_plan
from plugin.timeline import read_timeline

OUTPUT_FORMATS = (".otio", ".kdenlive", ".xml")
SAMPLERS = ("dpmpp-2m", "ddim")


@dataclass
class Settings:
    model: str = ""  # empty: the default (demo model, else debug)
    seed: int = 0
    sampler: str = "dpmpp-2m"  # few-step sampling by default: an editor waits for it
    steps: int = 25
    guidance: float = 3.0
    loudness: float = -14.0
    output_format: str = ".otio"

    def new_seed(self) -> int:
        self.seed = random.randrange(0, 2**31 - 1)
        return self.seed


@dataclass
class PanelState:
    settings: Settings = field(default_factory=Settings)
    path: Path | None = None
    plan: Plan | None = None
    beats: np.ndarray | None = None  # per second of the timeline
    onsets: np.ndarray | None = None  # per second of the timeline
    rhythm: np.ndarray | None = None  # predicted, per second (after generation)
    music: np.ndarray | None = None  # (channels, samples) the continuous music
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

    def open(self, path: str | Path, rate: float | None = None) -> Plan:
        """Read a timeline (raises CutscoreError with a one-line message on bad input)."""
        tl = read_timeline(path, rate=rate or (24.0 if str(path).lower().endswith(".edl") else None))
        self.path, self.plan = Path(path), make_plan(tl)
        self.beats = self.rhythm = self.music = None
        self.scored_path, self.selected_clip, self.error, self.error_details = None, None, "", ""
        self.onsets = self._onsets()
        p = str(Path(path).resolve())
        self.recent = [p] + [r for r in self.recent if r != p][:9]
        return self.plan

    def _onsets(self) -> np.ndarray:
        from engine.features.cuts import onsets_from_cuts

        tl = self.plan.timeline
        return onsets_from_cuts([c.to_seconds() for c in tl.cuts], 0.0, tl.duration.to_seconds())

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
