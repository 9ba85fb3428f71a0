"""The values the command line's options take, each refused while parsing with the range that fits
(argparse prints it as one line: ui.cli.parser._Parser). An option that sets a field of the score's
options (core.api.Settings, plugin.commands.score.ScoreOptions) takes its type, range, choices and
default from that field (`field_type`, `field_choices`, `field_default`): declared once, there."""

from __future__ import annotations

import argparse
import math
from typing import get_args


def _field(model, name: str):
    return model.model_fields[name]


def field_default(model, name: str):
    return _field(model, name).get_default(call_default_factory=True)


def field_choices(model, name: str) -> list[str]:
    """The values of a Literal field (through Optional and Annotated)."""
    def literals(t) -> list:
        args = get_args(t)
        if args and all(isinstance(a, str) for a in args):
            return list(args)
        return [x for a in args for x in literals(a)]

    return literals(_field(model, name).annotation)


def field_bounds(model, name: str) -> tuple[float | None, bool, float | None, bool]:
    """(low, low included, high, high included) of a field's range (ge/gt/le/lt)."""
    lo = hi = None
    lo_in = hi_in = True
    for m in _field(model, name).metadata:
        for attr, is_lo, incl in (("ge", True, True), ("gt", True, False), ("le", False, True), ("lt", False, False)):
            v = getattr(m, attr, None)
            if v is not None:
                if is_lo:
                    lo, lo_in = v, incl
                else:
                    hi, hi_in = v, incl
    return lo, lo_in, hi, hi_in


def field_type(model, name: str, unit: str = "", hint: str = "", whole: bool = False):
    """A parser for an option whose type and range the field `name` of `model` declares."""
    lo, lo_in, hi, hi_in = field_bounds(model, name)

    def parse(text: str):
        if whole:
            try:
                v = int(text)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{text!r} is not a whole number{unit and ' of' + unit}") from None
        else:
            v = _finite(text)
        if (lo is not None and (v < lo or (v == lo and not lo_in))) or (hi is not None and (v > hi or (v == hi and not hi_in))):
            span = f"{'' if lo is None else f'{lo:g}'}..{'' if hi is None else f'{hi:g}'}"
            raise argparse.ArgumentTypeError(f"{v:g}{unit} is outside {span}" + (f" ({hint})" if hint else ""))
        return v

    parse.field = (model.__name__, name)  # what it parses (tests find the numeric options by it)
    return parse


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
    """--duck auto|off|DB: the music's fall under speech (auto: plugin/finish/ducking.py DUCK_DB), None = off;
    a level in the range ScoreOptions.duck_db declares."""
    from plugin.commands.score import ScoreOptions
    from plugin.finish.ducking import DUCK_DB

    lo, _, hi, _ = field_bounds(ScoreOptions, "duck_db")
    if text.lower() == "auto":
        return DUCK_DB
    if text.lower() == "off":
        return None
    try:
        v = _finite(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r}: give auto, off or a level in dB such as -12") from None
    if not lo <= v < hi:
        raise argparse.ArgumentTypeError(f"{v:g} dB: ducking lowers the music; give a level from {lo:g} up to (not "
                                         f"including) {hi:g} dB, e.g. -12")
    return v


def _beat_markers(text: str) -> str:
    """downbeats, all or off (`on`, before downbeats were the default, is `all`)."""
    from plugin.finish.beats import BEAT_MARKERS

    v = {"on": "all"}.get(text, text)
    if v not in BEAT_MARKERS:
        raise argparse.ArgumentTypeError(f"{text!r}: choose downbeats, all or off")
    return v
