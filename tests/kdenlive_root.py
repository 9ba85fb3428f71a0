"""A Debian `forky` root with the Kdenlive that editors run today (26.08), for the `slow` tests that
open cutscore's projects in it (tests/kdenlive_app.py drives it as it drives Debian 12's 22.12).

    python tests/kdenlive_root.py            # build it once (about 7 minutes and 1.7 GB on 2 cores)
    python tests/kdenlive_root.py --check    # print where it is and which Kdenlive it holds

The root is cached under the user's cache folder ($XDG_CACHE_HOME/cutscore/kdenlive-forky, or
~/.cache/...); `CUTSCORE_KDENLIVE_ROOT` points elsewhere. How it is built and entered:
tests/debian_root.py (chroot with /proc, /sys, /dev and /tmp bound in, root only: the projects,
their media, the X socket and the HOME of each run live under /tmp, so they have the same paths
inside and out).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

if __name__ == "__main__":  # run as a program from the checkout (.ci/run)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.debian_root import Root  # noqa: E402

# qml6-module-org-kde-desktop: without it Kdenlive 26 aborts at its splash screen.
KDENLIVE = Root("kdenlive-forky", "forky",
                ("kdenlive", "frei0r-plugins", "swh-plugins", "libmlt-data", "qt6-qpa-plugins", "qt6-svg-plugins",
                 "qml6-module-org-kde-desktop", "libgl1-mesa-dri", "libegl-mesa0", "libglx-mesa0",
                 "xvfb", "xauth", "dbus-x11", "xdotool", "imagemagick", "ffmpeg", "fonts-dejavu-core"),
                probe="usr/bin/kdenlive", env="CUTSCORE_KDENLIVE_ROOT", need_gb=4)

why_not = KDENLIVE.why_not
build = KDENLIVE.build
prefix = KDENLIVE.prefix  # the command prefix that runs Kdenlive inside the built, mounted root


def version() -> str:
    r = subprocess.run(["chroot", str(KDENLIVE.dir()), "dpkg-query", "-W", "-f", "${Version}", "kdenlive"],
                       capture_output=True, text=True)
    return r.stdout.strip()


if __name__ == "__main__":
    if "--check" in sys.argv:
        ready = KDENLIVE.ready()
        print(f"{KDENLIVE.dir()}: " + (f"kdenlive {version()}" if ready else f"not built ({why_not() or 'buildable'})"))
        sys.exit(0 if ready else 1)
    print(f"built {build()} (kdenlive {version()})")
