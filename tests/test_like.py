"""Music like a reference (issue 45): SDEdit from the reference's latents (engine/model/sampling.py
from_reference, engine/inference.py reference), the reference read from a file or from the
timeline's own temp track as it plays (plugin/commands/like.py), recorded in the sidecar and followed by a
regenerate; `--vary`; the one-line refusals."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from core.errors import CutscoreError
from plugin.commands.like import VARY, clip_level, prepare
from plugin.commands.regenerate import regenerate_clip
from plugin.commands.score import ScoreOptions, score_timeline
from plugin.commands.state import load_state, music_of
from plugin.finish.render import read_wav
from plugin.formats.timeline import read_timeline
from tests import tools
from tests.conftest import ROOT
from tests.helpers import RecordingClient, kdenlive_temp_track, temp_track_timeline, tone

SR = 48000


def _demo(tmp_path):
    for f in ("demo.otio", "testvideo.mp4"):
        shutil.copy(ROOT / "resources" / "demo" / f, tmp_path)
    return tmp_path / "demo.otio"


def _opts(**kw) -> ScoreOptions:
    return ScoreOptions(model="debug", steps=2, duck_db=None, seed=4, **kw)


# ---- the sampler -----------------------------------------------------------------------------------------

def test_from_reference_ends_the_schedule_where_the_strength_says():
    import torch

    from engine.model.sampling import from_reference, schedule

    noise, ref = torch.randn(2, 1, 4, 16, generator=torch.Generator().manual_seed(0))
    x, ts = from_reference(noise, ref, 0.0, 10)  # strength 0: the sampling without a reference
    assert torch.equal(x, noise) and torch.equal(ts, schedule(10))
    x, ts = from_reference(noise, ref, 1.0, 10)  # strength 1: the reference, no step
    assert torch.equal(x, ref) and ts.tolist() == [0.0]
    x, ts = from_reference(noise, ref, 0.75, 10)  # t0 = 0.25: the last 3 of 10 steps (diffusers' img2img rule)
    assert len(ts) == 4 and abs(float(ts[0]) - 0.25) < 1e-6 and float(ts[-1]) == 0.0
    a, s = np.cos(0.25 * np.pi / 2), np.sin(0.25 * np.pi / 2)
    assert torch.allclose(x, a * ref + s * noise, atol=1e-6)


def test_a_window_reads_the_reference_under_its_seconds_where_the_reference_starts_later(tmp_path):
    """engine/inference.py reference: a reference laid from the timeline second start_s (a take's
    window, --vary) is read under each window's seconds, silence before it and after it; the pipe's
    encoder is a stand-in returning what it is given (the VAE itself is tested below)."""
    from types import SimpleNamespace

    from core.api import Like, WindowSpec
    from engine.inference import reference
    from plugin.finish.render import write_wav

    sr, wav = 100, tmp_path / "ref.wav"
    audio = np.tile(np.arange(1, 301, dtype=np.float32) / 1000, (2, 1))  # 3 s, from the timeline's 5 s
    write_wav(wav, audio, sr, subtype="FLOAT")
    pipe = SimpleNamespace(cfg=SimpleNamespace(sample_rate=sr), encode=lambda x: x)
    req = SimpleNamespace(like=Like(audio=str(wav), strength=0.5, start_s=5.0))
    got, strength = reference(req, WindowSpec(start_s=4.0, duration_s=2.0), pipe)
    assert strength == 0.5 and got.shape == (2, 200)
    assert not got[:, :100].any() and np.array_equal(got[:, 100:], audio[:, :100])
    got, _ = reference(req, WindowSpec(start_s=7.5, duration_s=2.0), pipe)
    assert np.array_equal(got, audio[:, 250:])  # the reference ends inside the window
    assert reference(req, WindowSpec(start_s=2.0, duration_s=3.0), pipe) is None  # before it
    assert reference(req, WindowSpec(start_s=8.0, duration_s=2.0), pipe) is None  # after it


def test_a_window_follows_its_reference_closer_as_the_strength_rises():
    """The pipeline itself: strength 1 keeps the reference's latents exactly, and the latents come
    nearer the reference as the strength rises (the same seed, features and steps)."""
    import torch

    from engine.model.pipeline import Pipeline, WindowFeatures

    pipe = Pipeline.load("debug", device="cpu")
    w = WindowFeatures.zeros(8, 0.0, 8.0)
    t = np.arange(int(w.duration_s * pipe.cfg.sample_rate)) / pipe.cfg.sample_rate
    ref = pipe.encode(np.stack([0.4 * np.sin(2 * np.pi * 330 * t)] * 2).astype(np.float32))
    plain = pipe.generate(w, seed=3, steps=4).latents
    assert torch.equal(pipe.generate(w, seed=3, steps=4, like=(ref, 0.0)).latents, plain)
    n = ref.shape[-1]  # the window's 8 s of the model's 30 s of latents: the rest has no reference (zeros)
    at_1 = pipe.generate(w, seed=3, steps=4, like=(ref, 1.0)).latents
    assert torch.equal(at_1[..., :n], ref) and not at_1[..., n:].any()
    dist = [float((pipe.generate(w, seed=3, steps=4, like=(ref, s)).latents[..., :n] - ref).norm())
            for s in (0.0, 0.3, 0.6, 0.9)]
    assert dist == sorted(dist, reverse=True) and dist[-1] < 0.5 * dist[0], dist


# ---- score and regenerate --------------------------------------------------------------------------------

def test_strength_0_is_the_score_without_a_reference_and_the_sidecar_records_it(tmp_path, local_engine):
    src, ref = _demo(tmp_path), tone(tmp_path / "ref.wav", 30.0)
    plain = score_timeline(src, tmp_path / "plain.otio", local_engine, _opts())
    zero = score_timeline(src, tmp_path / "zero.otio", local_engine, _opts(like=str(ref), like_strength=0.0))
    assert np.array_equal(plain.music, zero.music)
    liked = score_timeline(src, tmp_path / "liked.otio", local_engine, _opts(like=str(ref), like_strength=0.6))
    assert not np.array_equal(plain.music, liked.music)
    side, state = load_state(tmp_path / "liked.otio")
    rec = state.like
    assert rec is not None and rec.path == str(ref) and rec.strength == 0.6 and rec.track is None
    assert state.request.like is not None and state.request.like.strength == 0.6
    kept, sr = read_wav(side / "engine" / rec.audio)  # the decoded reference: the edit's length, at the WAVs' rate
    assert sr == SR and kept.shape[1] == round(plain.music.shape[1])
    import hashlib

    assert hashlib.sha256(kept.T.astype("<f4").tobytes()).hexdigest() == rec.sha256
    assert load_state(tmp_path / "zero.otio")[1].request.like is None


def test_a_regenerate_follows_the_recorded_reference_and_vary_takes_differ(tmp_path, local_engine):
    src, ref = _demo(tmp_path), tone(tmp_path / "ref.wav", 30.0)
    score_timeline(src, tmp_path / "s.otio", local_engine, _opts(like=str(ref), like_strength=0.5))
    side = tmp_path / "s.cutscore"
    moved = tmp_path / "moved"  # the sidecar folder moved: the reference follows it
    moved.mkdir()
    for f in ("s.otio", "testvideo.mp4"):
        shutil.move(tmp_path / f, moved / f)
    shutil.move(side, moved / "s.cutscore")
    eng = RecordingClient(local_engine)
    regenerate_clip(moved / "s.otio", "1", eng, moved / "r.otio", seed=9)
    like = eng.requests[-1].like
    assert like is not None and like.strength == 0.5 and like.audio == str(moved / "s.cutscore" / "engine" / "like.wav")
    take, _ = read_wav(moved / "s.cutscore" / load_state(moved / "r.otio")[1].clip(1).wav)
    music = music_of(moved / "r.otio")[0]  # as the take was before the variations
    subtle = regenerate_clip(moved / "r.otio", "1", eng, moved / "v1.otio", seed=11, vary="subtle")
    assert eng.requests[-1].like.strength == VARY["subtle"] and subtle.like.source.startswith("take:")
    # the reference is the music under the window the take is sampled in, not the whole score's
    like = eng.requests[-1].like
    ref, sr = read_wav(Path(like.audio))
    window = next(w for w in load_state(moved / "r.otio")[1].windows if abs(w.start_s - like.start_s) < 1 / sr)
    a = round(like.start_s * sr)
    assert ref.shape[1] == min(round(window.duration_s * sr), music.shape[1] - a)  # (one window in this edit)
    assert np.array_equal(ref, music[:, a:a + ref.shape[1]])
    strong = regenerate_clip(moved / "r.otio", "1", eng, moved / "v2.otio", seed=11, vary="strong", force=True)
    assert eng.requests[-1].like.strength == VARY["strong"]
    a, _ = read_wav(subtle.wav)
    b, _ = read_wav(strong.wav)
    assert not np.array_equal(a, b) and not np.array_equal(a, take) and not np.array_equal(b, take)
    rec = load_state(moved / "v2.otio")[1].history[-1].like
    assert rec is not None and rec.strength == VARY["strong"]


# ---- the reference as the timeline plays it ----------------------------------------------------------------

def test_track_reads_the_temp_music_as_cut_levels_and_muted_clips(tmp_path):
    tl = read_timeline(temp_track_timeline(tmp_path))
    clips = tl.otio.audio_tracks()[0].find_clips()
    assert [round(clip_level(c), 6) for c in clips] == [1.0, 0.5, 1.0]
    rec = prepare("track:A1", tl, 0.5, tmp_path / "like.wav", SR, 8.0)
    y, sr = read_wav(tmp_path / "like.wav")
    assert rec.track == "A1" and sr == SR and y.shape == (2, 8 * SR)

    def rms_db(a, b):
        seg = y[:, int((a + 0.1) * SR):int((b - 0.1) * SR)]
        return 20 * np.log10(np.sqrt(np.mean(seg ** 2)) + 1e-12)

    tone = 20 * np.log10(0.4 / np.sqrt(2))
    assert abs(rms_db(0, 2) - tone) < 0.1  # A: as it is
    assert abs(rms_db(2, 4) - (tone - 6.02)) < 0.1  # B: Audio Levels 0.5
    assert rms_db(4, 6) < -100 and rms_db(6, 8) < -100  # C muted; then nothing plays
    # the same track's seconds as the file: A plays the tone from its first sample
    src, _ = read_wav(tmp_path / "tone.wav")
    assert np.allclose(y[:, 1000:2000], src[:, 1000:2000], atol=1e-4)


@tools.needs("melt")
def test_track_reads_a_kdenlive_temp_track_as_melt_plays_it(tmp_path):
    """A disabled clip, Kdenlive's Volume effect (keyframed), a fade in on a clip that starts inside its
    file, and the track's mixer fader: `track:Temp` against the same track as melt (Kdenlive's engine) renders the
    project (its picture has no sound), in 250 ms frames."""
    import subprocess

    import soundfile as sf

    project = kdenlive_temp_track(tmp_path)
    tl = read_timeline(project)
    ours = prepare("track:Temp", tl, 0.5, tmp_path / "like.wav", SR, tl.duration.to_seconds())
    assert ours.track == "Temp"
    y, _ = read_wav(tmp_path / "like.wav")
    subprocess.run(["melt", str(project), "-consumer", f"avformat:{tmp_path / 'melt.wav'}", "acodec=pcm_f32le",
                    f"ar={SR}", "channels=2", "video_off=1"], check=True, capture_output=True, timeout=120)
    m, _ = sf.read(tmp_path / "melt.wav", dtype="float32", always_2d=True)
    hop = SR // 4
    n = min(y.shape[1], m.shape[0]) // hop

    def db(x):
        return 10 * np.log10(np.mean(x[:, :n * hop].reshape(2, n, hop) ** 2, axis=(0, 2)) + 1e-12)

    a, b = db(y), db(m.T)
    loud = b > db(np.full((2, n * hop), 0.4 / np.sqrt(2))) - 9 - 3  # within 9 dB of the tone at the fader
    assert loud.sum() >= 12 and np.max(np.abs(a - b)[loud]) < 0.3, np.c_[a, b][loud]
    assert np.array_equal(a < -100, b < -100)  # silent where melt is: between the clips, after the last
    # what each effect does, so a reading that skipped one would be seen: the first clip silent, the
    # fader everywhere, the volume ramp on the second clip, the fade on the third
    full = 20 * np.log10(0.4 / np.sqrt(2))
    assert a[1] < -100 and abs(a[20] - (full - 3)) < 0.05 and a[12] < full - 3 - 9 and a[24] < full - 3 - 9


def test_the_refusals_are_one_line_each(tmp_path):
    tl = read_timeline(temp_track_timeline(tmp_path))
    cases = {
        "track:Music": "has no audio track 'Music' (its audio tracks: A1)",
        str(tmp_path / "absent.wav"): "no such file",
        str(tmp_path / "noise.mp3"): "cannot be decoded as audio",
        str(tone(tmp_path / "silent.wav", 3.0, amp=0.0)): "the reference is silent",
    }
    (tmp_path / "noise.mp3").write_bytes(b"not audio at all" * 64)
    for source, words in cases.items():
        with pytest.raises(CutscoreError) as e:
            prepare(source, tl, 0.5, tmp_path / "like.wav", SR, 6.0)
        assert words in str(e.value) and "\n" not in str(e.value), str(e.value)
    with pytest.raises(CutscoreError, match="outside 0..1"):
        prepare(str(tmp_path / "tone.wav"), tl, 1.5, tmp_path / "like.wav", SR, 6.0)
    assert not (tmp_path / "like.wav").exists()


def test_a_mono_mp3_reference_is_decoded_through_ffmpeg_or_soundfile(tmp_path):
    from tests import tools

    tools.require("ffmpeg")
    import subprocess

    tone(tmp_path / "mono.wav", 4.0, channels=1, sr=44100)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp_path / "mono.wav"), str(tmp_path / "mono.mp3")], check=True)
    tl = read_timeline(temp_track_timeline(tmp_path))
    rec = prepare(str(tmp_path / "mono.mp3"), tl, 0.5, tmp_path / "like.wav", SR, 6.0)
    y, sr = read_wav(tmp_path / "like.wav")
    assert sr == SR and y.shape[0] == 2 and 3.9 * SR < y.shape[1] < 4.2 * SR and rec.path == str(tmp_path / "mono.mp3")
    spec = np.abs(np.fft.rfft(y[0, SR:2 * SR]))
    assert abs(np.argmax(spec) - 440) <= 1  # the tone, at the model's side's rate


# ---- the panel -------------------------------------------------------------------------------------------

def test_the_panels_like_and_vary_drive_the_requests(qtbot, local_engine, tmp_path):
    """Like offers the timeline's audio tracks; Generate sends the reference at the strength set;
    Vary subtle and Vary strong send the current take at theirs (pytest-qt, a real window offscreen)."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from ui.panel.window import PanelWindow

    rec = RecordingClient(local_engine)
    panel = PanelWindow(client_factory=lambda: rec)
    qtbot.addWidget(panel)
    panel.show()
    assert panel.open(temp_track_timeline(tmp_path))
    assert [panel.like.itemText(i) for i in range(panel.like.count())] == ["", "track:A1"]
    panel.model_edit.setText("debug")
    panel.steps.setValue(2)
    panel.like.setCurrentIndex(1)
    panel.like_strength.setValue(60)
    with qtbot.waitSignal(panel.generated, timeout=120000):
        panel.generate_btn.click()
    like = rec.requests[-1].like
    assert like is not None and like.strength == 0.6 and like.audio.endswith("engine/like.wav")
    # the beat grid follows the Beat markers switch: the downbeats in orange, none when off
    beats, view = panel.state.music_beats, panel.view
    downs = [t for t, d in zip(beats.times_s, beats.downbeat) if d]
    assert downs and beats.markers == "downbeats"

    def orange_at_downbeats() -> int:
        img, y = view.grab().toImage(), int(view.lane_rect("music").top()) + 20
        return sum(any((c := img.pixelColor(x, y)).red() > 200 and 120 < c.green() < 190 and c.blue() < 100
                       for x in (round(view.x_of(t)) - 1, round(view.x_of(t)), round(view.x_of(t)) + 1)) for t in downs)

    assert orange_at_downbeats() >= len(downs) - 1
    panel.beat_markers.setCurrentText("off")
    assert orange_at_downbeats() == 0
    panel.beat_markers.setCurrentText("downbeats")
    panel.state.selected_clip = 0
    panel._sync()
    assert panel.vary_subtle_btn.isEnabled() and panel.vary_strong_btn.isEnabled()
    for button, how in ((panel.vary_subtle_btn, "subtle"), (panel.vary_strong_btn, "strong")):
        with qtbot.waitSignal(panel.generated, timeout=120000):
            button.click()
        assert rec.requests[-1].like.strength == VARY[how] and "like-clip000" in rec.requests[-1].like.audio
    assert len(panel.state.takes[0]["takes"]) == 3
    (ROOT / "out").mkdir(exist_ok=True)
    assert panel.grab().save(str(ROOT / "out" / "panel_like_vary.png"))
