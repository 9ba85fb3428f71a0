"""DaVinci Resolve (issue 14). Resolve cannot run here: tests/fake_resolve.py stands in for its
scripting API (only the documented calls plugin/resolve.py makes) and records every call; the
cutscore side is real (the command line in a subprocess, the debug model)."""

import json
import shutil
import sys
from pathlib import Path

import opentimelineio as otio
import pytest
from opentimelineio.opentime import RationalTime

from plugin import resolve as rs
from plugin.commands.score import ScoreOptions, score_timeline
from tests import fake_resolve as fr
from tests.conftest import ROOT
from tests.helpers import SineEngine

DEMO = ROOT / "resources" / "demo"
NTSC = {"23.976": 24000 / 1001, "29.97": 30000 / 1001, "59.94": 60000 / 1001}


def _state(tmp_path, rate, segments):
    """A scored sidecar as `cutscore score` writes it: segments in the exported timeline's rate."""
    side = tmp_path / "cut-scored.cutscore"
    side.mkdir()
    segs = []
    for i, (start, dur) in enumerate(segments):
        wav = side / f"clip{i:03d}-v1.wav"
        wav.write_bytes(b"RIFF")
        segs.append({"kind": "clip", "index": i, "name": f"c{i}", "start": start, "duration": dur, "rate": rate,
                     "wav": wav.name})
    (side / "cutscore.json").write_text(json.dumps({"segments": segs, "scored": str(tmp_path / "cut-scored.otio")}))
    return side


@pytest.mark.parametrize("rate_s", ["23.976", "24", "25", "29.97", "59.94"])
@pytest.mark.parametrize("one_hour", [False, True])
def test_music_lands_on_the_right_frames_at_every_rate_and_start(tmp_path, rate_s, one_hour):
    rate = NTSC.get(rate_s, float(rate_s))
    nominal = round(rate)
    start_frame = 3600 * nominal if one_hour else 0  # Resolve counts 01:00:00:00 in nominal frames
    segments = [(0, 3 * nominal + 7), (3 * nominal + 7, 2 * nominal), (5 * nominal + 7, 11)]
    side = _state(tmp_path, rate, segments)
    tl = fr.Timeline(fr.Recorder(), "cut", rate_s, start_frame)
    res = fr.Resolve(tl)
    rs.import_music(res.project, tl, rs.read_view(side))
    rec = res.rec
    assert rec.named("AddSubFolder") == [("AddSubFolder", "Master", "cutscore")]
    assert rec.named("ImportMedia")[0][1] == "cutscore"
    assert rec.named("AddTrack") == [("AddTrack", "audio", "stereo")]
    assert rec.named("SetTrackName") == [("SetTrackName", "audio", 2, "cutscore music")]
    (_, infos), = rec.named("AppendToTimeline")
    assert infos == [{"mediaPoolItem": f"clip{i:03d}-v1.wav", "startFrame": 0, "endFrame": d - 1, "mediaType": 2,
                      "trackIndex": 2, "recordFrame": start_frame + s} for i, (s, d) in enumerate(segments)]


def _resolve_style_demo(tmp_path) -> otio.schema.Timeline:
    """The demo edit as Resolve's OTIO export writes it: global_start_time 01:00:00:00, Resolve_OTIO
    metadata, absolute media paths."""
    tl = otio.adapters.read_from_file(str(DEMO / "demo.otio"))
    rate = tl.duration().rate
    tl.global_start_time = RationalTime(3600 * round(rate), rate)
    for t in tl.tracks:
        t.metadata["Resolve_OTIO"] = {"Locked": False}
    for c in tl.find_clips():
        c.media_reference.target_url = str((DEMO / Path(c.media_reference.target_url).name).resolve())
    return tl


