"""The takes of the selected clip: the list, auditioning one, A/B between the current and the previous
take, and choosing which one the timeline plays.

A part of ui/panel/window.py's PanelWindow (a mixin over its widgets and PanelState).
"""

from __future__ import annotations

from PyQt6.QtCore import Qt

from core.errors import CutscoreError


class TakesPart:
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
        from plugin.commands.regenerate import choose_take

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
