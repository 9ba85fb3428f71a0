"""The options of each engine command (engine/tools.py: the `cutscore` commands that need torch), as
typed records shared by every side that runs one: the command line builds them from what it parsed
(ui/cli/commands.py engine_command), the panel and the spawned engine build them in code
(ui/panel, core/client.py), the child reads them back (engine/tools.py main). A name the command
line and the record spell differently, a missing option or a wrong type is refused where the
record is built, in one line, not deep in the child. Torch-free.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Literal

from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from core.errors import CutscoreError
from core.paths import DEFAULT_CLIP, DEFAULT_PORT

_STRICT = ConfigDict(extra="forbid")


@dataclass(config=_STRICT, frozen=True)
class Runtime:
    """doctor's half that needs torch."""


@dataclass(config=_STRICT, frozen=True)
class ModelInfo:
    config: str
    json: bool = False


@dataclass(config=_STRICT, frozen=True)
class ImportOfficial:
    checkpoint: str
    output: str
    ema: bool = False
    allow_pickle: bool = False
    force: bool = False
    config: str = "official"


@dataclass(config=_STRICT, frozen=True)
class WeightsList:
    weights_cmd: Literal["list"] = "list"
    json: bool = False


@dataclass(config=_STRICT, frozen=True)
class WeightsGet:
    name: Literal["official", "sao-vae", "clip", "all"]
    weights_cmd: Literal["get"] = "get"
    config: str | None = None
    allow_pickle: bool = False


@dataclass(config=_STRICT, frozen=True)
class Features:
    video: str
    start: float = 0.0
    end: float | None = None
    json: bool = False
    clip_model: str = DEFAULT_CLIP[0]
    clip_pretrained: str = DEFAULT_CLIP[1]
    no_clip: bool = False


@dataclass(config=_STRICT, frozen=True)
class VisualBeats:
    """The panel's visual-beat lane: [media, start_s, end_s] per clip."""
    ranges: list[tuple[str, float, float]]


@dataclass(config=_STRICT, frozen=True)
class Serve:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    model: str | None = None
    store: str | None = None
    device: Literal["auto", "cuda", "mps", "cpu"] | None = None
    compile: Literal["default", "reduce-overhead", "max-autotune"] | None = None


@dataclass(config=_STRICT, frozen=True)
class TrainPreprocess:
    source: str
    output: str
    train_cmd: Literal["preprocess"] = "preprocess"
    vae: str | None = None
    rhythm: Literal["odf", "mel", "tem"] = "odf"
    clip_model: str = DEFAULT_CLIP[0]
    clip_pretrained: str = DEFAULT_CLIP[1]
    no_clip: bool = False
    keep_vocals: bool = False


@dataclass(config=_STRICT, frozen=True)
class TrainFit:
    config: str
    train_cmd: Literal["fit"] = "fit"


@dataclass(config=_STRICT, frozen=True)
class TrainSynth:
    output: str
    train_cmd: Literal["synth"] = "synth"
    count: int = 100
    seed: int = 0
    duration: float = 40.0
    music: Literal["synth", "gm"] = "synth"


@dataclass(config=_STRICT, frozen=True)
class Evaluate:
    generated: str
    reference: str
    videos: str | None = None
    json: bool = False


# command -> its record, or {sub-command: record} keyed by the field that names the step
TOOLS: dict[str, type | tuple[str, dict[str, type]]] = {
    "runtime": Runtime, "model-info": ModelInfo, "import-official": ImportOfficial,
    "weights": ("weights_cmd", {"list": WeightsList, "get": WeightsGet}),
    "features": Features, "visual-beats": VisualBeats, "serve": Serve,
    "train": ("train_cmd", {"preprocess": TrainPreprocess, "fit": TrainFit, "synth": TrainSynth}),
    "evaluate": Evaluate,
}


def record_type(command: str, values: dict) -> type:
    """The record of `command` (of its step, for a command with steps)."""
    kind = TOOLS.get(command)
    if kind is None:
        raise CutscoreError(f"unknown engine command {command!r}; one of {', '.join(TOOLS)}")
    if isinstance(kind, tuple):
        key, steps = kind
        if values.get(key) not in steps:
            raise CutscoreError(f"engine command {command}: {key} must be one of {', '.join(steps)}")
        return steps[values[key]]
    return kind


def options(command: str, values: dict):
    """`values` (the parsed command line, or JSON read back) as the command's record; an unknown
    name, a missing option or a wrong type is one line."""
    cls = record_type(command, values)
    try:
        return TypeAdapter(cls).validate_python(values)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "options"
        raise CutscoreError(f"engine command {command}: {where}: {first['msg']}") from None


def command_of(record) -> str:
    """The engine command a record is the options of."""
    for command, kind in TOOLS.items():
        if type(record) is kind or (isinstance(kind, tuple) and type(record) in kind[1].values()):
            return command
    raise CutscoreError(f"{type(record).__name__} is not an engine command's options")


def to_json(record) -> str:
    return json.dumps(dataclasses.asdict(record))
