"""The timeline as the editor sees it: a ruler in the timeline's own timecode, the flattened
picture's clips as blocks (names, thumbnails where the media is found), the cut lines, the markers
as hit points; under it the lanes: visual beats and scene onsets per second, the predicted rhythm,
and the music's waveform. Ctrl+wheel zooms, the scroll area scrolls, a click selects a clip and
moves the playhead. It only renders PanelState.
"""

from __future__ import annotations

import numpy as np
from opentimelineio import opentime
from PyQt6.QtCore import QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QImage, QPainter, QPen, QPixmap
from PyQt6.QtWidgets import QWidget

from ui.panel.state import PanelState

RULER, CLIPS, LANE = 22, 64, 40
LANES = ("beats", "onsets", "rhythm", "music")
CLIP_COLORS = [QColor("#3d6e9e"), QColor("#4f8a5b"), QColor("#8a6a3d"), QColor("#7a4f8a"), QColor("#3d8a86")]


def thumbnail(path, at_s: float, height: int = 48) -> QPixmap | None:
    """One frame of a clip's media (OpenCV; torch-free)."""
    try:
        import cv2

        cap = cv2.VideoCapture(str(path))
        cap.set(cv2.CAP_PROP_POS_MSEC, max(at_s, 0) * 1000)
        ok, frame = cap.read()
        cap.release()
        if not ok:
            return None
        h, w = frame.shape[:2]
        frame = cv2.cvtColor(cv2.resize(frame, (max(1, int(w * height / h)), height)), cv2.COLOR_BGR2RGB)
        img = QImage(frame.data, frame.shape[1], frame.shape[0], 3 * frame.shape[1], QImage.Format.Format_RGB888)
        return QPixmap.fromImage(img.copy())
    except Exception:  # noqa: BLE001 - a missing thumbnail is decoration, never an error
        return None


