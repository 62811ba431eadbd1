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
from typing import Any, NamedTuple

import numpy as np

from detforge.data.letterbox import InputRule
from detforge.errors import DetforgeError


class OpenedOnnx(NamedTuple):
    """An ONNX file opened by :func:`open_onnx`: its onnxruntime ``session`` and the JSON
    object of its ``detforge`` metadata entry."""

    path: Path
    session: Any
    meta: dict[str, Any]


def session_options(threads: int | None = None) -> Any:
    """The onnxruntime options of every detforge session: ``threads`` intra-op threads
    (default: as many as torch uses, ``torch.get_num_threads()``, which
    ``--workers``/``OMP_NUM_THREADS`` set) and no spinning, so idle threads do not take the
    cores image decoding needs."""
    import onnxruntime as ort
    import torch

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads or torch.get_num_threads())
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def open_onnx(
    path: str | os.PathLike[str], *, device: str | None = None, threads: int | None = None
) -> OpenedOnnx:
    """Open a detforge ONNX export with onnxruntime (CPU, or its CUDA provider for a CUDA
    ``device``; ``threads``: see :func:`session_options`) and read its ``detforge``
    metadata: the one place a session is created.
    A missing runtime or file, an unreadable model or missing/corrupt metadata is a
    :class:`DetforgeError` naming the file."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise DetforgeError("onnxruntime is not installed: pip install 'detforge[onnx]'") from None
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
        session = ort.InferenceSession(
            str(p), sess_options=session_options(threads), providers=providers
        )
    except Exception as exc:
        raise DetforgeError(
            f"cannot load ONNX model ({str(exc).splitlines()[0][:200]})", path=p
        ) from None
    meta_raw = session.get_modelmeta().custom_metadata_map.get("detforge")
    if meta_raw is None:
        raise DetforgeError(
            "not a detforge ONNX export (no 'detforge' metadata); export it with 'detforge export'",
            path=p,
        )
    try:
        meta = json.loads(meta_raw)
    except ValueError:
        meta = None
    names = meta.get("class_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise DetforgeError(
            "the 'detforge' metadata of this ONNX file is corrupt (not a JSON object with "
            "class_names); export the model again",
            path=p,
        )
    arch = meta.get("arch")
    if arch is not None and arch != "darknet":
        raise DetforgeError(
            f"the 'detforge' metadata of this ONNX file names a model kind this detforge does "
            f"not know ({str(arch)[:40]!r}); update detforge or export the model again",
            path=p,
        )
    return OpenedOnnx(p, session, meta)


def run_batches(session: Any, images: Any, fixed_batch: int | None) -> Any:
    """``session`` run on the numpy batch ``images`` (input ``images``, first output), in
    chunks of a fixed-batch model's ``fixed_batch`` (the last one padded with zeros)."""
    step = fixed_batch or images.shape[0]
    outs = []
    for i in range(0, images.shape[0], step):
        chunk = images[i : i + step]
        n = chunk.shape[0]
        if n < step:  # pad the last chunk of a fixed-batch model
            chunk = np.concatenate([chunk, np.zeros((step - n, *chunk.shape[1:]), chunk.dtype)])
        outs.append(session.run(None, {"images": chunk})[0][:n])
    return np.concatenate(outs)


def fixed_batch_of(session: Any) -> int | None:
    """The batch size a non-dynamic export was written for, else ``None``."""
    batch_dim = session.get_inputs()[0].shape[0]
    return batch_dim if isinstance(batch_dim, int) else None


class OnnxDetector:
    """An onnxruntime session over a file written by :func:`detforge.predict.export.export_onnx`.

    Attributes: ``class_names``, ``num_classes``, ``strides``, ``imgsz`` ``(H, W)`` it was
    exported at, ``rule`` (the preprocessing rule recorded in the file, an
    :class:`~detforge.data.letterbox.InputRule`), ``fixed_shape`` (that size for a
    non-dynamic export, else ``None``), ``fixed_batch`` (the batch size of a non-dynamic
    export), ``half`` (float16 input).
    """

    training = False

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        device: str | None = None,
        opened: OpenedOnnx | None = None,
    ) -> None:
        """``opened``: the file already opened by :func:`open_onnx` (not opened again)."""
        if opened is None:
            opened = open_onnx(path, device=device)
        p, meta = opened.path, opened.meta
        if meta.get("arch") == "darknet":
            raise DetforgeError(
                "a Darknet network export: load it with detforge.load() or 'detforge predict', "
                "which keep Darknet's resize and NMS",
                path=p,
            )
        self.session = opened.session
        self.path = str(p)
        self.meta = meta
        self.class_names: list[str] = [str(n) for n in meta["class_names"]]
        self.num_classes = len(self.class_names)
        try:
            self.strides: tuple[int, ...] = tuple(int(s) for s in meta.get("strides", (8, 16, 32)))
            h, w = meta["imgsz"]
            self.imgsz: tuple[int, int] = (int(h), int(w))
        except (KeyError, TypeError, ValueError):
            raise DetforgeError(
                "the 'detforge' metadata of this ONNX file is corrupt (strides/imgsz); export "
                "the model again",
                path=p,
            ) from None
        # Exports before the rule was recorded used the same letterbox at their size.
        self.rule: InputRule = InputRule.from_meta(
            meta.get("preprocess") or {"resize": "letterbox", "shape": [h, w]}, path=str(p)
        )
        self.half = bool(meta.get("half", False))
        self.dynamic = bool(meta.get("dynamic", False))
        self.fixed_shape: tuple[int, int] | None = None if self.dynamic else self.imgsz
        self.fixed_batch: int | None = fixed_batch_of(self.session)

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
        out = run_batches(self.session, arr, self.fixed_batch).astype(np.float32, copy=False)
        if not is_torch:
            return out
        import torch

        return torch.from_numpy(out).to(images.device)
