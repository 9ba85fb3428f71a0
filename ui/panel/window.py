"""The editor's panel (PyQt6): open a timeline, see the picture at the playhead and the cut with its
lanes, place hit points, generate, listen, regenerate one clip as new takes, audition and choose
takes, export. Engine work runs off the UI thread through EngineClient; the panel keeps its state
in PanelState and only renders it.

Keys: Space play/pause, J back 1 s, K stop, L play, Home/End, Left/Right one frame, M a hit point
at the playhead, Delete removes the selected hit point, A plays the selected clip's current and
previous take in turn (A/B), F zooms the timeline to fit, Ctrl+Z undoes the energy lane's last
edit (ui/panel/energy.py).

    cutscore panel [TIMELINE] [--screenshot PNG]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from PyQt6.QtCore import Qt, QThread, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QColor, QKeySequence, QPalette
from PyQt6.QtWidgets import (
    QApplication,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from core.errors import CutscoreError
from ui.panel.conform import ConformPart
from ui.panel.energy import EnergyPart
from ui.panel.jobs import JobsPart, Task, wait_for_jobs
from ui.panel.monitor import Monitor
from ui.panel.player import PlayerPart
from ui.panel.settings import SettingsPart
from ui.panel.state import PanelState
from ui.panel.takes import TakesPart
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


class PanelWindow(SettingsPart, JobsPart, TakesPart, PlayerPart, EnergyPart, ConformPart, QMainWindow):
    """The window: the monitor and the settings above the timeline and its lanes; the parts it is made
    of (settings, jobs, takes, player, energy lane: one module each) share its widgets and its
    PanelState."""

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
        menu.addAction(QAction("&Conform the music to a new cut…", self, triggered=self._conform_dialog))

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
        self.energy_row = self._build_energy()
        self._build_layout(form, scroll)
        self._build_shortcuts()


    def _build_buttons(self) -> None:
        self.generate_btn = QPushButton("Generate", clicked=self.generate)
        self.regen_btn = QPushButton("Regenerate clip", clicked=lambda: self.regenerate())
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
        self.vary_subtle_btn = QPushButton("Vary subtle", clicked=lambda: self.regenerate(vary="subtle"))
        self.vary_strong_btn = QPushButton("Vary strong", clicked=lambda: self.regenerate(vary="strong"))
        for b, how in ((self.vary_subtle_btn, "close to"), (self.vary_strong_btn, "further from")):
            b.setToolTip(f"a new take {how} the current take's feel (`cutscore regenerate --vary`)")


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
        take_row = QHBoxLayout()
        for b in (self.use_take_btn, self.vary_subtle_btn, self.vary_strong_btn):
            take_row.addWidget(b)
        side.addLayout(take_row)
        side.addLayout(self._build_conform())
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
        bottom = QVBoxLayout()
        bottom.setContentsMargins(0, 0, 0, 0)
        bottom.addLayout(self.energy_row)
        bottom.addWidget(scroll, 1)
        bottom_w = QWidget()
        bottom_w.setLayout(bottom)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top_w)
        split.addWidget(bottom_w)
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


    def _sync(self) -> None:
        st = self.state
        has = st.plan is not None
        self.generate_btn.setEnabled(has and not st.busy)
        self.regen_btn.setEnabled(has and not st.busy and st.scored_path is not None and st.selected_clip is not None)
        for b in (self.vary_subtle_btn, self.vary_strong_btn):
            b.setEnabled(self.regen_btn.isEnabled())
        self.cancel_btn.setEnabled(st.busy)
        self.export_btn.setEnabled(st.scored_path is not None and not st.busy)
        self.play_btn.setEnabled(st.overview is not None)
        self.progress.setValue(int(st.progress * 1000))
        self.stage.setText("")
        if st.stage:
            left = st.time_left_s(time.monotonic())
            self.stage.setText(f"{st.stage}: {st.message}" + (f"  (about {left:.0f} s left)" if left is not None else ""))
        self.error.setText(st.error)
        self.details_btn.setVisible(bool(st.error_details))
        self._sync_takes()
        self._sync_energy()
        self._sync_conform()
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
        self._sync_like_tracks()
        self._sync()
        self._start(self._compute_lanes, self._lanes_done, busy=False)
        return True


    # ---- hit points -------------------------------------------------------------------------------
    def add_hit(self) -> None:
        if self.state.plan is not None:
            self.state.add_hit(self.view.playhead_s)
            self._sync()

    def remove_hit(self) -> None:
        if self.state.remove_hit():
            self._sync()


    def closeEvent(self, e):
        if self._job_id and self._client is not None and self.state.busy:
            self._client.cancel(self._job_id)
        for thread, _ in list(self._threads):  # a job still working (an engine command) ends on its own:
            thread.quit()  # jobs.RUNNING keeps its thread until then
            thread.wait(5000)
        self.monitor.source.close()
        if self._client_factory is None and hasattr(self._client, "close"):
            self._client.close()
        super().closeEvent(e)


def run_panel(timeline: str | None = None, screenshot: str | None = None) -> int:
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
    code = app.exec()
    if not wait_for_jobs(120):  # a thread destroyed running would abort the process: leave without that
        print("cutscore panel: a job was still running after 2 minutes; leaving it", file=sys.stderr)
        sys.stdout.flush()
        os._exit(code)
    return code
