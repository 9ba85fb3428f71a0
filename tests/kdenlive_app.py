"""Drive the real Kdenlive under Xvfb: open a project, let Kdenlive load it, Save As through its own
dialog, return what Kdenlive wrote. Used by tests/test_kdenlive.py; by hand:

    python tests/kdenlive_app.py PROJECT.kdenlive SAVED.kdenlive [SCREENSHOT.png]

Needs Debian's kdenlive, xvfb, xauth, dbus-x11 and xdotool (`.ci/run` installs them). Each run uses a
fresh HOME so no user configuration leaks in; media referenced by the project must exist (see
`make_media`), otherwise Kdenlive stops at its "missing clips" dialog.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path


def available() -> bool:
    return all(shutil.which(t) for t in ("kdenlive", "Xvfb", "xdotool", "dbus-run-session"))


def make_media(project: Path) -> list[Path]:
    """Create stand-in media (ffmpeg test tones and pictures, long enough for every use) for each
    file the project names that does not exist, next to the project. Returns the files made."""
    root = ET.parse(project).getroot()
    prof = root.find("profile")
    rate = int(prof.get("frame_rate_num")) / int(prof.get("frame_rate_den", "1"))
    made = []
    for el in root:
        if el.tag not in ("producer", "chain"):
            continue
        props = {p.get("name"): (p.text or "") for p in el.findall("property")}
        res, svc = props.get("resource", ""), props.get("mlt_service", "")
        if not res or not svc.startswith("avformat"):
            continue
        path = Path(res) if Path(res).is_absolute() else project.parent / res
        if path.exists() or path in made:
            continue
        length = props.get("length", "0")
        frames = int(length) if length.isdigit() else 3000
        dur = f"{frames / rate + 1:.2f}"
        audio_only = props.get("video_index") == "-1"
        cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=f=220:d={dur}"]
        if audio_only:
            cmd += ["-c:a", "libvorbis" if path.suffix.lower() == ".ogg" else "pcm_s16le"]
        else:
            cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=s=320x240:r=25:d={dur}",
                   "-f", "lavfi", "-i", f"sine=d={dur}", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
                   "-shortest"]
        from tests import tools

        tools.require("ffmpeg")  # a test on a machine without it skips with the apt line
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(cmd + [str(path)], check=True)
        made.append(path)
    return made


def _x(display: str, *args: str, check: bool = False) -> str:
    r = subprocess.run(["xdotool", *args], env=dict(os.environ, DISPLAY=display), capture_output=True, text=True)
    if check and r.returncode:
        raise RuntimeError(f"xdotool {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout.strip()


def _focus(display: str, win: str) -> None:
    """Raise and focus a window (there is no window manager under Xvfb: windowactivate alone fails)."""
    _x(display, "windowactivate", "--sync", win)
    _x(display, "windowfocus", "--sync", win)


def _windows(display: str) -> dict[str, str]:
    ids = _x(display, "search", "--onlyvisible", "--name", ".").split()
    return {w: _x(display, "getwindowname", w) for w in ids}


def save_as(project: Path, saved: Path, screenshot: Path | None = None, timeout: float = 150.0,
            prefix: list[str] | None = None, seen: dict | None = None) -> str:
    """Open `project` in Kdenlive, Save As `saved` through Kdenlive's own dialog, quit; return the
    saved text. Raises RuntimeError (with the visible windows) when Kdenlive does not save in time.
    `prefix` runs Kdenlive through another command (tests/kdenlive_root.prefix: Kdenlive 26.08 in a
    Debian forky root, which sees this machine's /tmp, so the paths are the same in and out); Xvfb
    and xdotool stay this machine's. `seen` receives the main window's title once the project has
    loaded ("NAME * / PROFILE" when Kdenlive changed the document while loading it)."""
    drive(project, [("save", Path(saved))], screenshot, timeout, prefix, seen)
    return Path(saved).resolve().read_text(encoding="utf-8")


def drive(project: Path, steps: list[tuple], screenshot: Path | None = None, timeout: float = 150.0,
          prefix: list[str] | None = None, seen: dict | None = None) -> None:
    """Open `project` in Kdenlive and do `steps` in its window, then quit. A step is
    ("save", PATH): File > Save As; or ("action", NAME, PATH): the menu action NAME, run through
    Kdenlive's command bar (Ctrl+Alt+I, which lists every menu action by name), answered with PATH
    in the file dialog it opens (26.08: "OpenTimelineIO Export", "OpenTimelineIO Import"). An
    export or a save is done when PATH is written; an import when its dialog has closed and the
    window title gains the `*` of a changed document."""
    project = Path(project).resolve()
    n = 50 + os.getpid() % 400
    while Path(f"/tmp/.X11-unix/X{n}").exists():
        n += 1
    display = f":{n}"
    home = Path(tempfile.mkdtemp(prefix="kdenlive-home-"))
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ, DISPLAY=display, HOME=str(home), XDG_RUNTIME_DIR=str(home / "run"),
               QT_QPA_PLATFORM="xcb", LANG="C.UTF-8", LC_ALL="C.UTF-8",
               SDL_AUDIODRIVER="dummy")  # no sound card: 26.08's monitor fails, then crashes, without it
    (home / "run").mkdir(mode=0o700)
    log = open(home / "kdenlive.log", "w")
    app = None
    try:
        time.sleep(1.0)
        app = subprocess.Popen([*(prefix or []), "dbus-run-session", "--", "kdenlive", str(project)], env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
        session = _Session(display, app, home, time.time() + timeout)
        main = session.loaded()
        if seen is not None:
            seen["title"] = session.windows()[main]
        for step in steps:
            session.step(main, step)
        if screenshot:
            subprocess.run(["import", "-display", display, "-window", "root", str(screenshot)], capture_output=True)
    finally:
        if app is not None and app.poll() is None:
            os.killpg(app.pid, signal.SIGKILL)
            app.wait()
        xvfb.kill()
        xvfb.wait()
        log.close()
        shutil.rmtree(home, ignore_errors=True)


class _Session:
    """One Kdenlive under one Xvfb: waits for windows, answers its questions, types into dialogs."""

    def __init__(self, display: str, app: subprocess.Popen, home: Path, deadline: float):
        self.display, self.app, self.home, self.deadline = display, app, home, deadline

    def windows(self) -> dict[str, str]:
        if self.app.poll() is not None:
            raise RuntimeError(f"Kdenlive exited ({self.app.returncode}); log: "
                               f"{(self.home / 'kdenlive.log').read_text()[-2000:]}")
        return _windows(self.display)

    def _tick(self, stage: str) -> dict[str, str]:
        if time.time() > self.deadline:
            raise RuntimeError(f"Kdenlive did not finish in time (stage {stage}, windows {list(_windows(self.display).values())})")
        time.sleep(1.0)
        return self.windows()

    @staticmethod
    def _main(wins: dict[str, str]) -> list[str]:
        return [w for w, t in wins.items() if t.endswith("Kdenlive") and re.search(r"\S \*?/ ", t)]  # "NAME [*]/ PROFILE — Kdenlive"

    def _dialogs(self, wins: dict[str, str]) -> list[str]:
        # 26.08 keeps its "Splash Screen" window up while it asks its first questions
        main = self._main(wins)
        return [w for w, t in wins.items() if w not in main and t.strip() and not t.startswith("Splash Screen")]

    def loaded(self) -> str:
        """Answer the load-time questions (Return: "Clip Problems" Reload, errors) until the main
        window has stood alone for 6 s; its window id."""
        started, main_seen = time.time(), 0.0
        while True:
            wins = self._tick("load")
            main, dialogs = self._main(wins), self._dialogs(wins)
            if not main and not dialogs and time.time() - started > 30:
                # an untitled question (26.08: "the storage folder was not found") holds the focus
                _x(self.display, "key", "--clearmodifiers", "Return")
                started = time.time()
                continue
            if dialogs:
                _focus(self.display, dialogs[0])
                _x(self.display, "key", "--clearmodifiers", "Return")
                main_seen = 0.0
                continue
            if main:
                if not main_seen:  # no window manager: give the window the whole screen for the screenshot
                    _x(self.display, "windowsize", main[0], "1600", "1000")
                main_seen = main_seen or time.time()
                if time.time() - main_seen >= 6.0:  # let the timeline finish building
                    return main[0]

    def _answer(self, title: str, path: Path, stage: str) -> None:
        """Type `path` into the file dialog whose title holds `title`."""
        while True:
            wins = self._tick(stage)
            found = [w for w, t in wins.items() if title in t]
            if found:
                time.sleep(1.0)
                _focus(self.display, found[0])
                _x(self.display, "key", "--clearmodifiers", "ctrl+a")
                _x(self.display, "type", "--delay", "20", str(path))
                _x(self.display, "key", "--clearmodifiers", "Return")
                return

    def step(self, main: str, step: tuple) -> None:
        kind, path = step[0], Path(step[-1]).resolve()
        _focus(self.display, main)
        _x(self.display, "mousemove", "--window", main, "300", "300", "click", "1")
        time.sleep(0.5)
        if kind == "save":
            _x(self.display, "key", "--clearmodifiers", "ctrl+shift+s")
            self._answer("Save", path, "save dialog")
        else:
            _x(self.display, "key", "--clearmodifiers", "ctrl+alt+i")
            time.sleep(1.5)
            _x(self.display, "type", "--delay", "30", step[1])
            time.sleep(1.0)
            _x(self.display, "key", "--clearmodifiers", "Return")
            self._answer(step[1], path, f"{step[1]} dialog")
        writes = kind == "save" or "Export" in step[1]
        own = f"{step[1]} — Kdenlive" if kind == "action" else None  # its file dialog, closing
        quiet = 0.0
        while True:
            wins = self._tick(f"{kind} {path.name}")
            dialogs = [d for d in self._dialogs(wins) if wins[d] != own]
            for d in dialogs:  # "the project was upgraded", "overwrite?"
                _focus(self.display, d)
                _x(self.display, "key", "--clearmodifiers", "Return")
            done = path.exists() and path.stat().st_size > 0 if writes else any("*" in t for t in self._main_titles(wins))
            if done and not dialogs:
                quiet = quiet or time.time()
                if time.time() - quiet >= 2.0:
                    return
            else:
                quiet = 0.0

    def _main_titles(self, wins: dict[str, str]) -> list[str]:
        return [wins[w] for w in self._main(wins)]


def notes(text: str) -> str:
    """Kdenlive's project notes (where its document checker logs what it removed)."""
    m = re.search(r'<property name="kdenlive:documentnotes"(?:/>|>(.*?)</property>)', text, re.S)
    return (m.group(1) or "") if m else ""


if __name__ == "__main__":
    out = save_as(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) > 3 else None)
    print(f"saved {len(out)} characters; notes: {notes(out)!r}")
