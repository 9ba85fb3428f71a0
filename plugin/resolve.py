"""DaVinci Resolve: score the open timeline from inside Resolve and put the music back on a new audio
track of the SAME timeline (Resolve 18.5+, Workspace > Scripts > Edit > cutscore).

Two kinds of launcher, both written by `cutscore resolve install`: Lua ones (plugin/resolve_launcher.lua;
Resolve 21.1's free edition lists only Lua scripts in that menu) and Python ones (this module; Resolve
Studio, and the free edition before 21.1). The Lua launcher makes the Resolve calls and hands the rest
to `cutscore resolve run` (ui/cli/commands.py), which scores through plugin/commands/score.py and uses the helpers
here (`SidecarView`, `placements`, `segment_for_wav`).

This module runs inside Resolve's own Python (3.7+), so it uses the standard library only and
reaches cutscore through its command line in cutscore's environment. The Resolve calls are the
documented scripting API (Resolve's Developer/Scripting/README.txt):

    project  = resolve.GetProjectManager().GetCurrentProject()
    timeline = project.GetCurrentTimeline()
    timeline.Export(path, resolve.EXPORT_OTIO, resolve.EXPORT_NONE)      # the edit, as OTIO
    timeline.GetMarkers()                                                # {frame offset: {...}}: hit points
    pool = project.GetMediaPool(); pool.AddSubFolder(pool.GetRootFolder(), "cutscore")
    pool.SetCurrentFolder(folder); pool.ImportMedia([wav, ...])          # the music, in a "cutscore" bin
    timeline.AddTrack("audio", "stereo"); timeline.SetTrackName("audio", n, "cutscore music")
    pool.AppendToTimeline([{"mediaPoolItem", "startFrame", "endFrame", "mediaType": 2,
                            "trackIndex", "recordFrame"}, ...])          # one clip per music segment
    timeline.GetItemListInTrack("audio", n); timeline.DeleteClips([item])  # regenerate: swap one take

Frames: the scored state records every music segment in the exported timeline's own rate; record
frames are the timeline's start frame (01:00:00:00 = 86400 at 24 fps, 90000 at 25, 86314 at 29.97
non-drop counting, ...) plus the segment's offset. endFrame is inclusive (the last source frame).
cutscore writes nothing into the user's markers.

`cutscore resolve install [--dry-run]` writes the launchers into Resolve's per-user scripts folder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

from plugin.names import (  # standard library only, as this module
    BIN_NAME,
    STATE_FILE,
    TRACK_NAME,
    same_segment,
)

RESOLVE_MARKER = {"custom_data": "cutscore-beat", "beat": ("Lemon", "cutscore beat"),
                  "downbeat": ("Yellow", "cutscore downbeat")}  # plugin/finish/beats.py's names, Resolve's colours


class Segment(NamedTuple):
    """One music segment as DaVinci Resolve's launchers place it (the sidecar's SegmentRecord,
    plugin/commands/state.py, read with the standard library): frames at `rate` from the timeline's start."""

    kind: str
    index: int
    name: str
    start: float
    duration: float
    rate: float
    wav: str

    @classmethod
    def of(cls, record: dict) -> Segment:
        return cls(*(record[k] for k in cls._fields))


