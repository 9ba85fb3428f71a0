"""What Kdenlive records of a media file it imports: the producer's properties, kdenlive:file_hash
and (document 1.1) kdenlive:control_uuid."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import soundfile as sf


def file_hash(path: Path) -> str:
    """Kdenlive's kdenlive:file_hash: MD5 of the whole file, or of its first and last megabyte
    (1,000,000 bytes each) when it is larger than 2 MB."""
    size = path.stat().st_size
    h = hashlib.md5()
    with open(path, "rb") as f:
        if size > 2_000_000:
            h.update(f.read(1_000_000))
            f.seek(size - 1_000_000)
            h.update(f.read(1_000_000))
        else:
            h.update(f.read())
    return h.hexdigest()


def media_props(wav: Path, rate: float) -> tuple[int, list[tuple[str, str]]]:
    """The frames a WAV lasts at the project's rate and the properties Kdenlive writes for it (its
    avformat producer's, as Kdenlive probes an imported WAV)."""
    info = sf.info(str(wav))
    frames = max(1, int(round(info.frames / info.samplerate * rate)))
    bits = {"PCM_16": 16, "PCM_24": 24, "PCM_32": 32, "FLOAT": 32}.get(info.subtype, 24)
    codec = {16: "pcm_s16le", 24: "pcm_s24le", 32: "pcm_s32le"}[bits] if info.subtype != "FLOAT" else "pcm_f32le"
    fmt = {16: "s16", 24: "s32", 32: "s32"}[bits] if info.subtype != "FLOAT" else "flt"
    props = [
        ("length", str(frames)), ("eof", "pause"), ("resource", str(wav.resolve())),
        ("meta.media.nb_streams", "1"), ("meta.media.0.stream.type", "audio"),
        ("meta.media.0.codec.sample_fmt", fmt), ("meta.media.0.codec.sample_rate", str(info.samplerate)),
        ("meta.media.0.codec.channels", str(info.channels)), ("meta.media.0.codec.name", codec),
        ("meta.media.0.codec.bit_rate", str(info.samplerate * info.channels * bits)),
        ("seekable", "1"), ("audio_index", "0"), ("video_index", "-1"), ("mute_on_pause", "1"),
        ("mlt_service", "avformat-novalidate"),
    ]
    return frames, props


def control_uuid(wav: Path) -> str:
    """The bin clip's kdenlive:control_uuid (document 1.1), the same for the bin clip and its
    timeline uses; drawn from the WAV's path and content so a re-run writes the same text."""
    return "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"{wav.resolve()}#{file_hash(wav)}")) + "}"
