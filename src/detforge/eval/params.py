"""The parameters of the COCO protocol (:mod:`detforge.eval.coco`), shared with
:mod:`detforge.eval.accumulate`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class CocoParams:
    """pycocotools' default bbox parameters (constructed the same way, for equal floats)."""

    iou_thrs: F64 = field(
        default_factory=lambda: np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1)
    )
    rec_thrs: F64 = field(
        default_factory=lambda: np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1)
    )
    max_dets: tuple[int, ...] = (1, 10, 100)
    area_rng: tuple[tuple[float, float], ...] = (
        (0**2, 1e5**2),
        (0**2, 32**2),
        (32**2, 96**2),
        (96**2, 1e5**2),
    )
    area_lbl: tuple[str, ...] = ("all", "small", "medium", "large")