class SidecarView:
    """What DaVinci Resolve's launchers need of a sidecar (the scored timeline, the segments, the
    beats, the ducking), read once with the standard library: Resolve's own Python has no pydantic
    (plugin/commands/state.py is the typed sidecar). The constructor takes the sidecar's JSON as a dict;
    `read` reads it from a sidecar folder."""

    def __init__(self, side, data: dict):
        self.side = side
        self.scored = str(data.get("scored", ""))
        self.segments = [Segment.of(s) for s in data["segments"]]
        self.beats = data.get("beats") or {}
        self.ducking = data.get("ducking")

    @classmethod
    def read(cls, side) -> SidecarView:
        """Raises ValueError for a file no cutscore wrote."""
        import json
        from pathlib import Path

        path = Path(side) / STATE_FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: not readable ({e}); score the timeline again") from None
        if not isinstance(data, dict) or data.get("version", 1) not in (1, 2) or not data.get("segments"):
            raise ValueError(f"{path}: not a cutscore state file this version reads; score the timeline again")
        try:
            return cls(Path(side), data)
        except (KeyError, TypeError):
            raise ValueError(f"{path}: not a cutscore state file this version reads; score the timeline again") from None

    def segment(self, wav_name: str) -> Segment | None:
        """The segment whose take (any version) `wav_name` is."""
        return next((s for s in self.segments if same_segment(s.wav, wav_name)), None)

    def beat_marks(self, wav_name: str, timeline_rate: float) -> list[tuple[int, str, str]]:
        """(frame from the item's first frame, colour, name) of cutscore's beat markers on the Resolve
        timeline item playing the segment whose take is `wav_name` (TimelineItem:AddMarker with
        customData "cutscore-beat", so a later run deletes only those); [] when the score wrote none."""
        seg = next((s for s in self.segments if s.wav == wav_name), None)
        which = {True: "all", False: "off"}.get(self.beats.get("markers", "all"), self.beats.get("markers"))
        if which == "off" or seg is None:  # (a bool: a score from before downbeats)
            return []
        a = seg.start / seg.rate
        n = round(seg.duration * timeline_rate / seg.rate)
        out, used = [], set()
        for t, down in zip(self.beats.get("times_s", []), self.beats.get("downbeat", [])):
            if which == "downbeats" and not down:
                continue
            f = round((t - a) * timeline_rate)
            if 0 <= f < n and f not in used:  # Resolve keeps one marker a frame
                used.add(f)
                color, name = RESOLVE_MARKER["downbeat" if down else "beat"]
                out.append((f, color, name))
        return out

    def ducking_note(self) -> str | None:
        """The one line DaVinci Resolve's launchers print when the music was ducked under the dialogue:
        Resolve's scripting API sets no volume keyframes on timeline items, so the ducking is in the
        WAVs themselves."""
        if not self.ducking:
            return None
        return (f"cutscore: the music is ducked {self.ducking['depth_db']:g} dB under {len(self.ducking['regions'])} "
                "speech regions in the WAVs themselves (Resolve's scripting API sets no volume keyframes); score "
                "with --duck off for music at full level")


LAUNCHERS = {"cutscore.py": "score", "cutscore - regenerate clip under playhead.py": "regenerate",
             "cutscore.lua": "score", "cutscore - regenerate clip under playhead.lua": "regenerate"}
NO_API = ("cutscore: DaVinci Resolve's scripting API is not reachable; run this from Workspace > Scripts > Edit "
          "inside Resolve (for scripts started outside it: Preferences > System > General > External scripting "
          "using: Local). The file route always works: File > Export > Timeline as .otio, "
          "`cutscore score cut.otio -o cut-scored.otio`, File > Import > Timeline.")


class ResolveError(Exception):
    """One line for the editor, naming what to do."""


# ---- where Resolve looks for scripts ------------------------------------------------------------------

def scripts_dir(system: str | None = None, env: dict | None = None, home: Path | None = None) -> Path:
    """The per-user Edit-page scripts folder, as Resolve's scripting README lists it per OS."""
    system = system or sys.platform
    env = os.environ if env is None else env
    home = Path(home or Path.home())
    if system.startswith("win"):
        appdata = env.get("APPDATA") or str(home / "AppData" / "Roaming")
        base = Path(appdata) / "Blackmagic Design" / "DaVinci Resolve" / "Support" / "Fusion" / "Scripts"
    elif system == "darwin":
        base = home / "Library" / "Application Support" / "Blackmagic Design" / "DaVinci Resolve" / "Fusion" / "Scripts"
    elif system.startswith("linux"):
        base = home / ".local" / "share" / "DaVinciResolve" / "Fusion" / "Scripts"
    else:
        raise ResolveError(f"cutscore: no known DaVinci Resolve scripts folder for {system!r} (Linux, macOS, Windows)")
    return base / "Edit"


