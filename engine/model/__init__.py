"""The Diff-V2M model: layers, DiT, condition encoders, rhythm predictor, VAE wrapper,
diffusion objective, samplers, the inference pipeline and checkpoints (the configs are torch-free,
in core/model_config.py and resources/configs/)."""
