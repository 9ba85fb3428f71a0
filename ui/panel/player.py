"""The transport and what it plays: the playhead (go, step, frame), the music from the playhead or a
take from its clip, and the monitor following it.

A part of ui/panel/window.py's PanelWindow (a mixin over its widgets and PanelState).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PyQt6.QtCore import QUrl


class PlayerPart:
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
        if st.scored_path is None or st.overview is None:
            return None
        preview = st.scored_path.with_name(st.scored_path.stem + ".cutscore") / "preview.wav"
        if self._player is None or self._player_source != str(preview):
            from PyQt6.QtMultimedia import QAudioOutput, QMediaPlayer

            from plugin.commands.state import load_state
            from ui.panel.peaks import write_preview

            write_preview(*load_state(st.scored_path), preview)
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
