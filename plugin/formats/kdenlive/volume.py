"""Gain keyframes on a music clip (torch-free): the ducking (plugin/finish/ducking.py) as Kdenlive's volume
effect, and the frame keys FCP7 XML's Audio Levels use too (plugin/formats/writeback.py)."""

from __future__ import annotations


def clock(frame: int, rate: float) -> str:
    """A frame as Kdenlive writes keyframe times: HH:MM:SS.mmm."""
    ms = round(frame / rate * 1000)
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def volume_keys(keys, length: int, rate: float) -> list[tuple[int, float]]:
    """(seconds, dB) keys on a clip of `length` frames as (frame, dB): on frames inside the clip, one
    key a frame (the later wins, the first frame keeps its own)."""
    out: dict[int, float] = {}
    for t, db in keys:
        f = min(max(int(round(t * rate)), 0), length - 1)
        if f not in out or f > 0:
            out[f] = db
    return sorted(out.items())


def volume_filter(fid: str, keys, length: int, rate: float) -> str:
    """The ducking as Kdenlive's own "Volume (keyframable)" effect on a timeline clip (effect id
    `volume`, MLT's volume filter, `level` in dB animated with linear keys: what Kdenlive writes when
    the effect is added and keyframed by hand)."""
    level = ";".join(f"{clock(f, rate)}={db:g}" for f, db in volume_keys(keys, length, rate))
    props = [("window", "75"), ("max_gain", "20dB"), ("level", level), ("channel_mask", "-1"),
             ("mlt_service", "volume"), ("kdenlive_id", "volume"), ("kdenlive:collapsed", "0")]
    body = "".join(f'    <property name="{k}">{v}</property>\n' for k, v in props)
    return f'   <filter id="{fid}">\n{body}   </filter>\n'
