"""`cutscore train fit CONFIG`: train Diff-V2M with PyTorch Lightning.

    cutscore train fit runs/my_run.json            # one machine: CPU, or every GPU it has
    torchrun --nproc_per_node 8 -m ui.cli train fit runs/my_run.json     # with "strategy": "ddp"
    srun python -m ui.cli train fit runs/my_run.json                     # SLURM: Lightning reads its env

CONFIG is a TrainConfig JSON (engine/train/module.py). The model's audio side (sample rate, latent
size, VAE) comes from the dataset (DATASET/dataset.json), so the exported model folder carries the
VAE it was trained with. A run resumes from OUT_DIR/checkpoints/last.ckpt when it exists. At the end
rank 0 exports OUT_DIR/model (online DiT) and OUT_DIR/model-ema (EMA DiT) in cutscore's format.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from core.errors import CutscoreError
from core.model_config import ModelConfig, load_config
from engine.train.data import EpochShuffleSampler, SegmentDataset, collate
from engine.train.module import DiffV2MModule, TrainConfig


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def model_config_for(tc: TrainConfig) -> ModelConfig:
    cfg = load_config(tc.model).to_dict()
    meta_path = Path(tc.dataset) / "dataset.json"
    if not meta_path.exists():
        raise CutscoreError(f"{tc.dataset}: not a cutscore dataset (no dataset.json); run `cutscore train preprocess`")
    meta = json.loads(meta_path.read_text())
    cfg.update(sample_rate=meta["sample_rate"], audio_channels=meta["audio_channels"], latent_frames=meta["latent_frames"],
               downsampling=meta["downsampling"], window_seconds=meta["seconds"], rhythm=meta["rhythm"], vae=meta["vae_config"])
    cfg["dit"]["latent_dim"] = meta["latent_dim"]
    cfg["clip_model"], cfg["clip_pretrained"] = meta["clip_model"], meta["clip_pretrained"]
    cfg = _merge(cfg, tc.model_overrides)
    try:
        return ModelConfig.from_dict(cfg)
    except (TypeError, ValueError) as e:
        raise CutscoreError(f"model config for {tc.dataset}: {e}") from e


def read_train_config(path: str | Path) -> TrainConfig:
    p = Path(path)
    if not p.exists():
        raise CutscoreError(f"{p}: no such train config")
    try:
        tc = TrainConfig.from_dict(json.loads(p.read_text()))
    except (json.JSONDecodeError, ValueError, TypeError) as e:
        raise CutscoreError(f"{p}: {e}") from e
    if not tc.dataset:
        raise CutscoreError(f"{p}: set \"dataset\" to a folder made by `cutscore train preprocess`")
    if not Path(tc.dataset).is_absolute():
        tc.dataset = str((p.parent / tc.dataset).resolve())
    if not Path(tc.out_dir).is_absolute():
        tc.out_dir = str((p.parent / tc.out_dir).resolve())
    return tc


def make_trainer(tc: TrainConfig, callbacks=(), enable_progress_bar: bool = False) -> L.Trainer:
    precision = tc.precision
    if precision == "auto":
        precision = "bf16-mixed" if torch.cuda.is_available() else "32-true"
    ckpt = L.pytorch.callbacks.ModelCheckpoint(dirpath=Path(tc.out_dir) / "checkpoints", save_last=True,
                                               every_n_epochs=1, save_top_k=-1, filename="epoch{epoch:03d}",
                                               auto_insert_metric_name=False)
    return L.Trainer(default_root_dir=tc.out_dir, max_epochs=tc.max_epochs, max_steps=tc.max_steps,
                     accumulate_grad_batches=tc.accumulate, precision=precision, accelerator=tc.accelerator,
                     devices=tc.devices, num_nodes=tc.num_nodes, strategy=tc.strategy, log_every_n_steps=tc.log_every,
                     callbacks=[ckpt, *callbacks], logger=L.pytorch.loggers.CSVLogger(tc.out_dir, name="logs"),
                     enable_progress_bar=enable_progress_bar, enable_model_summary=False, deterministic=False,
                     use_distributed_sampler=True)


def dataloader(tc: TrainConfig, cfg: ModelConfig) -> DataLoader:
    ds = SegmentDataset(tc.dataset, "train", cfg.seconds)
    return DataLoader(ds, batch_size=tc.batch_size, sampler=EpochShuffleSampler(len(ds), tc.seed), collate_fn=collate,
                      num_workers=tc.num_workers, drop_last=False)


def fit(config: str | Path | TrainConfig, callbacks=(), progress: bool = False) -> DiffV2MModule:
    tc = config if isinstance(config, TrainConfig) else read_train_config(config)
    cfg = model_config_for(tc)
    module = DiffV2MModule(cfg, tc)
    trainer = make_trainer(tc, callbacks, progress)
    last = Path(tc.out_dir) / "checkpoints" / "last.ckpt"
    trainer.fit(module, dataloader(tc, cfg), ckpt_path=str(last) if last.exists() else None)
    if tc.save_rank_weights:
        from safetensors.torch import save_file

        save_file({k: v.detach().cpu().contiguous() for k, v in module.model.state_dict().items()},
                  str(Path(tc.out_dir) / f"rank{trainer.global_rank}.safetensors"))
    if trainer.is_global_zero:
        export(module, tc)
    return module


def export(module: DiffV2MModule, tc: TrainConfig) -> None:
    from engine.model.checkpoint import save_model
    from engine.model.vae import load_vae

    meta = json.loads((Path(tc.dataset) / "dataset.json").read_text())
    vae = load_vae(Path(tc.dataset) / meta["vae"]) if meta.get("vae") else None
    model = module.model.cpu().eval()
    save_model(Path(tc.out_dir) / "model", model, vae)
    online = {k: v.clone() for k, v in model.dit.state_dict().items()}
    model.dit.load_state_dict(module.ema.module.state_dict())
    save_model(Path(tc.out_dir) / "model-ema", model, vae)
    model.dit.load_state_dict(online)
