"""Model files made ready to predict with: the one place a weights file becomes a forward
function (``.onnx`` -> onnxruntime: a detforge export, or a Darknet network's export, which
runs with Darknet's semantics; Darknet ``.weights`` + ``.cfg`` -> PyTorch, a ``.cfg`` alone
is refused; anything else -> a detforge checkpoint). New model kinds plug in at
:func:`load_model_file`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from detforge.data.letterbox import InputRule
from detforge.errors import DetforgeError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class LoadedModel:
    """A model file made ready to run: ``forward`` as in :class:`Predictor`, its classes,
    the backend's name, its preprocessing ``rule`` and whether that input shape is ``fixed``."""

    forward: Callable[[NDArray[np.uint8]], torch.Tensor]
    class_names: tuple[str, ...]
    backend: str
    rule: InputRule
    fixed: bool = False
    darknet: Any = None
    """A Darknet network (:class:`~detforge.predict.darknet.DarknetModel`: its rows function
    and inference settings): :func:`~detforge.predict.api.load` wraps it in a
    ``DarknetPredictor``, which keeps Darknet's own resize, decoding and NMS."""


def _torch_forward(
    model: Any, device: torch.device, *, half: bool = False
) -> Callable[[NDArray[np.uint8]], torch.Tensor]:
    import torch

    dtype = torch.float16 if half else torch.float32

    def forward(batch: NDArray[np.uint8]) -> torch.Tensor:
        # NHWC uint8 -> NCHW float view: channels-last memory, which the fused model prefers.
        x = torch.from_numpy(batch).to(device).permute(0, 3, 1, 2).to(dtype).div_(255.0)
        with torch.inference_mode():
            out: torch.Tensor = model(x)
        return out

    return forward


def load_model_file(
    path: Path,
    *,
    device: str | None = None,
    fuse: bool = True,
    half: bool = False,
    cfg: str | os.PathLike[str] | None = None,
    names: str | os.PathLike[str] | Sequence[str] | None = None,
) -> LoadedModel:
    """The one place a model file becomes something to predict with: ``.onnx`` runs with
    onnxruntime (its rule read from the export's metadata), a Darknet ``.weights`` /
    ``.conv.N`` becomes a Darknet network (``cfg``: its ``.cfg``, default the same-stem file
    beside it; ``names``: a ``.names`` file or list; a ``.cfg`` given as the model is an
    error, not random weights), anything else is read as
    a detforge checkpoint (its rule: the square of the size it was trained at)."""
    from detforge.models.darknet.model import is_darknet_file
    from detforge.utils.device import resolve_device

    dev = resolve_device(device)
    if path.suffix.lower() == ".onnx":  # an fp16 export carries its own precision
        if cfg is not None:
            raise DetforgeError("an ONNX model holds its network: leave out --cfg", path=path)
        return _load_onnx(path, dev, names=names)
    if is_darknet_file(path):
        if half:
            raise DetforgeError("half precision is not supported for Darknet networks")
        return _load_darknet(path, dev, cfg=cfg, names=names, fuse=fuse)
    if cfg is not None or names is not None:
        raise DetforgeError("cfg and names are for Darknet .weights files", path=path)
    from detforge.models.checkpoint import load_model

    if half and dev.type != "cuda":
        raise DetforgeError("half precision needs a CUDA device (--device cuda)")
    model, names, meta = load_model(path, str(dev))
    darknet = getattr(model, "net", None)
    if getattr(model, "build_args", {}).get("arch") == "darknet" and darknet is not None:
        if half:  # a fine-tuned Darknet network: run it as Darknet does, like its export
            raise DetforgeError("half precision is not supported for Darknet networks")
        return _torch_darknet(darknet.eval(), names, fuse=fuse)
    if fuse:
        model.fuse()
    model.eval()
    if half:
        model.half()
    cfg = meta.get("config")
    trained = cfg.get("imgsz") if isinstance(cfg, dict) else None
    rule = InputRule.square(int(trained or 640))
    return LoadedModel(_torch_forward(model, dev, half=half), tuple(names), "torch", rule)


