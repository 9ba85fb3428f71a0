"""The panel's state, Qt-free: what is open, the settings, the per-second lanes, the
music, the job's progress. Widgets read it and render; the window's workers write it.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.api import SAMPLER_NAMES
from core.model_config import model_sampling
from plugin.commands.plan import Plan, make_plan
from plugin.commands.score import ScoreOptions, default_model
from plugin.commands.state import Sidecar
from plugin.finish.beats import Beats
from plugin.finish.ducking import Ducking
from plugin.formats import DEFAULT_OUTPUT, FORMATS, find, output_suffixes
from plugin.formats.timeline import read_timeline
from ui.panel.peaks import Overview, music_overview

OUTPUT_FORMATS = tuple(f.suffix for f in FORMATS if f.writable and not f.bundle)  # the panel's choice
SAMPLERS = tuple(sorted(SAMPLER_NAMES, key=lambda s: s != "dpmpp-2m"))  # the few-step sampler first


def weights_missing(model: str | None) -> bool:
    """Whether `model` is one cutscore fetches and its converted weights are not on this machine."""
    from core.paths import FETCHED_MODELS, installed_model

    return model in FETCHED_MODELS and installed_model(model) is None


class Settings(ScoreOptions):
    """The panel's settings: a score's options (plugin/commands/score.py ScoreOptions, whose generation
    settings are core/api.py's, declared once) and the output format. sampler, steps and guidance
    None are the model's own, which the panel shows (model_sampling)."""

    output_format: str = DEFAULT_OUTPUT

    def new_seed(self) -> int:
        self.seed = random.randrange(0, 2**31 - 1)
        return self.seed

    def sampling(self) -> dict:
        """The sampler, steps and guidance the next Generate uses: these settings' where set, the
        model's own elsewhere."""
        own = model_sampling(self.model or default_model()[0])
        return {k: own[k] if getattr(self, k) is None else getattr(self, k) for k in own}


def read_music(scored_path: Path, loaded: tuple[Path, Sidecar] | None = None) -> dict:
    """A scored timeline's music as the panel draws it (the takes' peaks overview, ducked where the
    format's keyframes would duck it: never the music itself), its predicted rhythm, its ducking,
    beats and the clips' takes."""
    from plugin.commands.state import load_state, predicted_rhythm, takes_of

    side, state = loaded or load_state(scored_path)
    return {"overview": music_overview(side, state), "rate": state.sample_rate,
            "rhythm": np.asarray(predicted_rhythm(state), np.float32), "ducking": state.ducking,
            "beats": state.beats, "takes": takes_of(scored_path, (side, state))}


@functools.lru_cache(maxsize=1)
def _default_model() -> str:
    """The model a Generate without one uses (asked once: the lanes ask for its range per point)."""
    return default_model()[0]


@functools.lru_cache(maxsize=8)
def _rhythm_bounds(model: str) -> tuple[float, float]:
    from core.model_config import model_window_s, rhythm_range

    return rhythm_range(model_window_s(model))


@dataclass
class PanelState:
    settings: Settings = field(default_factory=Settings)
    path: Path | None = None
    plan: Plan | None = None
    beats: np.ndarray | None = None  # per second of the timeline
    onsets: np.ndarray | None = None  # per second of the timeline
    rhythm: np.ndarray | None = None  # predicted, per second (after generation)
    rhythm_edit: list[float | None] = field(default_factory=list)  # the energy lane: per second, None = predicted
    rhythm_undo: list[list[float | None]] = field(default_factory=list)
    rhythm_span: tuple[float, float] | None = None  # the span chosen on the energy lane (Shift+drag)
    music_beats: Beats | None = None  # the music's beats and downbeats (the sidecar's), for the beat grid
    overview: Overview | None = None  # the music's peaks as the timeline plays it (ui/panel/peaks.py)
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
    # conform (ui/panel/conform.py): the change list shown (`cutscore conform --json`'s "changes"), whether
    # it is the open picture's against its music's edit (stale: Conform offered), the generated spans
    # of a conformed timeline (shaded on the music lane), the score a conform started from (Undo)
    changes: list[dict] | None = None
    stale: bool = False
    generated_spans: list[tuple[float, float]] = field(default_factory=list)
    conformed_from: str = ""
    before_conform: Path | None = None

    def open(self, path: str | Path, rate: float | None = None) -> Plan:
        """Read a timeline (raises CutscoreError with a one-line message on bad input)."""
        needs_rate = (fmt := find(path)) is not None and fmt.needs_rate  # an EDL: 24 fps until told
        tl = read_timeline(path, rate=rate or (24.0 if needs_rate else None))
        self.path, self.plan = Path(path), make_plan(tl)
        self.beats = self.rhythm = self.overview = self.ducking = self.music_beats = None
        self.rhythm_edit, self.rhythm_undo, self.rhythm_span = [None] * self.seconds, [], None
        self.scored_path, self.selected_clip, self.error, self.error_details = None, None, "", ""
        self.user_hits, self.selected_hit, self.takes = [], None, {}
        self.changes, self.stale, self.generated_spans, self.conformed_from = None, False, [], ""
        self.before_conform = None
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
        from plugin.commands.state import load_state

        try:
            loaded = load_state(self.path)
        except (CutscoreError, OSError, KeyError, ValueError):
            return
        self.scored_path = self.path
        self.load_music(loaded)
        saved = loaded[1]
        marks = {round(h.to_seconds(), 3) for h in self.plan.timeline.hits}
        self.user_hits = sorted(h for h in saved.request.hits_s if round(h, 3) not in marks)
        edit = list(saved.request.rhythm[:self.seconds])  # the curve the score followed where edited
        self.rhythm_edit = edit + [None] * (self.seconds - len(edit))
        self._conform_state(saved)

    def _conform_state(self, saved: Sidecar) -> None:
        """A conformed timeline's change list and generated spans; else whether the picture changed
        since its music was made (then its change list, and Conform is offered)."""
        from plugin.commands.changes import changes_of, new_uses, old_uses

        if saved.conform is not None:
            self.changes, self.conformed_from = saved.conform.changes, saved.conform.old
            self.generated_spans = [(a, b) for a, b in saved.conform.generated]
        tl = self.plan.timeline
        r = tl.duration.rate
        changes, deleted = changes_of(old_uses(saved.request.clips, r), new_uses(tl), r)
        if deleted or any(c.kind != "unchanged" for c in changes):
            self.stale = True
            self.changes = [c.to_json() for c in changes]

    def load_music(self, loaded: tuple[Path, Sidecar] | None = None) -> None:
        """The scored music, its predicted rhythm and the clips' takes, from the sidecar (read once)."""
        self.use_music(read_music(self.scored_path, loaded))

    def use_music(self, m: dict) -> None:
        """What read_music read (off the UI thread, after a job: reading a score's WAVs stalls a frame)."""
        self.overview, self.music_rate, self.rhythm = m["overview"], m["rate"], m["rhythm"]
        self.ducking, self.music_beats, self.takes = m["ducking"], m["beats"], m["takes"]

    # -- the energy lane: the editor's rhythm over the prediction -----------------------------------
    @property
    def seconds(self) -> int:
        return int(np.ceil(self.duration_s - 1e-6))

    def rhythm_bounds(self) -> tuple[float, float]:
        """The rhythm condition's range for the chosen model (core/model_config.py rhythm_range)."""
        return _rhythm_bounds(self.settings.model or _default_model())

    def energy(self) -> np.ndarray:
        """The curve the next Generate follows, per second: the edit where edited, the prediction
        elsewhere (0, the z-scored mean, before the first Generate)."""
        pred = np.zeros(self.seconds, np.float32)
        if self.rhythm is not None:
            pred[:min(len(self.rhythm), self.seconds)] = self.rhythm[:self.seconds]
        return np.array([p if e is None else e for p, e in zip(pred, self.rhythm_edit)], np.float32)

    def edited_rhythm(self) -> list[float | None]:
        """The energy lane for a request: [] when nothing is edited (the prediction everywhere)."""
        return list(self.rhythm_edit) if any(v is not None for v in self.rhythm_edit) else []

    def span_seconds(self, a_s: float, b_s: float) -> range:
        """The timeline seconds a span [a, b) covers (at least the one under a)."""
        a_s, b_s = sorted((a_s, b_s))
        first = int(np.clip(np.floor(a_s), 0, max(self.seconds - 1, 0)))
        return range(first, int(np.clip(max(np.ceil(b_s - 1e-6), first + 1), 0, self.seconds)))

    def energy_span(self) -> tuple[float, float] | None:
        """What an energy button acts on: the span chosen on the lane, else the selected clip's."""
        if self.rhythm_span is not None:
            return self.rhythm_span
        c = next((c for c in self.clips if c.index == self.selected_clip), None)
        return None if c is None else (c.range.start_time.to_seconds(), c.range.end_time_exclusive().to_seconds())

    def energy_extent(self) -> tuple[float, float]:
        """(bottom, top) that Lower and Raise go to: the predicted curve's own extremes (what the model
        was trained on: bench/bench_rhythm.py measured the demo model louder, not quieter, at the
        range's bottom, -3); before a prediction, -1 and the range's top (one onset in a window)."""
        lo, hi = self.rhythm_bounds()
        if self.rhythm is not None and len(self.rhythm) and float(np.ptp(self.rhythm)) > 0.5:
            return max(float(np.min(self.rhythm)), lo), min(float(np.max(self.rhythm)), hi)
        return max(-1.0, lo), hi

    def edit_rhythm(self, a_s: float, b_s: float, how: str, value: float | None = None) -> None:
        """One undoable edit of the energy lane over [a_s, b_s): "raise" (to the predicted curve's top),
        "lower" (to its bottom), "flatten" (to the span's mean), "ramp up" / "ramp down" (bottom to top,
        or back), "set" (to `value`, within the model's range), "reset" (back to the prediction)."""
        lo, hi = self.energy_extent()
        span, now = self.span_seconds(a_s, b_s), self.energy()
        if not len(span):
            return
        n = len(span)
        ramp = [lo + (hi - lo) * k / max(n - 1, 1) for k in range(n)]
        new = {"raise": [hi] * n, "lower": [lo] * n, "flatten": [float(now[list(span)].mean())] * n,
               "ramp up": ramp, "ramp down": ramp[::-1], "reset": [None] * n,
               "set": [value] * n}[how]
        self.push_rhythm_undo()
        for k, v in zip(span, new):
            self.rhythm_edit[k] = None if v is None else self._in_range(v)

    def draw_rhythm(self, t_s: float, value: float) -> None:
        """A freehand stroke's point (call push_rhythm_undo once when the stroke starts)."""
        k = int(np.floor(t_s))
        if 0 <= k < self.seconds:
            self.rhythm_edit[k] = self._in_range(value)

    def _in_range(self, v: float) -> float:
        """v to 4 decimals, inside the model's range (the top and bottom exactly)."""
        lo, hi = self.rhythm_bounds()
        return float(np.clip(round(float(v), 4), lo, hi))

    def push_rhythm_undo(self) -> None:
        self.rhythm_undo = [*self.rhythm_undo[-49:], list(self.rhythm_edit)]

    def undo_rhythm(self) -> bool:
        if not self.rhythm_undo:
            return False
        self.rhythm_edit = self.rhythm_undo.pop()
        return True

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
        if fmt not in output_suffixes(self.path):  # a format written by patching the input needs that input
            fmt = OUTPUT_FORMATS[0]
        return self.path.with_name(f"{self.path.stem}-scored{fmt}")
