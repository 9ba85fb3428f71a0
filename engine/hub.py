"""Weights from the Hugging Face cache, or the hub when this machine is online (torch-free).

Looking in the cache first and testing the connection once (a 2 s TCP connect) before any download
keeps an offline machine from spending a minute in the hub client's retries."""

from __future__ import annotations

import socket
from functools import lru_cache

HUB_HOST = "huggingface.co"


@lru_cache(maxsize=1)
def online(timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


def cached_file(repo: str, filenames: list[str]) -> str | None:
    """The first of `filenames` of `repo` present in the local Hugging Face cache, else None."""
    from huggingface_hub import try_to_load_from_cache

    for name in filenames:
        path = try_to_load_from_cache(repo, name)
        if isinstance(path, str):
            return path
    return None