def launcher_text(action: str, root: Path, python: str) -> str:
    return (f'"""cutscore for DaVinci Resolve ({action}): Workspace > Scripts > Edit. Written by '
            f'`cutscore resolve install`."""\n'
            f"import sys\n"
            f"CUTSCORE_ROOT = {str(root)!r}\n"
            f"CUTSCORE_PYTHON = {python!r}\n"
            f"sys.path.insert(0, CUTSCORE_ROOT)\n"
            f"from plugin import resolve as _cutscore  # noqa: E402\n"
            f"sys.exit(_cutscore.launch({action!r}, globals().get('resolve'), CUTSCORE_ROOT, CUTSCORE_PYTHON))\n")


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def lua_launcher_text(action: str, root: Path, python: str) -> str:
    return (f"-- cutscore for DaVinci Resolve ({action}): Workspace > Scripts > Edit. Written by "
            f"`cutscore resolve install`.\n"
            f"-- Lua: what Resolve 21.1's free edition lists (Studio lists the .py launchers too).\n"
            f"local CUTSCORE_ROOT = {_lua_string(str(root))}\n"
            f"local CUTSCORE_PYTHON = {_lua_string(python)}\n"
            f"local launcher = dofile(CUTSCORE_ROOT .. \"/plugin/resolve_launcher.lua\")\n"
            f"return launcher.launch({_lua_string(action)}, CUTSCORE_ROOT, CUTSCORE_PYTHON, "
            f"{{names = {{track = {_lua_string(TRACK_NAME)}, bin = {_lua_string(BIN_NAME)}, "
            f"beat = {_lua_string(RESOLVE_MARKER['custom_data'])}}}}})\n")


def install(root: Path, python: str, dry_run: bool = False, system: str | None = None, env: dict | None = None,
            home: Path | None = None) -> list[Path]:
    """Write the Python and the Lua launchers; returns their paths."""
    folder = scripts_dir(system, env, home)
    paths = [folder / name for name in LAUNCHERS]
    if not dry_run:
        folder.mkdir(parents=True, exist_ok=True)
        for name, action in LAUNCHERS.items():
            tmp = folder / f".{name}.tmp"
            text = (lua_launcher_text if name.endswith(".lua") else launcher_text)(action, root, python)
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, folder / name)
    return paths


# ---- the Resolve side -----------------------------------------------------------------------------------

def connect(resolve=None):
    """The Resolve object: the `resolve` global Resolve gives a script it runs, else the
    DaVinciResolveScript module's scriptapp (external scripting)."""
    if resolve is not None:
        return resolve
    try:
        import DaVinciResolveScript as dvr  # noqa: N813 - Resolve's module name
    except ImportError:
        raise ResolveError(NO_API) from None
    app = dvr.scriptapp("Resolve")
    if app is None:
        raise ResolveError(NO_API)
    return app


def current(resolve):
    project = resolve.GetProjectManager().GetCurrentProject()
    if project is None:
        raise ResolveError("cutscore: no project is open in Resolve; open one and its timeline, then run cutscore again")
    timeline = project.GetCurrentTimeline()
    if timeline is None:
        raise ResolveError("cutscore: the project has no current timeline; open the timeline to score in the Edit page")
    return project, timeline


def exact_rate(raw) -> float:
    """A rate as Resolve's timelineFrameRate setting gives it, exact (23.976 -> 24000/1001)."""
    raw = float(raw or 24)
    for nominal in (24, 30, 48, 60, 120):
        if abs(raw - nominal * 1000 / 1001) < 0.005:
            return nominal * 1000 / 1001
    return raw


def frame_rate(timeline) -> float:
    """The timeline's exact rate (23.976 -> 24000/1001)."""
    return exact_rate(timeline.GetSetting("timelineFrameRate"))


