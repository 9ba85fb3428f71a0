"""DaVinci Resolve 21.1's free edition lists only Lua scripts (issue 37): the Lua launchers, run by a
real Lua (Debian's luajit; lua5.1 also works) against tests/fake_resolve.lua, a stand-in for Resolve's
scripting API (Resolve cannot run here) that records every call. The cutscore side is real: the
launcher starts `python -m ui.cli resolve run` through io.popen, which scores with the debug model."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import opentimelineio as otio
import pytest
from opentimelineio.opentime import RationalTime, TimeRange

from plugin import resolve as rs
from tests import tools
from tests.conftest import ROOT

LUA = shutil.which("luajit") or shutil.which("lua5.1")
pytestmark = pytest.mark.skipif(LUA is None, reason=f"needs a Lua 5.1 interpreter ({tools.apt_line(['luajit'])})")
FAKE = ROOT / "tests" / "fake_resolve.lua"
ARGS = "--no-panel --extra=--engine --extra=local --extra=--model --extra=debug --extra=--steps --extra=2"
RATES = {"24": (24.0, False), "25": (25.0, False), "29.97": (30000 / 1001, False), "59.94": (60000 / 1001, True)}


def _start_frame(rate: float, drop: bool) -> int:
    """01:00:00:00 as Resolve counts it (GetStartFrame): nominal frames, less the dropped numbers."""
    nominal = round(rate)
    return 3600 * nominal - (round(nominal / 15) * 54 if drop else 0)


def _timecode(frame: int, rate: float, drop: bool) -> str:
    """The timecode Resolve shows for a frame (SMPTE drop frame at 59.94: 4 numbers a minute)."""
    nominal = round(rate)
    if drop:
        d = round(nominal / 15)
        per10 = nominal * 600 - 9 * d
        tens, rem = divmod(frame, per10)
        frame += 9 * d * tens + (d * ((rem - d) // (nominal * 60 - d)) if rem > d else 0)
    f, s = frame % nominal, frame // nominal
    sep = ";" if drop else ":"
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}{sep}{f:02d}"


def _export(tmp_path: Path, rate: float, durations: list[int], start: int) -> Path:
    """An edit as Resolve's OTIO export writes it (start timecode, Resolve_OTIO, absolute paths)."""
    video = str((ROOT / "resources" / "demo" / "testvideo.mp4").resolve())
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video, metadata={"Resolve_OTIO": {}})
    pos = 0
    for d in durations:
        track.append(otio.schema.Clip(name=f"shot {pos}", media_reference=otio.schema.ExternalReference(target_url=video),
                                      source_range=TimeRange(RationalTime(pos, rate), RationalTime(d, rate))))
        pos += d
    tl = otio.schema.Timeline(name="Cut 1", tracks=[track], global_start_time=RationalTime(start, rate))
    path = tmp_path / "resolve-export.otio"
    otio.adapters.write_to_file(tl, str(path))
    return path


def _run(tmp_path: Path, action: str, cfg: dict, markers=(), refuse=(), args: str = ARGS) -> dict:
    """Install the launchers into a scratch home, run one under the stand-in; what it recorded."""
    return _run_lua(tmp_path, action, cfg, _launcher(tmp_path, action), markers, refuse, args)


def _named(rec: dict, name: str) -> list:
    return [c for c in rec["calls"] if c[0] == name]


