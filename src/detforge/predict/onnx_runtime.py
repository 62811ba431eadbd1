"""Running an exported detforge ONNX model with onnxruntime behind :class:`Predictor`.

The graph contract is :mod:`detforge.predict.export`'s: input ``images`` ``(B, 3, H, W)``
float RGB in ``[0, 1]``, output ``(B, A, 4 + C)`` boxes xyxy in input pixels + class
probabilities, and a ``detforge`` JSON metadata entry with ``class_names`` and ``imgsz``.
Static axes are honoured: a fixed batch size is filled by padding the last chunk, a fixed
``H x W`` makes the predictor letterbox every image to exactly that size.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from detforge.errors import DetforgeError

if TYPE_CHECKING:
    import torch


def _import_ort() -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise DetforgeError(
            "running an .onnx model needs onnxruntime; install it with: "
            "pip install 'detforge[onnx]'"
        ) from None
    return ort


def _providers(ort: Any, device: str | None) -> list[str]:
    have = ort.get_available_providers()
    if device not in (None, "", "auto", "cpu") and not str(device).startswith("cuda"):
        raise DetforgeError(f"unknown device {device!r} for onnxruntime; use cpu or cuda")
    want_cuda = device is not None and str(device).startswith("cuda")
    if want_cuda and "CUDAExecutionProvider" not in have:
        raise DetforgeError(
            "this onnxruntime has no CUDA provider; install onnxruntime-gpu or use --device cpu"
        )
    if want_cuda or (device in (None, "", "auto") and "CUDAExecutionProvider" in have):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def create_onnx_forward(
    path: str | os.PathLike[str], *, device: str | None = None
) -> tuple[Callable[[NDArray[np.uint8]], torch.Tensor], list[str], int, tuple[int, int] | None]:
    """Open ``path`` and return ``(forward, class_names, imgsz, fixed_hw)``.

    ``forward`` maps a ``(B, h, w, 3)`` uint8 RGB batch to the ``(B, A, 4 + C)`` output as a
    float32 torch tensor. ``imgsz`` is the export size's long side; ``fixed_hw`` the
    ``(H, W)`` the graph requires, or ``None`` for a dynamic one.
    """
    import torch

    ort = _import_ort()
    try:
        sess = ort.InferenceSession(os.fspath(path), providers=_providers(ort, device))
    except Exception as exc:  # onnxruntime raises its own exception types
        raise DetforgeError(f"onnxruntime cannot load the model ({exc})", path=path) from None
    meta_text = sess.get_modelmeta().custom_metadata_map.get("detforge")
    if not meta_text:
        raise DetforgeError(
            "not a detforge export (no 'detforge' metadata with class names); export it with "
            "'detforge export WEIGHTS --format onnx'",
            path=path,
        )
    meta = json.loads(meta_text)
    names = [str(n) for n in meta["class_names"]]
    inp = sess.get_inputs()[0]
    b, _, h, w = inp.shape
    fixed_b = b if isinstance(b, int) and b > 0 else None
    fixed = (h, w) if isinstance(h, int) and isinstance(w, int) else None
    hw = meta.get("imgsz") or [640, 640]
    trained = int(max(hw) if isinstance(hw, list) else hw)
    dtype = np.float16 if "float16" in inp.type else np.float32
    name = inp.name

    def forward(batch: NDArray[np.uint8]) -> torch.Tensor:
        x32 = np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)
        np.multiply(x32, np.float32(1.0 / 255.0), out=x32)
        x = x32 if dtype is np.float32 else x32.astype(dtype)
        if fixed_b is None:
            return torch.from_numpy(sess.run(None, {name: x})[0].astype(np.float32))
        outs = []
        for i in range(0, len(x), fixed_b):
            chunk = x[i : i + fixed_b]
            n = len(chunk)
            if n < fixed_b:
                chunk = np.concatenate([chunk, np.zeros((fixed_b - n, *chunk.shape[1:]), dtype)])
            outs.append(sess.run(None, {name: chunk})[0][:n])
        return torch.from_numpy(np.concatenate(outs).astype(np.float32))

    return forward, names, trained, fixed
