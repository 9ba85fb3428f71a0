"""Training Diff-V2M: datasets of preprocessed segments, the Lightning module, the fit entry point,
preprocessing of a corpus, and the synthetic corpus of the demo model."""