def export_timeline(resolve, timeline, folder: Path) -> Path:
    name = re.sub(r"[^\w.-]+", "_", timeline.GetName() or "timeline")[:80] or "timeline"
    path = folder / f"{name}.otio"
    if not timeline.Export(str(path), resolve.EXPORT_OTIO, resolve.EXPORT_NONE) or not path.exists():
        raise ResolveError("cutscore: Resolve did not export the timeline as OTIO (it needs Resolve 18.5 or newer); "
                           "export it by hand (File > Export > Timeline) and run `cutscore score` on the file")
    return path


def marker_seconds(timeline) -> list[float]:
    """Resolve's timeline markers (GetMarkers: {frame offset from the timeline start: {...}}) in
    seconds from the start: hit points."""
    rate = frame_rate(timeline)
    return sorted(float(f) / rate for f in (timeline.GetMarkers() or {}))


def _bin(pool):
    root = pool.GetRootFolder()
    for f in root.GetSubFolderList() or []:
        if f.GetName() == BIN_NAME:
            return f
    folder = pool.AddSubFolder(root, BIN_NAME)
    if folder is None:
        raise ResolveError("cutscore: Resolve refused to create the 'cutscore' bin in the media pool")
    return folder


def _import(pool, wavs: list[Path]) -> dict[str, object]:
    """ImportMedia into the cutscore bin; {wav path: MediaPoolItem}."""
    pool.SetCurrentFolder(_bin(pool))
    items = pool.ImportMedia([str(w) for w in wavs]) or []
    by_path = {}
    for item in items:
        by_path[os.path.normpath(item.GetClipProperty("File Path"))] = item
    missing = [str(w) for w in wavs if os.path.normpath(str(w)) not in by_path]
    if missing:
        raise ResolveError(f"cutscore: Resolve did not import {missing[0]}; check the file exists and is a WAV")
    return by_path


def _frames(value: float, rate: float, timeline_rate: float) -> int:
    return int(round(value * timeline_rate / rate))


def placements(view: SidecarView, start_frame: int, timeline_rate: float) -> list[tuple[Path, int, int, int]]:
    """(WAV, startFrame, endFrame inclusive, recordFrame) of every music segment of the sidecar on a
    timeline that starts at `start_frame` (GetStartFrame) and runs at `timeline_rate`."""
    out = []
    for seg in view.segments:
        dur = _frames(seg.duration, seg.rate, timeline_rate)
        if dur > 0:
            out.append((Path(view.side) / seg.wav, 0, dur - 1, start_frame + _frames(seg.start, seg.rate, timeline_rate)))
    return out


def clip_infos(view: SidecarView, items: dict, track: int, start_frame: int, timeline_rate: float) -> list[dict]:
    return [{"mediaPoolItem": items[os.path.normpath(str(wav))], "startFrame": first, "endFrame": last,
             "mediaType": 2, "trackIndex": track, "recordFrame": record}
            for wav, first, last, record in placements(view, start_frame, timeline_rate)]


def read_view(side: Path) -> SidecarView:
    """The sidecar of `side`, read once (ResolveError with the reason when no cutscore wrote it)."""
    if not (Path(side) / STATE_FILE).exists():
        raise ResolveError(f"cutscore: no music was written ({Path(side) / STATE_FILE} is missing)")
    try:
        return SidecarView.read(side)
    except ValueError as e:
        raise ResolveError(f"cutscore: {e}") from None


def segment_for_wav(wav: Path) -> tuple[SidecarView, Segment]:
    """(the sidecar, the segment) of a music WAV on a Resolve timeline."""
    side = wav.parent
    if not (side / STATE_FILE).exists():
        raise ResolveError(f"cutscore: {wav} is not cutscore music (no {STATE_FILE} beside it)")
    view = read_view(side)
    seg = view.segment(wav.name)
    if seg is None or seg.kind != "clip":
        raise ResolveError("cutscore: the music under the playhead lies under a gap in the picture; put the "
                           "playhead on music under a clip")
    return view, seg


def music_track_index(timeline) -> int | None:
    for n in range(1, int(timeline.GetTrackCount("audio") or 0) + 1):
        if timeline.GetTrackName("audio", n) == TRACK_NAME:
            return n
    return None