def _load_onnx(
    path: Path,
    device: torch.device,
    *,
    names: str | os.PathLike[str] | Sequence[str] | None = None,
) -> LoadedModel:
    """:class:`detforge.predict.onnx_model.OnnxDetector` behind the :class:`Predictor` call (the
    graph contract is :mod:`detforge.predict.export`'s); a fixed batch or shape is respected.
    A Darknet network's export (:mod:`detforge.predict.darknet_onnx`) becomes a Darknet model
    (``names`` may rename its classes)."""
    import torch

    from detforge.predict.onnx_model import OnnxDetector, open_onnx
    from detforge.utils.device import device_string

    opened = open_onnx(path, device=device_string(device) if device.type == "cuda" else None)
    if opened.meta.get("arch") == "darknet":
        from detforge.predict.darknet import resolve_names
        from detforge.predict.darknet_onnx import onnx_darknet_model

        model = onnx_darknet_model(opened)
        count = model.settings.num_classes
        class_names = resolve_names(names if names is not None else opened.meta["class_names"],
                                    count)  # fmt: skip
        return _darknet_loaded(model, class_names)
    if names is not None:
        raise DetforgeError("--names is for Darknet models", path=path)
    det = OnnxDetector(path, opened=opened)

    def forward(batch: NDArray[np.uint8]) -> torch.Tensor:
        x = np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)
        np.multiply(x, np.float32(1.0 / 255.0), out=x)
        return torch.from_numpy(det(x))

    names = tuple(det.class_names)
    return LoadedModel(forward, names, "onnxruntime", det.rule, det.fixed_shape is not None)


def _load_darknet(
    path: Path,
    device: torch.device,
    *,
    cfg: str | os.PathLike[str] | None,
    names: str | os.PathLike[str] | Sequence[str] | None,
    fuse: bool = True,
) -> LoadedModel:
    """A Darknet network (``fuse``: BatchNorm folded into the convolutions)."""
    from detforge.predict.darknet import load_darknet_network

    net, class_names = load_darknet_network(path, cfg=cfg, names=names, device=device)
    return _torch_darknet(net, class_names, fuse=fuse)


def _torch_darknet(net: Any, class_names: Sequence[str], *, fuse: bool = True) -> LoadedModel:
    """The :class:`LoadedModel` of a PyTorch Darknet network (a ``.weights`` file's, or the
    one a fine-tuned checkpoint holds)."""
    from detforge.models.darknet.cpu_pack import pack_for_cpu, packed_for_one_thread
    from detforge.predict.darknet import DarknetModel

    one_thread = None
    if fuse:
        net = net.fused()
        if next(net.parameters()).device.type == "cpu" and pack_for_cpu(net):
            # oneDNN-packed weights, fused activations: ~25% faster; the one-thread CPU
            # streams get a copy packed on one thread (made when first used)
            one_thread = cache(partial(packed_for_one_thread, net))
    return _darknet_loaded(DarknetModel.of_network(net, one_thread=one_thread), class_names)


def _darknet_loaded(model: Any, class_names: Sequence[str]) -> LoadedModel:
    """The :class:`LoadedModel` of a :class:`~detforge.predict.darknet.DarknetModel` (PyTorch
    or onnxruntime); ``forward`` maps a batch already at the cfg's size to ``(B, A, 4 + C)``:
    xyxy input pixels and objectness x class probability."""
    import torch

    device = model.device

    def forward(batch: NDArray[np.uint8]) -> torch.Tensor:
        x = torch.from_numpy(batch).to(device).permute(0, 3, 1, 2).float().div_(255.0)
        rows = model.rows(x)
        h, w = x.shape[-2:]
        scale = rows.new_tensor([w, h])
        cxcy, wh = rows[..., 0:2] * scale, rows[..., 2:4] * scale
        return torch.cat([cxcy - wh / 2, cxcy + wh / 2, rows[..., 5:] * rows[..., 4:5]], -1)

    w, h = model.settings.input_size
    rule = InputRule(h, w)
    return LoadedModel(forward, tuple(class_names), model.backend, rule, True, darknet=model)


def peek_class_names(path: Path, *, names: str | None = None) -> tuple[str, ...] | None:
    """The class names a model file declares, read without building the model (so that
    ``--classes`` mistakes are reported before a slow load): a checkpoint's ``class_names``,
    an ONNX export's metadata, a Darknet model's ``names`` file. ``None`` when unknown (a
    Darknet network named by the dataset, an unreadable file: the load reports it)."""
    import json

    suffix = path.suffix.lower()
    try:
        if names is not None or suffix in (".weights", ".cfg"):
            if names is None:
                return None
            from detforge.formats.darknet import read_names

            return tuple(read_names(names))
        if suffix == ".onnx":
            import onnx

            model = onnx.load(str(path), load_external_data=False)
            meta = {p.key: p.value for p in model.metadata_props}.get("detforge")
            return None if meta is None else tuple(json.loads(meta)["class_names"])
        from detforge.models.checkpoint import load_checkpoint

        return tuple(str(n) for n in load_checkpoint(path).get("class_names", ()))
    except (DetforgeError, OSError, ValueError, KeyError, ImportError):
        return None
