"""A Debian `forky` root with the Kdenlive that editors run today (26.08), for the `slow` tests that
open cutscore's projects in it (tests/kdenlive_app.py drives it as it drives Debian 12's 22.12).

    python tests/kdenlive_root.py            # build it once (about 7 minutes and 1.7 GB on 2 cores)
    python tests/kdenlive_root.py --check    # print where it is and which Kdenlive it holds

The root is cached under the user's cache folder ($XDG_CACHE_HOME/cutscore/kdenlive-forky, or
~/.cache/...); `CUTSCORE_KDENLIVE_ROOT` points elsewhere. It is built with mmdebstrap (Debian's
package, `apt-get install -y mmdebstrap`), recommends off, from the archive this machine's own apt
sources name (no host name is written here). Kdenlive runs in it through chroot with /proc, /sys,
/dev and /tmp bound in (root only): the projects, their media, the X socket and the HOME of each run
live under /tmp, so they have the same paths inside and out.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

SUITE = "forky"
# qml6-module-org-kde-desktop: without it Kdenlive 26 aborts at its splash screen.
PACKAGES = ["kdenlive", "frei0r-plugins", "swh-plugins", "libmlt-data", "qt6-qpa-plugins", "qt6-svg-plugins",
            "qml6-module-org-kde-desktop", "libgl1-mesa-dri", "libegl-mesa0", "libglx-mesa0",
            "xvfb", "xauth", "dbus-x11", "xdotool", "imagemagick", "ffmpeg", "fonts-dejavu-core"]
MOUNTS = ("proc", "sys", "dev", "tmp")


def root_dir() -> Path:
    if os.environ.get("CUTSCORE_KDENLIVE_ROOT"):
        return Path(os.environ["CUTSCORE_KDENLIVE_ROOT"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "cutscore" / f"kdenlive-{SUITE}"


def archive_url() -> str:
    """The Debian archive this machine's apt uses (deb822 .sources or one-line .list files)."""
    texts = [p.read_text() for p in sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))]
    texts += [p.read_text() for p in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
              if p.exists()]
    for text in texts:
        for m in re.finditer(r"^URIs:\s*(\S+)|^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+", text, re.M):
            url = m.group(1) or m.group(2)
            if "security" not in url and "debian" in url:
                return url.rstrip("/")
    raise RuntimeError("no Debian archive in /etc/apt/sources.list(.d): cannot build the Kdenlive root")


def ready(root: Path | None = None) -> bool:
    root = root or root_dir()
    return (root / ".cutscore-ready").exists() and (root / "usr/bin/kdenlive").exists()


def why_not() -> str | None:
    """One line saying why the root cannot be built or used here, or None when it can."""
    if ready():
        return None if os.geteuid() == 0 else "running Kdenlive in the forky root needs root (chroot, mount)"
    if os.geteuid() != 0:
        return "building the Kdenlive 26.08 root needs root (mmdebstrap, chroot)"
    if not shutil.which("mmdebstrap"):
        return "the Kdenlive 26.08 root needs mmdebstrap (apt-get install -y mmdebstrap)"
    parent = root_dir().parent
    parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(parent).free
    if free < 4 * 2**30:
        return f"the Kdenlive 26.08 root needs 4 GB free under {parent}; {free / 2**30:.1f} GB are"
    return None


def build(root: Path | None = None) -> Path:
    """Build the root (once); returns it. Raises RuntimeError with mmdebstrap's last lines."""
    root = root or root_dir()
    if ready(root):
        return root
    reason = why_not()
    if reason:
        raise RuntimeError(reason)
    tmp = root.with_name(root.name + ".part")
    _remove(tmp)
    # the archive may be a dated snapshot whose Release has expired: its signature still counts
    cmd = ["mmdebstrap", "--variant=apt", "--aptopt=APT::Install-Recommends \"false\"",
           "--aptopt=Acquire::Check-Valid-Until \"false\"",
           f"--include={','.join(PACKAGES)}", SUITE, str(tmp), f"deb {archive_url()} {SUITE} main"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"mmdebstrap failed ({r.returncode}): {r.stderr[-1500:]}")
    (tmp / ".cutscore-ready").write_text(version(tmp) + "\n")
    _remove(root)
    tmp.rename(root)
    return root


def _mounted_under(root: Path) -> list[str]:
    return [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
            if line.split()[1] == str(root) or line.split()[1].startswith(f"{root}/")]


def unmount(root: Path | None = None) -> None:
    """Undo mount(): the binds of /proc, /sys, /dev and /tmp inside the root (their own submounts too)."""
    root = root or root_dir()
    for target in sorted(_mounted_under(root), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True)


def _remove(path: Path) -> None:
    """Delete a root, never through a bind: with /tmp or /dev still mounted in it, rmtree would
    empty this machine's own."""
    if not path.exists():
        return
    unmount(path)
    if _mounted_under(path):
        raise RuntimeError(f"{path}: still has mounts inside ({_mounted_under(path)[0]}); unmount them first")
    shutil.rmtree(path)


def version(root: Path | None = None) -> str:
    root = root or root_dir()
    r = subprocess.run(["chroot", str(root), "dpkg-query", "-W", "-f", "${Version}", "kdenlive"],
                       capture_output=True, text=True)
    return r.stdout.strip()


def mount(root: Path) -> None:
    """Bind /proc, /sys, /dev and /tmp into the root (idempotent)."""
    mounted = Path("/proc/mounts").read_text()
    for m in MOUNTS:
        target = root / m
        target.mkdir(exist_ok=True)
        if f" {target} " not in mounted:
            subprocess.run(["mount", "--rbind", f"/{m}", str(target)], check=True)
            subprocess.run(["mount", "--make-rslave", str(target)], check=False)


def prefix(root: Path | None = None) -> list[str]:
    """The command prefix that runs a program inside the mounted root (unmounted when this
    process exits)."""
    import atexit

    root = root or root_dir()
    mount(root)
    atexit.register(unmount, root)
    return ["chroot", str(root)]


if __name__ == "__main__":
    if "--check" in sys.argv:
        print(f"{root_dir()}: " + (f"kdenlive {version()}" if ready() else f"not built ({why_not() or 'buildable'})"))
        sys.exit(0 if ready() else 1)
    print(f"built {build()} (kdenlive {version()})")
