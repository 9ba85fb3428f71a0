"""The engine work an editor starts and watches: generate, regenerate one clip, cancel, export, the
progress and the one-line errors, all off the UI thread through an EngineClient.

A part of ui/panel/window.py's PanelWindow (a mixin over its widgets and PanelState).
"""

from __future__ import annotations

import re
import time
import traceback
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QObject, QThread, pyqtSignal
from PyQt6.QtWidgets import (
    QMessageBox,
)

from core.errors import CutscoreError
from core.terminal import TimeLeft
from plugin.formats import output_suffixes
from ui.panel.state import read_music


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


RUNNING: list[tuple[QThread, Task]] = []  # every panel job's thread and task, until the thread has ended


def _ended(pair, mine: list) -> None:
    """A job's thread has ended its work: dropped once it has really ended (`finished` comes just
    before it does)."""
    pair[0].wait()
    for held in (mine, RUNNING):
        if pair in held:
            held.remove(pair)


def wait_for_jobs(timeout_s: float) -> bool:
    """Wait for every panel job's thread to end (at exit: a thread destroyed running aborts the
    process); False when one still runs after timeout_s."""
    deadline = time.monotonic() + timeout_s
    for thread, _ in list(RUNNING):
        thread.quit()
        if not thread.wait(max(0, int((deadline - time.monotonic()) * 1000))):
            return False
    return True


