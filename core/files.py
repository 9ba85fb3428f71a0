"""Atomic file writes (torch-free, standard library only): everything cutscore writes goes to a
hidden temporary beside its destination and is renamed into place, so a crash or a refusal never
leaves a half-written output; the temporary is removed on every error path."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path


def temporary_beside(path: Path) -> Path:
    """A hidden name in the same folder, unique per process and thread, keeping the suffix (some
    writers pick the format from it, and np.savez appends .npz otherwise)."""
    return path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp{path.suffix}")


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """write(tmp) writes the content (a file or, for bundles, a folder); then it replaces path."""
    path = Path(path)
    tmp = temporary_beside(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


class InUse(Exception):
    """Another process holds the lock (its message names the file)."""


class exclusive:  # noqa: N801 - used as a context manager, like open()
    """An advisory lock on `path` (a hidden lock file beside it) for as long as the block runs: a
    second cutscore writing the same output is told at once, instead of both writing one folder.
    The operating system drops the lock when its process dies, so a crash leaves no stale lock.

        with exclusive(out_path):
            ...
    """

    def __init__(self, path: str | Path):
        path = Path(path)
        self.lock = path.with_name(f".{path.name}.lock")
        self._f = None

    def __enter__(self):
        self._f = open(self.lock, "a+")
        try:
            if os.name == "nt":
                import msvcrt

                msvcrt.locking(self._f.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(self._f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._f.close()
            self._f = None
            raise InUse(str(self.lock)) from None
        return self

    def __exit__(self, *exc):
        try:
            self.lock.unlink(missing_ok=True)
        finally:
            self._f.close()
            self._f = None
        return False
