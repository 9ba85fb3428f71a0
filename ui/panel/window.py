"""The editor's panel (PyQt6): open a timeline, see the picture at the playhead and the cut with its
lanes, place hit points, generate, listen, regenerate one clip as new takes, audition and choose
takes, export. Engine work runs off the UI thread through EngineClient; the panel keeps its state
in PanelState and only renders it.

Keys: Space play/pause, J back 1 s, K stop, L play, Home/End, Left/Right one frame, M a hit point
at the playhead, Delete removes the selected hit point, A plays the selected clip's current and
previous take in turn (A/B), F zooms the timeline to fit.

    cutscore panel [TIMELINE] [--screenshot PNG]
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QObject, Qt, QThread, QTimer, QUrl, pyqtSignal
from PyQt6.QtGui import QAction, QColor, QKeySequence, QPalette
from PyQt6.QtWidgets import (
    QApplication,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core.errors import CutscoreError
from ui.panel.monitor import Monitor
from ui.panel.state import OUTPUT_FORMATS, SAMPLERS, PanelState
from ui.panel.timeline_view import TimelineView

TIMELINE_FILTER = "Timelines (*.otio *.otioz *.otiod *.xml *.edl *.kdenlive)"


def dark_theme(app: QApplication) -> None:
    """One dark theme for every widget (Qt's Fusion style with a dark palette), like the NLEs' own."""
    app.setStyle("Fusion")
    pal = QPalette()
    for role, color in ((QPalette.ColorRole.Window, "#202226"), (QPalette.ColorRole.WindowText, "#e4e4e4"),
                        (QPalette.ColorRole.Base, "#17181b"), (QPalette.ColorRole.AlternateBase, "#25272b"),
                        (QPalette.ColorRole.Text, "#e4e4e4"), (QPalette.ColorRole.Button, "#2c2f34"),
                        (QPalette.ColorRole.ButtonText, "#e4e4e4"), (QPalette.ColorRole.Highlight, "#3d7bd6"),
                        (QPalette.ColorRole.HighlightedText, "#ffffff"), (QPalette.ColorRole.ToolTipBase, "#2c2f34"),
                        (QPalette.ColorRole.ToolTipText, "#e4e4e4"), (QPalette.ColorRole.PlaceholderText, "#8a8a8a")):
        pal.setColor(role, QColor(color))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6c6c6c"))
    app.setPalette(pal)


class Task(QObject):
    """Runs one function on a QThread; reports progress, the result, or a one-line error + details."""

    progress = pyqtSignal(object)
    finished = pyqtSignal(object)
    failed = pyqtSignal(str, str)

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def run(self) -> None:
        try:
            self.finished.emit(self.fn(self.progress.emit))
        except CutscoreError as e:
            self.failed.emit(str(e), traceback.format_exc())
        except Exception as e:  # noqa: BLE001 - shown as one line, details on demand
            self.failed.emit(f"{type(e).__name__}: {e}", traceback.format_exc())


class PanelWindow(QMainWindow):
    generated = pyqtSignal()
    failed = pyqtSignal(str)

    def __init__(self, client_factory=None, state: PanelState | None = None):
        super().__init__()
        self.state = state or PanelState()
        self._client_factory = client_factory
        self._client = None
        self._job_id: str | None = None
        self._threads: list[tuple[QThread, Task]] = []
        self.setWindowTitle("cutscore")
        self.resize(1280, 760)
        self.setAcceptDrops(True)
        if QApplication.instance() is not None:
            dark_theme(QApplication.instance())
            self.setPalette(QApplication.instance().palette())
        self._build()
        self._player = None
        self._player_source: str | None = None
        self._play_offset_s = 0.0  # timeline time of the player's position 0 (a take auditions from its clip)
        self._ab_next = 0  # which take the next A/B press plays (0 = current, 1 = previous)
        self._takes_shown: tuple | None = None  # what the takes list shows now
        self._play_timer = QTimer(self, interval=40, timeout=self._tick_playhead)
        self._sync()

    # ---- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        """Monitor and settings on top, the timeline below (a splitter: both grow with the window)."""
        menu = self.menuBar().addMenu("&File")
        act = QAction("&Open…", self, shortcut=QKeySequence.StandardKey.Open, triggered=self._open_dialog)
        menu.addAction(act)
        self.recent_menu = menu.addMenu("Open &recent")
        menu.addAction(QAction("&Export scored timeline", self, triggered=self.export))

        self.view = TimelineView(self.state)
        self.view.clipSelected.connect(lambda _: self._sync())
        self.view.seek.connect(self._seek)
        self.view.hitsChanged.connect(self._sync)
        scroll = QScrollArea()
        scroll.setWidget(self.view)
        scroll.setWidgetResizable(True)
        self.scroll = scroll
        self.monitor = Monitor(self.state)

        form = self._build_settings()
        self._build_buttons()
        self._build_layout(form, scroll)
        self._build_shortcuts()

    def _build_settings(self) -> QFormLayout:
        s = self.state.settings
        self.model_edit = QLineEdit(s.model)
        self.model_edit.setPlaceholderText("default: the demo model, else debug")
        self.seed = QSpinBox(maximum=2**31 - 2, value=s.seed)
        new_seed = QPushButton("New seed", clicked=lambda: self.seed.setValue(s.new_seed()))
        self.sampler = QComboBox()
        self.sampler.addItems(SAMPLERS)
        self.sampler.setCurrentText(s.sampler)
        self.steps = QSpinBox(minimum=1, maximum=1000, value=s.steps)
        self.guidance = QDoubleSpinBox(minimum=0, maximum=20, singleStep=0.5, value=s.guidance)
        self.loudness = QDoubleSpinBox(minimum=-40, maximum=0, singleStep=1, value=s.loudness, suffix=" LUFS")
        self.fmt = QComboBox()
        self.fmt.addItems(OUTPUT_FORMATS)
        form = QFormLayout()
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed)
        seed_row.addWidget(new_seed)
        for label, w in (("Model", self.model_edit), ("Seed", seed_row), ("Sampler", self.sampler), ("Steps", self.steps),
                         ("Guidance", self.guidance), ("Loudness", self.loudness), ("Output", self.fmt)):
            form.addRow(label, w)

        return form

    def _build_buttons(self) -> None:
        self.generate_btn = QPushButton("Generate", clicked=self.generate)
        self.regen_btn = QPushButton("Regenerate clip", clicked=self.regenerate)
        self.cancel_btn = QPushButton("Cancel", clicked=self.cancel)
        self.play_btn = QPushButton("Play", clicked=self.toggle_play)
        self.export_btn = QPushButton("Export", clicked=self.export)
        self.progress = QProgressBar(minimum=0, maximum=1000)
        self.stage = QLabel("")
        self.error = QLabel("")
        self.error.setStyleSheet("color: #ff7070")
        self.error.setWordWrap(True)
        self.details_btn = QPushButton("Details", clicked=self._show_details)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.takes_label = QLabel("Takes")
        self.takes = QListWidget()
        self.takes.setMaximumHeight(110)
        self.takes.itemClicked.connect(lambda item: self.audition(item.data(Qt.ItemDataRole.UserRole)))
        self.use_take_btn = QPushButton("Use this take", clicked=self.use_take)


    def _build_layout(self, form: QFormLayout, scroll: QScrollArea) -> None:
        side = QVBoxLayout()
        side.addLayout(form)
        for row in ((self.generate_btn, self.regen_btn, self.cancel_btn), (self.play_btn, self.export_btn)):
            buttons = QHBoxLayout()
            for b in row:
                buttons.addWidget(b)
            side.addLayout(buttons)
        side.addWidget(self.progress)
        side.addWidget(self.stage)
        err_row = QHBoxLayout()
        err_row.addWidget(self.error, 1)
        err_row.addWidget(self.details_btn)
        side.addLayout(err_row)
        side.addWidget(self.takes_label)
        side.addWidget(self.takes)
        side.addWidget(self.use_take_btn)
        side.addWidget(self.info)
        side.addStretch(1)
        side_w = QWidget()
        side_w.setLayout(side)
        side_w.setFixedWidth(400)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.monitor, 1)
        top.addWidget(side_w)
        top_w = QWidget()
        top_w.setLayout(top)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top_w)
        split.addWidget(scroll)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        split.setSizes([400, 360])
        scroll.setMinimumHeight(280)
        self.setCentralWidget(split)

    def _build_shortcuts(self) -> None:
        for key, fn in ((Qt.Key.Key_Space, self.toggle_play), (Qt.Key.Key_J, lambda: self.step(-1.0)),
                        (Qt.Key.Key_K, self.stop), (Qt.Key.Key_L, self.play), (Qt.Key.Key_Home, lambda: self.go(0.0)),
                        (Qt.Key.Key_End, lambda: self.go(self.state.duration_s)),
                        (Qt.Key.Key_Left, lambda: self.step(-self._frame())),
                        (Qt.Key.Key_Right, lambda: self.step(self._frame())), (Qt.Key.Key_M, self.add_hit),
                        (Qt.Key.Key_Delete, self.remove_hit), (Qt.Key.Key_A, self.ab),
                        (Qt.Key.Key_F, lambda: self.view.zoom_to_fit(self.scroll.viewport().width()))):
            act = QAction(self, shortcut=QKeySequence(key), triggered=lambda _=False, fn=fn: fn())
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            self.addAction(act)

    def _settings(self):
        s = self.state.settings
        s.model, s.seed = self.model_edit.text().strip(), self.seed.value()
        s.sampler, s.steps, s.guidance = self.sampler.currentText(), self.steps.value(), self.guidance.value()
        s.loudness, s.output_format = self.loudness.value(), self.fmt.currentText()
        return s

    def _sync(self) -> None:
        st = self.state
        has = st.plan is not None
        self.generate_btn.setEnabled(has and not st.busy)
        self.regen_btn.setEnabled(has and not st.busy and st.scored_path is not None and st.selected_clip is not None)
        self.cancel_btn.setEnabled(st.busy)
        self.export_btn.setEnabled(st.scored_path is not None and not st.busy)
        self.play_btn.setEnabled(st.music is not None)
        self.progress.setValue(int(st.progress * 1000))
        self.stage.setText("")
        if st.stage:
            left = st.time_left_s(time.monotonic())
            self.stage.setText(f"{st.stage}: {st.message}" + (f"  (about {left:.0f} s left)" if left is not None else ""))
        self.error.setText(st.error)
        self.details_btn.setVisible(bool(st.error_details))
        self._sync_takes()
        self.recent_menu.clear()
        for r in st.recent:
            self.recent_menu.addAction(QAction(r, self, triggered=lambda _=False, r=r: self.open(r)))
        self.view.update()

    # ---- open -----------------------------------------------------------------------------------
    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a timeline", "", TIMELINE_FILTER)
        if path:
            self.open(path)

    def dragEnterEvent(self, e):
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    def dropEvent(self, e):
        urls = [u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.open(urls[0])

    def open(self, path: str | Path) -> bool:
        try:
            plan = self.state.open(path)
        except CutscoreError as e:
            self.state.error, self.state.error_details = str(e), ""
            self._sync()
            self.failed.emit(str(e))
            return False
        tl = plan.timeline
        self.setWindowTitle(f"cutscore: {tl.name}")
        self.info.setText(f"{len(tl.clips)} clips, {len(tl.cuts)} cuts, {len(tl.hits)} hit points, "
                          f"{tl.duration.to_seconds():.2f} s at {tl.rate:g} fps"
                          + (f"\n{len(tl.warnings)} clip(s) offline" if tl.warnings else ""))
        self.view.playhead_s = 0.0
        self.view.refresh()
        self.view.zoom_to_fit(self.scroll.viewport().width())
        self.monitor.show_time(0.0)
        self._player = None
        self._sync()
        self._start(self._compute_lanes, self._lanes_done, busy=False)
        return True

    def _compute_lanes(self, _progress):
        """Visual beats per second of the timeline, from each clip's media (no CLIP needed), computed
        by the engine's own process (engine/tools.py visual-beats)."""
        from core.client import tool_json

        st = self.state
        beats = np.zeros(int(np.ceil(st.duration_s)), np.float32)
        clips = [c for c in st.clips if c.media_found]
        ranges = [[str(c.media_path), c.file_range.start_time.to_seconds(),
                   c.file_range.start_time.to_seconds() + c.range.duration.to_seconds()] for c in clips]
        per_clip = tool_json("visual-beats", {"ranges": ranges})["beats"] if ranges else []
        for c, clip_beats in zip(clips, per_clip):
            t0 = c.range.start_time.to_seconds()
            for k, v in enumerate(clip_beats or []):
                i = int(t0 + k)
                if i < len(beats):
                    beats[i] = max(beats[i], v)
        return beats

    def _lanes_done(self, beats) -> None:
        self.state.beats = beats
        self._sync()

    # ---- engine work ----------------------------------------------------------------------------
    def client(self):
        if self._client is None:
            if self._client_factory is not None:
                self._client = self._client_factory()
            else:  # a running engine, else a private one in a child process: the UI never waits on the model
                from core.client import connect

                self._client = connect(None, spawn=True)
        return self._client

    def _start(self, fn, on_done, busy: bool = True) -> None:
        thread, task = QThread(self), Task(fn)
        task.moveToThread(thread)
        thread.started.connect(task.run)
        task.progress.connect(self._on_progress)
        task.finished.connect(on_done)
        task.failed.connect(self._on_failed)
        for sig in (task.finished, task.failed):
            sig.connect(thread.quit)
        thread.finished.connect(lambda: self._threads.remove((thread, task)) if (thread, task) in self._threads else None)
        self._threads.append((thread, task))
        if busy:
            self.state.busy, self.state.error, self.state.error_details = True, "", ""
            self.state.stage, self.state.progress, self.state.message = "features", 0.0, "starting"
            self.state.started_at = time.monotonic()
        self._sync()
        thread.start()

    def _on_progress(self, st) -> None:
        self._job_id = st.id
        self.state.stage, self.state.progress, self.state.message = st.stage, st.progress, st.message
        self._sync()

    def _on_failed(self, message: str, details: str) -> None:
        self.state.busy, self.state.error, self.state.error_details = False, message, details
        self.state.stage = ""
        self._sync()
        self.failed.emit(message)

    def generate(self) -> None:
        from plugin.score import ScoreOptions, score_timeline

        st, s = self.state, self._settings()
        out = st.scored_default_path()
        opts = ScoreOptions(model=s.model or None, seed=s.seed, steps=s.steps, guidance=s.guidance, sampler=s.sampler,
                            loudness=s.loudness, force=True, hits_s=list(st.user_hits))
        client = self.client()
        self._start(lambda emit: score_timeline(st.path, out, client, opts, on_progress=emit), self._generated)

    def _generated(self, result) -> None:
        st = self.state
        st.scored_path = Path(result["out"])
        st.load_music()
        st.busy, st.stage, st.progress = False, "done", 1.0
        st.message = f"wrote {st.scored_path}"
        self.info.setText(f"Scored timeline: {st.scored_path}\nMusic: {result['sidecar']}"
                          + "".join(f"\nnote: {n}" for n in result["notices"]))
        self._player = None
        self._sync()
        self.generated.emit()

    def regenerate(self) -> None:
        from plugin.regenerate import regenerate_clip

        st, s = self.state, self._settings()
        if st.scored_path is None or st.selected_clip is None:
            return
        client, scored, clip, hits = self.client(), st.scored_path, str(st.selected_clip), list(st.user_hits)
        seed = s.new_seed()
        self.seed.setValue(seed)
        self._start(lambda emit: regenerate_clip(scored, clip, client, out_path=scored, seed=seed, force=True,
                                                 on_progress=emit, hits_s=hits), self._regenerated)

    def _regenerated(self, result) -> None:
        st = self.state
        st.load_music()
        st.busy, st.stage, st.progress = False, "done", 1.0
        st.message = f"clip {result['clip']} {result['name']!r}: {Path(result['wav']).name}"
        self._player = None
        self._sync()
        self.generated.emit()

    def cancel(self) -> None:
        if self._job_id and self._client is not None:
            self._client.cancel(self._job_id)
            self.state.message = "cancelling…"
            self._sync()

    def export(self) -> None:
        from plugin.state import export_scored

        st = self.state
        if st.scored_path is None:
            return
        fmt = self._settings().output_format
        if fmt == ".kdenlive" and st.path.suffix.lower() != ".kdenlive":
            self.state.error = "a .kdenlive export needs a .kdenlive project as input; choose .otio or .xml"
            self._sync()
            return
        out = st.path.with_name(f"{st.path.stem}-cutscore{fmt}")
        n = 2
        while out.exists():
            out = st.path.with_name(f"{st.path.stem}-cutscore-{n}{fmt}")
            n += 1
        try:
            export_scored(st.scored_path, out)
        except CutscoreError as e:
            self.state.error = str(e)
        else:
            self.state.message = f"exported {out}"
            self.info.setText(f"Exported: {out}")
        self._sync()

    def _show_details(self) -> None:
        QMessageBox.information(self, "cutscore: details", self.state.error_details or self.state.error)

    # ---- takes ----------------------------------------------------------------------------------
    def _sync_takes(self) -> None:
        """The selected clip's takes; rebuilt only when they change (a progress tick or a dragged
        hit point must not reset the take the editor clicked)."""
        st = self.state
        info = st.takes.get(st.selected_clip) if st.selected_clip is not None else None
        self.use_take_btn.setEnabled(bool(info) and not st.busy)
        key = (st.selected_clip, info["current"] if info else None, tuple(info["takes"]) if info else ())
        if key == self._takes_shown:
            return
        self._takes_shown = key
        self.takes.clear()
        self.takes_label.setText(f"Takes of clip {st.selected_clip} {info['name']!r}" if info else
                                 "Takes (select a clip of a scored timeline)")
        for name in (info or {}).get("takes", []):
            label = name.rsplit("-", 1)[-1].removesuffix(".wav") + ("  (in the timeline)" if name == info["current"] else "")
            self.takes.addItem(label)
            item = self.takes.item(self.takes.count() - 1)
            item.setData(Qt.ItemDataRole.UserRole, name)
            if name == info["current"]:
                self.takes.setCurrentItem(item)

    def _take_audio(self, take: str):
        from plugin.render import read_wav

        return read_wav(self.state.scored_path.with_name(self.state.scored_path.stem + ".cutscore") / take)[0]

    def audition(self, take: str) -> None:
        """Play one take of the selected clip in place (from the clip's start on the timeline)."""
        st = self.state
        clip = next((c for c in st.clips if c.index == st.selected_clip), None)
        if clip is None or not take:
            return
        self._auditioned = take
        side = st.scored_path.with_name(st.scored_path.stem + ".cutscore")
        self._play_file(side / take, clip.range.start_time.to_seconds())

    def ab(self) -> None:
        """A/B: the selected clip's take in the timeline, then the one before it, in turn."""
        info = self.state.takes.get(self.state.selected_clip)
        if not info or len(info["takes"]) < 2:
            return
        cur = info["takes"].index(info["current"])
        other = cur - 1 if cur > 0 else cur + 1
        take = info["takes"][cur if self._ab_next == 0 else other]
        self._ab_next = 1 - self._ab_next
        self.audition(take)

    def use_take(self) -> None:
        from plugin.regenerate import choose_take

        st, item = self.state, self.takes.currentItem()
        if st.scored_path is None or st.selected_clip is None or item is None:
            return
        try:
            choose_take(st.scored_path, st.selected_clip, item.data(Qt.ItemDataRole.UserRole))
        except CutscoreError as e:
            st.error = str(e)
        else:
            st.load_music()
            st.message = f"clip {st.selected_clip} plays {item.data(Qt.ItemDataRole.UserRole)}"
            self._player = None
        self._sync()

    # ---- hit points -------------------------------------------------------------------------------
    def add_hit(self) -> None:
        if self.state.plan is not None:
            self.state.add_hit(self.view.playhead_s)
            self._sync()

    def remove_hit(self) -> None:
        if self.state.remove_hit():
            self._sync()

    # ---- transport ----------------------------------------------------------------------------------
    def _frame(self) -> float:
        return 1.0 / self.state.plan.timeline.rate if self.state.plan else 1 / 25

    def go(self, t: float) -> None:
        t = float(np.clip(t, 0.0, self.state.duration_s))
        self.view.playhead_s = t
        self.monitor.show_time(t)
        self._seek(t)
        self.view.update()

    def step(self, dt: float) -> None:
        self.go(self.view.playhead_s + dt)

    def _play_file(self, path: Path, offset_s: float) -> None:
        from PyQt6.QtMultimedia import QAudioOutput, QMediaPlayer

        if self._player is None:
            self._player, self._audio = QMediaPlayer(self), QAudioOutput(self)
            self._player.setAudioOutput(self._audio)
        if self._player_source != str(path):
            self._player.setSource(QUrl.fromLocalFile(str(path)))
            self._player_source = str(path)
        self._play_offset_s = offset_s
        self._player.setPosition(0)
        self.view.playhead_s = offset_s
        self._player.play()
        self._play_timer.start()
        self.play_btn.setText("Pause")

    def _ensure_player(self):
        """The whole scored music as one preview WAV next to the sidecar."""
        st = self.state
        if st.scored_path is None or st.music is None:
            return None
        preview = st.scored_path.with_name(st.scored_path.stem + ".cutscore") / "preview.wav"
        if self._player is None or self._player_source != str(preview):
            from PyQt6.QtMultimedia import QAudioOutput, QMediaPlayer

            from plugin.render import write_wav

            write_wav(preview, st.music, st.music_rate, subtype="PCM_16")
            if self._player is None:
                self._player, self._audio = QMediaPlayer(self), QAudioOutput(self)
                self._player.setAudioOutput(self._audio)
            self._player.setSource(QUrl.fromLocalFile(str(preview)))
            self._player_source = str(preview)
        self._play_offset_s = 0.0
        return self._player

    def play(self) -> None:
        player = self._ensure_player()
        if player is None:
            self._play_timer.start()  # no music yet: the picture still plays
            return
        player.setPosition(int(self.view.playhead_s * 1000))
        player.play()
        self._play_timer.start()
        self.play_btn.setText("Pause")

    def stop(self) -> None:
        if self._player is not None:
            self._player.pause()
        self._play_timer.stop()
        self.play_btn.setText("Play")

    def toggle_play(self) -> None:
        if self._play_timer.isActive():
            self.stop()
        else:
            self.play()

    def _tick_playhead(self) -> None:
        from PyQt6.QtMultimedia import QMediaPlayer

        if self._player is not None:
            if self._player.playbackState() != QMediaPlayer.PlaybackState.PlayingState:
                self.stop()  # the music (or the auditioned take) ended
                return
            t = self._play_offset_s + self._player.position() / 1000
        else:  # no music yet: the picture plays on the timer
            t = self.view.playhead_s + self._play_timer.interval() / 1000
        if t >= self.state.duration_s:
            self.stop()
            t = self.state.duration_s
        self.view.playhead_s = t
        self.monitor.show_time(t)
        self.view.update()

    def _seek(self, t: float) -> None:
        self.monitor.show_time(t)
        if self._player is not None:
            self._player.setPosition(int(max(t - self._play_offset_s, 0) * 1000))

    def closeEvent(self, e):
        if self._job_id and self._client is not None and self.state.busy:
            self._client.cancel(self._job_id)
        for thread, _ in list(self._threads):
            thread.quit()
            thread.wait(5000)
        self.monitor.source.close()
        if self._client_factory is None and hasattr(self._client, "close"):
            self._client.close()
        super().closeEvent(e)


def run_panel(timeline: str | None = None, screenshot: str | None = None) -> int:
    import sys

    app = QApplication.instance() or QApplication(sys.argv[:1])
    win = PanelWindow()  # applies the dark theme to the application
    if timeline and not win.open(timeline):
        if screenshot:
            raise CutscoreError(win.state.error)
    win.show()
    if screenshot:
        for _ in range(20):
            app.processEvents()
        for thread, _ in list(win._threads):
            thread.wait(60000)
        app.processEvents()
        if not win.grab().save(screenshot):
            raise CutscoreError(f"{screenshot}: could not write the picture (a .png path?)")
        return 0
    return app.exec()
