"""The released weights, fetched, verified and converted in one command: `cutscore weights list` and
`cutscore weights get official|sao-vae|clip|all` (run as the engine's own command, engine/tools.py).

Every file comes through huggingface_hub (its cache, its progress bars, its login: HF_TOKEN or
`hf auth login`; HF_ENDPOINT for a mirror; a transfer that is cut resumes from what it received,
by byte range, up to five times in one get: huggingface_hub 2.x keeps no partial file between
runs, so a get that fails starts that file afresh) and is checked against a sha256
before anything loads it: the hash pinned here where this build knows it, else the one the hub
publishes for the file (the ETag of a large file is its sha256), which is then pinned in the
user's data folder (weights.json) for every later check; a small file the hub gives no sha256 for
is hashed once and pinned the same way, and `list` says which. A file whose hash differs is moved
aside (data folder, rejected/) and never loaded. `get official` converts the checkpoint once into
the data folder's models/official, which `--model official` then finds by name (core.paths).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from core.errors import CutscoreError
from core.paths import FETCHED_MODELS, data_dir, installed_model

GB = 1024**3
SPACE_MARGIN = 256 * 1024**2  # left free after a transfer


@dataclass(frozen=True)
class Part:
    name: str  # what `weights get` calls the model it belongs to
    what: str
    repo: str  # Hugging Face model repository
    filename: str
    about_bytes: int | None  # as published, roughly (the hub's own size is checked before the transfer)
    licence: str
    gated: bool  # the model page asks for a login and an accepted licence
    sha256: str | None = None  # pinned by this build; None: the hub's published sha256, pinned on first get

    @property
    def page(self) -> str:
        return f"https://huggingface.co/{self.repo}"

    @property
    def key(self) -> str:
        return f"{self.repo}/{self.filename}"


# No sha256 is pinned by this build: it was written on a machine that cannot reach the hub. Each
# file is checked against the sha256 the hub publishes for it and pinned on this machine at its first
# get (weights.json in the data folder); the note of the issue that added this lists what to pin.
PARTS: dict[str, tuple[Part, ...]] = {
    "official": (
        Part("official", "Diff-V2M checkpoint, ODF rhythm (the authors' release: DiT, conditioners, VAE)",
             "TaylorJi/Diff-V2M", "model_odf.ckpt", None, "none stated by the authors (ask them before reuse)",
             False),
        Part("official", "its model config (stable-audio-tools JSON)", "TaylorJi/Diff-V2M", "model_config_odf.json",
             None, "none stated by the authors", False),
    ),
    "sao-vae": (
        Part("sao-vae", "Stable Audio Open 1.0 config", "stabilityai/stable-audio-open-1.0", "model_config.json",
             None, "Stability AI Community License", True),
        Part("sao-vae", "Stable Audio Open 1.0 (cutscore reads its autoencoder)", "stabilityai/stable-audio-open-1.0",
             "model.safetensors", int(4.9 * GB), "Stability AI Community License", True),
    ),
    "clip": (
        Part("clip", "OpenAI CLIP ViT-B/32 for open_clip (ViT-B-32-quickgelu, openai)",
             "timm/vit_base_patch32_clip_224.openai", "open_clip_model.safetensors", int(0.6 * GB),
             "MIT (OpenAI CLIP)", False),
    ),
}
NAMES = (*PARTS, "all")


# ---- pins: what each file must hash to ---------------------------------------------------------------

def _pins_path() -> Path:
    return data_dir() / "weights.json"


def _pins() -> dict:
    try:
        return json.loads(_pins_path().read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _pin(part: Part, sha: str, source: str) -> None:
    from core.files import atomic_write_text

    pins = _pins()
    pins[part.key] = {"sha256": sha, "source": source}
    _pins_path().parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(_pins_path(), json.dumps(pins, indent=2))


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 * 1024 * 1024):
            h.update(chunk)
    return h.hexdigest()


def _published_sha(etag: str | None) -> str | None:
    """The hub's ETag of a large (LFS) file is its sha256; a small file's is a git hash."""
    tag = (etag or "").strip('"').removeprefix("W/").strip('"')
    return tag if re.fullmatch(r"[0-9a-f]{64}", tag) else None


# ---- where things are ------------------------------------------------------------------------------------

def cached(part: Part) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    p = try_to_load_from_cache(part.repo, part.filename)
    return Path(p) if isinstance(p, str) else None


def status(part: Part) -> dict:
    """Where a part is on this machine and whether it is verified (its hash equals the pin)."""
    path, pin = cached(part), _pins().get(part.key)
    verified = None
    if path is not None and pin is not None:
        verified = sha256_of(path) == pin["sha256"]
    return {"name": part.name, "what": part.what, "repo": part.repo, "file": part.filename,
            "size_bytes": path.stat().st_size if path else part.about_bytes, "licence": part.licence,
            "gated": part.gated, "page": part.page, "path": str(path) if path else None,
            "sha256": pin["sha256"] if pin else part.sha256, "pinned": pin["source"] if pin else
            ("this build" if part.sha256 else None), "verified": verified}


def listing() -> list[dict]:
    rows = [status(p) for parts in PARTS.values() for p in parts]
    model = installed_model("official")
    rows.append({"name": "official", "what": "the converted model (what --model official loads)", "repo": None,
                 "file": "config.json + model.safetensors", "size_bytes": None, "licence": "as the checkpoint",
                 "gated": False, "page": None, "path": str(model) if model else None, "sha256": None,
                 "pinned": None, "verified": None})
    return rows


# ---- get -------------------------------------------------------------------------------------------------

def _hub_error(part: Part, e: Exception) -> CutscoreError:
    """One line for what the hub answered, naming what to do."""
    from huggingface_hub import errors

    if isinstance(e, errors.GatedRepoError):
        return CutscoreError(f"{part.repo}: gated: accept its licence at {part.page} while logged in, then log in "
                             f"here with `hf auth login` (or set HF_TOKEN) and run the command again")
    if isinstance(e, errors.RepositoryNotFoundError):
        return CutscoreError(f"{part.repo}: no such repository on the hub, or it is private to your login "
                             f"(`hf auth login`); see {part.page}")
    if isinstance(e, (errors.RemoteEntryNotFoundError, errors.EntryNotFoundError)):
        return CutscoreError(f"{part.key}: the hub has no such file (was the model moved?); see {part.page}")
    if type(e).__name__ == "OfflineModeIsEnabled":
        return CutscoreError(f"{part.key}: HF_HUB_OFFLINE is set, so nothing is downloaded; unset it and run the "
                             "command again")
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if isinstance(e, errors.HfHubHTTPError):
        return CutscoreError(f"{part.key}: the hub answered {text[:160]}; try again later")
    return CutscoreError(f"{part.key}: the Hugging Face hub cannot be reached ({type(e).__name__}: {text[:120]}); "
                         "connect this machine, or set HF_ENDPOINT to a mirror, and run the command again")


def _cache_dir() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _check_space(part: Part, size: int | None) -> None:
    if not size:
        return
    cache = _cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(cache).free
    if size + SPACE_MARGIN > free:
        raise CutscoreError(f"{part.key}: needs {size / GB:.2f} GB in {cache} and {free / GB:.2f} GB are free; "
                            "free some space, or set HF_HOME to a folder on a larger disk")


def _reject(part: Part, path: Path, got: str, want: str) -> CutscoreError:
    """Move a file that does not hash to its pin out of the cache, where nothing will load it."""
    aside = data_dir() / "rejected" / f"{part.repo.replace('/', '--')}--{part.filename}.{got[:12]}"
    aside.parent.mkdir(parents=True, exist_ok=True)
    blob = path.resolve()
    shutil.move(str(blob), aside)
    if path.is_symlink() or path.exists():
        path.unlink()
    return CutscoreError(f"{part.key}: its sha256 {got[:16]}... is not the published {want[:16]}...; refused and "
                         f"kept aside in {aside} (never loaded); run the command again to download it afresh")


def fetch(part: Part, log) -> tuple[Path, str]:
    """The part in the hub cache, verified (downloaded when it is not), and its sha256."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    try:
        meta = get_hf_file_metadata(hf_hub_url(part.repo, part.filename))
    except Exception as e:  # noqa: BLE001 - each hub failure gets its one line
        raise _hub_error(part, e) from None
    pin = _pins().get(part.key)
    want = part.sha256 or (pin or {}).get("sha256") or _published_sha(meta.etag)
    path = cached(part)
    if path is None:
        _check_space(part, meta.size)
        log(f"downloading {part.key} ({(meta.size or 0) / GB:.2f} GB) from {part.page}")
        try:
            path = Path(hf_hub_download(part.repo, part.filename))
        except Exception as e:  # noqa: BLE001
            raise _hub_error(part, e) from None
    got = sha256_of(path)
    if want is None:  # a small file with no published sha256: hashed once, pinned here
        _pin(part, got, "first download")
    elif got != want:
        raise _reject(part, path, got, want)
    elif pin is None:
        _pin(part, got, "this build" if part.sha256 else "the hub's published sha256")
    log(f"verified {part.key} (sha256 {got[:16]}...)")
    return path, got


