"""`cutscore train synth -o DIR --count N --seed S`: a deterministic synthetic corpus of paired
videos and music, in which the picture predicts the music (the demo model's training data).

Video (160x96, 10 fps, MJPEG .avi; the true cut times in DIR/cuts.json): shots of coloured, textured scenes (stripes at a random angle
and frequency over a hue/brightness per shot) with motion (the texture drifts at a per-shot speed,
a bright blob crosses the frame), hard cuts between shots. Cut times fall on whole seconds: Diff-V2M
conditions on per-second features, so a cut inside a second can only be placed to that second.
Music (8 kHz mono WAV), following the picture:
- a strong percussive hit (noise burst + pitched thump) at every cut;
- a pulse whose tempo follows the shot's motion (60 + 120 x speed BPM), as a soft amplitude swell
  (no hard attack, so onsets mark the cuts);
- a chord whose root follows the hue and whose register follows the brightness;
- a timbre (the mix of sine, saw and square partials) drawn per shot.
Everything (number of shots, lengths, colours, speeds, timbres) is drawn from the seed.

`music="gm"` renders the same rules with real instrument samples instead (issue 15): a MIDI score
(mido) played by FluidSynth with a General MIDI SoundFont (Debian's fluid-soundfont-gm), 16 kHz
mono, every piece in C major (the key is not in the picture: a 10 s window that starts after the
first shot could not tell a key drawn per piece, and a model that hedges between keys plays none):
an instrument per shot (piano, e-piano, vibraphone, harp, choir, flute, recorder, ocarina: voices
with few strong upper partials, so a chord reads as its own notes), its chord (I, IV, V or vi,
picked by the shot's hue; register from brightness, C3 to C5) attacked at the cut and held,
swelling on the beat (MIDI expression; tempo from motion; no new attacks, so onsets mark the cuts),
over a pedal (the tonic, C4 and C5, held by strings through the piece: an octave lower, its low
partials leaked into C# and B and read 0.3 bits of chroma flatter), and at every cut a bass
drum, a low tom and the chord's root on an acoustic bass (no cymbals: their noise is not what the
demo should learn).
FluidSynth renders a given MIDI file byte-identically, so the corpus stays deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

W, H, FPS, SR = 160, 96, 10, 8000


@dataclass
class Shot:
    start: float
    end: float
    hue: float  # 0..1
    brightness: float  # 0.25..1
    speed: float  # 0..1: motion amount
    angle: float
    freq: float
    timbre: tuple[float, float, float]  # sine, saw, square weights


def shots_for(rng: np.random.Generator, duration: float) -> list[Shot]:
    cuts, t = [], 0
    while True:
        t += int(rng.integers(1, 7))  # 1..6 s shots (cuts a second apart happen in edits), cuts on whole seconds
        if t >= duration - 1:
            break
        cuts.append(float(t))
    bounds = [0.0, *cuts, float(duration)]
    out = []
    for a, b in zip(bounds, bounds[1:]):
        w = rng.dirichlet([1, 1, 1])
        out.append(Shot(a, b, float(rng.random()), float(rng.uniform(0.25, 1.0)), float(rng.random()),
                        float(rng.uniform(0, np.pi)), float(rng.uniform(0.05, 0.25)), (float(w[0]), float(w[1]), float(w[2]))))
    return out


def render_video(path: Path, shots: list[Shot], duration: float, seed: int) -> None:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    rng = np.random.default_rng(seed)
    grain = rng.normal(0, 6, (H, W, 1)).astype(np.float32)
    for i in range(int(round(duration * FPS))):
        t = i / FPS
        s = next(x for x in shots if x.start <= t < x.end) if t < shots[-1].end else shots[-1]
        phase = (t - s.start) * s.speed * 0.8  # drift: at most 0.08 of a stripe a frame, no false cuts
        u = xx * np.cos(s.angle) + yy * np.sin(s.angle)
        stripes = 0.5 + 0.5 * np.sin(u * s.freq + phase * 2 * np.pi)
        hsv = np.zeros((H, W, 3), np.float32)
        hsv[..., 0] = s.hue * 180
        hsv[..., 1] = 150 + 100 * stripes
        hsv[..., 2] = 255 * s.brightness * (0.55 + 0.45 * stripes)
        frame = cv2.cvtColor(hsv.clip(0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR).astype(np.float32)
        bx = (W * ((t - s.start) * (0.2 + s.speed) * 0.5 % 1.0))
        blob = np.exp(-(((xx - bx) ** 2) + (yy - H / 2) ** 2) / 120.0)[..., None]
        frame = frame * (1 - 0.6 * blob) + 255 * 0.6 * blob + grain
        writer.write(frame.clip(0, 255).astype(np.uint8))
    writer.release()


def render_music(shots: list[Shot], duration: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    n = int(round(duration * SR))
    t = np.arange(n) / SR
    y = np.zeros(n, np.float32)
    for s in shots:
        a, b = int(s.start * SR), int(s.end * SR)
        tt = t[a:b] - s.start
        root = 48 + int(s.hue * 12)  # MIDI: hue -> pitch class
        octave = 12 * int(round(s.brightness * 2))  # brightness -> register
        chord = np.zeros(b - a, np.float32)
        for k, step in enumerate((0, 4, 7)):
            f = 440 * 2 ** ((root + octave + step - 69) / 12)
            ph = 2 * np.pi * f * tt
            w = s.timbre
            chord += (w[0] * np.sin(ph) + w[1] * (2 * ((f * tt) % 1) - 1) * 0.5
                      + w[2] * np.sign(np.sin(ph)) * 0.4) / (1 + k * 0.3)
        bpm = 60 + 120 * s.speed
        swell = 0.65 + 0.35 * np.sin(2 * np.pi * bpm / 60 * tt) ** 2  # soft pulse: no hard attack
        fade = np.minimum(1, np.minimum(tt / 0.05, (s.end - s.start - tt) / 0.05))
        y[a:b] += 0.12 * chord * swell * fade
        if s.start > 0:  # the hit at the cut
            m = int(0.25 * SR)
            env = np.exp(-np.arange(m) / (0.03 * SR))
            thump = np.sin(2 * np.pi * (90 + 60 * rng.random()) * np.arange(m) / SR)
            noise = rng.normal(0, 1, m)
            y[a:a + m] += (0.5 * noise * np.exp(-np.arange(m) / (0.01 * SR)) + 0.7 * thump * env)[: n - a]
    return (y / max(1e-6, np.abs(y).max()) * 0.9).astype(np.float32)


GM_SR = 16000
GM_PROGRAMS = (0, 4, 11, 46, 52, 73, 74, 79)  # piano, e-piano, vibraphone, harp, choir, flute, recorder, ocarina
GM_TONIC = 0  # C major
MAJOR = (0, 2, 4, 5, 7, 9, 11)
GM_SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2",
                 "/usr/share/sounds/sf2/TimGM6mb.sf2")


def soundfont() -> Path:
    import os
    import shutil

    from core.errors import CutscoreError

    if shutil.which("fluidsynth") is None:
        raise CutscoreError("the GM corpus needs FluidSynth (apt-get install fluidsynth fluid-soundfont-gm)")
    for p in filter(None, (os.environ.get("CUTSCORE_SOUNDFONT"), *GM_SOUNDFONTS)):
        if Path(p).is_file():
            return Path(p)
    raise CutscoreError("no General MIDI SoundFont found: apt-get install fluid-soundfont-gm, or set CUTSCORE_SOUNDFONT")


def gm_score(shots: list[Shot], seed: int, path: Path) -> None:
    """The shots' music as a standard MIDI file (120 bpm, 480 ticks a beat: 960 ticks a second)."""
    import mido

    rng = np.random.default_rng(seed + 2)
    events = []  # (seconds, order, message): note-offs before note-ons at the same time
    tonic = GM_TONIC
    events.append((0.0, 0, mido.Message("program_change", channel=2, program=32)))  # acoustic bass for the hits
    events.append((0.0, 0, mido.Message("program_change", channel=3, program=48)))  # strings: the pedal
    end = shots[-1].end
    for n in (60 + tonic, 72 + tonic):  # the pedal: the tonic at C4 and C5
        events.append((0.001, 2, mido.Message("note_on", channel=3, note=n, velocity=110)))
        events.append((end - 0.02, 1, mido.Message("note_off", channel=3, note=n, velocity=0)))
    for k, s in enumerate(shots):
        ch = k % 2  # alternate channels so each shot's instrument starts clean
        events.append((s.start, 0, mido.Message("program_change", channel=ch,
                                                program=GM_PROGRAMS[int(rng.integers(len(GM_PROGRAMS)))])))
        degree = (0, 3, 4, 5)[int(s.hue * 4) % 4]  # the shot's hue picks the chord: I, IV, V or vi of the key
        octave = 48 + 12 * int(round(s.brightness * 2))  # brightness picks the register: C3, C4 or C5
        chord = tuple(octave + tonic + (MAJOR[(degree + j) % 7] + 12 * ((degree + j) // 7)) for j in (0, 2, 4))
        for n in chord:  # attacked at the cut, held through the shot
            events.append((s.start + 0.001, 2, mido.Message("note_on", channel=ch, note=n, velocity=72)))
            events.append((s.end - 0.02, 1, mido.Message("note_off", channel=ch, note=n, velocity=0)))
        beat = 60 / (60 + 120 * s.speed)
        t = s.start
        while t < s.end - 0.05:  # the pulse: the chord swells on the beat (expression, 20 a second; no new attacks)
            phase = ((t - s.start) / beat) % 1.0
            level = int(round(96 + 31 * np.cos(2 * np.pi * phase)))
            events.append((t, 1, mido.Message("control_change", channel=ch, control=11, value=level)))
            t += 0.05
        if s.start > 0:  # the hit at the cut: bass drum and low tom (GM drums, channel 10) and the chord's root in the bass
            for n, v in ((36, 127), (41, 110)):
                events.append((s.start, 2, mido.Message("note_on", channel=9, note=n, velocity=v)))
                events.append((s.start + 0.3, 1, mido.Message("note_off", channel=9, note=n, velocity=0)))
            bass = 28 + (chord[0] - 28) % 12
            events.append((s.start, 2, mido.Message("note_on", channel=2, note=bass, velocity=120)))
            events.append((min(s.start + 0.8, s.end - 0.02), 1, mido.Message("note_off", channel=2, note=bass, velocity=0)))
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000)])
    mid.tracks.append(track)
    last = 0
    for sec, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        tick = int(round(sec * 960))
        track.append(msg.copy(time=tick - last))
        last = tick
    mid.save(str(path))


