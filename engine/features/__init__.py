"""Per-second visual features of a source range of a video, as Diff-V2M reads them (CLIP
semantics, colour histogram, scene onsets, visual beats), plus the audio rhythm target of a
soundtrack. Choices and measurements: engine/features/README.md.

    from engine.features import extract
    f = extract("shot.mp4", start_s=2.0, end_s=9.5, cuts_s=[4.0])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import CutscoreError
from engine.features import cache
from engine.features.clip import DEFAULT_MODEL, DEFAULT_PRETRAINED


@dataclass(frozen=True)
class FeatureConfig:
    clip_model: str | None = DEFAULT_MODEL  # None: no CLIP (zeros), for cut-only conditioning and benches
    clip_pretrained: str | None = DEFAULT_PRETRAINED
    key_size: int = 224  # short side of the one-a-second key frames
    grey_width: int = 64  # the grey stream for frame differences
    grey_fps: float = 10.0


@dataclass
class VideoFeatures:
    media: str
    start_s: float
    duration_s: float
    clip: np.ndarray  # (M, D)
    color: np.ndarray  # (M, 3072)
    beat: np.ndarray  # (M,)
    scene: np.ndarray  # (M,) 0/1
    scene_source: str  # "timeline cuts" or "PySceneDetect HashDetector"
    color_summary: list[dict] = field(default_factory=list)
    cached: bool = False

    @property
    def seconds(self) -> int:
        return len(self.beat)


def _compute(path: Path, start_s: float, end_s: float | None, cfg: FeatureConfig) -> dict[str, np.ndarray]:
    from engine.features.clip import clip_embeddings
    from engine.features.color import color_histograms, color_summary
    from engine.features.motion import beat_strength
    from engine.features.video import decode_range

    d = decode_range(path, start_s, end_s, key_size=cfg.key_size, grey_width=cfg.grey_width, grey_fps=cfg.grey_fps)
    m = len(d.key_frames)
    summ = color_summary(d.key_frames)
    clip = (clip_embeddings(d.key_frames, cfg.clip_model, cfg.clip_pretrained) if cfg.clip_model
            else np.zeros((m, 512), np.float32))
    return {"clip": clip, "color": color_histograms(d.key_frames), "beat": beat_strength(d.grey, d.grey_times, m),
            "duration": np.array(d.duration_s), "summary": np.array([[s["hue"], s["saturation"], s["brightness"]] for s in summ])}


def extract(path: str | Path, start_s: float = 0.0, end_s: float | None = None, cuts_s=None,
            config: FeatureConfig = FeatureConfig(), use_cache: bool = True) -> VideoFeatures:
    """Features of [start_s, end_s) of a file. Scene onsets come from `cuts_s` (seconds in the
    file's clock) when given, else from PySceneDetect on the range."""
    from engine.features.cuts import detect_cuts, onsets_from_cuts

    path = Path(path)
    if not path.exists():
        raise CutscoreError(f"{path}: no such file")
    if end_s is not None and end_s <= start_s:
        raise CutscoreError(f"{path}: empty range [{start_s}, {end_s}); the end must be after the start")
    cfg_dict = dataclasses.asdict(config)
    k = cache.key(path, start_s, end_s, cfg_dict)
    arrays = cache.load(k) if use_cache else None
    hit = arrays is not None
    if arrays is None:
        arrays = _compute(path, start_s, end_s, config)
    duration = float(arrays["duration"])
    if cuts_s is None:
        if "detected_cuts" not in arrays:
            arrays["detected_cuts"] = np.asarray(detect_cuts(path, start_s, start_s + duration), np.float64)
            hit = False
        scene, source = onsets_from_cuts(arrays["detected_cuts"], start_s, duration), "PySceneDetect HashDetector"
    else:
        scene, source = onsets_from_cuts(cuts_s, start_s, duration), "timeline cuts"
    if use_cache and not hit:
        cache.store(k, arrays)
    summary = [{"hue": float(h), "saturation": float(s), "brightness": float(b)} for h, s, b in arrays["summary"]]
    return VideoFeatures(media=str(path), start_s=start_s, duration_s=duration, clip=arrays["clip"],
                         color=arrays["color"], beat=arrays["beat"], scene=scene, scene_source=source,
                         color_summary=summary, cached=hit)


def extract_report(path, start_s: float = 0.0, end_s: float | None = None, cuts_s=None,
                   config: FeatureConfig = FeatureConfig()) -> dict:
    """The JSON of `cutscore features`."""
    f = extract(path, start_s, end_s, cuts_s, config)
    return {"media": f.media, "start_s": f.start_s, "duration_s": f.duration_s,
            "scene_onset": [int(x) for x in f.scene], "beat": [round(float(x), 4) for x in f.beat],
            "scene_source": f.scene_source, "color_summary": f.color_summary,
            "clip_norm": [round(float(np.linalg.norm(v)), 4) for v in f.clip],
            "clip_model": config.clip_model, "cached": f.cached}
