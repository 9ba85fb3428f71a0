"""The settings an editor sets before Generate: the model, seed, sampler, steps, guidance (the model's
own shown until changed), loudness, ducking under the dialogue, the ending, beat markers and output
format.

A part of ui/panel/window.py's PanelWindow (a mixin over its widgets and PanelState).
"""

from __future__ import annotations

from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
)

from plugin.ducking import DUCK_DB
from plugin.ending import ENDINGS
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
        self.beat_markers = QCheckBox("on the music clips", checked=s.beat_markers)
        self.beat_markers.setToolTip("the music's beats and downbeats as markers to snap to (`--beat-markers`)")
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
                         ("Guidance", self.guidance), ("Loudness", self.loudness), ("Duck", duck_row),
                         ("Ending", self.ending), ("Beat markers", self.beat_markers), ("Output", self.fmt)):
            form.addRow(label, w)

        return form

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
        s.beat_markers = self.beat_markers.isChecked()
        return s
