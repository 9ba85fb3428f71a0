"""Evaluation: onset/cut alignment and the paper's distribution metrics (FAD, FD, KL)."""
