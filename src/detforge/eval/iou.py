"""IoU formulas, each bit-identical to the tool whose numbers we reproduce.

* :func:`coco_pair_iou` follows pycocotools' ``bbIou`` (``maskApi.c``) operation by operation
  in float64 on COCO ``[x, y, w, h]`` pixel boxes: the intersection of a crowd region is
  divided by the *detection* area instead of the union.
* :func:`darknet_iou` follows Darknet's ``box_iou`` (``box.c``) in float32 on
  ``[cx, cy, w, h]`` boxes (normalized, as ``detector map`` uses them).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
F32 = NDArray[np.float32]


def coco_pair_iou(dt: F64, gt: F64, crowd: NDArray[np.bool_]) -> F64:
    """IoU of matching rows: ``dt (P, 4)``, ``gt (P, 4)`` xywh pixels, ``crowd (P,)`` -> ``(P,)``.

    Same expression order as pycocotools: ``w = min(dx+dw, gx+gw) - max(dx, gx)`` (0 when
    ``<= 0``), likewise ``h``, ``i = w*h``, ``u = da + ga - i`` (``da`` for crowd), ``i / u``.
    """
    w = np.minimum(dt[:, 2] + dt[:, 0], gt[:, 2] + gt[:, 0]) - np.maximum(dt[:, 0], gt[:, 0])
    h = np.minimum(dt[:, 3] + dt[:, 1], gt[:, 3] + gt[:, 1]) - np.maximum(dt[:, 1], gt[:, 1])
    da = dt[:, 2] * dt[:, 3]
    ga = gt[:, 2] * gt[:, 3]
    inter = w * h
    union = np.where(crowd, da, da + ga - inter)
    ok = (w > 0) & (h > 0)
    out = np.zeros(len(dt), dtype=np.float64)
    np.divide(inter, union, out=out, where=ok)
    return out


def darknet_iou(a: F32, b: F32) -> F32:
    """Darknet's ``box_iou`` of matching rows ``a (P, 4)``, ``b (P, 4)`` cxcywh float32 -> ``(P,)``.

    ``overlap`` per axis is ``min(c1 + s1/2, c2 + s2/2) - max(c1 - s1/2, c2 - s2/2)``; a
    negative overlap gives 0; ``I / (wa*ha + wb*hb - I)``, and 0 when ``I`` or ``U`` is 0.
    """
    a = a.astype(np.float32, copy=False)
    b = b.astype(np.float32, copy=False)
    two = np.float32(2)

    def overlap(x1: F32, w1: F32, x2: F32, w2: F32) -> F32:
        left = np.maximum(x1 - w1 / two, x2 - w2 / two)
        right = np.minimum(x1 + w1 / two, x2 + w2 / two)
        return np.asarray(right - left, dtype=np.float32)

    w = overlap(a[:, 0], a[:, 2], b[:, 0], b[:, 2])
    h = overlap(a[:, 1], a[:, 3], b[:, 1], b[:, 3])
    inter = np.where((w < 0) | (h < 0), np.float32(0), w * h).astype(np.float32)
    union = (a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter).astype(np.float32)
    out = np.zeros(len(a), dtype=np.float32)
    np.divide(inter, union, out=out, where=(inter != 0) & (union != 0))
    return out
