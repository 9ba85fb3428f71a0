"""Where things are (torch-free): the repository's resources (configs, the demo model), the default
CLIP and the engine's port, and where cutscore keeps the user's things: the config folder (the
engine's token and job store) and the data folder (the models fetched and converted). Environment variables override the platform defaults, which is how
the tests isolate themselves."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the checkout, or the site-packages of an installed wheel


def _resources() -> Path:
    """resources/ of the checkout, else the installed wheel's `cutscore_resources` package data."""
    if (ROOT / "pyproject.toml").is_file() and (ROOT / "resources").is_dir():
        return ROOT / "resources"
    from importlib.util import find_spec

    spec = find_spec("cutscore_resources")  # a data-only (namespace) package: its folder
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("cutscore's resources are missing: reinstall cutscore")
    return Path(list(spec.submodule_search_locations)[0])


RESOURCES = _resources()
CONFIG_DIR = RESOURCES / "configs"  # the model presets (demo, paper, official, debug) and CLIP configs
DEMO_MODEL = RESOURCES / "models" / "demo"  # the embedded default model
DEMO_TIMELINE = RESOURCES / "demo" / "demo.otio"  # the bundled demo edit (`cutscore demo`, `make demo`)
DEFAULT_CLIP = ("ViT-B-32-quickgelu", "openai")  # open_clip model and pretrained tag the paper's features use
DEFAULT_PORT = 8765  # the engine's loopback HTTP port


def config_dir() -> Path:
    env = os.environ.get("CUTSCORE_CONFIG_DIR")
    if env:
        return Path(env)
    from platformdirs import user_config_dir

    return Path(user_config_dir("cutscore"))


def data_dir() -> Path:
    """Where cutscore keeps what it fetched and converted (the models `cutscore weights get` makes)."""
    env = os.environ.get("CUTSCORE_DATA_DIR")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("cutscore"))


FETCHED_MODELS = ("official",)  # the models `cutscore weights get` fetches and converts (engine/weights.py)


def installed_model(name: str) -> Path | None:
    """The model folder `cutscore weights get NAME` converted (official), found by its name."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    folder = data_dir() / "models" / name
    return folder if (folder / "config.json").is_file() else None


def token_path() -> Path:
    """The engine's bearer token (written by `cutscore serve`, read by its clients)."""
    return config_dir() / "token"