def import_music(project, timeline, view: SidecarView) -> list:
    """The scored music onto a new "cutscore music" audio track of `timeline` (any earlier cutscore
    track is left alone: the editor deletes it when the new one is right)."""
    pool = project.GetMediaPool()
    items = _import(pool, [Path(view.side) / s.wav for s in view.segments])
    if not timeline.AddTrack("audio", "stereo"):
        raise ResolveError("cutscore: Resolve refused to add an audio track to the timeline (is it locked?)")
    track = int(timeline.GetTrackCount("audio"))
    timeline.SetTrackName("audio", track, TRACK_NAME)
    infos = clip_infos(view, items, track, int(timeline.GetStartFrame()), frame_rate(timeline))
    placed = pool.AppendToTimeline(infos) or []
    if len(placed) != len(infos):
        raise ResolveError(f"cutscore: Resolve placed {len(placed)} of {len(infos)} music clips; "
                           "see Workspace > Console for its reason")
    rate = frame_rate(timeline)
    for item, wav in zip(placed, [p[0] for p in placements(view, 0, rate)]):
        mark_beats(item, view, wav.name, rate)
    return placed


def mark_beats(item, view: SidecarView, wav_name: str, timeline_rate: float) -> int:
    """cutscore's beat markers on a music item: its earlier ones (customData "cutscore-beat") deleted,
    the sidecar's added; the editor's own markers are not touched. Returns how many were added."""
    item.DeleteMarkerByCustomData(RESOLVE_MARKER["custom_data"])
    n = 0
    for frame, color, name in view.beat_marks(wav_name, timeline_rate):
        n += bool(item.AddMarker(frame, color, name, "", 1, RESOLVE_MARKER["custom_data"]))
    return n


def _item_under(timeline, track: int, frame: int):
    for item in timeline.GetItemListInTrack("audio", track) or []:
        if item.GetStart() <= frame < item.GetEnd():
            return item
    return None


def _timecode_frames(tc: str, rate: float, drop: bool = False) -> int:
    """Frames of a timecode at `rate`; drop frame ("01:00:00;00", or `drop`) skips 2 (29.97) or 4
    (59.94) frame numbers a minute except every tenth minute, as SMPTE counts."""
    h, m, s, f = (int(x) for x in re.split(r"[:;.,]", tc))
    nominal = round(rate)
    frames = (h * 3600 + m * 60 + s) * nominal + f
    if drop or ";" in tc or "," in tc:
        minutes = h * 60 + m
        frames -= round(nominal / 15) * (minutes - minutes // 10)
    return frames


def replace_take(project, timeline, side: Path, old_wav: Path, item) -> object:
    """After `cutscore regenerate`: the music item playing old_wav plays its newest take instead,
    same track and position; the old take stays in the bin."""
    view = read_view(side)  # as the regenerate left it
    seg = view.segment(old_wav.name)
    if seg is None:
        raise ResolveError(f"cutscore: {old_wav.name} is not a segment of {side / STATE_FILE}")
    new_wav = side / seg.wav
    pool = project.GetMediaPool()
    items = _import(pool, [new_wav])
    record, track = item.GetStart(), None
    for n in range(1, int(timeline.GetTrackCount("audio") or 0) + 1):
        if item in (timeline.GetItemListInTrack("audio", n) or []):
            track = n
    duration = item.GetDuration()
    if not timeline.DeleteClips([item]):
        raise ResolveError("cutscore: Resolve refused to remove the old take from the timeline (is the track locked?)")
    placed = pool.AppendToTimeline([{"mediaPoolItem": items[os.path.normpath(str(new_wav))], "startFrame": 0,
                                     "endFrame": duration - 1, "mediaType": 2, "trackIndex": track,
                                     "recordFrame": record}]) or []
    if len(placed) != 1:
        raise ResolveError("cutscore: Resolve did not place the new take; it is in the 'cutscore' bin")
    mark_beats(placed[0], view, new_wav.name, frame_rate(timeline))
    return placed[0]


# ---- the two launchers ------------------------------------------------------------------------------------

_CUTSCORE_ROOT: str | None = None  # where `python -m ui.cli` runs (set by launch; never Resolve's own cwd)


def _run(cmd: list[str], log) -> None:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=_CUTSCORE_ROOT)
    lines = []
    for line in proc.stdout:
        lines.append(line.rstrip())
        log(line.rstrip())
    if proc.wait() != 0:
        last = next((ln for ln in reversed(lines) if ln.strip()), "no output")
        raise ResolveError(last if last.startswith("cutscore") else f"cutscore: {last}")


