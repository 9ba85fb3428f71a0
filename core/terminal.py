"""What cutscore's command lines print (torch-free): one message a line, a control character in a
name escaped, and every error the user can act on as one `cutscore: error: ...` line with a non-zero
exit. The editor's command line (ui/cli) and the engine's (engine/tools.py) both end here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from core.errors import CutscoreError


def one_line(text: str) -> str:
    """The text with its control characters (a file name holding a newline) written escaped."""
    return "".join(c.encode("unicode_escape").decode("ascii") if ord(c) < 32 or ord(c) == 127 else c for c in text)


def shown(path) -> str:
    """A path as the terminal shows it: quoted and escaped when it holds a control character."""
    text = str(path)
    return f'"{one_line(text)}"' if one_line(text) != text else text


def out(text: str = "") -> None:
    print(text, flush=True)


def err(text: str) -> None:
    print(one_line(text), file=sys.stderr, flush=True)


def quiet_libraries() -> None:
    """Libraries log progress at INFO; the command line shows their warnings only, one line each."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="cutscore: %(name)s: %(message)s")
    for name in ("pyscenedetect", "huggingface_hub", "open_clip", "root"):
        logging.getLogger(name).setLevel(logging.ERROR if name == "root" else logging.WARNING)
    # OpenCV and its FFmpeg print straight to stderr ("moov atom not found", "VIDEOIO(FFMPEG)"):
    # a corrupt video gets our one line naming the file instead (set before cv2 is imported)
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


def _terminated(signum, frame):
    raise KeyboardInterrupt


def run_command(fn: Callable[[], int | None]) -> int:
    """Run one command: its exit code, or one line for what went wrong (2: the user can fix it,
    130: interrupted, 1: a bug, whose traceback CUTSCORE_DEBUG=1 shows)."""
    import signal
    import threading

    quiet_libraries()
    if threading.current_thread() is threading.main_thread():
        # SIGTERM unwinds like Ctrl-C, so every temporary file is removed on the way out
        signal.signal(signal.SIGTERM, _terminated)
    try:
        return int(fn() or 0)
    except CutscoreError as e:
        err(f"cutscore: error: {e}")
        return 2
    except OSError as e:  # a path the user gave: too long, unwritable, not found, a disk full
        where = e.filename or "a file"
        err(f"cutscore: error: {where}: {e.strerror or e}; check the path, its folder and the free space")
        return 2
    except KeyboardInterrupt:
        err("cutscore: interrupted")
        return 130
    except Exception as e:  # noqa: BLE001 - last resort: one line, details only on request
        if os.environ.get("CUTSCORE_DEBUG"):
            raise
        err(f"cutscore: internal error: {type(e).__name__}: {e} (set CUTSCORE_DEBUG=1 for the traceback)")
        return 1


class TimeLeft:
    """An estimate of the time a job has left, from its progress (0..1) over the seconds since the
    first report: the remaining fraction at the rate so far. "" until the rate is known (2 % of the
    work and 5 s done), so a long score's first line does not guess."""

    def __init__(self, clock: Callable[[], float] | None = None):
        import time

        self.clock = clock or time.monotonic
        self.start: tuple[float, float] | None = None  # (time, progress) of the first report

    def __call__(self, progress: float) -> str:
        now = self.clock()
        if self.start is None:
            self.start = (now, progress)
            return ""
        t0, p0 = self.start
        done, spent = progress - p0, now - t0
        if done < 0.02 or spent < 5 or progress >= 1:
            return ""
        left = spent * (1 - progress) / done
        return f"about {left / 60:.0f} min left" if left >= 90 else f"about {max(5, round(left / 5) * 5):.0f} s left"