@pytest.mark.parametrize("rate_s", list(RATES))
def test_lua_launcher_scores_onto_the_right_frames(tmp_path, rate_s):
    rate, drop = RATES[rate_s]
    n = round(rate)
    durations = [3 * n + 7, 2 * n, 11]
    start = _start_frame(rate, drop)
    src = _export(tmp_path, rate, durations, start)
    rec = _run(tmp_path, "score", {"rate": rate_s, "start_frame": start, "drop": int(drop), "export_from": src},
               markers=[n])
    assert rec["code"] == 0, rec["console"][-3:]
    assert _named(rec, "Export") == [["Export", ".otio", "EXPORT_OTIO", "EXPORT_NONE"]]
    assert _named(rec, "AddSubFolder") == [["AddSubFolder", "Master", "cutscore"]]
    assert _named(rec, "AddTrack") == [["AddTrack", "audio", "stereo"]]
    assert _named(rec, "SetTrackName") == [["SetTrackName", "audio", 2, "cutscore music"]]
    (_, infos), = _named(rec, "AppendToTimeline")
    starts = [sum(durations[:i]) for i in range(len(durations))]
    assert infos == [{"mediaPoolItem": f"clip{i:03d}-v1.wav", "startFrame": 0, "endFrame": d - 1, "mediaType": 2,
                      "trackIndex": 2, "recordFrame": start + s} for i, (s, d) in enumerate(zip(starts, durations))]
    assert rec["audio"][1]["name"] == "cutscore music" and len(rec["audio"][1]["items"]) == 3
    assert rec["bins"] == {"cutscore": [f"clip{i:03d}-v1.wav" for i in range(3)]}
    # the marker one second in reached the engine as a hit point
    side = next(tmp_path.glob("cutscore-resolve-*-scored.cutscore"))
    state = json.loads((side / "cutscore.json").read_text())
    assert any(abs(h - n / rate) < 1e-3 for h in state["request"]["hits_s"])
    # the music's beats as markers on each item (customData "cutscore-beat"), where the sidecar has them
    want = [[i + 1, f, color, name, "cutscore-beat"] for i, seg in enumerate(state["segments"])
            for f, color, name in rs.SidecarView.read(side).beat_marks(seg["wav"], rate)]
    assert len(want) >= 3 and rec["audio"][1]["markers"] == want
    assert state["beats"]["markers"] == "downbeats"  # the default: one marker a bar
    beats = [t for t, down in zip(state["beats"]["times_s"], state["beats"]["downbeat"])
             if down and round(t * rate) < sum(durations)]
    assert len(want) == len(beats)  # one marker a downbeat (within one frame of its time)


def test_lua_launcher_regenerates_the_take_under_a_drop_frame_playhead(tmp_path):
    rate, drop = RATES["59.94"]
    durations = [3 * 60 + 7, 2 * 60, 11]
    start = _start_frame(rate, drop)
    src = _export(tmp_path, rate, durations, start)
    cfg = {"rate": "59.94", "start_frame": start, "drop": 1, "export_from": src}
    rec = _run(tmp_path, "score", cfg)
    assert rec["code"] == 0, rec["console"][-3:]
    side = next(tmp_path.glob("cutscore-resolve-*-scored.cutscore"))
    # the stand-in starts empty each run: give it the scored track as the score run left it
    items = rec["audio"][1]["items"]
    target = items[1]
    playhead = target[0] + 5
    cfg2 = dict(cfg, timecode=_timecode(playhead, rate, drop), audio_tracks=1)
    rec2 = _run_with_track(tmp_path, cfg2, side, items)
    assert rec2["code"] == 0, rec2["console"][-3:]
    assert _named(rec2, "DeleteClips") == [["DeleteClips", [[target[0], "clip001-v1.wav"]]]]
    _, infos = _named(rec2, "AppendToTimeline")[-1]
    assert infos == [{"mediaPoolItem": "clip001-v2.wav", "startFrame": 0, "endFrame": target[1] - 1, "mediaType": 2,
                      "trackIndex": 2, "recordFrame": target[0]}]
    assert (side / "clip001-v2.wav").exists()
    # the new take's item carries the beats of its music
    new_marks = [m for m in rec2["audio"][1]["markers"] if m[0] == len(rec2["audio"][1]["items"])]
    assert new_marks and all(m[4] == "cutscore-beat" for m in new_marks)
    assert [m[1] for m in new_marks] == [f for f, *_ in rs.SidecarView.read(side).beat_marks("clip001-v2.wav", rate)]


def _run_with_track(tmp_path: Path, cfg: dict, side: Path, items: list) -> dict:
    """Run the regenerate launcher on a stand-in whose audio track 2 already holds `items`."""
    setup = tmp_path / "setup.lua"
    lines = ['local real = Resolve()', 'local tl = real:GetProjectManager():GetCurrentProject():GetCurrentTimeline()',
             'local pool = real:GetProjectManager():GetCurrentProject():GetMediaPool()',
             'tl:AddTrack("audio", "stereo")', 'tl:SetTrackName("audio", 2, "cutscore music")',
             'local infos = {}']
    for start, dur, wav in items:
        lines.append(f'infos[#infos + 1] = {{mediaPoolItem = pool:ImportMedia({{"{side / wav}"}})[1], startFrame = 0, '
                     f'endFrame = {dur - 1}, mediaType = 2, trackIndex = 2, recordFrame = {start}}}')
    lines += ['pool:AppendToTimeline(infos)', f'return dofile("{_launcher(tmp_path, "regenerate")}")']
    setup.write_text("\n".join(lines) + "\n")
    rec = _run_lua(tmp_path, "regenerate", cfg, setup, args="--extra=--engine --extra=local")
    # only what the launcher itself called counts: the setup's AddTrack, SetTrackName, ImportMedia
    # per item and AppendToTimeline come first
    rec["calls"] = rec["calls"][len(items) + 3:]
    return rec


