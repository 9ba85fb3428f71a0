"""Where cutscore keeps the user's things (torch-free): the config folder (the engine's token and
job store) and the features cache. Environment variables override the platform defaults, which is
how the tests isolate themselves."""

from __future__ import annotations

import os
from pathlib import Path


def config_dir() -> Path:
    env = os.environ.get("CUTSCORE_CONFIG_DIR")
    if env:
        return Path(env)
    from platformdirs import user_config_dir

    return Path(user_config_dir("cutscore"))


def token_path() -> Path:
    """The engine's bearer token (written by `cutscore serve`, read by its clients)."""
    return config_dir() / "token"
