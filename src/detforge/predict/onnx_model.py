"""Run an exported detforge ONNX model with onnxruntime, with the same call and output as the
PyTorch :class:`~detforge.models.yolo.Detector` in eval mode, so prediction code can use either:

>>> det = OnnxDetector("best.onnx")                  # CPU; device="cuda" for the CUDA provider
>>> out = det(images)                                # (B, 3, H, W) float in [0, 1] -> (B, A, 4 + C)
>>> dets = postprocess(out, conf=0.25)               # detforge.models.postprocess
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from detforge.data.letterbox import InputRule
from detforge.errors import DetforgeError


class OnnxDetector:
    """An onnxruntime session over a file written by :func:`detforge.predict.export.export_onnx`.

    Attributes: ``class_names``, ``num_classes``, ``strides``, ``imgsz`` ``(H, W)`` it was
    exported at, ``rule`` (the preprocessing rule recorded in the file, an
    :class:`~detforge.data.letterbox.InputRule`), ``fixed_shape`` (that size for a
    non-dynamic export, else ``None``), ``fixed_batch`` (the batch size of a non-dynamic
    export), ``half`` (float16 input).
    """

    training = False

    def __init__(self, path: str | os.PathLike[str], *, device: str | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise DetforgeError(
                "onnxruntime is not installed: pip install 'detforge[onnx]'"
            ) from None
        p = Path(path)
        if not p.is_file():
            raise DetforgeError("ONNX model not found", path=p)
        providers = ["CPUExecutionProvider"]
        if device is not None and device.strip().lower() not in ("cpu", ""):
            from detforge.utils.device import resolve_device

            dev = resolve_device(device)  # the one resolver: a missing GPU is one clear line
            if dev.type == "cuda":
                if "CUDAExecutionProvider" not in ort.get_available_providers():
                    raise DetforgeError(
                        "onnxruntime has no CUDA provider here; install onnxruntime-gpu or use "
                        "--device cpu"
                    )
                cuda = ("CUDAExecutionProvider", {"device_id": dev.index or 0})
                providers = [cuda, "CPUExecutionProvider"]  # type: ignore[list-item]
        try:
            self.session = ort.InferenceSession(str(p), providers=providers)
        except Exception as exc:
            raise DetforgeError(
                f"cannot load ONNX model ({str(exc).splitlines()[0][:200]})", path=p
            ) from None
        meta_raw = self.session.get_modelmeta().custom_metadata_map.get("detforge")
        if meta_raw is None:
            raise DetforgeError(
                "not a detforge ONNX export (no 'detforge' metadata); export it with "
                "'detforge export'",
                path=p,
            )
        meta: dict[str, Any] = json.loads(meta_raw)
        self.path = str(p)
        self.meta = meta
        self.class_names: list[str] = [str(n) for n in meta["class_names"]]
        self.num_classes = len(self.class_names)
        self.strides: tuple[int, ...] = tuple(int(s) for s in meta.get("strides", (8, 16, 32)))
        h, w = meta["imgsz"]
        self.imgsz: tuple[int, int] = (int(h), int(w))
        # Exports before the rule was recorded used the same letterbox at their size.
        self.rule: InputRule = InputRule.from_meta(
            meta.get("preprocess") or {"resize": "letterbox", "shape": [h, w]}, path=str(p)
        )
        self.half = bool(meta.get("half", False))
        self.dynamic = bool(meta.get("dynamic", False))
        self.fixed_shape: tuple[int, int] | None = None if self.dynamic else self.imgsz
        batch_dim = self.session.get_inputs()[0].shape[0]
        self.fixed_batch: int | None = batch_dim if isinstance(batch_dim, int) else None

    def __repr__(self) -> str:
        return f"OnnxDetector({self.path!r}, classes={self.num_classes}, imgsz={self.imgsz})"

    def eval(self) -> OnnxDetector:
        return self

    def __call__(self, images: Any) -> Any:
        """``(B, 3, H, W)`` float RGB in [0, 1] (a torch tensor or a numpy array) ->
        ``(B, A, 4 + C)`` float32 of the same kind: xyxy input pixels + class probabilities.

        A non-dynamic export only takes its own ``(H, W)``; batches of another size than its
        fixed batch are run in chunks of it.
        """
        is_torch = not isinstance(images, np.ndarray)
        arr = images.detach().cpu().numpy() if is_torch else images
        if arr.ndim != 4 or arr.shape[1] != 3:
            raise DetforgeError(f"the detector takes (B, 3, H, W) images, got {arr.shape}")
        hw = (int(arr.shape[2]), int(arr.shape[3]))
        if self.fixed_shape is not None and hw != self.fixed_shape:
            raise DetforgeError(
                f"this ONNX model was exported for {self.fixed_shape[0]}x{self.fixed_shape[1]} "
                f"inputs, got {hw[0]}x{hw[1]}; letterbox to that size or re-export with --dynamic"
            )
        if hw[0] % 32 or hw[1] % 32:
            raise DetforgeError(f"image size {hw[0]}x{hw[1]} is not a multiple of 32")
        arr = np.ascontiguousarray(arr, dtype=np.float16 if self.half else np.float32)
        step = self.fixed_batch or arr.shape[0]
        outs = []
        for i in range(0, arr.shape[0], step):
            chunk = arr[i : i + step]
            n = chunk.shape[0]
            if n < step:  # pad the last chunk of a fixed-batch model
                chunk = np.concatenate([chunk, np.zeros((step - n, *chunk.shape[1:]), chunk.dtype)])
            outs.append(self.session.run(None, {"images": chunk})[0][:n])
        out = np.concatenate(outs).astype(np.float32, copy=False)
        if not is_torch:
            return out
        import torch

        return torch.from_numpy(out).to(images.device)