def convert_official(ckpt: Path, sha: str, config: str, allow_pickle: bool, log) -> Path:
    """The checkpoint converted once into the data folder's models/official (atomically: a folder
    renamed into place), which --model official finds by name."""
    from engine.model.official import import_official

    dest = data_dir() / "models" / "official"
    work = dest.with_name("official.partial")
    shutil.rmtree(work, ignore_errors=True)
    log(f"converting {ckpt.name} into {dest}")
    try:
        summary = import_official(ckpt, work, allow_pickle=allow_pickle, config=config)
        (work / "SOURCE.json").write_text(json.dumps({"checkpoint": str(ckpt), "sha256": sha,
                                                      "config": config, "tensors": summary["parameters"]}, indent=2))
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(work, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


def get(name: str, config: str | None = None, allow_pickle: bool = False, log=lambda m: None) -> list[str]:
    """Fetch and verify every file of `name` (or all), converting the official checkpoint with
    `config` (None: CUTSCORE_OFFICIAL_CONFIG, else the `official` preset); the lines to tell the user."""
    config = config or os.environ.get("CUTSCORE_OFFICIAL_CONFIG") or "official"
    if name not in NAMES:
        raise CutscoreError(f"{name}: not a model cutscore fetches; choose one of {', '.join(NAMES)}")
    keys = list(PARTS) if name == "all" else [name]
    steps = sum(len(PARTS[k]) for k in keys) + sum(k in FETCHED_MODELS for k in keys)
    step = iter(range(1, steps + 1))
    done = []
    for key in keys:  # each file, then each conversion, is one step: "[k/n] ..." (the panel's progress)
        paths = {}
        for part in PARTS[key]:
            k = next(step)
            paths[part.filename] = fetch(part, lambda m, k=k: log(f"[{k}/{steps}] {m}"))
        if key in FETCHED_MODELS:  # the one converted model: official
            k = next(step)
            dest = convert_official(*paths["model_odf.ckpt"], config, allow_pickle,
                                    lambda m, k=k: log(f"[{k}/{steps}] {m}"))
            done.append(f"official: converted into {dest}; use it with --model official")
        else:
            done.append(f"{key}: verified in the Hugging Face cache ({_cache_dir()})")
    return done
