"""The editor's panel (issue 7): a real Qt window offscreen (pytest-qt), the real engine with the
debug model in-process (LocalEngine), real timelines and media."""

import shutil
import time

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PyQt6.QtCore import QTimer  # noqa: E402

from plugin.plan import make_plan  # noqa: E402
from plugin.timeline import read_timeline  # noqa: E402
from tests.conftest import FIXTURES, ROOT, SHARED  # noqa: E402
from ui.panel.window import PanelWindow  # noqa: E402

pytestmark = pytest.mark.gui
SCREENSHOT = ROOT / "out" / "panel_after_generation.png"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """What the panel uses by default: a private engine process on loopback (real HTTP, real
    token), warmed by one small job as `cutscore serve` keeps its model warm."""
    import os

    from engine.api import ClipSpan, ScoreRequest, Settings, WindowSpec
    from engine.client import SpawnedEngine, run_job

    old = os.environ.get("CUTSCORE_CONFIG_DIR")
    os.environ["CUTSCORE_CONFIG_DIR"] = str(tmp_path_factory.mktemp("config"))
    eng = SpawnedEngine(model="debug")
    video = str((ROOT / "resources" / "demo" / "testvideo.mp4").resolve())
    run_job(eng, ScoreRequest(model="debug", duration_s=2, clips=[ClipSpan(index=0, start_s=0, duration_s=2, media=video)],
                              windows=[WindowSpec(start_s=0, duration_s=2)], settings=Settings(steps=1),
                              output_dir=str(tmp_path_factory.mktemp("warm"))))
    yield eng
    eng.close()
    if old is None:
        os.environ.pop("CUTSCORE_CONFIG_DIR", None)
    else:
        os.environ["CUTSCORE_CONFIG_DIR"] = old


@pytest.fixture
def panel(qtbot, engine):
    win = PanelWindow(client_factory=lambda: engine)
    qtbot.addWidget(win)
    win.show()
    return win


@pytest.mark.parametrize("name", ["simple_cut.otio", "multitrack.otio", "clip_example.otio", "premiere_example.xml",
                                  "screening_example.edl", "kdenlive_example_v221170.kdenlive"])
def test_opening_each_shared_timeline_shows_its_clips_and_cuts(panel, name):
    path = FIXTURES / "timelines" / name
    if not path.exists():
        path = SHARED / "timelines" / name
    if not path.exists():
        pytest.skip("shared timelines not found")
    assert panel.open(path)
    plan = make_plan(read_timeline(path, rate=24 if name.endswith(".edl") else None))
    tl = panel.state.plan.timeline
    assert len(tl.clips) == len(plan.timeline.clips) and len(tl.cuts) == len(plan.timeline.cuts)
    assert f"{len(plan.timeline.clips)} clips, {len(plan.timeline.cuts)} cuts" in panel.info.text()
    img = panel.view.grab().toImage()
    # a cut line is drawn at each cut (red pixels in the clip row's column)
    for c in tl.cuts[:3]:
        x = int(panel.view.x_of(c.to_seconds()))
        if x < img.width():
            assert img.pixelColor(x, 30).red() > 200


def test_bad_timeline_shows_the_one_line_error(panel, tmp_path):
    bad = tmp_path / "broken.otio"
    bad.write_text('{"OTIO_SCHEMA": "Timeline.1", "tracks": ')
    assert not panel.open(bad)
    assert panel.error.text().startswith(str(bad)) and "\n" not in panel.error.text()


def _demo(tmp_path):
    for f in ("demo.otio", "testvideo.mp4"):
        shutil.copy(ROOT / "resources" / "demo" / f, tmp_path)
    return tmp_path / "demo.otio"


def test_generate_regenerate_export_and_stay_responsive(panel, qtbot, tmp_path):
    assert panel.open(_demo(tmp_path))
    qtbot.waitUntil(lambda: panel.state.beats is not None, timeout=30000)
    panel.model_edit.setText("debug")
    panel.steps.setValue(8)
    progress = []
    panel.progress.valueChanged.connect(progress.append)
    ticks = []
    timer = QTimer(interval=10, timeout=lambda: ticks.append(time.perf_counter()))
    stages = []
    timer.timeout.connect(lambda: stages.append(panel.state.stage + ":" + panel.state.message))
    timer.start()
    with qtbot.waitSignal(panel.generated, timeout=120000):
        panel.generate_btn.click()
    timer.stop()
    gaps = np.diff(ticks)
    assert len(ticks) > 20 and gaps.max() < 0.1, (f"largest gap between timer ticks {gaps.max() * 1000:.0f} ms",
                                                  stages[int(gaps.argmax())], stages[int(gaps.argmax()) + 1])
    assert progress[-1] == 1000 and progress == sorted(progress)
    scored = panel.state.scored_path
    assert scored.exists() and scored.name == "demo-scored.otio"
    music = panel.state.music.copy()
    assert music.shape[1] == 960_960 and np.abs(music).max() > 0
    assert panel.state.rhythm is not None and len(panel.state.rhythm) == 21
    SCREENSHOT.parent.mkdir(exist_ok=True)
    assert panel.grab().save(str(SCREENSHOT))
    # regenerate clip 2 ('rock', 9.009 s .. 12.513 s): only its segment of the waveform changes
    clip = panel.state.clips[2]
    panel.state.selected_clip = 2
    panel._sync()
    assert panel.regen_btn.isEnabled()
    with qtbot.waitSignal(panel.generated, timeout=120000):
        panel.regen_btn.click()
    new = panel.state.music
    a = round(clip.range.start_time.to_seconds() * 48000)
    b = round(clip.range.end_time_exclusive().to_seconds() * 48000)
    assert np.array_equal(new[:, :a], music[:, :a]) and np.array_equal(new[:, b:], music[:, b:])
    assert not np.allclose(new[:, a:b], music[:, a:b], atol=1e-3)
    # export next to the input, and say where
    panel.fmt.setCurrentText(".xml")
    panel.export_btn.click()
    out = tmp_path / "demo-cutscore.xml"
    assert out.exists() and str(out) in panel.info.text()


def test_cancel_stops_a_generation(panel, qtbot, tmp_path):
    assert panel.open(_demo(tmp_path))
    panel.model_edit.setText("debug")
    panel.steps.setValue(1000)
    panel.sampler.setCurrentText("ddim")
    errors = []
    panel.failed.connect(errors.append)
    panel.generate_btn.click()
    qtbot.waitUntil(lambda: panel.state.stage == "sampling", timeout=60000)
    assert panel.cancel_btn.isEnabled()
    panel.cancel_btn.click()
    qtbot.waitUntil(lambda: not panel.state.busy, timeout=30000)
    assert errors and "cancelled" in errors[0]
    assert panel.state.scored_path is None and not (tmp_path / "demo-scored.otio").exists()
