"""The cut changed (issue 44): the change list of the open scored timeline's picture against the
edit its music was made for (its sidecar), or against a new export the editor chooses; Conform runs
`cutscore conform` (plugin/commands/conform.py) off the UI thread and opens the conformed timeline, whose
music lane shows the generated spans apart from the kept music; Undo conform reopens the score as
it was (conform never writes it).

A part of ui/panel/window.py's PanelWindow (a mixin over its widgets and PanelState).
"""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

HEADERS = ("new", "old", "kind", "record (s)", "kept s")


class ConformPart:
    def _build_conform(self) -> QVBoxLayout:
        self.conform_label = QLabel("")
        self.conform_label.setWordWrap(True)
        self.changes_table = QTableWidget(0, len(HEADERS))
        self.changes_table.setHorizontalHeaderLabels(HEADERS)
        self.changes_table.verticalHeader().setVisible(False)
        self.changes_table.setMaximumHeight(112)
        for i, w in enumerate((40, 40, 80, 130, 60)):
            self.changes_table.setColumnWidth(i, w)
        self.conform_btn = QPushButton("Conform", clicked=lambda: self.conform_to(None))
        self.undo_conform_btn = QPushButton("Undo conform", clicked=self.undo_conform)
        row = QHBoxLayout()
        row.addWidget(self.conform_btn)
        row.addWidget(self.undo_conform_btn)
        box = QVBoxLayout()
        box.addWidget(self.conform_label)
        box.addWidget(self.changes_table)
        box.addLayout(row)
        return box

    def _conform_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "The new cut to conform the music to", "",
                                              "Timelines (*.otio *.otioz *.otiod *.xml *.edl *.kdenlive *.fcpxml *.aaf)")
        if path:
            self.conform_to(Path(path))

    def conform_to(self, new: Path | None) -> None:
        """Conform the open scored timeline's music to `new` (None: to its own picture as it is now)."""
        from plugin.commands.conform import conform
        from plugin.formats import DEFAULT_OUTPUT, output_suffixes

        st = self.state
        if st.scored_path is None:
            return
        new = Path(new) if new is not None else st.scored_path
        suffix = new.suffix.lower() if new.suffix.lower() in output_suffixes(new) else DEFAULT_OUTPUT
        out, n = new.with_name(f"{new.stem}-conformed{suffix}"), 2
        while out.exists() or out.with_suffix(".cutscore").exists():
            out, n = new.with_name(f"{new.stem}-conformed-{n}{suffix}"), n + 1
        scored, client = st.scored_path, self.client()
        st.before_conform = scored
        self._start(lambda emit: conform(scored, new, out, client, on_progress=emit), self._conformed)

    def _conformed(self, result) -> None:
        before = self.state.before_conform
        if self.open(result.out):
            self.state.before_conform = before
            self.state.busy, self.state.stage, self.state.progress = False, "done", 1.0
            self.state.message = (f"conformed: {result.kept_s:.2f} s kept, {result.generated_s:.2f} s generated "
                                  f"in {len(result.generated)} span(s)")
            self.info.setText(f"Conformed timeline: {result.out}" + "".join(f"\nnote: {n}" for n in result.notices))
            self._sync()
        self.generated.emit()

    def undo_conform(self) -> None:
        if self.state.before_conform is not None:
            self.open(self.state.before_conform)

    def _sync_conform(self) -> None:
        st = self.state
        rows = st.changes or []
        if st.stale:
            self.conform_label.setText("The picture changed since this music was made: Conform keeps the music "
                                       "under every kept frame and generates only the new seconds.")
        elif st.changes:
            self.conform_label.setText(f"Conformed from {Path(st.conformed_from).name}: shaded on the music lane, "
                                       "the generated seconds")
        else:
            self.conform_label.setText("")
        if self.changes_table.rowCount() != len(rows) or getattr(self, "_changes_shown", None) is not rows:
            self._changes_shown = rows
            self.changes_table.setRowCount(len(rows))
            for i, c in enumerate(rows):
                kept = sum(b - a for a, b, _ in c["kept"])
                cells = (str(c["new_clip"]), "-" if c["old_clip"] is None else str(c["old_clip"]), c["kind"],
                         f"{c['record_s'][0]:.2f}-{c['record_s'][1]:.2f}", f"{kept:.2f}")
                for j, text in enumerate(cells):
                    self.changes_table.setItem(i, j, QTableWidgetItem(text))
        self.changes_table.setVisible(bool(rows))
        self.conform_btn.setVisible(bool(st.stale))
        self.conform_btn.setEnabled(not st.busy)
        self.undo_conform_btn.setVisible(st.before_conform is not None)
        self.undo_conform_btn.setEnabled(not st.busy)