class TimelineView(QWidget):
    clipSelected = pyqtSignal(int)
    seek = pyqtSignal(float)

    def __init__(self, state: PanelState, parent=None):
        super().__init__(parent)
        self.state = state
        self.px_per_s = 40.0
        self.playhead_s = 0.0
        self._thumbs: dict[int, QPixmap | None] = {}
        self.setMinimumHeight(RULER + CLIPS + LANE * len(LANES) + 8)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)

    # -- geometry ---------------------------------------------------------------------------------
    def x_of(self, t: float) -> float:
        return 4 + t * self.px_per_s

    def t_of(self, x: float) -> float:
        return max(0.0, (x - 4) / self.px_per_s)

    def refresh(self) -> None:
        self._thumbs = {c.index: thumbnail(c.media_path, c.file_range.start_time.to_seconds())
                        for c in self.state.clips if c.media_found}
        self.relayout()

    def relayout(self) -> None:
        self.setMinimumWidth(int(self.x_of(self.state.duration_s) + 8))
        self.update()

    def set_zoom(self, px_per_s: float) -> None:
        self.px_per_s = float(np.clip(px_per_s, 2, 800))
        self.relayout()

    def lane_top(self, name: str) -> int:
        return RULER + CLIPS + LANE * LANES.index(name)

    # -- input ------------------------------------------------------------------------------------
    def wheelEvent(self, e):
        if e.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.set_zoom(self.px_per_s * (1.25 if e.angleDelta().y() > 0 else 0.8))
            e.accept()
        else:
            super().wheelEvent(e)

    def mousePressEvent(self, e):
        t = self.t_of(e.position().x())
        self.playhead_s = min(t, self.state.duration_s)
        clip = self.state.clip_at(t)
        if clip is not None and RULER <= e.position().y() < RULER + CLIPS:
            self.state.selected_clip = clip.index
            self.clipSelected.emit(clip.index)
        self.seek.emit(self.playhead_s)
        self.update()

    # -- painting ---------------------------------------------------------------------------------
    def paintEvent(self, _):
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#1e1f22"))
        st = self.state
        if st.plan is None:
            p.setPen(QColor("#aaaaaa"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Open a timeline (File > Open, or drop it here)")
            return
        tl = st.plan.timeline
        self._ruler(p, tl)
        for c in tl.clips:
            x0, x1 = self.x_of(c.range.start_time.to_seconds()), self.x_of(c.range.end_time_exclusive().to_seconds())
            r = QRectF(x0, RULER + 2, max(x1 - x0 - 1, 1), CLIPS - 4)
            p.fillRect(r, CLIP_COLORS[c.index % len(CLIP_COLORS)])
            thumb = self._thumbs.get(c.index)
            if thumb is not None and r.width() > 20:
                p.drawPixmap(int(x0) + 2, RULER + 4, thumb.scaledToHeight(CLIPS - 24), 0, 0,
                             int(min(thumb.width(), r.width() - 4)), CLIPS - 24)
            if st.selected_clip == c.index:
                p.setPen(QPen(QColor("#ffd54a"), 3))
                p.drawRect(r)
            p.setPen(QColor("#ffffff") if c.media_found else QColor("#ffb0b0"))
            p.setFont(QFont("Sans", 8))
            p.drawText(r.adjusted(3, 0, -3, -2), Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignLeft,
                       c.name + ("" if c.media_found or not c.media else "  (offline)"))
        for name in LANES:
            y = self.lane_top(name)
            p.fillRect(QRectF(0, y + 1, self.width(), LANE - 2), QColor("#26282c"))
            p.setPen(QColor("#777777"))
            p.setFont(QFont("Sans", 7))
            p.drawText(6, y + 11, {"beats": "visual beats", "onsets": "scene onsets", "rhythm": "predicted rhythm",
                                   "music": "music"}[name])
        self._bars(p, st.beats, "beats", QColor("#6fc3ff"))
        self._bars(p, st.onsets, "onsets", QColor("#ff6f6f"))
        self._rhythm(p)
        self._waveform(p)
        height = RULER + CLIPS + LANE * len(LANES)
        p.setPen(QPen(QColor("#ff5050"), 1))
        for c in tl.cuts:
            x = self.x_of(c.to_seconds())
            p.drawLine(int(x), RULER, int(x), height)
        p.setPen(QPen(QColor("#ffd54a"), 1, Qt.PenStyle.DashLine))
        for h in tl.hits:
            x = self.x_of(h.to_seconds())
            p.drawLine(int(x), 0, int(x), height)
            p.fillRect(QRectF(x - 4, 0, 8, 6), QColor("#ffd54a"))
        p.setPen(QPen(QColor("#ffffff"), 2))
        x = self.x_of(self.playhead_s)
        p.drawLine(int(x), 0, int(x), height)

    def _ruler(self, p: QPainter, tl) -> None:
        rate = tl.rate
        step = next(s for s in (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600) if s * self.px_per_s >= 70)
        p.setPen(QColor("#bbbbbb"))
        p.setFont(QFont("Monospace", 7))
        t = 0.0
        while t <= tl.duration.to_seconds() + 1e-9:
            x = self.x_of(t)
            p.drawLine(int(x), RULER - 6, int(x), RULER)
            tc = opentime.to_timecode(opentime.RationalTime(round(t * rate), rate), rate)
            p.drawText(int(x) + 2, 12, tc)
            t += step

    def _bars(self, p: QPainter, values, lane: str, color: QColor) -> None:
        if values is None:
            return
        y0, h = self.lane_top(lane) + LANE - 3, LANE - 16
        top = max(float(np.max(values)), 1e-6)
        for s, v in enumerate(values):
            if v > 0:
                x = self.x_of(s)
                p.fillRect(QRectF(x + 1, y0 - h * v / top, max(self.px_per_s - 2, 1), h * v / top), color)

    def _rhythm(self, p: QPainter) -> None:
        r = self.state.rhythm
        if r is None or len(r) == 0:
            return
        y0, h = self.lane_top("rhythm") + LANE - 4, LANE - 16
        lo, hi = float(np.min(r)), float(np.max(r))
        span = max(hi - lo, 1e-6)
        p.setPen(QPen(QColor("#b08cff"), 2))
        pts = [(self.x_of(s + 0.5), y0 - h * (v - lo) / span) for s, v in enumerate(r)]
        for (xa, ya), (xb, yb) in zip(pts, pts[1:]):
            p.drawLine(int(xa), int(ya), int(xb), int(yb))

    def _waveform(self, p: QPainter) -> None:
        m = self.state.music
        if m is None or m.size == 0:
            return
        mono = m.mean(axis=0)
        sr = self.state.music_rate
        mid, half = self.lane_top("music") + LANE / 2, LANE / 2 - 3
        peak = max(float(np.abs(mono).max()), 1e-6)
        p.setPen(QColor("#7fd18b"))
        width = int(self.x_of(len(mono) / sr))
        per_px = max(1, int(sr / self.px_per_s))
        for x in range(4, width):
            a = int(self.t_of(x) * sr)
            seg = mono[a:a + per_px]
            if seg.size:
                p.drawLine(x, int(mid - half * seg.max() / peak), x, int(mid - half * seg.min() / peak))