@pytest.fixture
def scored_in_resolve(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    otio_tl = _resolve_style_demo(tmp_path)
    rate = otio_tl.duration().rate
    start = int(otio_tl.global_start_time.value)
    tl = fr.Timeline(fr.Recorder(), "Cut 1", "23.976" if abs(rate - 23.976) < 0.01 else f"{rate:g}", start,
                     otio_to_export=otio_tl, markers={48: {"color": "Blue", "name": "door"}})
    res = fr.Resolve(tl)
    work = tmp_path / "work"
    work.mkdir()
    logs = []
    placed = rs.score_current(res, sys.executable, work, panel=False,
                              extra=["--engine", "local", "--model", "debug", "--steps", "2"], log=logs.append)
    return res, tl, work, placed, rate, start


def test_score_current_timeline_end_to_end(scored_in_resolve):
    res, tl, work, placed, rate, start = scored_in_resolve
    rec = res.rec
    assert rec.named("Export") == [("Export", ".otio", "EXPORT_OTIO", "EXPORT_NONE")]
    side = work / "Cut_1-scored.cutscore"
    state = json.loads((side / "cutscore.json").read_text())
    # Resolve's marker (48 frames after the start) reached the engine as a hit point
    assert any(abs(h - 48 / rate) < 1e-3 for h in state["request"]["hits_s"])
    (_, infos), = rec.named("AppendToTimeline")
    assert len(infos) == len(state["segments"]) == len(placed) == 5
    pos = 0
    for info, seg in zip(infos, state["segments"]):
        assert info["recordFrame"] == start + pos and info["endFrame"] == seg["duration"] - 1
        assert info["mediaPoolItem"] == seg["wav"] and info["mediaType"] == 2 and info["trackIndex"] == 2
        pos += seg["duration"]
    assert tl.GetTrackName("audio", 2) == "cutscore music"
    assert tl.markers == {48: {"color": "Blue", "name": "door"}}  # the user's markers untouched


def test_regenerate_the_take_under_the_playhead(scored_in_resolve):
    res, tl, work, placed, rate, start = scored_in_resolve
    target = tl.GetItemListInTrack("audio", 2)[2]
    f = target.GetStart() + 3
    nominal = round(rate)
    tl.timecode = f"{f // (3600 * nominal):02d}:{f // (60 * nominal) % 60:02d}:{f // nominal % 60:02d}:{f % nominal:02d}"
    new = rs.regenerate_under_playhead(res, sys.executable, log=lambda m: None, extra=["--engine", "local"])
    rec = res.rec
    assert rec.named("DeleteClips") == [("DeleteClips", [(target.GetStart(), "clip002-v1.wav")])]
    _, infos = rec.named("AppendToTimeline")[-1]
    assert infos == [{"mediaPoolItem": "clip002-v2.wav", "startFrame": 0, "endFrame": target.GetDuration() - 1,
                      "mediaType": 2, "trackIndex": 2, "recordFrame": target.GetStart()}]
    assert new.GetStart() == target.GetStart()
    names = [c.GetName() for c in res.project.pool.root.subfolders[0].GetClipList()]
    assert "clip002-v1.wav" in names and "clip002-v2.wav" in names  # the old take stays in the bin
    assert [i.GetMediaPoolItem().GetName() for i in sorted(tl.GetItemListInTrack("audio", 2), key=lambda i: i.start)] \
        == ["clip000-v1.wav", "clip001-v1.wav", "clip002-v2.wav", "clip003-v1.wav", "clip004-v1.wav"]


def test_without_the_scripting_api_the_launcher_says_so_in_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "DaVinciResolveScript", None)  # not importable: not inside Resolve
    lines = []
    assert rs.launch("score", None, str(ROOT), sys.executable, argv=[], log=lines.append) == 2
    assert lines == [rs.NO_API] and "File > Export > Timeline" in lines[0]
    # Resolve with no timeline open
    lines = []
    res = fr.Resolve(None)
    assert rs.launch("score", res, str(ROOT), sys.executable, argv=[], log=lines.append) == 2
    assert len(lines) == 1 and "no project is open" in lines[0]


