"""Pixel conventions shared by training, validation and prediction."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def to_rgb_array(im: Any) -> NDArray[np.uint8]:
    """``(H, W, 3)`` uint8 RGB from a Pillow image of any mode.

    16/32-bit integer images (microscopy TIFFs) keep their top 8 bits; float images are taken
    as ``0..1`` when their maximum is <= 1, else as ``0..255``; alpha and palettes are dropped
    after conversion to RGBA. Training and prediction both decode through this, so a model sees
    the same pixels in both.
    """
    if im.mode == "RGB":
        return np.asarray(im, dtype=np.uint8)
    if im.mode.startswith("I") or im.mode == "F":
        a = np.asarray(im).astype(np.float64)
        unit = im.mode == "F" and a.size > 0 and a.max() <= 1.0
        a = a * 255.0 if unit else a if im.mode == "F" else a / 256.0
        grey = np.clip(a, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    if "A" in im.mode or im.mode == "P":
        im = im.convert("RGBA")
    return np.asarray(im.convert("RGB"), dtype=np.uint8)
