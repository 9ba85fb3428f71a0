"""cutscore's state next to a scored timeline (torch-free): the sidecar folder `<OUT stem>.cutscore/`
with its WAVs and `cutscore.json` (kept beside the timeline because Resolve drops unknown metadata),
found again from the music clips' WAV paths, the scored music read back, and exports that carry the
sidecar along.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import numpy as np
import opentimelineio as otio
from opentimelineio.opentime import RationalTime, TimeRange

from core.errors import CutscoreError
from plugin.names import STATE_FILE, take_pattern, take_version
from plugin.render import (
    read_wav,
)
from plugin.timeline import read_timeline
from plugin.writeback import Segment, music_track, write_scored

STATE_VERSION = 1


def sidecar_dir(out: Path) -> Path:
    return out.with_name(out.stem + ".cutscore")


def load_state(scored_path: str | Path, scored: otio.schema.Timeline | None = None) -> tuple[Path, dict]:
    from plugin.timeline import load_otio

    scored_path = Path(scored_path)
    side = find_sidecar(scored if scored is not None else load_otio(scored_path), scored_path)
    path = side / STATE_FILE
    if not path.is_file():
        raise CutscoreError(f"{path}: is not a file; keep the `.cutscore` folder as `cutscore score` wrote it")
    try:
        state = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CutscoreError(f"{path}: damaged ({e}); score the timeline again") from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise CutscoreError(f"{path}: written by another cutscore version; score the timeline again")
    missing = [k for k in ("segments", "windows", "request", "sample_rate", "gain_db") if k not in state]
    if missing or not state["segments"] or not state["windows"]:
        raise CutscoreError(f"{path}: damaged (no {', '.join(missing) or 'segments or windows'}); "
                            "score the timeline again")
    for w in state["windows"]:
        for k in ("audio", "latents"):
            if not Path(str(w.get(k, ""))).is_file():
                raise CutscoreError(f"{path}: names {w.get(k)!r}, which is missing; keep the `.cutscore` folder "
                                    "whole, or score the timeline again")
    return side, state


def music_of(scored_path: str | Path, loaded: tuple[Path, dict] | None = None) -> tuple[np.ndarray, int, list[float]]:
    """The current music of a scored timeline (its segments' WAVs in order), its rate, and the
    predicted rhythm per second of the timeline. loaded: load_state's answer, when the caller has it."""
    side, state = loaded or load_state(scored_path)
    audio = np.concatenate([read_wav(side / s["wav"])[0] for s in state["segments"]], axis=1)
    total = int(np.ceil(sum(s["duration"] for s in state["segments"]) / state["segments"][0]["rate"]))
    rhythm = [0.0] * total
    for w in state["windows"]:
        for k, v in enumerate(w["rhythm"]):
            t = int(w["start_s"]) + k
            if t < total and (k >= w["overlap_s"] or rhythm[t] == 0.0):
                rhythm[t] = v
    return audio, state["sample_rate"], rhythm


def export_scored(scored_path: str | Path, out_path: str | Path, force: bool = False) -> Path:
    """Write the current scored timeline in another format (by out_path's suffix)."""
    side, state = load_state(scored_path)
    out_path = Path(out_path)
    if out_path.exists() and not force:
        raise CutscoreError(f"{out_path}: already exists; choose another name")
    tl = read_timeline(state["timeline"])
    segments = [Segment(s["kind"], s["index"], s["name"],
                        TimeRange(RationalTime(s["start"], s["rate"]), RationalTime(s["duration"], s["rate"])),
                        side / s["wav"]) for s in state["segments"]]
    meta = {"model": state["model"], "seed": state["settings"]["seed"], "sidecar": str(side.resolve())}
    write_scored(tl, segments, meta, out_path)
    return out_path


def rebase_state(state: dict, old: Path, new: Path) -> None:
    """The engine wrote into the partial folder; point the state at the final one."""
    for w in state["windows"]:
        for k in ("audio", "latents"):
            w[k] = str(new / Path(w[k]).relative_to(old.resolve()))
    state["request"]["output_dir"] = str(new.resolve())


def find_sidecar(scored: otio.schema.Timeline, scored_path: Path) -> Path:
    """The `.cutscore` folder of a scored timeline: found from its music clips' WAV paths (which
    survive Resolve and Kdenlive), else beside the timeline under the name `score` gave it (a
    .otioz bundle carries copies of the WAVs inside the archive)."""
    track = music_track(scored)
    beside = sidecar_dir(scored_path)
    if track is None:
        raise CutscoreError(f"{scored_path}: has no '{'cutscore music'}' track; score it first with `cutscore score`")
    for clip in track.find_clips():
        p = wav_path(clip)
        if p is not None and (p.parent / STATE_FILE).exists():
            return p.parent
    if (beside / STATE_FILE).exists():
        return beside
    raise CutscoreError(f"{scored_path}: the music's folder with {STATE_FILE} was not found next to its WAVs; "
                        "keep the `.cutscore` folder beside the WAVs")


def takes_of(scored_path: str | Path, loaded: tuple[Path, dict] | None = None) -> dict[int, dict]:
    """Per clip index of a scored timeline: its name, every take's WAV name in order (v1 is the
    score's, then one per regenerate) and the take the timeline plays now. loaded: as music_of."""
    side, state = loaded or load_state(scored_path)
    out = {}
    for seg in state["segments"]:
        if seg["kind"] != "clip":
            continue
        pattern = take_pattern(seg["wav"])
        takes = sorted((p.name for p in side.glob("*.wav") if pattern.fullmatch(p.name)), key=take_version)
        out[seg["index"]] = {"name": seg["name"], "takes": takes, "current": seg["wav"]}
    return out


def wav_path(clip: otio.schema.Clip) -> Path | None:
    url = getattr(clip.media_reference, "target_url", None)
    if not url:
        return None
    if url.startswith("file://"):
        return Path(urllib.parse.unquote(urllib.parse.urlparse(url).path))
    return Path(url)
