"""Thresholds of the three heuristic warnings; every other finding is a hard rule.

Defaults suit photos and video frames at YOLO input sizes. Microscopy crops are often smaller
than 32 px, long-tailed wildlife data is imbalanced on purpose, and crowded scenes overlap
heavily: :class:`CheckLimits` (``detforge check --tiny-px / --imbalance / --near-dup-iou``)
moves or switches off each warning (``0`` disables it).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from detforge.errors import DetforgeError


@dataclass(frozen=True)
class CheckLimits:
    """Where ``box-near-duplicate``, ``image-tiny`` and ``class-imbalance`` fire."""

    near_duplicate_iou: float = 0.9
    """``box-near-duplicate``: two same-class boxes of one image overlap with at least this
    IoU (in ``(0, 1]``; ``0`` disables)."""
    tiny_image_px: int = 32
    """``image-tiny``: an image narrower or lower than this many pixels (``0`` disables)."""
    imbalance_ratio: float = 100.0
    """``class-imbalance``: the largest class has at least this many times the boxes of the
    smallest non-empty class (``>= 1``; ``0`` disables)."""

    def __post_init__(self) -> None:
        iou, px, ratio = self.near_duplicate_iou, self.tiny_image_px, self.imbalance_ratio
        if not (math.isfinite(iou) and 0.0 <= iou <= 1.0):
            raise DetforgeError(f"near-duplicate IoU must be in [0, 1] (0 disables), not {iou}")
        if px < 0:
            raise DetforgeError(f"tiny-image size must be >= 0 px (0 disables), not {px}")
        if math.isnan(ratio) or (ratio != 0 and ratio < 1):
            raise DetforgeError(f"imbalance ratio must be >= 1 (0 disables), not {ratio}")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values (part of the check-result cache key)."""
        return asdict(self)


DEFAULT_LIMITS = CheckLimits()
"""The defaults (frozen, so safe as a default argument)."""
