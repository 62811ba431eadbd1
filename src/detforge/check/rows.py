"""The label rows every check works on: one row per box, from any source format."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, eq=False)
class LabelRows:
    """Label lines that parsed as five finite numbers; every array has ``K`` rows.

    ``file`` indexes the label files given to :func:`parse_label_texts`, ``line`` is 1-based,
    ``cls`` is the class id as float (checked later), ``coords`` ``(K, 4)`` is CXCYWH_NORM.
    """

    file: NDArray[np.int64]
    line: NDArray[np.int64]
    cls: NDArray[np.float64]
    coords: NDArray[np.float64]
    int_text: NDArray[np.bool_]
    """``(K,)`` whether the class field is written as a plain integer (``"3"``, not ``"3.0"``)."""
    cls_text: list[str] | None = None
    """The class fields as written (Darknet text sources only)."""
    describe: list[str] | None = None
    """How to name each box in messages when it has no line (e.g. VOC pixel corners)."""

    def __len__(self) -> int:
        return len(self.file)
