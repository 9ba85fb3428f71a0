"""The editor's panel (PyQt6): open a timeline, see the cut and its lanes, generate, listen,
regenerate one clip, export. Engine work runs off the UI thread through EngineClient; the panel
keeps its state in PanelState and only renders it.

    cutscore panel [TIMELINE] [--screenshot PNG]
"""

from __future__ import annotations

import traceback
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QObject, Qt, QThread, QTimer, QUrl, pyqtSignal
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.errors import CutscoreError
from ui.panel.state import OUTPUT_FORMATS, SAMPLERS, PanelState
from ui.panel.timeline_view import TimelineView

TIMELINE_FILTER = "Timelines (*.otio *.otioz *.otiod *.xml *.edl *.kdenlive)"


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
        self.resize(1200, 560)
        self.setAcceptDrops(True)
        self._build()
        self._player = None
        self._play_timer = QTimer(self, interval=40, timeout=self._tick_playhead)
        self._sync()

    # ---- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        s = self.state.settings
        menu = self.menuBar().addMenu("&File")
        act = QAction("&Open…", self, shortcut=QKeySequence.StandardKey.Open, triggered=self._open_dialog)
        menu.addAction(act)
        self.recent_menu = menu.addMenu("Open &recent")
        menu.addAction(QAction("&Export scored timeline", self, triggered=self.export))

        self.view = TimelineView(self.state)
        self.view.clipSelected.connect(lambda _: self._sync())
        self.view.seek.connect(self._seek)
        scroll = QScrollArea()
        scroll.setWidget(self.view)
        scroll.setWidgetResizable(True)

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

        self.generate_btn = QPushButton("Generate", clicked=self.generate)
        self.regen_btn = QPushButton("Regenerate clip", clicked=self.regenerate)
        self.cancel_btn = QPushButton("Cancel", clicked=self.cancel)
        self.play_btn = QPushButton("Play", clicked=self.toggle_play)
        self.export_btn = QPushButton("Export", clicked=self.export)
        self.progress = QProgressBar(minimum=0, maximum=1000)
        self.stage = QLabel("")
        self.error = QLabel("")
        self.error.setStyleSheet("color: #ff7070")
        self.details_btn = QPushButton("Details", clicked=self._show_details)
        self.info = QLabel("")
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

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
        side.addWidget(self.info)
        side.addStretch(1)
        side_w = QWidget()
        side_w.setLayout(side)
        side_w.setFixedWidth(420)
        root = QHBoxLayout()
        root.addWidget(scroll, 1)
        root.addWidget(side_w)
        central = QWidget()
        central.setLayout(root)
        self.setCentralWidget(central)

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
        self.stage.setText(f"{st.stage}: {st.message}" if st.stage else "")
        self.error.setText(st.error)
        self.details_btn.setVisible(bool(st.error_details))
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
        self._sync()
        self._start(self._compute_lanes, self._lanes_done, busy=False)
        return True

    def _compute_lanes(self, _progress):
        """Visual beats per second of the timeline, from each clip's media (no CLIP needed)."""
        from engine.features import FeatureConfig, extract_report

        st = self.state
        beats = np.zeros(int(np.ceil(st.duration_s)), np.float32)
        for c in st.clips:
            if not c.media_found:
                continue
            a = c.file_range.start_time.to_seconds()
            try:
                f = extract_report(str(c.media_path), a, a + c.range.duration.to_seconds(), cuts_s=[],
                                   config=FeatureConfig(clip_model=None))
            except CutscoreError:
                continue
            t0 = c.range.start_time.to_seconds()
            for k, v in enumerate(f["beat"]):
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
                from engine.client import connect

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
                            loudness=s.loudness, force=True)
        client = self.client()
        self._start(lambda emit: score_timeline(st.path, out, client, opts, on_progress=emit), self._generated)

    def _generated(self, result) -> None:
        from plugin.state import music_of

        st = self.state
        st.scored_path = Path(result["out"])
        st.music, st.music_rate, rhythm = music_of(st.scored_path)
        st.rhythm = np.asarray(rhythm, np.float32)
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
        client, scored, clip = self.client(), st.scored_path, str(st.selected_clip)
        seed = s.new_seed()
        self.seed.setValue(seed)
        self._start(lambda emit: regenerate_clip(scored, clip, client, out_path=scored, seed=seed, force=True,
                                                 on_progress=emit), self._regenerated)

    def _regenerated(self, result) -> None:
        from plugin.state import music_of

        st = self.state
        st.music, st.music_rate, rhythm = music_of(st.scored_path)
        st.rhythm = np.asarray(rhythm, np.float32)
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

    # ---- preview --------------------------------------------------------------------------------
    def _ensure_player(self):
        if self._player is None and self.state.scored_path is not None:
            from PyQt6.QtMultimedia import QAudioOutput, QMediaPlayer

            from plugin.render import write_wav

            preview = self.state.scored_path.with_name(self.state.scored_path.stem + ".cutscore") / "preview.wav"
            write_wav(preview, self.state.music, self.state.music_rate, subtype="PCM_16")
            self._player, self._audio = QMediaPlayer(self), QAudioOutput(self)
            self._player.setAudioOutput(self._audio)
            self._player.setSource(QUrl.fromLocalFile(str(preview)))
        return self._player

    def toggle_play(self) -> None:
        from PyQt6.QtMultimedia import QMediaPlayer

        player = self._ensure_player()
        if player is None:
            return
        if player.playbackState() == QMediaPlayer.PlaybackState.PlayingState:
            player.pause()
            self._play_timer.stop()
            self.play_btn.setText("Play")
        else:
            player.setPosition(int(self.view.playhead_s * 1000))
            player.play()
            self._play_timer.start()
            self.play_btn.setText("Pause")

    def _tick_playhead(self) -> None:
        if self._player is not None:
            self.view.playhead_s = self._player.position() / 1000
            self.view.update()

    def _seek(self, t: float) -> None:
        if self._player is not None:
            self._player.setPosition(int(t * 1000))

    def keyPressEvent(self, e):
        if e.key() == Qt.Key.Key_Space:
            self.toggle_play()
        else:
            super().keyPressEvent(e)

    def closeEvent(self, e):
        if self._job_id and self._client is not None and self.state.busy:
            self._client.cancel(self._job_id)
        for thread, _ in list(self._threads):
            thread.quit()
            thread.wait(5000)
        if self._client_factory is None and hasattr(self._client, "close"):
            self._client.close()
        super().closeEvent(e)


def run_panel(timeline: str | None = None, screenshot: str | None = None) -> int:
    import sys

    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    win = PanelWindow()
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
