"""The per-second scene-onset vector e of Diff-V2M (1 = a new scene starts in second m).

(a) From cut times given by the caller: a timeline's cuts ARE the scene onsets (the main path).
(b) From the video itself with PySceneDetect, for raw videos and for cuts inside a long source clip.
    Detector: HashDetector (a perceptual hash of each frame's luma: low DCT frequencies against
    their median) at its default threshold 0.395, minimum scene 0.5 s. Why: it compares the
    picture's STRUCTURE, so a hard cut fires while a uniform change of colour or brightness (a
    background switching colour, a fade) does not. Measured on shared/media (all detectors at their
    defaults, engine/features/README.md): HashDetector finds exactly testvideo.mp4's hard cuts at
    1.001 s and 6.006 s and nothing in counter.mp4 or fades.mp4; ContentDetector (27) also fires at
    13.146 s (inside the fade from black) and on counter.mp4's background colour switch at 1.0 s;
    AdaptiveDetector adds 13.146 s and 23.056 s. The margin is real but not wide: 0.3 adds the fade
    to black at 23.99 s, 0.45 loses the cuts.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import CutscoreError
from core.signal import onsets_from_cuts  # noqa: F401 - cut onsets belong with the cuts

THRESHOLD = 0.395
MIN_SCENE_S = 0.5


def detect_cuts(path: str | Path, start_s: float = 0.0, end_s: float | None = None,
                threshold: float = THRESHOLD) -> list[float]:
    """Hard cuts in [start_s, end_s) found by PySceneDetect's HashDetector (seconds, absolute)."""
    from scenedetect import HashDetector, SceneManager, open_video

    try:
        video = open_video(str(path), backend="opencv")
    except Exception as e:  # noqa: BLE001 - scenedetect raises several types for unreadable files
        raise CutscoreError(f"{path}: PySceneDetect cannot open it ({e})") from e
    manager = SceneManager()
    manager.auto_downscale = True
    manager.add_detector(HashDetector(threshold=threshold, min_scene_len=f"{MIN_SCENE_S}s"))
    # Start a second early: right after a seek the decoder may deliver a frame from before the
    # target, which the detector would report as a cut at the range's first frame. A cut at the
    # range's very start is a clip boundary, which the timeline already knows.
    # PySceneDetect reads an int as a frame number and a float as seconds: pass floats.
    start_s, end_s = float(start_s), None if end_s is None else float(end_s)
    if start_s > 0:
        video.seek(max(0.0, start_s - 1.0))
    manager.detect_scenes(video, end_time=end_s, show_progress=False)
    cuts = [s[0].seconds for s in manager.get_scene_list(start_in_scene=True)]
    first = start_s + 1.5 / video.frame_rate
    return [c for c in cuts if c > first and (end_s is None or c < end_s)]
