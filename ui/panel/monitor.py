"""The picture monitor: the frame the viewer sees at the playhead, decoded from the clip's source
media at its source time (OpenCV, torch-free), with the timeline timecode and the clip's name over
it. Frames are decoded on demand (scrubbing, stepping, playback at the timer's rate); the capture
of each media file stays open and reads forward when the next frame is the next one.
"""

from __future__ import annotations

import numpy as np
from opentimelineio import opentime
from PyQt6.QtCore import QRectF, Qt
from PyQt6.QtGui import QColor, QFont, QImage, QPainter
from PyQt6.QtWidgets import QSizePolicy, QWidget

from ui.panel.state import PanelState


class FrameSource:
    """RGB frames of media files by source time; one open capture per file."""

    def __init__(self):
        self._caps: dict[str, tuple[object, int]] = {}  # path -> (capture, index of the next frame it reads)
        self._last: tuple[str, int, np.ndarray] | None = None  # the frame decoded last (a repaint reuses it)

    def frame(self, path: str, t_s: float) -> np.ndarray | None:
        import cv2

        entry = self._caps.get(path)
        if entry is None:
            cap = cv2.VideoCapture(path)
            if not cap.isOpened():
                return None
            entry = (cap, 0)
        cap, next_index = entry
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        index = max(0, int(round(t_s * fps)))
        if self._last is not None and self._last[:2] == (path, index):
            return self._last[2]
        if index != next_index:  # a jump: seek (reading forward a few frames is cheaper than seeking)
            if 0 < index - next_index <= 12:
                for _ in range(index - next_index):
                    cap.grab()
            else:
                cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, bgr = cap.read()
        self._caps[path] = (cap, index + 1)
        if not ok:
            return None
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        self._last = (path, index, rgb)
        return rgb

    def close(self) -> None:
        for cap, _ in self._caps.values():
            cap.release()
        self._caps.clear()


class Monitor(QWidget):
    """Renders PanelState at a playhead time: show(t)."""

    def __init__(self, state: PanelState, parent=None):
        super().__init__(parent)
        self.state = state
        self.source = FrameSource()
        self.t = 0.0
        self.frame: np.ndarray | None = None  # the RGB frame on screen (tests compare it with the media)
        self.caption = ""
        self.setMinimumSize(320, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def source_time(self, t: float):
        """(media path, source seconds, clip) at timeline time t, or None in a gap or offline."""
        clip = self.state.clip_at(t)
        if clip is None or not clip.media_found:
            return None, clip
        return (str(clip.media_path), clip.file_range.start_time.to_seconds() + t - clip.range.start_time.to_seconds()), clip

    def show_time(self, t: float) -> None:
        self.t = t
        where, clip = self.source_time(t)
        self.frame = self.source.frame(*where) if where else None
        self.caption = "" if clip is None else clip.name + ("" if clip.media_found else "  (media offline)")
        self.update()

    def paintEvent(self, _):
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#000000"))
        if self.frame is not None:
            h, w = self.frame.shape[:2]
            img = QImage(self.frame.data, w, h, 3 * w, QImage.Format.Format_RGB888)
            scale = min(self.width() / w, (self.height() - 22) / h)
            dw, dh = w * scale, h * scale
            p.drawImage(QRectF((self.width() - dw) / 2, (self.height() - 22 - dh) / 2, dw, dh), img)
        elif self.state.plan is not None:
            p.setPen(QColor("#888888"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.caption or "gap")
        if self.state.plan is not None:
            rate = self.state.plan.timeline.rate
            tc = opentime.to_timecode(opentime.RationalTime(round(self.t * rate), rate), rate)
            p.setPen(QColor("#e8e8e8"))
            p.setFont(QFont("Monospace", 11))
            p.drawText(QRectF(8, self.height() - 22, self.width() - 16, 20),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, tc)
            p.drawText(QRectF(8, self.height() - 22, self.width() - 16, 20),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, self.caption)
