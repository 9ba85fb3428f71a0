"""The timeline as the editor sees it: a ruler in the timeline's own timecode, the flattened
picture's clips as blocks (names, thumbnails where the media is found), the cuts as lines on their
frame, the timeline's markers (yellow, read-only here) and the hit points placed in the panel
(orange: drag to move); under it the lanes, which grow with the window: the music as a min/max
waveform per pixel, left channel above and right below, one block per music clip with its take
name, and the music's beat grid (downbeats orange, beats faint); the energy lane: the predicted
rhythm (dashed) at the model's resolution (one value a second) and the editor's edit of it (orange),
on the model's range (top and bottom are the condition's extremes): drag draws, Shift+drag chooses
a span, right-click offers the span's edits (ui/panel/energy.py); the visual beats (per second, the
feature's resolution). Ctrl+wheel zooms, "fit" zooms to the window, a click selects a clip and moves
the playhead. It renders PanelState and changes only the energy lane's edit and the hit points.
"""

from __future__ import annotations

import numpy as np
from opentimelineio import opentime
from PyQt6.QtCore import QLineF, QPoint, QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QImage, QPainter, QPen, QPixmap
from PyQt6.QtWidgets import QWidget

from ui.panel.state import PanelState

RULER, CLIPS = 24, 64
LANES = ("music", "rhythm", "beats")
LANE_SHARE = {"music": 0.5, "rhythm": 0.35, "beats": 0.15}  # of the height under the clips
HIT_GRAB_PX = 6
EAGER_THUMBS = 50  # clips whose thumbnails are read at open (about 0.15 s each: a seek in the media)
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
    hitsChanged = pyqtSignal()
    rhythmChanged = pyqtSignal()
    energyMenu = pyqtSignal(QPoint, float)  # a right-click on the energy lane: where, and at what time

    def __init__(self, state: PanelState, parent=None):
        super().__init__(parent)
        self.state = state
        self.px_per_s = 40.0
        self.playhead_s = 0.0
        self._thumbs: dict[int, QPixmap | None] = {}
        self._drag: int | None = None  # the user hit point being dragged
        self._stroke: tuple[float, float] | None = None  # the energy lane's freehand stroke: last (t, value)
        self._span_from: float | None = None  # where a Shift+drag span on the energy lane began
        self.fit = True  # zoomed to fit the window (until the editor zooms)
        self.setMinimumHeight(RULER + CLIPS + 150)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setMouseTracking(True)

    # -- geometry ---------------------------------------------------------------------------------
    def x_of(self, t: float) -> float:
        return 4 + t * self.px_per_s

    def t_of(self, x: float) -> float:
        return max(0.0, (x - 4) / self.px_per_s)

    def refresh(self) -> None:
        self._thumbs = {}
        if len(self.state.clips) <= EAGER_THUMBS:  # a short edit's now (at most EAGER_THUMBS seeks)
            for c in self.state.clips:
                self._thumb(c)
        self.relayout()  # a long edit's when a clip is first drawn wide enough to show one (none at fit)

    def _thumb(self, c) -> QPixmap | None:
        if c.index not in self._thumbs:
            self._thumbs[c.index] = thumbnail(c.media_path, c.file_range.start_time.to_seconds()) if c.media_found else None
        return self._thumbs[c.index]

    def relayout(self) -> None:
        self.setMinimumWidth(int(self.x_of(self.state.duration_s) + 8))
        self.update()

    def set_zoom(self, px_per_s: float) -> None:
        self.px_per_s = float(np.clip(px_per_s, 2, 800))
        self.relayout()

    def zoom_to_fit(self, width: int | None = None) -> None:
        """The whole timeline in `width` pixels (default: the scroll area's viewport, the parent)."""
        self.fit = True
        width = width or (self.parentWidget().width() if self.parentWidget() is not None else self.width())
        if self.state.duration_s > 0 and width > 40:
            self.set_zoom((width - 16) / self.state.duration_s)

    def resizeEvent(self, e):
        super().resizeEvent(e)
        parent = self.parentWidget()
        if self.fit and parent is not None and abs(self.x_of(self.state.duration_s) + 12 - parent.width()) > 2:
            self.zoom_to_fit(parent.width())

    def lane_rect(self, name: str) -> QRectF:
        top, avail = RULER + CLIPS, max(self.height() - RULER - CLIPS - 4, 90)
        y = top + sum(LANE_SHARE[n] for n in LANES[:LANES.index(name)]) * avail
        return QRectF(0, y, self.width(), LANE_SHARE[name] * avail)

    def in_lane(self, name: str, y: float) -> bool:
        r = self.lane_rect(name)
        return self.state.plan is not None and r.top() <= y < r.bottom()

    def _energy_geometry(self) -> tuple[float, float, float, float]:
        lane = self.lane_rect("rhythm")
        lo, hi = self.state.rhythm_bounds()
        return lane.bottom() - 4, lane.height() - 20, lo, hi

    def y_of_value(self, v: float) -> float:
        y0, h, lo, hi = self._energy_geometry()
        return y0 - h * (float(v) - lo) / max(hi - lo, 1e-6)

    def value_at(self, y: float) -> float:
        y0, h, lo, hi = self._energy_geometry()
        return float(np.clip(lo + (hi - lo) * (y0 - y) / max(h, 1), lo, hi))

    def hit_near(self, x: float) -> int | None:
        best = min(range(len(self.state.user_hits)), key=lambda i: abs(self.x_of(self.state.user_hits[i]) - x),
                   default=None)
        if best is not None and abs(self.x_of(self.state.user_hits[best]) - x) <= HIT_GRAB_PX:
            return best
        return None

    # -- input ------------------------------------------------------------------------------------
    def wheelEvent(self, e):
        if e.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.fit = False
            self.set_zoom(self.px_per_s * (1.25 if e.angleDelta().y() > 0 else 0.8))
            e.accept()
        else:
            super().wheelEvent(e)

    def _energy_press(self, e) -> None:
        x, y = e.position().x(), e.position().y()
        t = min(self.t_of(x), max(self.state.duration_s - 1e-3, 0.0))
        if e.button() == Qt.MouseButton.RightButton:
            self.energyMenu.emit(e.globalPosition().toPoint(), t)
        elif e.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self._span_from = t
            self.state.rhythm_span = (t, t)
        else:
            self.state.rhythm_span = None
            self.state.push_rhythm_undo()
            self._stroke = (t, self.value_at(y))
            self.state.draw_rhythm(t, self._stroke[1])
        self.update()

    def _energy_move(self, x: float, y: float) -> None:
        t = min(self.t_of(x), max(self.state.duration_s - 1e-3, 0.0))
        if self._span_from is not None:
            self.state.rhythm_span = tuple(sorted((self._span_from, t)))
        else:  # every second the stroke passed, on the line from its last point (a fast drag skips none)
            (ta, va), vb = self._stroke, self.value_at(y)
            n = max(1, int(abs(t - ta)) + 1)
            for k in range(n + 1):
                self.state.draw_rhythm(ta + (t - ta) * k / n, va + (vb - va) * k / n)
            self._stroke = (t, vb)
        self.update()

    def mousePressEvent(self, e):
        x, y = e.position().x(), e.position().y()
        if self.in_lane("rhythm", y):
            self._energy_press(e)
            return
        hit = self.hit_near(x)
        if hit is not None:  # grab a hit point placed in the panel
            self._drag = self.state.selected_hit = hit
            self.update()
            return
        self.state.selected_hit = None
        t = self.t_of(x)
        self.playhead_s = min(t, self.state.duration_s)
        clip = self.state.clip_at(t)
        if clip is not None and RULER <= y < RULER + CLIPS:
            self.state.selected_clip = clip.index
            self.clipSelected.emit(clip.index)
        self.seek.emit(self.playhead_s)
        self.update()

    def mouseMoveEvent(self, e):
        x = e.position().x()
        if self._stroke is not None or self._span_from is not None:
            self._energy_move(x, e.position().y())
        elif self._drag is not None:
            self.state.move_hit(self._drag, self.t_of(x))
            self._drag = self.state.selected_hit
            self.update()
        else:
            near = self.hit_near(x) is not None
            self.setCursor(Qt.CursorShape.SizeHorCursor if near else Qt.CursorShape.ArrowCursor)

    def mouseReleaseEvent(self, e):
        if self._stroke is not None or self._span_from is not None:
            self._stroke = self._span_from = None
            self.rhythmChanged.emit()
        if self._drag is not None:
            self._drag = None
            self.hitsChanged.emit()

    # -- painting ---------------------------------------------------------------------------------
    def paintEvent(self, e):
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#1e1f22"))
        st = self.state
        if st.plan is None:
            p.setPen(QColor("#aaaaaa"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Open a timeline (File > Open, or drop it here)")
            return
        tl = st.plan.timeline
        self._ruler(p, tl)
        seen = QRectF(e.rect())  # what this paint exposes: the clips outside it are not drawn (nor read)
        for c in tl.clips:
            if self.x_of(c.range.end_time_exclusive().to_seconds()) >= seen.left() and \
                    self.x_of(c.range.start_time.to_seconds()) <= seen.right():
                self._clip(p, c)
        labels = {"beats": "visual beats (per second)", "music": "music (beat grid: downbeats orange)",
                  "rhythm": "energy: predicted rhythm (dashed), your edit (orange); drag to draw, Shift+drag a "
                            "span, right-click to edit it"}
        for name in LANES:
            r = self.lane_rect(name)
            p.fillRect(r.adjusted(0, 1, 0, -1), QColor("#25272b"))
            p.setPen(QColor("#9a9a9a"))
            p.setFont(QFont("Sans", 8))
            p.drawText(int(r.left()) + 6, int(r.top()) + 13, labels[name])
        self._beats(p)
        self._rhythm(p)
        self._music(p)
        self._marks(p, tl, int(self.lane_rect(LANES[-1]).bottom()))

    def _clip(self, p: QPainter, c) -> None:
        """A picture clip: its colour, its thumbnail, its name (offline media in red), the selection."""
        x0, x1 = self.x_of(c.range.start_time.to_seconds()), self.x_of(c.range.end_time_exclusive().to_seconds())
        r = QRectF(x0, RULER + 2, max(x1 - x0 - 1, 1), CLIPS - 4)
        p.fillRect(r, CLIP_COLORS[c.index % len(CLIP_COLORS)])
        thumb = self._thumb(c) if r.width() > 20 else None
        if thumb is not None:
            p.drawPixmap(int(x0) + 2, RULER + 4, thumb.scaledToHeight(CLIPS - 24), 0, 0,
                         int(min(thumb.width(), r.width() - 4)), CLIPS - 24)
        if self.state.selected_clip == c.index:
            p.setPen(QPen(QColor("#ffd54a"), 3))
            p.drawRect(r)
        p.setPen(QColor("#ffffff") if c.media_found else QColor("#ffb0b0"))
        p.setFont(QFont("Sans", 8))
        p.drawText(r.adjusted(3, 0, -3, -2), Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignLeft,
                   c.name + ("" if c.media_found or not c.media else "  (offline)"))

    def _marks(self, p: QPainter, tl, height: int) -> None:
        """The cuts (red), the timeline's markers (read-only), the panel's hit points and the playhead."""
        st = self.state
        p.setPen(QPen(QColor("#ff5050"), 1))
        for c in tl.cuts:
            x = self.x_of(c.to_seconds())
            p.drawLine(int(x), RULER, int(x), height)
        p.setPen(QPen(QColor("#ffd54a"), 1, Qt.PenStyle.DashLine))
        for h in tl.hits:  # the timeline's markers: read-only here
            x = self.x_of(h.to_seconds())
            p.drawLine(int(x), 0, int(x), height)
            p.fillRect(QRectF(x - 4, 0, 8, 6), QColor("#ffd54a"))
        for i, h in enumerate(st.user_hits):  # hit points placed in the panel: drag, Delete
            x = self.x_of(h)
            chosen = i == st.selected_hit
            p.setPen(QPen(QColor("#ffc27a" if chosen else "#ff9d3b"), 3 if chosen else 1))
            p.drawLine(int(x), 0, int(x), height)
            p.fillRect(QRectF(x - 5, 0, 10, 10), QColor("#ffc27a" if chosen else "#ff9d3b"))
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

    def _beats(self, p: QPainter) -> None:
        values = self.state.beats
        if values is None or not len(values):
            return
        r = self.lane_rect("beats")
        y0, h = r.bottom() - 3, r.height() - 18
        top = max(float(np.max(values)), 1e-6)
        w = max(2.0, min(6.0, self.px_per_s / 6))
        for s, v in enumerate(values):
            if v > 0:
                x = self.x_of(s + 0.5)
                p.fillRect(QRectF(x - w / 2, y0 - h * v / top, w, h * v / top), QColor("#6fc3ff"))

    def _rhythm(self, p: QPainter) -> None:
        """The energy lane: the chosen span, the range's middle, the prediction (dashed) and the curve
        the next Generate follows (orange where edited)."""
        st = self.state
        lane = self.lane_rect("rhythm")
        if st.rhythm_span is not None:
            a, b = st.span_seconds(*st.rhythm_span)[0], st.span_seconds(*st.rhythm_span)[-1] + 1
            p.fillRect(QRectF(self.x_of(a), lane.top() + 16, self.x_of(b) - self.x_of(a), lane.height() - 17),
                       QColor(255, 255, 255, 34))
        p.setPen(QPen(QColor("#444850"), 1, Qt.PenStyle.DotLine))
        p.drawLine(int(self.x_of(0)), int(self.y_of_value(0)), int(self.x_of(st.duration_s)), int(self.y_of_value(0)))
        if st.rhythm is not None and len(st.rhythm):
            p.setPen(QPen(QColor("#8f78c8"), 1.5, Qt.PenStyle.DashLine))
            pred = [QPointF(self.x_of(s + 0.5), self.y_of_value(v)) for s, v in enumerate(np.ravel(st.rhythm))]
            for a, b in zip(pred, pred[1:]):
                p.drawLine(a, b)
        edit = st.rhythm_edit
        if not any(v is not None for v in edit) and st.rhythm is None:
            return
        pts = [QPointF(self.x_of(s + 0.5), self.y_of_value(v)) for s, v in enumerate(st.energy())]
        for k, (a, b) in enumerate(zip(pts, pts[1:])):
            edited = edit[k] is not None or edit[k + 1] is not None
            p.setPen(QPen(QColor("#ffa64d" if edited else "#b08cff"), 2))
            p.drawLine(a, b)
        for k, pt in enumerate(pts):
            color = QColor("#ffa64d" if edit[k] is not None else "#b08cff")
            p.setPen(color)
            p.setBrush(color)
            p.drawEllipse(QRectF(pt.x() - 2.5, pt.y() - 2.5, 5, 5))
        p.setBrush(Qt.BrushStyle.NoBrush)

    def _peaks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pixel columns, max and min of each channel under each): from the takes' peaks overview
        (ui/panel/peaks.py), once per overview and zoom (a paint draws them)."""
        ov = self.state.overview
        if getattr(self, "_peaks_of", None) is not ov or self._peaks_zoom != self.px_per_s:
            xs = np.arange(int(self.x_of(0)), int(self.x_of(ov.duration_s)))
            starts = (np.maximum(xs - 4, 0) / self.px_per_s * ov.rate).astype(np.int64)
            highs, lows = ov.columns(starts)
            self._peaks_of, self._peaks_zoom, self._peaks_val = ov, self.px_per_s, (xs, highs, lows)
        return self._peaks_val

    def _music(self, p: QPainter) -> None:
        """Min/max per pixel of each channel (left above the centre line, right below), per music
        clip block with its take name."""
        ov = self.state.overview
        if ov is None or ov.samples == 0:
            return
        lane = self.lane_rect("music")
        top, h = lane.top() + 16, lane.height() - 18
        peak = ov.peak
        half = h / 4 - 1
        mids = (top + h / 4, top + 3 * h / 4)
        blocks = [(c.range.start_time.to_seconds(), c.range.end_time_exclusive().to_seconds(), c.index)
                  for c in self.state.clips] or [(0.0, ov.duration_s, -1)]
        for a, b, idx in blocks:
            xa, xb = self.x_of(a), self.x_of(b)
            chosen = idx == self.state.selected_clip
            p.fillRect(QRectF(xa, top - 14, max(xb - xa - 1, 1), h + 14), QColor("#2f3b33" if not chosen else "#3d5544"))
            take = self.state.takes.get(idx, {}).get("current", "")
            if take:
                p.setPen(QColor("#cfe8d4"))
                p.setFont(QFont("Sans", 8))
                label = take.rsplit("-", 1)[-1].removesuffix(".wav")  # v1, v2, ...
                n = len(self.state.takes[idx]["takes"])
                p.drawText(QRectF(xa + 4, top - 14, max(xb - xa - 8, 1), 13), Qt.AlignmentFlag.AlignLeft,
                           f"take {label}" + (f" of {n}" if n > 1 else ""))
        for a, b in self.state.generated_spans:  # a conform's generated seconds, apart from the kept music
            p.fillRect(QRectF(self.x_of(a), top, max(self.x_of(b) - self.x_of(a), 1), h), QColor(230, 140, 60, 90))
        p.setPen(QColor("#7fd18b"))
        xs, highs, lows = self._peaks()
        for ch, mid in enumerate(mids):
            p.drawLines([QLineF(x, int(mid - half * hi / peak), x, int(mid - half * lo / peak))
                         for x, hi, lo in zip(xs.tolist(), highs[ch].tolist(), lows[ch].tolist())])
        p.setPen(QColor("#3c5a44"))
        for mid in mids:
            p.drawLine(int(self.x_of(0)), int(mid), int(self.x_of(ov.duration_s)), int(mid))
        self._beat_grid(p, top, h)
        self._ducking(p, top, h)

    def _beat_grid(self, p: QPainter, top: float, h: float) -> None:
        """The music's beats (faint, the lane's lower half) and downbeats (orange, its height), as the
        Beat markers switch says (downbeats: those only; off: none); only the downbeats where beats
        would be under 4 pixels apart."""
        b, which = self.state.music_beats, self.state.settings.beat_markers
        if b is None or not b.times_s or which == "off":
            return
        dense = which != "all" or (len(b.times_s) > 1 and
                                   (b.times_s[-1] - b.times_s[0]) / (len(b.times_s) - 1) * self.px_per_s < 4)
        for t, down in zip(b.times_s, b.downbeat):
            x = self.x_of(t)
            if down:
                p.setPen(QPen(QColor("#ff9d3b"), 1.5))
                p.drawLine(QPointF(x, top - 2), QPointF(x, top + h))
            elif not dense:
                p.setPen(QPen(QColor(255, 235, 140, 120), 1))
                p.drawLine(QPointF(x, top + h / 2), QPointF(x, top + h))

    def _ducking(self, p: QPainter, top: float, h: float) -> None:
        """The speech the engine found (orange bands) and the ducking envelope over the music (a line:
        0 dB at the top of the lane, the duck's depth lower by its share of 24 dB)."""
        d = self.state.ducking
        if d is None:
            return
        for a, b in d.regions:
            p.fillRect(QRectF(self.x_of(a), top - 14, max(self.x_of(b) - self.x_of(a), 1), 6), QColor("#e08a2e"))
        pen = QPen(QColor("#f0b45a"))
        pen.setWidthF(1.5)
        p.setPen(pen)

        def y(db: float) -> float:
            return top + h * min(-db, 24.0) / 24.0

        pts = [QPointF(self.x_of(t), y(db)) for t, db in d.keys]
        for a, b in zip(pts, pts[1:]):
            p.drawLine(a, b)
        p.setFont(QFont("Sans", 8))
        p.drawText(int(self.x_of(0)) + 6, int(top + h - 4), f"ducked {d.depth_db:g} dB under speech (orange)")
