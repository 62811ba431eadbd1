"""Evaluation: pycocotools-identical COCO metrics and Darknet ``detector map`` numbers.

``evaluate(gt, pred)`` runs both protocols on two :class:`~detforge.data.dataset.Dataset`
objects. ``read_predictions(path, gt)`` (its home is :mod:`detforge.formats.predictions`)
reads a COCO results JSON, per-image ``.txt`` files or Darknet ``comp4_det_test_*`` files as
predictions aligned to ``gt``.
"""

from __future__ import annotations

from detforge.eval.api import evaluate, jsonable
from detforge.formats.predictions import read_predictions

__all__ = ["evaluate", "jsonable", "read_predictions"]
