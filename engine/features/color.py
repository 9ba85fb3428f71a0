"""The emotional feature of Diff-V2M: a 3072-d colour histogram a second (docs/MODEL_SPEC.md leaves the
bin layout open; this is ours, engine/features/README.md):

a joint HSV histogram with 16 hue x 12 saturation x 16 value bins = 3072, of the second's key frame
scaled to a short side of 224 px (OpenCV's HSV: H in [0, 180), S and V in [0, 256)), L1-normalised
so every second sums to 1 whatever the frame size. Joint bins keep the hue-brightness pairing that
carries mood (dark blue night vs. bright blue sky), which three separate channel histograms lose.
"""

from __future__ import annotations

import numpy as np

BINS = (16, 12, 16)  # hue, saturation, value: 16 * 12 * 16 = 3072
DIM = int(np.prod(BINS))


def color_histograms(frames_rgb: np.ndarray) -> np.ndarray:
    """(M, H, W, 3) uint8 RGB -> (M, 3072) float32, each row summing to 1."""
    import cv2

    out = np.zeros((len(frames_rgb), DIM), np.float32)
    for i, f in enumerate(frames_rgb):
        hsv = cv2.cvtColor(f, cv2.COLOR_RGB2HSV)
        h = cv2.calcHist([hsv], [0, 1, 2], None, list(BINS), [0, 180, 0, 256, 0, 256]).ravel()
        out[i] = h / max(h.sum(), 1.0)
    return out


def color_summary(frames_rgb: np.ndarray) -> list[dict]:
    """Per second: circular mean hue in degrees, mean saturation and brightness in [0, 1]."""
    import cv2

    rows = []
    for f in frames_rgb:
        hsv = cv2.cvtColor(f, cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(np.float64)
        ang = hsv[:, 0] * 2 * np.pi / 180
        w = hsv[:, 1] / 255
        hue = np.degrees(np.arctan2((np.sin(ang) * w).sum(), (np.cos(ang) * w).sum())) % 360
        rows.append({"hue": float(hue), "saturation": float(hsv[:, 1].mean() / 255),
                     "brightness": float(hsv[:, 2].mean() / 255)})
    return rows
