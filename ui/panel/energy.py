"""The energy lane's edits (issue 35): the editor raises, lowers, flattens or ramps the rhythm the
music follows over a span (chosen with Shift+drag on the lane, else the selected clip), draws it
freehand (ui/panel/timeline_view.py), resets it to the prediction, and undoes. Generate and
Regenerate send the edit (PanelState.edited_rhythm); the prediction fills every second not edited.

A part of ui/panel/window.py's PanelWindow (a mixin over its widgets and PanelState).
"""

from __future__ import annotations

from PyQt6.QtCore import QPoint
from PyQt6.QtGui import QAction
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QMenu, QPushButton

# (label, PanelState.edit_rhythm's `how`), in the order of the buttons and of the lane's menu
EDITS = (("Raise", "raise"), ("Lower", "lower"), ("Flatten", "flatten"), ("Ramp up", "ramp up"),
         ("Ramp down", "ramp down"), ("Reset", "reset"))


class EnergyPart:
    def _build_energy(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setContentsMargins(4, 2, 4, 2)
        row.addWidget(QLabel("Energy of the span (Shift+drag on the lane, or the selected clip):"))
        self.energy_btns = {}
        for label, how in EDITS:
            b = QPushButton(label, clicked=lambda _=False, how=how: self.edit_energy(how))
            b.setToolTip({"raise": "to the predicted curve's top", "lower": "to the predicted curve's bottom",
                          "flatten": "to the span's mean", "ramp up": "from the bottom to the top",
                          "ramp down": "from the top to the bottom", "reset": "back to the prediction"}[how])
            self.energy_btns[how] = b
            row.addWidget(b)
        self.energy_undo_btn = QPushButton("Undo", clicked=self.undo_energy)
        self.energy_undo_btn.setToolTip("undo the last edit of the energy lane (Ctrl+Z)")
        row.addWidget(self.energy_undo_btn)
        self.energy_reset_all = QPushButton("Reset all", clicked=lambda: self.edit_energy("reset", whole=True))
        row.addWidget(self.energy_reset_all)
        row.addStretch(1)
        self.view.rhythmChanged.connect(self._sync)
        self.view.energyMenu.connect(self._energy_menu)
        undo = QAction(self, shortcut="Ctrl+Z", triggered=lambda _=False: self.undo_energy())
        self.addAction(undo)
        return row

    def edit_energy(self, how: str, whole: bool = False) -> bool:
        st = self.state
        span = (0.0, st.duration_s) if whole else st.energy_span()
        if st.plan is None or span is None:
            st.message = "choose a span on the energy lane (Shift+drag) or select a clip first"
            self._sync()
            return False
        st.edit_rhythm(*span, how)
        self._sync()
        return True

    def undo_energy(self) -> None:
        if self.state.undo_rhythm():
            self._sync()

    def _energy_menu(self, at: QPoint, t: float) -> None:
        """The lane's right-click: the span's edits (the second under the pointer without a span)."""
        st = self.state
        if st.energy_span() is None:
            st.rhythm_span = (t, t)
        menu = QMenu(self)
        for label, how in EDITS:
            menu.addAction(label, lambda how=how: self.edit_energy(how))
        menu.addSeparator()
        menu.addAction("Undo", self.undo_energy).setEnabled(bool(st.rhythm_undo))
        menu.popup(at)
        self._energy_popup = menu  # kept for tests (and so it is not collected while shown)

    def _sync_energy(self) -> None:
        st = self.state
        ok = st.plan is not None and not st.busy
        for b in self.energy_btns.values():
            b.setEnabled(ok and st.energy_span() is not None)
        self.energy_undo_btn.setEnabled(ok and bool(st.rhythm_undo))
        self.energy_reset_all.setEnabled(ok and any(v is not None for v in st.rhythm_edit))