class JobsPart:
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
        # the thread has no parent: a window deleted (or collected) while a job runs never destroys
        # the thread running (Qt aborts the process for that); RUNNING holds it until it has ended
        thread, task = QThread(), Task(fn)
        task.moveToThread(thread)
        thread.started.connect(task.run)
        task.progress.connect(self._on_progress)
        task.finished.connect(on_done)
        task.failed.connect(self._on_failed)
        for sig in (task.finished, task.failed):
            sig.connect(thread.quit)
        pair = (thread, task)
        thread.finished.connect(lambda pair=pair, mine=self._threads: _ended(pair, mine))  # not the window
        self._threads.append(pair)
        RUNNING.append(pair)
        if busy:
            self.state.busy, self.state.error, self.state.error_details = True, "", ""
            self.state.stage, self.state.progress, self.state.message = "features", 0.0, "starting"
            self.state.started_at = time.monotonic()
            self._left = TimeLeft()
        self._sync()
        thread.start()

    def _on_progress(self, st) -> None:
        self._job_id = st.id
        estimate = getattr(self, "_left", None)  # set when a busy job starts
        left = estimate(st.progress) if estimate is not None and st.state == "running" else ""
        self.state.stage, self.state.progress = st.stage, st.progress
        self.state.message = f"{st.message} ({left})" if left else st.message
        self._sync()

    def _on_failed(self, message: str, details: str) -> None:
        self.state.busy, self.state.error, self.state.error_details = False, message, details
        self.state.stage = ""
        self._sync()
        self.failed.emit(message)

    def generate(self) -> None:
        from plugin.commands.score import ScoreOptions, score_timeline

        st, s = self.state, self._settings()
        out = st.scored_default_path()
        opts = ScoreOptions(**s.model_dump(exclude={"output_format", "force", "hits_s", "rhythm", "rhythm_file"}),
                            force=True, hits_s=list(st.user_hits), rhythm=st.edited_rhythm())
        client = self.client()
        def job(emit):
            r = score_timeline(st.path, out, client, opts, on_progress=emit)
            return r, read_music(Path(r.out))

        self._start(job, self._generated)

    def _generated(self, done) -> None:
        st, (result, music) = self.state, done
        st.scored_path = Path(result.out)
        st.use_music(music)
        st.busy, st.stage, st.progress = False, "done", 1.0
        st.message = f"wrote {st.scored_path}"
        self.info.setText(f"Scored timeline: {st.scored_path}\nMusic: {result.sidecar}"
                          + "".join(f"\nnote: {n}" for n in result.notices))
        self._player = None
        self._sync()
        self.generated.emit()

    def regenerate(self, vary: str | None = None) -> None:
        """A new take of the selected clip: a new seed; vary "subtle" / "strong": like the current take."""
        from plugin.commands.regenerate import regenerate_clip

        st, s = self.state, self._settings()
        if st.scored_path is None or st.selected_clip is None:
            return
        client, scored, clip, hits = self.client(), st.scored_path, str(st.selected_clip), list(st.user_hits)
        rhythm = st.edited_rhythm()  # the lane as it is now ([]: the prediction everywhere)
        seed = s.new_seed()
        self.seed.setValue(seed)
        def job(emit):
            r = regenerate_clip(scored, clip, client, out_path=scored, seed=seed, force=True, on_progress=emit,
                                hits_s=hits, rhythm=rhythm, vary=vary)
            return r, read_music(scored)

        self._start(job, self._regenerated)

    def _regenerated(self, done) -> None:
        st, (result, music) = self.state, done
        st.use_music(music)
        st.busy, st.stage, st.progress = False, "done", 1.0
        st.message = f"clip {result.clip} {result.name!r}: {result.wav.name}"
        self._player = None
        self._sync()
        self.generated.emit()

    def get_weights(self) -> None:
        """The model's released weights fetched, verified and converted (`cutscore weights get`, the
        engine's own command), its progress in the panel's progress bar."""
        from core.api import JobStatus
        from core.client import tool_lines
        from core.tool_options import WeightsGet

        name = self.state.settings.model or ""
        self._weights_proc = []

        def fetch(emit):
            at = [0, 1, ""]  # the step k of n the engine is on ("[k/n] ..."), and its message

            def line(text: str) -> None:
                if m := re.search(r"\[(\d+)/(\d+)\] (.*)", text):
                    at[:] = [int(m.group(1)) - 1, int(m.group(2)), m.group(3)]
                pct = re.search(r"(\d+)%\|", text)  # huggingface_hub's progress bar of the file
                within = int(pct.group(1)) / 100 if pct and not m else 0.0
                emit(JobStatus(id="weights", state="running", stage="weights", progress=(at[0] + within) / at[1],
                               message=at[2] + (f" ({pct.group(1)} %)" if pct and not m else "")))

            return tool_lines(WeightsGet(name=name), line, self._weights_proc)

        self._start(fetch, self._weights_done)

    def _weights_done(self, stdout: str) -> None:
        st = self.state
        st.busy, st.stage, st.progress = False, "done", 1.0
        st.message = stdout.strip().splitlines()[-1] if stdout.strip() else "weights ready"
        self._sync_weights_button()
        self._sync()

    def cancel(self) -> None:
        running = getattr(self, "_weights_proc", None)
        if running and running[0].poll() is None:
            self._weights_proc[0].terminate()  # the engine's `weights get` ends; the cache keeps no half file
            self.state.message = "cancelling…"
            self._sync()
            return
        if self._job_id and self._client is not None:
            self._client.cancel(self._job_id)
            self.state.message = "cancelling…"
            self._sync()

    def export(self) -> None:
        from plugin.commands.state import export_scored

        st = self.state
        if st.scored_path is None:
            return
        fmt = self._settings().output_format
        if fmt not in output_suffixes(st.path):  # a format written by patching the input needs that input
            others = ", ".join(s for s in output_suffixes(st.path))
            self.state.error = f"a {fmt} export needs a {fmt} project as input; choose {others}"
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

    def _compute_lanes(self, _progress):
        """Visual beats per second of the timeline, from each clip's media (no CLIP needed), computed
        by the engine's own process (engine/tools.py visual-beats)."""
        from core.client import tool_json
        from core.tool_options import VisualBeats
        from plugin.finish import warm

        warm()  # the first Generate's finishing then holds no lock the window needs to redraw
        st = self.state
        beats = np.zeros(int(np.ceil(st.duration_s)), np.float32)
        clips = [c for c in st.clips if c.media_found]
        ranges = [[str(c.media_path), c.file_range.start_time.to_seconds(),
                   c.file_range.start_time.to_seconds() + c.range.duration.to_seconds()] for c in clips]
        per_clip = tool_json(VisualBeats(ranges=ranges))["beats"] if ranges else []
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