def render_music_gm(shots: list[Shot], duration: float, seed: int, work: Path) -> np.ndarray:
    """FluidSynth plays gm_score with the GM SoundFont: mono float32 at GM_SR, peak 0.9."""
    import subprocess

    import soundfile as sf

    midi, raw = work.with_suffix(".mid"), work.with_suffix(".fluidsynth.wav")
    gm_score(shots, seed, midi)
    subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", str(GM_SR), "-F", str(raw), str(soundfont()),
                    str(midi)], check=True, capture_output=True)
    y, _ = sf.read(raw, dtype="float32", always_2d=True)
    raw.unlink()
    n = int(round(duration * GM_SR))
    y = np.pad(y.mean(1)[:n], (0, max(0, n - len(y))))
    return (y / max(1e-6, float(np.abs(y).max())) * 0.9).astype(np.float32)


def write_pair(out: Path, name: str, seed: int, duration_s: float, music: str = "synth") -> tuple[Path, Path, list[float]]:
    import soundfile as sf

    rng = np.random.default_rng(seed)
    shots = shots_for(rng, duration_s)
    video, wav = out / f"{name}.avi", out / f"{name}.wav"
    render_video(video, shots, duration_s, seed)
    if music == "gm":
        sf.write(wav, render_music_gm(shots, duration_s, seed, out / name), GM_SR, subtype="PCM_16")
    elif music == "synth":
        sf.write(wav, render_music(shots, duration_s, seed), SR, subtype="PCM_16")
    else:
        raise ValueError(f"unknown corpus music: {music!r} (synth or gm)")
    return video, wav, [s.start for s in shots[1:]]


def write_corpus(out: str | Path, count: int = 100, seed: int = 0, duration_s: float = 40.0,
                 music: str = "synth") -> list[tuple[Path, Path]]:
    import json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pairs, cuts = [], {}
    for i in range(count):
        v, m, c = write_pair(out, f"synth{i:04d}", seed * 100_000 + i, duration_s, music)
        pairs.append((v, m))
        cuts[v.stem] = c
    (out / "cuts.json").write_text(json.dumps(cuts, indent=1))
    return pairs
