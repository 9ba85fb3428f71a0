"""The editor's rhythm: Diff-V2M's explicit rhythm condition (a per-second intensity curve its
predictor reads off the picture, docs/MODEL_SPEC.md) as a control the editor draws (the panel's
energy lane) or hands in (`--rhythm FILE`). Torch-free.

The curve travels as one value per timeline second (value k for [k, k+1)), None where the
prediction stands (core/api.py `_TimelineRequest.rhythm`), and is checked against the model's range
(core/model_config.py rhythm_range: the predictor's curves are z-scored per window).

A file is the form `cutscore plan --json` prints a scored timeline's curve in (its "rhythm" object,
or the whole document), {"seconds": [...], "values": [...]} with null for the prediction, a list of
[seconds, value] pairs, or a CSV of `seconds,value` rows (a header line allowed, an empty value for
the prediction). Points off the whole seconds are resampled: a second between two given points takes
the straight line between them; a second outside the points, or next to a null, keeps the prediction.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from core.errors import CutscoreError

Point = tuple[float, float | None]


def read_rhythm_file(path: str | Path) -> list[Point]:
    """The (seconds, value) points of a rhythm file; one-line errors that name the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CutscoreError(f"{path}: cannot be read ({e.__class__.__name__}); pass a CSV or JSON rhythm file") from None
    if path.suffix.lower() == ".json" or text.lstrip()[:1] in ("{", "["):
        return _json_points(text, path)
    return _csv_points(text, path)


def _number(v, path: Path, where: str, allow_null: bool) -> float | None:
    if v is None or (isinstance(v, str) and not v.strip()):
        if allow_null:
            return None
        raise CutscoreError(f"{path}: {where}: the time is missing")
    if isinstance(v, bool):
        v = str(v)
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise CutscoreError(f"{path}: {where}: {v!r} is not a number") from None
    if not math.isfinite(x):
        raise CutscoreError(f"{path}: {where}: {v!r} is not a finite number")
    return x


def _json_points(text: str, path: Path) -> list[Point]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise CutscoreError(f"{path}: not valid JSON ({e.msg}, line {e.lineno}); see `cutscore plan --json` "
                            "for the form") from None
    if isinstance(doc, dict) and isinstance(doc.get("rhythm"), dict):
        doc = doc["rhythm"]
    if isinstance(doc, dict) and "seconds" in doc and "values" in doc:
        s, v = doc["seconds"], doc["values"]
        if not isinstance(s, list) or not isinstance(v, list) or len(s) != len(v):
            raise CutscoreError(f"{path}: \"seconds\" and \"values\" must be lists of the same length")
        pairs = list(zip(s, v))
    elif isinstance(doc, list) and all(isinstance(p, list) and len(p) == 2 for p in doc):
        pairs = [tuple(p) for p in doc]
    else:
        raise CutscoreError(f"{path}: expected {{\"seconds\": [...], \"values\": [...]}} (as `cutscore plan --json` "
                            "prints a scored timeline's \"rhythm\") or a list of [seconds, value] pairs")
    return [(_number(t, path, f"point {i}", False), _number(x, path, f"point {i} (at {t} s)", True))
            for i, (t, x) in enumerate(pairs)]


def _csv_points(text: str, path: Path) -> list[Point]:
    out = []
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) != 2:
            raise CutscoreError(f"{path}: line {n}: expected two fields, seconds,value (an empty value keeps the "
                                "prediction)")
        if not out and n == 1 and _is_header(row[0]):
            continue
        out.append((_number(row[0], path, f"line {n}", False), _number(row[1], path, f"line {n}", True)))
    return out


def _is_header(field: str) -> bool:
    try:
        float(field)
        return False
    except ValueError:
        return True


def rhythm_grid(points: list[Point], duration_s: float, lo: float, hi: float, source: str) -> list[float | None]:
    """The points as one value per second of the timeline (the request's form), checked: ascending
    times inside the timeline, values inside the model's range [lo, hi]. source names the file."""
    if not any(v is not None for _, v in points):
        raise CutscoreError(f"{source}: no rhythm values (every value is empty); give at least one")
    seconds = math.ceil(duration_s - 1e-6)
    for (t0, _), (t1, _) in zip(points, points[1:]):
        if t1 <= t0:
            raise CutscoreError(f"{source}: the times must rise: {t1:g} s comes after {t0:g} s")
    for t, v in points:
        if t < 0 or t >= seconds:
            raise CutscoreError(f"{source}: a point at {t:g} s lies outside the timeline's {seconds} seconds "
                                f"(0 to {seconds - 1})")
        if v is not None and not lo - 1e-6 <= v <= hi + 1e-6:
            raise CutscoreError(f"{source}: the value {v:g} at {t:g} s is outside the model's rhythm range "
                                f"[{lo:.2f}, {hi:.2f}]")
    grid: list[float | None] = [None] * seconds
    for k in range(seconds):
        at = next((v for t, v in points if abs(t - k) < 1e-6), "none")
        if at != "none":
            grid[k] = at
            continue
        for (t0, v0), (t1, v1) in zip(points, points[1:]):
            if t0 < k < t1 and v0 is not None and v1 is not None:
                grid[k] = v0 + (v1 - v0) * (k - t0) / (t1 - t0)
                break
    return grid


def load_rhythm(path: str | Path, duration_s: float, lo: float, hi: float) -> list[float | None]:
    return rhythm_grid(read_rhythm_file(path), duration_s, lo, hi, str(path))


def curve_doc(predicted: list[float], edited: list[float | None]) -> dict:
    """The form `cutscore plan --json` prints a scored timeline's rhythm in (and --rhythm reads):
    "values" is the curve the music followed (the editor's where edited, else the prediction)."""
    n = len(predicted)
    return {"seconds": list(range(n)), "values": [round(v, 4) for v in merged(predicted, edited)],
            "predicted": [round(p, 4) for p in predicted],
            "edited": [k < len(edited) and edited[k] is not None for k in range(n)]}


def merged(predicted: list[float], edited: list[float | None]) -> list[float]:
    """The curve the music follows: the editor's values where edited, the prediction elsewhere."""
    return [edited[k] if k < len(edited) and edited[k] is not None else p for k, p in enumerate(predicted)]
