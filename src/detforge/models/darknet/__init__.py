"""Darknet networks as detforge models: ``.cfg`` + ``.weights`` in, detections and files out.

>>> from detforge.models.darknet import load_darknet, detect
>>> net = load_darknet("yolov4-tiny.cfg", "yolov4-tiny.weights")
>>> dets = detect(net, rgb_uint8_array)          # Darknet's thresholds, resize and NMS
>>> dets.boxes, dets.scores, dets.classes        # (K, 4) xyxy px, (K,), (K,)

Modules: ``cfg`` (parse, line numbers), ``layers``/``network`` (the PyTorch network),
``weights`` (read/write ``.weights``), ``decode`` (per-head box decoding), ``nms``
(thresholds + Darknet's per-class NMS), ``preprocess`` (resize / letterbox rule),
``export`` (write ``<name>.cfg/.weights/.names``), ``model`` (loading and running).
Importing this package does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from detforge.models.darknet.model import detect, is_darknet_file, load_darknet

__all__ = ["detect", "is_darknet_file", "load_darknet"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from detforge.models.darknet import model

        return getattr(model, name)
    raise AttributeError(name)
