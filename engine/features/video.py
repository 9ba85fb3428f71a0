"""Decoding a source range [in, out) of a video with OpenCV, in one pass, into the two streams the
features need (engine/features/README.md):

- one colour frame a second, the frame nearest the MIDDLE of each second (t = s + 0.5), scaled so
  its short side is `key_size` px: CLIP and the colour histogram read these;
- a small grey stream, `grey_width` px wide at about `grey_fps` frames a second, for the frame
  differences of the visual rhythm.

Frames are addressed by their presentation time (CAP_PROP_POS_MSEC), so variable frame rate
files are read correctly; OpenCV's FFmpeg backend applies rotation metadata (CAP_PROP_ORIENTATION_AUTO)
and ignores subtitle and attachment streams. Every frame is decoded once (`grab`), but only the
frames of the two streams are converted and scaled (`retrieve`), so nothing is kept at full size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import CutscoreError


@dataclass
class VideoInfo:
    path: Path
    fps: float
    frames: int
    duration_s: float
    width: int
    height: int


@dataclass
class Decoded:
    info: VideoInfo
    start_s: float
    duration_s: float
    key_frames: np.ndarray  # (M, H, W, 3) uint8 RGB, one a second (the frame nearest s + 0.5)
    key_times: np.ndarray  # (M,) seconds from start_s
    grey: np.ndarray  # (N, h, grey_width) uint8
    grey_times: np.ndarray  # (N,) seconds from start_s


def _open(path: Path):
    import cv2

    if not path.exists():
        raise CutscoreError(f"{path}: no such file")
    if not path.is_file() or not os.access(path, os.R_OK):
        raise CutscoreError(f"{path}: not a readable file")
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise CutscoreError(f"{path}: not a video OpenCV can decode (corrupt, or an unsupported codec); "
                            "convert it with ffmpeg -i IN -c:v libx264 OUT.mp4")
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


def probe(path: str | Path) -> VideoInfo:
    import cv2

    path = Path(path)
    cap = _open(path)
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if w <= 0 or h <= 0 or fps <= 0:
            raise CutscoreError(f"{path}: has no video stream (an audio-only file?); cutscore needs the picture")
        ok = cap.grab()
        if not ok:
            raise CutscoreError(f"{path}: no frame could be decoded (corrupt or empty video)")
        return VideoInfo(path, fps, frames, frames / fps if frames > 0 else 0.0, w, h)
    finally:
        cap.release()


def _scaled(frame: np.ndarray, short_side: int) -> np.ndarray:
    import cv2

    h, w = frame.shape[:2]
    s = short_side / min(h, w)
    return cv2.resize(frame, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def decode_range(path: str | Path, start_s: float = 0.0, end_s: float | None = None, key_size: int = 224,
                 grey_width: int = 64, grey_fps: float = 10.0) -> Decoded:
    """Decode [start_s, end_s) of a file into the two streams (see the module docstring). Times
    are measured from the first frame (a container's start offset is not part of the range)."""
    path = Path(path)
    info = probe(path)
    if start_s < 0:
        raise CutscoreError(f"{path}: the range starts before the file ({start_s} s); use --start >= 0")
    if end_s is not None and end_s <= start_s:
        raise CutscoreError(f"{path}: empty range [{start_s}, {end_s}); the end must be after the start")
    limit = None if end_s is None else end_s - start_s
    frame_dt = 1.0 / info.fps
    frames = _Frames(key_size, grey_width, grey_fps, frame_dt)
    cap = _open(path)
    try:
        frames.read(cap, start_s, limit)
    finally:
        cap.release()
    keys, fallback, grey, grey_t, last_t = frames.keys, frames.fallback, frames.grey, frames.grey_t, frames.last_t
    if last_t is None or not grey:
        raise CutscoreError(f"{path}: no frame at or after {start_s:.3f} s: the range starts past the end of the "
                            "video (or the file is truncated)")
    decoded_s = last_t + frame_dt
    if limit is not None and decoded_s < limit - 1.5 * frame_dt:
        raise CutscoreError(f"{path}: the range ends at {end_s:.3f} s, past the end of the video "
                            f"({start_s + decoded_s:.3f} s)")
    duration = limit if limit is not None else decoded_s
    m = int(np.ceil(duration - 1e-9))
    return Decoded(info=info, start_s=start_s, duration_s=duration, key_frames=_per_second(keys, fallback, m),
                   key_times=np.minimum(np.arange(m) + 0.5, duration), grey=np.stack(grey), grey_times=np.asarray(grey_t))


class _Frames:
    """What decode_range keeps of the frames it reads: a key frame a second (the frame nearest the
    second's middle, else its first) and small grey frames at grey_fps."""

    def __init__(self, key_size: int, grey_width: int, grey_fps: float, frame_dt: float):
        self.key_size, self.grey_width, self.grey_fps, self.frame_dt = key_size, grey_width, grey_fps, frame_dt
        self.keys: dict[int, np.ndarray] = {}  # second -> the retrieved frame nearest its middle
        self.fallback: dict[int, np.ndarray] = {}  # second -> its first retrieved frame
        self.grey: list[np.ndarray] = []
        self.grey_t: list[float] = []
        self.next_grey, self.last_t = 0.0, None

    def read(self, cap, start_s: float, limit: float | None) -> None:
        import cv2

        dt = self.frame_dt
        if start_s > 0:
            cap.set(cv2.CAP_PROP_POS_MSEC, max(0.0, start_s - 1.0) * 1000.0)
        while cap.grab():
            t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 - start_s  # presentation time of this frame
            if t < -dt / 2:
                continue
            if limit is not None and t >= limit - dt / 2:
                break
            self.last_t = t
            if t < self.next_grey - dt / 2:
                continue
            ok, frame = cap.retrieve()
            if ok and frame is not None:
                self._keep(frame, t)

    def _keep(self, frame: np.ndarray, t: float) -> None:
        import cv2

        dt = self.frame_dt
        h = max(1, round(self.grey_width * frame.shape[0] / frame.shape[1]))
        small = cv2.resize(frame, (self.grey_width, h), interpolation=cv2.INTER_AREA)
        self.grey.append(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
        self.grey_t.append(t)
        self.next_grey = max(self.next_grey + 1.0 / self.grey_fps, t + dt / 2)
        sec = max(0, int(np.floor(t + 1e-9)))
        if sec not in self.fallback:
            self.fallback[sec] = cv2.cvtColor(_scaled(frame, self.key_size), cv2.COLOR_BGR2RGB)
        if sec not in self.keys and t >= sec + 0.5 - dt / 2:
            self.keys[sec] = (self.fallback[sec] if t - sec < dt
                              else cv2.cvtColor(_scaled(frame, self.key_size), cv2.COLOR_BGR2RGB))


def _per_second(keys: dict[int, np.ndarray], fallback: dict[int, np.ndarray], m: int) -> np.ndarray:
    """(m, H, W, 3): each second's key frame (else its first frame); a second without a frame of its
    own (a very low frame rate) reuses the previous one, leading empty seconds the first; one size."""
    import cv2

    frames, prev = [], None
    for k in range(m):
        f = keys.get(k, fallback.get(k, prev))
        frames.append(f)
        prev = f if f is not None else prev
    first = next(f for f in frames if f is not None)
    frames = [first if f is None else f for f in frames]
    shape = first.shape
    return np.stack([f if f.shape == shape else cv2.resize(f, (shape[1], shape[0])) for f in frames])