def _launcher(tmp_path: Path, action: str) -> Path:
    launchers = rs.install(ROOT, sys.executable, system="linux", env={}, home=tmp_path / "home")
    name = "cutscore.lua" if action == "score" else "cutscore - regenerate clip under playhead.lua"
    return next(p for p in launchers if p.name == name)


def _run_lua(tmp_path: Path, action: str, cfg: dict, script: Path, markers=(), refuse=(), args: str = ARGS) -> dict:
    """Run `script` (a launcher, or a setup that ends in one) inside tests/fake_resolve.lua."""
    lines = [f"{k}\t{v}" for k, v in cfg.items()] + [f"marker\t{m}" for m in markers] + [f"refuse\t{r}" for r in refuse]
    conf = tmp_path / f"{action}.conf"
    conf.write_text("\n".join(lines) + "\n")
    out = tmp_path / f"{action}.json"
    env = dict(os.environ, CUTSCORE_RESOLVE_ARGS=args, TMPDIR=str(tmp_path))
    r = subprocess.run([LUA, str(FAKE), str(conf), str(out), str(script)], env=env, capture_output=True, text=True,
                       timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("case,expect", [
    ("no_api", "scripting API is not reachable"),
    ("no_project", "no project is open"),
    ("Export", "did not export the timeline as OTIO"),
])
def test_lua_launcher_refusals_are_one_line(tmp_path, case, expect):
    src = _export(tmp_path, 25.0, [50, 50], 90000)
    cfg = {"rate": "25", "start_frame": 90000, "export_from": src}
    refuse = []
    if case in ("no_api", "no_project"):
        cfg[case] = 1
    else:
        refuse = [case]
    rec = _run(tmp_path, "score", cfg, refuse=refuse)
    assert rec["code"] == 2
    assert len(rec["console"]) == 1 and expect in rec["console"][0], rec["console"]
    if case != "no_project":
        assert "File > Export > Timeline" in rec["console"][0]
    assert _named(rec, "AppendToTimeline") == []


def test_lua_launcher_says_what_cutscore_said_when_scoring_fails(tmp_path):
    src = _export(tmp_path, 25.0, [50, 50], 90000)
    rec = _run(tmp_path, "score", {"rate": "25", "start_frame": 90000, "export_from": src},
               args=ARGS + " --extra=--model --extra=/no/such/model")
    assert rec["code"] == 2 and rec["console"][-1].startswith("cutscore: error: "), rec["console"][-3:]
    assert rec["console"].count(rec["console"][-1]) == 1
    assert "/no/such/model" in rec["console"][-1] and _named(rec, "ImportMedia") == []


def test_timecodes_the_lua_launcher_reads():
    """Its drop-frame arithmetic against the Python launcher's, over a day of 59.94 and 29.97 DF."""
    script = ROOT / "plugin" / "resolve_launcher.lua"
    cases = [(f, r, d) for r, d in ((60000 / 1001, True), (30000 / 1001, True), (25.0, False), (24.0, False))
             for f in (0, 1, 1799, 1800, 3597, 17982, 107892, 215784, 215790, 5178816)]
    body = "local L = dofile(arg[1])\n" + "".join(
        f'print(L.timecode_frames("{_timecode(f, r, d)}", {r!r}, {str(d).lower()}))\n' for f, r, d in cases)
    r = subprocess.run([LUA, "-", str(script)], input=body, capture_output=True, text=True, check=True)
    assert [int(x) for x in r.stdout.split()] == [f for f, _, _ in cases]
    assert [rs._timecode_frames(_timecode(f, r_, d), r_) for f, r_, d in cases] == [f for f, _, _ in cases]
