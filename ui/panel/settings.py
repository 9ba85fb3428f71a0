"""The settings an editor sets before Generate: the model, seed, sampler, steps, guidance (the model's
own shown until changed), the reference the music follows (Like: a file or one of the timeline's audio
tracks, and its strength), loudness, ducking under the dialogue, the ending, beat markers and output
format.

A part of ui/panel/window.py's PanelWindow (a mixin over its widgets and PanelState).
"""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QSpinBox,
)

from plugin.finish.beats import BEAT_MARKERS
from plugin.finish.ducking import DUCK_DB
from plugin.finish.ending import ENDINGS
from ui.panel.state import OUTPUT_FORMATS, SAMPLERS, weights_missing


class SettingsPart:
    def _build_settings(self) -> QFormLayout:
        s = self.state.settings
        own = s.sampling()  # the model's own sampler, steps and guidance, unless set
        self.model_edit = QLineEdit(s.model or "")
        self.model_edit.setPlaceholderText("default: the demo model, else debug")
        self.model_edit.editingFinished.connect(self._show_model_sampling)
        self.seed = QSpinBox(maximum=2**31 - 2, value=s.seed)
        new_seed = QPushButton("New seed", clicked=lambda: self.seed.setValue(s.new_seed()))
        self.sampler = QComboBox()
        self.sampler.addItems(SAMPLERS)
        self.sampler.setCurrentText(own["sampler"])
        self.steps = QSpinBox(minimum=1, maximum=1000, value=own["steps"])
        self.guidance = QDoubleSpinBox(minimum=0, maximum=20, singleStep=0.5, value=own["guidance"])
        self.loudness = QDoubleSpinBox(minimum=-40, maximum=0, singleStep=1, value=s.loudness, suffix=" LUFS")
        self.duck = QCheckBox("under the dialogue", checked=s.duck_db is not None)
        self.duck.setToolTip("lower the music where the timeline's audio tracks hold speech (`--duck`)")
        self.duck_db = QDoubleSpinBox(minimum=-60, maximum=-1, singleStep=1, value=s.duck_db or DUCK_DB, suffix=" dB")
        self.duck.toggled.connect(self.duck_db.setEnabled)
        self.duck_db.setEnabled(self.duck.isChecked())
        self.ending = QComboBox()
        self.ending.addItems(list(ENDINGS))
        self.ending.setCurrentText(s.ending)
        self.ending.setToolTip("ring: decays to silence by the last frame; fade: the last 2 s; cut: as generated")
        self.beat_markers = self._build_beat_markers()
        like_row, strength_row = self._build_like()
        self.fmt = QComboBox()
        self.fmt.addItems(OUTPUT_FORMATS)
        self.weights_btn = QPushButton("Get real weights", clicked=self.get_weights)
        self.weights_btn.setToolTip("download, verify and convert this model's released weights "
                                    "(`cutscore weights get`)")
        form = QFormLayout()
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_edit)
        model_row.addWidget(self.weights_btn)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed)
        seed_row.addWidget(new_seed)
        duck_row = QHBoxLayout()
        duck_row.addWidget(self.duck)
        duck_row.addWidget(self.duck_db)
        self._sync_weights_button()
        for label, w in (("Model", model_row), ("Seed", seed_row), ("Sampler", self.sampler), ("Steps", self.steps),
                         ("Guidance", self.guidance), ("Like", like_row), ("Strength", strength_row),
                         ("Loudness", self.loudness), ("Duck", duck_row),
                         ("Ending", self.ending), ("Beat markers", self.beat_markers), ("Output", self.fmt)):
            form.addRow(label, w)

        return form

    def _build_beat_markers(self) -> QComboBox:
        box = QComboBox()
        box.addItems(list(BEAT_MARKERS))
        box.setCurrentText(self.state.settings.beat_markers)
        box.currentTextChanged.connect(self._show_beat_grid)
        box.setToolTip("which of the music's beats are markers on its clips to snap to, and the beat grid shows: "
                       "the downbeats (the bars), every beat, or none (`--beat-markers`)")
        return box

    def _build_like(self) -> tuple[QHBoxLayout, QHBoxLayout]:
        """Like: none, a file, or one of the timeline's audio tracks (track:NAME); its strength."""
        s = self.state.settings
        self.like = QComboBox(editable=True)
        self.like.lineEdit().setPlaceholderText("none: a file, or one of the timeline's audio tracks")
        self.like.setToolTip("music like this (`--like`): the temp music you cut to, or any audio file; you need "
                             "the rights to it")
        self.like.setEditText(s.like or "")
        browse = QPushButton("File…", clicked=self._choose_like_file)
        self.like_strength = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100,
                                     value=round(s.like_strength * 100))
        self.like_strength.setToolTip("0: not at all; 1: the reference as it is (`--like-strength`)")
        shown = QLabel(f"{s.like_strength:.2f}")
        self.like_strength.valueChanged.connect(lambda v: shown.setText(f"{v / 100:.2f}"))
        row, strength = QHBoxLayout(), QHBoxLayout()
        row.addWidget(self.like, 1)
        row.addWidget(browse)
        strength.addWidget(self.like_strength, 1)
        strength.addWidget(shown)
        return row, strength

    def _choose_like_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Music like this", "",
                                              "Audio (*.wav *.flac *.ogg *.mp3 *.m4a *.aif *.aiff);;All files (*)")
        if path:
            self.like.setEditText(path)

    def _sync_like_tracks(self) -> None:
        """The Like list offers the open timeline's audio tracks (not cutscore's own)."""
        from plugin.commands.like import track_sources

        text = self.like.currentText()
        self.like.clear()
        self.like.addItem("")
        if self.state.plan is not None:
            self.like.addItems(track_sources(self.state.plan.timeline))
        self.like.setEditText(text)

    def _show_beat_grid(self, which: str) -> None:
        """The music lane's beat grid follows the Beat markers switch."""
        self.state.settings.beat_markers = which
        self.view.refresh()

    def _sync_weights_button(self) -> None:
        """"Get real weights" shows while the model named is one cutscore fetches and it is not here."""
        self.weights_btn.setVisible(weights_missing(self.state.settings.model))

    def _show_model_sampling(self) -> None:
        """Another model: show its own sampler, steps and guidance (and whether its weights are here)."""
        s = self.state.settings
        if (self.model_edit.text().strip() or None) == s.model:
            return
        s.model = self.model_edit.text().strip() or None
        self._sync_weights_button()
        s.sampler, s.steps, s.guidance = None, None, None
        own = s.sampling()
        self.sampler.setCurrentText(own["sampler"])
        self.steps.setValue(own["steps"])
        self.guidance.setValue(own["guidance"])

    def _settings(self):
        s = self.state.settings
        s.model, s.seed = self.model_edit.text().strip() or None, self.seed.value()
        s.sampler, s.steps, s.guidance = self.sampler.currentText(), self.steps.value(), self.guidance.value()
        s.loudness, s.output_format = self.loudness.value(), self.fmt.currentText()
        s.duck_db = self.duck_db.value() if self.duck.isChecked() else None
        s.ending = self.ending.currentText()
        s.beat_markers = self.beat_markers.currentText()
        s.like = self.like.currentText().strip() or None
        s.like_strength = self.like_strength.value() / 100
        return s
