"""Requests and results between the NLE side and the engine (torch-free, validated at the boundary
with pydantic). The same types travel in-process (LocalEngine) and as JSON over loopback HTTP
(HttpEngine), so both transports give the same answer for the same request.

A score request carries the plan (windows with their continuous start times), the picture clips
with their media ranges, the cuts and hit points, the settings and seed, and the folder the engine
may write to. A regenerate request names one window of an earlier result, the time region to
re-sample, and the latents file to hold the rest fixed. A listen request asks only for the speech
in some of the timeline's sound (a conform listens to the seconds whose sound is new).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

JobState = Literal["queued", "running", "done", "failed", "cancelled", "interrupted"]
FINAL_STATES: tuple[JobState, ...] = ("done", "failed", "cancelled", "interrupted")  # a job in these has ended
RETRYABLE_STATES: tuple[JobState, ...] = ("interrupted", "failed", "cancelled")  # `retry` queues these again


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class ClipSpan(_Model):
    index: int = Field(ge=0)
    name: str = ""
    start_s: float = Field(ge=0)  # in the timeline
    duration_s: float = Field(gt=0)
    media: str | None = None  # an absolute path on the engine's machine, None = cut-only conditioning
    source_start_s: float = Field(default=0.0, ge=0)


class AudioSpan(_Model):
    """A piece of the timeline's own sound (an audio clip, or a picture clip's soundtrack where the
    timeline has no audio tracks): what ducking listens to for speech."""

    media: str  # an absolute path on the engine's machine
    start_s: float = Field(ge=0)  # in the timeline
    duration_s: float = Field(gt=0)
    source_start_s: float = Field(default=0.0, ge=0)  # from the file's first sample
    picture: bool = False  # a picture clip's soundtrack: a file without one is skipped without a warning


class WindowSpec(_Model):
    start_s: float = Field(ge=0)  # continuous start time within the piece
    duration_s: float = Field(gt=0)
    overlap_s: float = Field(default=0.0, ge=0)


SamplerName = Literal["ddim", "dpmpp-2m"]  # the samplers, named once (engine/model/sampling.py implements them)
SAMPLER_NAMES: tuple[str, ...] = get_args(SamplerName)


class Settings(_Model):
    seed: int = 0
    steps: int | None = Field(default=None, ge=1, le=1000)
    guidance: float | None = Field(default=None, ge=0, le=20)
    sampler: SamplerName | None = None
    # continuation: each window after the first is sampled with the previous window's overlap
    # latents held, so the music continues through the join; "change" lets a window that starts at
    # a cut begin afresh instead. continuation=False samples every window independently (benches).
    at_cuts: Literal["continue", "change"] = "continue"
    continuation: bool = True


class Like(_Model):
    """A reference the music follows (issue 45, SDEdit: each window's sampling starts from the
    reference's latents noised to the level the strength gives, instead of from pure noise)."""

    audio: str  # a WAV of the reference as the timeline plays it (an absolute path)
    strength: float = Field(ge=0, le=1)  # 0: no reference (pure noise, as without one); 1: the reference as it is
    start_s: float = Field(default=0.0, ge=0)  # the timeline second its first sample plays at (--vary: the window's)


def _absolute_dir(v: str) -> str:
    if not Path(v).is_absolute():
        raise ValueError("output_dir must be an absolute path")
    return v


class _TimelineRequest(_Model):
    model: str = "debug"
    duration_s: float = Field(gt=0)
    clips: list[ClipSpan]
    cuts_s: list[float] = []
    hits_s: list[float] = []
    windows: list[WindowSpec] = Field(min_length=1)
    settings: Settings = Settings()
    output_dir: str  # the only folder the engine writes to
    # the editor's rhythm (the panel's energy lane, `--rhythm FILE`): one value per timeline second
    # (value k conditions the seconds of music whose middle lies in [k, k+1)), None where the
    # prediction stands; empty: the prediction everywhere
    rhythm: list[float | None] = []
    like: Like | None = None

    _absolute = field_validator("output_dir")(_absolute_dir)

    @field_validator("cuts_s", "hits_s")
    @classmethod
    def _sorted(cls, v: list[float]) -> list[float]:
        return sorted(v)

    @field_validator("rhythm")
    @classmethod
    def _finite(cls, v: list[float | None]) -> list[float | None]:
        for k, x in enumerate(v):
            if x is not None and not math.isfinite(x):
                raise ValueError(f"rhythm value at {k} s is not a finite number")
        return v

    @model_validator(mode="after")
    def _inside(self):
        if len(self.rhythm) > math.ceil(self.duration_s - 1e-6):
            raise ValueError(f"rhythm has {len(self.rhythm)} values, more than the {self.duration_s:g} s timeline's seconds")
        for w in self.windows:
            if w.start_s + w.duration_s > self.duration_s + 1e-3:
                raise ValueError(f"window at {w.start_s} s runs past the timeline's end ({self.duration_s} s)")
        return self


class ScoreRequest(_TimelineRequest):
    kind: Literal["score"] = "score"
    # the timeline's own sound: the engine finds the speech in it (JobResult.speech_s) for ducking;
    # empty: no ducking asked, or nothing to listen to
    dialogue: list[AudioSpan] = []


class RegenerateRequest(_TimelineRequest):
    kind: Literal["regenerate"] = "regenerate"
    window: int = Field(ge=0)  # which window of `windows` to regenerate
    region_start_s: float  # timeline seconds
    region_end_s: float
    latents: str  # the window's latents from the earlier result (inside output_dir)
    # Regenerate by the clip: sample only [span_start_s, span_end_s) of the window (the clip plus a
    # margin; the model told where it sits in the piece), the margins held at the window's latents.
    # None: the whole window.
    span_start_s: float | None = None
    span_end_s: float | None = None

    @model_validator(mode="after")
    def _region(self):
        if self.window >= len(self.windows):
            raise ValueError(f"window {self.window} does not exist ({len(self.windows)} windows)")
        if not self.region_start_s < self.region_end_s:
            raise ValueError("region_start_s must be before region_end_s")
        if (self.span_start_s is None) != (self.span_end_s is None):
            raise ValueError("span_start_s and span_end_s come together")
        if self.span_start_s is not None:
            w = self.windows[self.window]
            if not (w.start_s - 1e-6 <= self.span_start_s <= self.region_start_s < self.region_end_s
                    <= self.span_end_s <= w.start_s + w.duration_s + 1e-6):
                raise ValueError("the span must lie inside the window and hold the region")
        return self


class ListenRequest(_Model):
    """Only the speech in these spans of the timeline's sound (JobResult.speech_s): what a conform
    asks for the seconds whose sound the old score never heard. Nothing is sampled or written."""

    kind: Literal["listen"] = "listen"
    duration_s: float = Field(gt=0)  # the timeline's, the spans lie inside it
    dialogue: list[AudioSpan] = Field(min_length=1)
    output_dir: str  # absolute; the engine writes nothing there (a job's files are looked for in it)

    _absolute = field_validator("output_dir")(_absolute_dir)


Request = ScoreRequest | RegenerateRequest | ListenRequest


class WindowResult(_Model):
    index: int
    start_s: float
    duration_s: float
    overlap_s: float
    audio: str  # float WAV at the model's rate, exactly duration_s long
    latents: str  # .npy of the window's latents
    rhythm: list[float]  # predicted rhythm (first channel), one value a second
    seed: int


class JobResult(_Model):
    kind: Literal["score", "regenerate", "listen"]
    model: str
    sample_rate: int
    windows: list[WindowResult]
    warnings: list[str] = []
    speech_s: list[tuple[float, float]] = []  # speech found in the request's dialogue, timeline seconds


class JobStatus(_Model):
    id: str
    state: JobState
    stage: str = "queued"
    progress: float = 0.0
    message: str = ""
    result: JobResult | None = None


@functools.cache
def protocol() -> str:
    """A digest of the requests' JSON schema, which `/health` answers: a client and an engine of
    different cutscore versions whose requests differ (a field added, a range changed) differ in it."""
    import hashlib
    import json

    from pydantic import TypeAdapter

    schema = json.dumps(TypeAdapter(Request).json_schema(), sort_keys=True)
    return hashlib.sha256(schema.encode()).hexdigest()[:12]


def parse_request(data: dict) -> Request:
    kind = data.get("kind", "score")
    if kind == "score":
        return ScoreRequest.model_validate(data)
    if kind == "regenerate":
        return RegenerateRequest.model_validate(data)
    if kind == "listen":
        return ListenRequest.model_validate(data)
    raise ValueError(f"unknown request kind: {kind!r}")
