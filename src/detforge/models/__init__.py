"""The YOLO-style detector: blocks, CSP backbone, PAN neck, DFL head, optional torchvision
backbones, post-processing and checkpoints.

Names are resolved lazily so that ``import detforge.models`` does not import torch::

    from detforge.models import create_model, postprocess, load_model
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from detforge.models.checkpoint import load_checkpoint, load_model, save_checkpoint
    from detforge.models.postprocess import Detections, postprocess
    from detforge.models.yolo import Detector, create_model

_EXPORTS = {
    "create_model": "detforge.models.yolo",
    "Detector": "detforge.models.yolo",
    "postprocess": "detforge.models.postprocess",
    "Detections": "detforge.models.postprocess",
    "save_checkpoint": "detforge.models.checkpoint",
    "load_checkpoint": "detforge.models.checkpoint",
    "load_model": "detforge.models.checkpoint",
}

__all__ = [
    "Detections",
    "Detector",
    "create_model",
    "load_checkpoint",
    "load_model",
    "postprocess",
    "save_checkpoint",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'detforge.models' has no attribute {name!r}")
