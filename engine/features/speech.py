"""Speech in the timeline's own sound, for ducking (docs/ARCHITECTURE.md, "Ducking").

The dialogue spans of a score request (core/api.py AudioSpan: audio clips where the timeline plays
them) are mixed, as the timeline plays them, into one mono 16 kHz signal of the timeline's length;
Silero VAD (the `silero-vad` package, MIT; its network ships inside the package as
silero_vad/data/silero_vad.jit, nothing is downloaded) marks the speech in it. The regions come
back in timeline seconds; plugin/finish/ducking.py turns them into the music's gain envelope.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from core.api import AudioSpan
from core.errors import CutscoreError

VAD = "silero-vad"  # what listens (a listen job's result names it as its model)
SPEECH_SR = 16000  # Silero VAD's rate
THRESHOLD = 0.5  # Silero's speech probability threshold (its default)
MIN_SPEECH_MS = 250  # shorter bursts (a cough, a door) are not dialogue
MIN_SILENCE_MS = 300  # pauses between words shorter than this stay inside one region
PAD_MS = 30


def timeline_sound(spans: list[AudioSpan], duration_s: float, warnings: list[str]) -> np.ndarray:
    """The spans mixed into one mono signal at SPEECH_SR, sample 0 = the timeline's start."""
    from engine.features.audio import load_audio

    out = np.zeros(int(round(duration_s * SPEECH_SR)) + 1, np.float32)
    for span in spans:
        try:
            y, _ = load_audio(span.media, SPEECH_SR, span.source_start_s, span.source_start_s + span.duration_s)
        except CutscoreError as e:
            if not span.picture:  # a picture clip's file without a soundtrack is just silent
                warnings.append(f"dialogue: {e}; that clip is not listened to for speech")
            continue
        mono = y.mean(axis=0)
        a = int(round(span.start_s * SPEECH_SR))
        n = min(len(mono), len(out) - a, int(round(span.duration_s * SPEECH_SR)))
        if n > 0:
            out[a:a + n] += mono[:n]
    return out


def detect_speech(spans: list[AudioSpan], duration_s: float, warnings: list[str],
                  progress: Callable[[float], None] | None = None) -> list[tuple[float, float]]:
    """Speech regions [(start_s, end_s)] in the timeline's sound, sorted, non-overlapping."""
    import torch

    threads = torch.get_num_threads()
    from silero_vad import get_speech_timestamps, load_silero_vad

    torch.set_num_threads(threads)  # importing silero_vad sets the whole process to one thread
    sound = timeline_sound(spans, duration_s, warnings)
    if not np.any(sound):
        return []
    model = load_silero_vad()  # the JIT network from the package's own data folder
    with torch.inference_mode():
        found = get_speech_timestamps(torch.from_numpy(sound), model, threshold=THRESHOLD, sampling_rate=SPEECH_SR,
                                      min_speech_duration_ms=MIN_SPEECH_MS, min_silence_duration_ms=MIN_SILENCE_MS,
                                      speech_pad_ms=PAD_MS,
                                      progress_tracking_callback=(lambda pct: progress(pct / 100)) if progress else None)
    return [(round(r["start"] / SPEECH_SR, 4), round(min(r["end"] / SPEECH_SR, duration_s), 4)) for r in found]
