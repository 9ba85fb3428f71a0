"""Diff-V2M training as a LightningModule (paper, section 4.1; docs/MODEL_SPEC.md "Training"):

loss = MSE(v) + 1.0 x masked rhythm MSE (the intended masking, not the released code's bug); the
rhythm predictor is trained jointly but receives no diffusion gradient; scheduled conditioning
p_pred(e) = 0 for e < e1, (e - e1) / (e2 - e1) until e2, then 1, drawn per sample; CFG dropout per
stream; AdamW + InverseLR stepped per optimizer step; an EMA copy of the DiT (torch's AveragedModel),
updated once per optimizer step, so gradient accumulation does not change its decay. Every ablation
of the paper is a switch in TrainConfig. Randomness is drawn from generators seeded by (seed, epoch,
micro-batch, rank): every micro-batch of an accumulated step draws its own t, noise and dropout, and
a resumed run continues exactly as an uninterrupted one. The caller's configs are never modified.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import lightning as L
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from core.model_config import ModelConfig
from engine.model.diffusion import DiffV2M
from engine.model.encoders import Features


@dataclass
class TrainConfig:
    dataset: str = ""
    out_dir: str = "runs/diffv2m"
    model: str = "paper"  # a preset name or a config .json (the model to train)
    model_overrides: dict = field(default_factory=dict)  # e.g. {"dit": {"fusion": "weighted"}, "rhythm": "mel"}
    seed: int = 0
    batch_size: int = 32
    accumulate: int = 4  # effective batch 32 x 2 GPUs x 4 = 256 in the paper
    max_epochs: int = 50
    max_steps: int = -1
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-3
    inv_gamma: float = 1e6  # InverseLR: lr * (1 - warmup^(step+1)) * (1 + step / inv_gamma)^-power
    power: float = 0.5
    warmup: float = 0.99
    ema_decay: float = 0.9999
    e1: int = 10  # scheduled conditioning: predicted rhythm never before epoch e1 ...
    e2: int = 30  # ... always from epoch e2
    cfg_dropout: float = 0.1
    # ablations (paper, table 3)
    use_rhythm: bool = True  # False: "w/o rhythm" (the rhythmic stream is zeros)
    use_emotion: bool = True  # False: "w/o emotion" (the emotional stream is zeros)
    visual_rhythm: bool = True  # False: the predictor sees CLIP only (scene onsets and beats zeroed)
    joint: bool = True  # False: no rhythm loss; the DiT trains on ground-truth rhythm only
    schedule: bool = True  # False: no scheduled conditioning (always ground-truth rhythm in training)
    precision: str = "auto"  # "auto": bf16-mixed on CUDA, 32 on CPU
    accelerator: str = "auto"
    devices: int | str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"  # "ddp" for several GPUs / nodes (torchrun or SLURM launch it)
    num_workers: int = 0
    log_every: int = 10
    save_rank_weights: bool = False  # tests: each DDP rank writes its final weights

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = set(cls.__dataclass_fields__)
        bad = set(d) - known
        if bad:
            raise ValueError(f"unknown train config keys: {', '.join(sorted(bad))}")
        d = dict(d)
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


def p_pred(epoch: int, e1: int, e2: int) -> float:
    """Probability of conditioning on the predicted rhythm in this epoch."""
    if epoch < e1:
        return 0.0
    if epoch >= e2:
        return 1.0
    return (epoch - e1) / (e2 - e1)


def inverse_lr(step: int, inv_gamma: float, power: float, warmup: float) -> float:
    """stable-audio-tools' InverseLR factor: (1 - warmup^(step+1)) * (1 + step/inv_gamma)^-power."""
    return (1 - warmup ** (step + 1)) * (1 + step / inv_gamma) ** -power


class DiffV2MModule(L.LightningModule):
    def __init__(self, model_cfg: ModelConfig, train_cfg: TrainConfig):
        super().__init__()
        model_cfg, train_cfg = copy.deepcopy(model_cfg), copy.deepcopy(train_cfg)
        self.model_cfg, self.train_cfg = model_cfg, train_cfg
        model_cfg.diffusion.cfg_dropout = train_cfg.cfg_dropout
        if not train_cfg.joint:
            model_cfg.diffusion.rhythm_loss_weight = 0.0
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(train_cfg.seed)
            self.model = DiffV2M(model_cfg)
        self.ema = AveragedModel(self.model.dit, multi_avg_fn=get_ema_multi_avg_fn(train_cfg.ema_decay),
                                 use_buffers=True).requires_grad_(False)
        self.save_hyperparameters({"model": model_cfg.to_dict(), "train": train_cfg.to_dict()})
        self.pred_draws = {}  # epoch -> [conditioned on prediction, total] (this rank)

    def _generator(self, batch_idx: int) -> torch.Generator:
        """Seeded by (seed, epoch, micro-batch, rank): global_step does not advance between the
        micro-batches of an accumulated step, so it cannot seed them."""
        key = (((self.train_cfg.seed * 1_000_003 + self.current_epoch) * 1_000_033 + batch_idx) * 10_007
               + self.global_rank)
        return torch.Generator().manual_seed(key % (2**63 - 1))

    def _ablate(self, f: Features, rhythm: torch.Tensor) -> tuple[Features, torch.Tensor]:
        tc = self.train_cfg
        if not tc.visual_rhythm:
            f = f._replace(scene=torch.zeros_like(f.scene), beat=torch.zeros_like(f.beat))
        if not tc.use_emotion:
            f = f._replace(color=torch.zeros_like(f.color))
        return f, rhythm

    def training_step(self, batch, batch_idx):
        f, latents, rhythm = batch
        f, rhythm = self._ablate(f, rhythm)
        tc = self.train_cfg
        g = self._generator(batch_idx)
        prob = p_pred(self.current_epoch, tc.e1, tc.e2) if (tc.schedule and tc.joint) else 0.0
        use_pred = torch.rand(latents.shape[0], generator=g) < prob
        counts = self.pred_draws.setdefault(self.current_epoch, [0, 0])
        counts[0] += int(use_pred.sum())
        counts[1] += int(use_pred.numel())
        out = self.model.loss(latents, f, rhythm, use_pred.to(latents.device), generator=g,
                              zero_rhythm=not tc.use_rhythm)
        self.log_dict({"loss": out["loss"], "v_loss": out["v_loss"], "rhythm_loss": out["rhythm_loss"]},
                      prog_bar=True, on_step=True, on_epoch=False, batch_size=latents.shape[0])
        return out["loss"]

    def optimizer_step(self, *args, **kwargs):
        """Lightning calls this once per optimizer step (after `accumulate` micro-batches): the EMA
        follows optimizer steps, not micro-batches."""
        super().optimizer_step(*args, **kwargs)
        self.ema.update_parameters(self.model.dit)

    def configure_optimizers(self):
        tc = self.train_cfg
        opt = torch.optim.AdamW(self.model.parameters(), lr=tc.lr, betas=tc.betas, weight_decay=tc.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: inverse_lr(s, tc.inv_gamma, tc.power, tc.warmup))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint):
        checkpoint["pred_draws"] = self.pred_draws

    def on_load_checkpoint(self, checkpoint):
        self.pred_draws = checkpoint.get("pred_draws", {})
