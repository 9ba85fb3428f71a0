"""The values the command line's options take, each refused while parsing with the range that fits
(argparse prints it as one line: ui.cli.parser._Parser)."""

from __future__ import annotations

import argparse
import math


def _finite(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number")
    return v


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 1 or v > 1_000_000:
        raise argparse.ArgumentTypeError(f"{v} is outside 1..1000000")
    return v


def _seconds(text: str) -> float:
    """A time in seconds: finite and not negative."""
    v = _finite(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"{v:g} s is before 0")
    return v


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= v <= 2**62:  # the engine adds window numbers; torch takes seeds below 2**64
        raise argparse.ArgumentTypeError(f"{v} is outside 0..{2**62}")
    return v


def _port(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"{v} is outside 1..65535")
    return v


def _positive_float(text: str) -> float:
    v = _finite(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{v:g} must be more than 0")
    return v


def _steps(text: str) -> int:
    v = _positive_int(text)
    if v > 1000:
        raise argparse.ArgumentTypeError(f"{v} is outside 1..1000")
    return v


def _loudness(text: str) -> float:
    v = _finite(text)
    if not -70.0 <= v <= 0.0:
        raise argparse.ArgumentTypeError(f"{v:g} LUFS is outside -70..0 (music for video: -23 to -14)")
    return v


def _sample_rate(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of Hz") from None
    if not 8000 <= v <= 192000:
        raise argparse.ArgumentTypeError(f"{v} Hz is outside 8000..192000 (editors use 48000)")
    return v


def _seconds_list(text: str) -> list[float]:
    out = []
    for part in filter(None, text.split(",")):
        v = _finite(part)
        if v < 0:
            raise argparse.ArgumentTypeError(f"{v:g} s is before the timeline start")
        out.append(v)
    return out


def _frame_rate(text: str) -> float:
    v = _finite(text)
    if not 1.0 <= v <= 1000.0:
        raise argparse.ArgumentTypeError(f"{v:g} fps is outside 1..1000 (e.g. 24, 25 or 29.97)")
    return v


def _window_s(text: str) -> float:
    v = _finite(text)
    if not 5.0 <= v <= 600.0:
        raise argparse.ArgumentTypeError(f"{v:g} s is outside 5..600 (a window holds two 2 s overlaps and more)")
    return v


def _duck(text: str) -> float | None:
    """--duck auto|off|DB: the music's fall under speech (auto: plugin/finish/ducking.py DUCK_DB), None = off."""
    from plugin.finish.ducking import DUCK_DB

    if text.lower() == "auto":
        return DUCK_DB
    if text.lower() == "off":
        return None
    try:
        v = _finite(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r}: give auto, off or a level in dB such as -12") from None
    if not -60 <= v < 0:
        raise argparse.ArgumentTypeError(f"{v:g} dB: ducking lowers the music; give a level from -60 up to (not "
                                         "including) 0 dB, e.g. -12")
    return v


def _seconds_up_to(limit: float, what: str):
    """A time in seconds from 0 up to `limit` (`what` names the limit in the error)."""
    def parse(text: str) -> float:
        v = _seconds(text)
        if v > limit:
            raise argparse.ArgumentTypeError(f"{v:g} s is longer than the {limit:g} s {what}")
        return v

    return parse


_duck_time = _seconds_up_to(5, "a duck's attack or release may take")
_tail = _seconds_up_to(30, "a ring may run past the last frame")


def _beat_markers(text: str) -> str:
    """downbeats, all or off (`on`, before downbeats were the default, is `all`)."""
    from plugin.finish.beats import BEAT_MARKERS

    v = {"on": "all"}.get(text, text)
    if v not in BEAT_MARKERS:
        raise argparse.ArgumentTypeError(f"{text!r}: choose downbeats, all or off")
    return v


def _strength(text: str) -> float:
    """A reference's strength: 0 (none) to 1 (the reference as it is)."""
    v = _finite(text)
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"{v:g} is outside 0..1 (0: no reference, 1: the reference as it is)")
    return v
