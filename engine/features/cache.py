"""A content-addressed cache of per-second features: the key is the file's identity (absolute
path, size, modification time), the source range, the extractor config and the extractor version;
the value is an .npz in the user's cache folder (CUTSCORE_CACHE_DIR, else platformdirs'
user cache dir). A cached request returns without opening the video. Writes are atomic.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from core.files import atomic_write

VERSION = 1  # bump when an extractor's output changes


def cache_dir() -> Path:
    env = os.environ.get("CUTSCORE_CACHE_DIR")
    if env:
        return Path(env) / "features"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("cutscore")) / "features"


def key(path: str | Path, start_s: float, end_s: float | None, config: dict) -> str:
    p = Path(path).resolve()
    st = p.stat()
    ident = {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "start": round(start_s, 6),
             "end": None if end_s is None else round(end_s, 6), "config": config, "version": VERSION}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def load(k: str) -> dict[str, np.ndarray] | None:
    f = cache_dir() / k[:2] / f"{k}.npz"
    if not f.exists():
        return None
    try:
        with np.load(f, allow_pickle=False) as z:
            return {n: z[n] for n in z.files}
    except (OSError, ValueError):
        return None  # a damaged entry is a miss; it is rewritten


def store(k: str, arrays: dict[str, np.ndarray]) -> None:
    d = cache_dir() / k[:2]
    d.mkdir(parents=True, exist_ok=True)
    atomic_write(d / f"{k}.npz", lambda tmp: np.savez(tmp, **arrays))
