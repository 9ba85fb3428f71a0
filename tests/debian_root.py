"""Debian roots for the `slow` tests that need a machine other than this one: Kdenlive 26.08 in a
forky root (tests/kdenlive_root.py), a fresh Debian 12 for `make demo` as a new user runs it
(tests/test_fresh_machine.py).

A root is built once with mmdebstrap (Debian's package, `apt-get install -y mmdebstrap`), recommends
off, from the archive this machine's own apt sources name (no host name is written here), and cached
under the user's cache folder ($XDG_CACHE_HOME/cutscore/NAME, or ~/.cache/...). Programs run in it
through chroot with /proc, /sys, /dev and /tmp bound in (root only): what a run reads and writes lives
under /tmp, so it has the same path inside and out.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

MOUNTS = ("proc", "sys", "dev", "tmp")


@dataclass(frozen=True)
class Root:
    """One root: its cache folder's name, Debian suite, packages, the file that shows it is whole,
    the environment variable that points at another copy, and the disk it needs to be built."""
    name: str
    suite: str
    packages: tuple[str, ...]
    probe: str
    env: str
    need_gb: float
    pristine: bool = False  # a root installed into since it was built is not used: it is built again

    def dir(self) -> Path:
        """Resolved: /proc/mounts names binds by their real paths, and mount safety compares them."""
        if os.environ.get(self.env):
            return Path(os.environ[self.env]).resolve()
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        return (cache / "cutscore" / self.name).resolve()

    def ready(self, root: Path | None = None) -> bool:
        root = root or self.dir()
        marker = root / ".cutscore-ready"
        if not (marker.exists() and (root / self.probe).exists()):
            return False
        return not self.pristine or marker.read_text().split()[1:] == [_packages_digest(root)]

    def mark(self, root: Path) -> None:
        """Mark a root built whole, with what dpkg holds in it then."""
        (root / ".cutscore-ready").write_text(f"{self.suite} {_packages_digest(root)}\n")

    def why_not(self) -> str | None:
        """One line saying why the root cannot be built or used here, or None when it can."""
        if self.ready():
            return None if os.geteuid() == 0 else f"running programs in the {self.suite} root needs root (chroot, mount)"
        if os.geteuid() != 0:
            return f"building the Debian {self.suite} root needs root (mmdebstrap, chroot)"
        if not shutil.which("mmdebstrap"):
            return f"the Debian {self.suite} root needs mmdebstrap (apt-get install -y mmdebstrap)"
        parent = self.dir().parent
        parent.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(parent).free
        if free < self.need_gb * 2**30:
            return f"the Debian {self.suite} root needs {self.need_gb:g} GB free under {parent}; {free / 2**30:.1f} GB are"
        return None

    def build(self) -> Path:
        """Build the root (once); returns it. Raises RuntimeError with mmdebstrap's last lines."""
        root = self.dir()
        if self.ready(root):
            return root
        reason = self.why_not()
        if reason:
            raise RuntimeError(reason)
        if root.exists() and not (root / ".cutscore-ready").exists():
            raise RuntimeError(f"{root}: exists and is not a root built here (no .cutscore-ready); remove it "
                               f"or point {self.env} elsewhere")
        tmp = root.with_name(root.name + ".part")
        remove(tmp)
        # the archive may be a dated snapshot whose Release has expired: its signature still counts
        cmd = ["mmdebstrap", "--variant=apt", "--aptopt=APT::Install-Recommends \"false\"",
               "--aptopt=Acquire::Check-Valid-Until \"false\"",
               f"--include={','.join(self.packages)}", self.suite, str(tmp), f"deb {archive_url()} {self.suite} main"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"mmdebstrap failed ({r.returncode}): {r.stderr[-1500:]}")
        self.mark(tmp)
        remove(root)
        tmp.rename(root)
        return root

    def prefix(self) -> list[str]:
        """The command prefix that runs a program inside the root, built and mounted (unmounted when
        this process exits)."""
        import atexit

        root = self.build()
        mount(root)
        atexit.register(unmount, root)
        return ["chroot", str(root)]


def _packages_digest(root: Path) -> str:
    """What dpkg holds installed in the root: changes when anyone apt-installs into it after the build."""
    return hashlib.sha256((root / "var/lib/dpkg/status").read_bytes()).hexdigest()[:16]


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
    raise RuntimeError("no Debian archive in /etc/apt/sources.list(.d): cannot build a Debian root")


def _mounted_under(root: Path) -> list[str]:
    root = root.resolve()
    targets = [line.split()[1].replace("\\040", " ") for line in Path("/proc/mounts").read_text().splitlines()]
    return [t for t in targets if t == str(root) or t.startswith(f"{root}/")]


def mount(root: Path) -> None:
    """Bind /proc, /sys, /dev and /tmp into the root (idempotent)."""
    mounted = Path("/proc/mounts").read_text()
    for m in MOUNTS:
        target = root / m
        target.mkdir(exist_ok=True)
        if f" {target} " not in mounted:
            subprocess.run(["mount", "--rbind", f"/{m}", str(target)], check=True)
            subprocess.run(["mount", "--make-rslave", str(target)], check=False)


def unmount(root: Path) -> None:
    """Undo mount(): the binds of /proc, /sys, /dev and /tmp inside the root (their own submounts too)."""
    for target in sorted(_mounted_under(root), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True)


def remove(path: Path) -> None:
    """Delete a root, never through a bind: with /tmp or /dev still mounted in it, rmtree would
    empty this machine's own."""
    path = path.resolve()
    if not path.exists():
        return
    unmount(path)
    bound = _mounted_under(path) + [str(path / m) for m in MOUNTS if os.path.ismount(path / m)]
    if bound:
        raise RuntimeError(f"{path}: still has mounts inside ({bound[0]}); unmount them first")
    shutil.rmtree(path)
