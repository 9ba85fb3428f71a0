"""Dataclass configs for Diff-V2M (Ji et al., "A Hierarchical Conditional Diffusion Model with
Explicit Rhythmic Modeling for Video-to-Music Generation"), one per component, round-tripping to
JSON. The numbers and their sources are in docs/MODEL_SPEC.md; the three shipped presets
live in resources/configs/ (`paper`, `official`, `debug`).

    from core.model_config import load_config
    cfg = load_config("paper")          # a preset name, a config.json, or a model folder
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import CutscoreError
from core.paths import CONFIG_DIR, DEFAULT_CLIP

FUSIONS = ("weighted", "additive", "select", "film_pre", "film_post", "film_select")
NORM_PLACEMENTS = ("pre", "replace")
RHYTHM_REPRESENTATIONS = {"odf": 1, "mel": 16, "tem": 16}  # name -> channels per second


@dataclass
class DiTConfig:
    latent_dim: int = 64  # VAE latent channels (Stable Audio Open: 64)
    embed_dim: int = 1536
    depth: int = 24
    num_heads: int = 24  # head dim 64
    cond_dim: int = 768  # width of every cross-attention token stream
    cond_heads: int = 12  # K/V heads from the 768-d tokens, repeated to num_heads
    ff_mult: int = 4  # GLU-SiLU inner width = ff_mult * embed_dim
    rope_dim: int = 32  # RoPE on this many of the head dims (partial rotary), self-attention only
    timestep_features: int = 256  # Fourier features of the diffusion time
    fusion: str = "film_select"  # how h_sem and h_rhy are fused, one of FUSIONS
    select_t: float = 0.2  # feature selection: h_sem when t > select_t, else h_rhy
    film_t_dim: int = 64  # FiLM: t -> Linear(1, film_t_dim)
    film_hidden: int = 256  # FiLM: per gamma/beta an MLP film_t_dim -> film_hidden -> width
    norm_placement: str = "pre"  # "pre": the paper's figure; "replace": the released code
    emotion_source: str = "color"  # "color" (paper) or "rhythm" (the released code's bug)
    init_scale: float = 1.0  # the released code multiplies every DiT parameter by 0.5 at init
    # cutscore's extension, off in `paper` and `official`: > 0 rotates the cross-attention queries
    # (latent frame k at position k + 1) and the per-second condition tokens (second m at position
    # 1 + (m + 0.5) * cross_rope_fps, extra tokens at 0) with the same RoPE, so a latent frame can
    # find the second it belongs to. Without it the per-second streams are a bag of tokens to the
    # DiT, which then cannot place a hit at the second of a cut. Set it to latent frames per second.
    cross_rope_fps: float = 0.0


@dataclass
class RhythmPredictorConfig:
    clip_dim: int = 512
    dim: int = 512
    depth: int = 12
    num_heads: int = 8
    ff_mult: int = 4
    rope_dim: int = 32
    beat_hidden: int = 128  # MLP(v): 1 -> beat_hidden -> ReLU -> dim
    num_classes: int = 3  # the prepended class token's vocabulary
    out_channels: int = 1  # 1 for ODF_LR, 16 for Mel_LR / Tem_LR
    # How the CLIP input is z-scored. "window": over the whole zero-padded window (seconds x
    # channels, padded rows included, unbiased std + 1e-6) with no key mask in the transformer, as
    # the authors' released code does (so the released weights need it). "valid": over the valid
    # seconds only (biased std), padded rows 0, padded keys masked: cutscore's format-1 models.
    input_norm: str = "window"


@dataclass
class EncoderConfig:
    clip_dim: int = 512
    color_dim: int = 3072
    color_hidden: int = 1024
    rhythm_hidden: int = 512
    number_freqs: int = 128  # learned Fourier features of start time / duration (2*128+1 values)
    max_seconds: float = 30.0  # start time and duration are clamped to [0, max] and divided by max
    num_classes: int = 3
    # The class fed to the global condition and the predictor's class token. The authors' dataset
    # configs (train, val, inference, V2M-Bench) all use class_label 2: the released weights never
    # trained rows 0 and 1. Models trained here use whatever their training data used.
    class_id: int = 0
    # What the seconds_start / seconds_total embedders see for a window. "piece": its continuous
    # start within the whole piece and its duration (models trained here with long pieces).
    # "zero": start 0 and total ceil(duration), which is all the released weights were trained on
    # (30 s clips, each from its own start).
    start_time: str = "piece"


@dataclass
class DiffusionConfig:
    cfg_dropout: float = 0.1  # per cross-attention stream; the global condition is never dropped
    guidance: float = 3.0
    sampler: str = "ddim"  # "ddim" or "dpmpp-2m"
    steps: int = 250
    rhythm_loss_weight: float = 1.0


@dataclass
class ModelConfig:
    name: str = "paper"
    sample_rate: int = 44100
    audio_channels: int = 2
    window_seconds: float = 30.0
    latent_frames: int = 645  # latent frames of one window (VAE downsampling 2048: 1,320,960 samples)
    downsampling: int = 2048  # audio samples per latent frame
    rhythm: str = "odf"  # rhythm representation, a key of RHYTHM_REPRESENTATIONS
    dit: DiTConfig = field(default_factory=DiTConfig)
    predictor: RhythmPredictorConfig = field(default_factory=RhythmPredictorConfig)
    encoders: EncoderConfig = field(default_factory=EncoderConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    # stable-audio-tools autoencoder config ({"type": "autoencoder", "config": {...}}); None means
    # Stable Audio Open 1.0's VAE (resources/configs/vae_sao.json)
    vae: dict | None = None
    clip_model: str = DEFAULT_CLIP[0]  # the open_clip model whose features the model was trained on
    clip_pretrained: str | None = DEFAULT_CLIP[1]  # None: random init (the debug model's tiny CLIP)

    def validate(self) -> ModelConfig:
        if self.dit.fusion not in FUSIONS:
            raise ValueError(f"unknown fusion: {self.dit.fusion!r} (choose from {', '.join(FUSIONS)})")
        if self.dit.norm_placement not in NORM_PLACEMENTS:
            raise ValueError(f"unknown norm placement: {self.dit.norm_placement!r}")
        if self.dit.emotion_source not in ("color", "rhythm"):
            raise ValueError(f"unknown emotion source: {self.dit.emotion_source!r}")
        if self.predictor.input_norm not in ("window", "valid"):
            raise ValueError(f"unknown predictor input_norm: {self.predictor.input_norm!r} (window or valid)")
        if self.encoders.start_time not in ("piece", "zero"):
            raise ValueError(f"unknown encoders start_time: {self.encoders.start_time!r} (piece or zero)")
        if not 0 <= self.encoders.class_id < self.encoders.num_classes:
            raise ValueError(f"encoders class_id {self.encoders.class_id} is outside 0..{self.encoders.num_classes - 1}")
        if self.rhythm not in RHYTHM_REPRESENTATIONS:
            raise ValueError(f"unknown rhythm representation: {self.rhythm!r}")
        if self.predictor.out_channels != RHYTHM_REPRESENTATIONS[self.rhythm]:
            raise ValueError("predictor.out_channels must match the rhythm representation's channels")
        if self.dit.embed_dim % self.dit.num_heads or self.dit.num_heads % self.dit.cond_heads:
            raise ValueError("embed_dim must be divisible by num_heads, and num_heads by cond_heads "
                             "(K/V heads are repeated to the query heads)")
        return self

    @property
    def seconds(self) -> int:
        """Per-second feature slots of one window (30 for Diff-V2M)."""
        return int(round(self.window_seconds))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        subs = {"dit": DiTConfig, "predictor": RhythmPredictorConfig, "encoders": EncoderConfig,
                "diffusion": DiffusionConfig}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(sorted(unknown))}")
        kw = {}
        for k, v in d.items():
            if k in subs:
                sub_known = {f.name for f in dataclasses.fields(subs[k])}
                bad = set(v) - sub_known
                if bad:
                    raise ValueError(f"unknown {k} config keys: {', '.join(sorted(bad))}")
                kw[k] = subs[k](**v)
            else:
                kw[k] = v
        return cls(**kw).validate()


def upgrade_model_dict(d: dict, format_version: int | None) -> dict:
    """A checkpoint's model config as this cutscore reads it. Format 1 predates the predictor's
    input_norm switch: its models were trained with the "valid" normalisation."""
    d = json.loads(json.dumps(d))
    if format_version == 1:
        d.setdefault("predictor", {}).setdefault("input_norm", "valid")
    return d


def preset_names() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json") if not p.stem.startswith("vae_"))


def load_config(name_or_path: str | Path) -> ModelConfig:
    """A preset name (`paper`, `official`, `debug`), a config .json, or a model folder."""
    p = Path(name_or_path)
    if p.is_dir():
        p = p / "config.json"
    elif not p.suffix and (CONFIG_DIR / f"{name_or_path}.json").exists():
        p = CONFIG_DIR / f"{name_or_path}.json"
    if not p.exists():
        raise CutscoreError(f"{name_or_path}: no such model config; use a preset "
                            f"({', '.join(preset_names())}), a config .json or a model folder")
    try:
        d = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise CutscoreError(f"{p}: not valid JSON ({e.msg} at line {e.lineno}); fix or regenerate it") from e
    if "model" in d:  # a checkpoint's config.json wraps the model config
        d = upgrade_model_dict(d["model"], d.get("format_version"))
    try:
        return ModelConfig.from_dict(d)
    except (TypeError, ValueError) as e:
        raise CutscoreError(f"{p}: {e}") from e


def default_vae_config() -> dict:
    return json.loads((CONFIG_DIR / "vae_sao.json").read_text())


def model_window_s(model: str) -> float:
    """The generation window of a model (a folder or a preset), read from its config without torch."""
    p = Path(model)
    if p.is_dir() and (p / "config.json").exists():
        meta = json.loads((p / "config.json").read_text())
        return float(meta.get("model", meta).get("window_seconds", 30.0))
    try:
        return load_config(model).window_seconds
    except CutscoreError:  # an unknown name fails later, in the engine, with its own message
        return 30.0


def rhythm_range(window_s: float) -> tuple[float, float]:
    """The range of the rhythm condition (an edited energy lane is checked against it): the predictor
    learns per-second curves z-scored over a window, and n z-scored values lie within +-sqrt(n - 1)."""
    b = math.sqrt(max(math.ceil(window_s - 1e-6) - 1, 1))
    return -b, b


def model_sampling(model: str) -> dict:
    """A model's own sampler, steps and guidance (what None in core.api.Settings means), read from
    its config without torch; an unreadable model answers the defaults (the engine says why later)."""
    try:
        d = load_config(model).diffusion
    except Exception:  # noqa: BLE001 - as model_window_s
        d = DiffusionConfig()
    return {"sampler": d.sampler, "steps": d.steps, "guidance": d.guidance}
