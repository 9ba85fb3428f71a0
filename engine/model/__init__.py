"""The Diff-V2M model: configs, layers, DiT, condition encoders, rhythm predictor, VAE wrapper,
diffusion objective, samplers, the inference pipeline and checkpoints."""