@pytest.mark.parametrize("system,env,expected", [
    ("linux", {}, "/home/ed/.local/share/DaVinciResolve/Fusion/Scripts/Edit"),
    ("darwin", {}, "/home/ed/Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Edit"),
    ("win32", {"APPDATA": "C:/Users/ed/AppData/Roaming"},
     "C:/Users/ed/AppData/Roaming/Blackmagic Design/DaVinci Resolve/Support/Fusion/Scripts/Edit"),
])
def test_install_paths_per_os(tmp_path, system, env, expected):
    paths = rs.install(ROOT, sys.executable, dry_run=True, system=system, env=env, home=Path("/home/ed"))
    assert [p.parent.as_posix() for p in paths] == [expected] * 4
    assert sorted(p.suffix for p in paths) == [".lua", ".lua", ".py", ".py"]  # 21.1 free lists only Lua
    assert not Path(expected).exists()
    # a real install writes launchers that find this cutscore
    written = rs.install(ROOT, sys.executable, system="linux", env={}, home=tmp_path)
    text = written[0].read_text()
    assert str(ROOT) in text and sys.executable in text and "launch('score'" in text
    compile(text, str(written[0]), "exec")


def test_cli_resolve_install_dry_run(capsys):
    from ui.cli import main

    assert main(["resolve", "install", "--dry-run", "--os", "darwin"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and all(line.startswith("would write ") and "/Fusion/Scripts/Edit/" in line for line in out)
    assert sum(line.endswith(".lua") for line in out) == 2 and sum(line.endswith(".py") for line in out) == 2


def test_resolve_style_otio_round_trips_with_its_metadata_and_offset(tmp_path):
    tl = _resolve_style_demo(tmp_path)
    src = tmp_path / "from_resolve.otio"
    otio.adapters.write_to_file(tl, str(src))
    text = src.read_text()
    assert '"Clip.2"' in text and "DEFAULT_MEDIA" in text
    out = tmp_path / "scored.otio"
    score_timeline(src, out, SineEngine(), ScoreOptions())
    back = otio.adapters.read_from_file(str(out))
    assert back.global_start_time == tl.global_start_time
    assert all(t.metadata.get("Resolve_OTIO") == {"Locked": False} for t in back.tracks if t.name != "cutscore music")
    music = [t for t in back.audio_tracks() if t.name == "cutscore music"][0]
    assert dict(music.metadata["Resolve_OTIO"]) == {"Audio Type": "Stereo", "Locked": False, "SoloOn": False}
    assert all(not c.media_reference.target_url.startswith("file:") and Path(c.media_reference.target_url).is_absolute()
               for c in music)


def test_fcp7_xml_output_carries_a_format(tmp_path):
    out = tmp_path / "scored.xml"
    score_timeline(DEMO / "demo.otio", out, SineEngine(), ScoreOptions())
    import xml.etree.ElementTree as ET

    seq = ET.parse(out).getroot().find(".//sequence")
    fmt = seq.find("media/video/format/samplecharacteristics")
    assert fmt is not None and fmt.find("rate/timebase") is not None and fmt.findtext("width") == "1920"
    assert otio.adapters.read_from_file(str(out)).duration().value > 0
    shutil.rmtree(tmp_path / "scored.cutscore")


def test_the_resolve_module_needs_only_the_standard_library():
    """It runs inside Resolve's own Python, where neither OpenTimelineIO nor torch is installed."""
    import ast

    def imports(path):
        tree = ast.parse(path.read_text())
        mods = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        return mods | {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}

    own = {"plugin.names"}  # cutscore's names, themselves standard library only
    mods = {m.split(".")[0] for m in imports(ROOT / "plugin" / "resolve.py") - own}
    mods |= {m.split(".")[0] for m in imports(ROOT / "plugin" / "names.py")}
    assert mods - set(sys.stdlib_module_names) - {"__future__", "DaVinciResolveScript"} == set()
    assert imports(ROOT / "plugin" / "resolve.py") & {m for m in imports(ROOT / "plugin" / "resolve.py")
                                                       if m.startswith("plugin")} <= own