def score_current(resolve, python: str, work: Path, panel: bool = False, extra: list[str] | None = None,
                  log=lambda message: None) -> list:
    project, timeline = current(resolve)
    src = export_timeline(resolve, timeline, work)
    out = work / f"{src.stem}-scored.otio"
    hits = ",".join(f"{s:.6f}" for s in marker_seconds(timeline))
    if panel:
        _run([python, "-m", "ui.cli", "panel", str(src)], log)  # the panel writes <stem>-scored.otio
    else:
        cmd = [python, "-m", "ui.cli", "score", str(src), "-o", str(out), "--force"]
        _run(cmd + (["--hits", hits] if hits else []) + list(extra or []), log)
    side = out.with_name(out.stem + ".cutscore")
    if not (side / STATE_FILE).exists():
        raise ResolveError("cutscore: no music was written (the panel was closed before Generate?)")
    view = read_view(side)
    placed = import_music(project, timeline, view)
    log(f"cutscore: {len(placed)} music clips on the '{TRACK_NAME}' track; the WAVs are in the '{BIN_NAME}' bin")
    note = view.ducking_note()
    if note:
        log(note)
    return placed


def regenerate_under_playhead(resolve, python: str, log=lambda message: None, extra: list[str] | None = None):
    project, timeline = current(resolve)
    track = music_track_index(timeline)
    if track is None:
        raise ResolveError(f"cutscore: this timeline has no '{TRACK_NAME}' track; run Workspace > Scripts > cutscore first")
    frame = _timecode_frames(timeline.GetCurrentTimecode(), frame_rate(timeline),
                             str(timeline.GetSetting("timelineDropFrameTimecode") or "0") == "1")
    item = _item_under(timeline, track, frame)
    if item is None:
        raise ResolveError(f"cutscore: no music clip under the playhead on '{TRACK_NAME}'; move the playhead onto one")
    wav = Path(item.GetMediaPoolItem().GetClipProperty("File Path"))
    view, seg = segment_for_wav(wav)
    out = Path(view.scored).with_name(Path(view.scored).stem + "-regenerated.otio")
    _run([python, "-m", "ui.cli", "regenerate", view.scored, "--clip", str(seg.index), "-o", str(out),
          "--force", *(extra or [])], log)
    return replace_take(project, timeline, Path(view.side), wav, item)


def launch(action: str, resolve_global, root: str, python: str, argv: list[str] | None = None, log=print) -> int:
    """The launchers' entry point (their face: `print` goes to Resolve's Workspace > Console): one
    line on failure, exit code 2. Resolve's own working folder is left alone."""
    global _CUTSCORE_ROOT
    _CUTSCORE_ROOT = root
    argv = list(argv if argv is not None else sys.argv[1:])
    try:
        resolve = connect(resolve_global)
        if action == "score":
            work = Path(tempfile.mkdtemp(prefix="cutscore-resolve-"))
            score_current(resolve, python, work, panel="--no-panel" not in argv,
                          extra=[a for a in argv if a != "--no-panel"], log=log)
        elif action == "regenerate":
            regenerate_under_playhead(resolve, python, log=log, extra=argv)
        else:
            raise ResolveError(f"cutscore: unknown launcher action {action!r}")
    except ResolveError as e:
        log(str(e))
        return 2
    return 0
