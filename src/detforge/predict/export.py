"""Export a detector to ONNX: NMS-free, verified against PyTorch with onnxruntime.

The exported graph has one input and one output:

* ``images``: ``(B, 3, H, W)`` float32 (float16 with ``half=True``) RGB in [0, 1], ``H`` and
  ``W`` multiples of 32 (fixed to ``imgsz`` unless ``dynamic=True``);
* ``output``: ``(B, A, 4 + C)``, ``A = (H/8)(W/8) + (H/16)(W/16) + (H/32)(W/32)`` anchors,
  stride 8 first, row-major within a level: ``[..., 0:4]`` boxes ``x1, y1, x2, y2`` in input
  pixels, ``[..., 4:]`` per-class probabilities (sigmoid). Apply score threshold and NMS
  yourself (or use ``detforge.predict.onnx_model.OnnxDetector`` + ``postprocess``).

The model's metadata (``metadata_props``) holds ``detforge`` = a JSON object with
``class_names``, ``imgsz``, ``dynamic``, ``half``, ``strides``, ``layout``, ``model_args`` and
``preprocess``: the input rule (:meth:`detforge.data.letterbox.InputRule.to_meta`: each image
letterboxed on its own into ``imgsz``, centred, grey 114 padding), which
:class:`~detforge.predict.onnx_model.OnnxDetector` reads back, so an export and its checkpoint
give the same detections.

A Darknet network (a ``.weights`` with its ``cfg``, or a checkpoint of a fine-tuned one) is
exported with Darknet's decoding and output rows instead: see
:mod:`detforge.predict.darknet_onnx` (same ``detforge`` metadata key, with ``arch: "darknet"``).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detforge.errors import DetforgeError

if TYPE_CHECKING:
    from detforge.models.yolo import Detector

LAYOUT = "(B, A, 4 + C): xyxy input pixels, then class probabilities; no NMS"
DEFAULT_OPSET = 17


def _resolve(
    weights_or_model: str | os.PathLike[str] | Detector, class_names: list[str] | None
) -> tuple[Detector, list[str], int]:
    """The model, its class names and the size it was trained at (640 when unknown)."""
    from detforge.models.checkpoint import load_model
    from detforge.models.yolo import Detector

    if isinstance(weights_or_model, Detector):
        names = class_names or [str(i) for i in range(weights_or_model.num_classes)]
        return weights_or_model, list(names), 640
    model, names, meta = load_model(weights_or_model, "cpu")
    cfg = meta.get("config")
    trained = cfg.get("imgsz") if isinstance(cfg, dict) else None
    return model, class_names or names, int(trained or 640)


def _check_imgsz(imgsz: int | tuple[int, int]) -> tuple[int, int]:
    from detforge.data.letterbox import check_input_size

    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    check_input_size(h, w, name="--imgsz")
    return int(h), int(w)


def export_onnx(
    weights_or_model: str | os.PathLike[str] | Detector,
    out: str | os.PathLike[str] | None = None,
    *,
    imgsz: int | tuple[int, int] | None = None,
    dynamic: bool = False,
    half: bool = False,
    opset: int = DEFAULT_OPSET,
    batch: int = 1,
    class_names: list[str] | None = None,
    verify: bool = True,
    device: str | None = "cpu",
    cfg: str | os.PathLike[str] | None = None,
    names: str | os.PathLike[str] | None = None,
) -> Path:
    """Export to ONNX and return the written path.

    Args:
        weights_or_model: a detforge checkpoint path or a :class:`Detector` (not modified:
            a fused copy is exported). A Darknet ``.weights``/``.conv.N``/``.cfg`` (``cfg``:
            its network, default the same-stem file; ``names``: a ``.names`` file) or a
            checkpoint of a fine-tuned Darknet network is exported with Darknet's decoding
            (:mod:`detforge.predict.darknet_onnx`; its cfg's size, no ``half``).
        out: output file (default: the checkpoint's path with ``.onnx``).
        imgsz: input size, ``S`` or ``(H, W)``; the traced size, the fixed size unless
            ``dynamic``, and the input rule recorded for the runner (default: the size the
            checkpoint was trained at, as ``detforge.load`` uses for it; 640 for a bare model).
        dynamic: batch, height and width become dynamic axes.
        half: float16 weights and input (for GPU runtimes; onnxruntime's CPU provider lacks
            some float16 kernels, so verification then runs only where it can).
        opset: ONNX opset version.
        batch: the fixed batch size when not ``dynamic``.
        verify: run the exported file with onnxruntime on a random batch and compare with
            PyTorch (boxes within 1e-3 relative to the image size, probabilities within 1e-3).
        device: where the model is traced and verified (:mod:`detforge.utils.device`
            spellings; ``cuda`` verifies a ``half`` export with onnxruntime's CUDA provider when
            it has one, where its CPU provider lacks float16 kernels).
    """
    import copy

    import torch

    from detforge.utils.device import resolve_device
    from detforge.utils.io import atomic_path

    dev = resolve_device(device)
    if imgsz is not None:
        _check_imgsz(imgsz)
    if batch < 1:
        raise DetforgeError(f"--batch must be at least 1, got {batch}")
    darknet = _darknet_file(weights_or_model, cfg, names)
    if darknet is None:
        model, model_names, trained = _resolve(weights_or_model, class_names)
        darknet = _darknet_checkpoint(model, model_names, weights_or_model, cfg, names)
    if darknet is not None:
        return _export_darknet(darknet, _output_path(weights_or_model, out), imgsz=imgsz,
                               half=half, dynamic=dynamic, opset=opset, batch=batch,
                               class_names=class_names, verify=verify, device=device)  # fmt: skip
    h, w = _check_imgsz(imgsz if imgsz is not None else trained)
    out_path = _output_path(weights_or_model, out)

    net = copy.deepcopy(model).to(dev).eval().fuse(channels_last=False)
    for p in net.parameters():
        p.requires_grad_(False)
    if half:
        net = net.half()
    dtype = torch.float16 if half else torch.float32
    x = torch.rand(batch, 3, h, w, generator=torch.Generator().manual_seed(0)).to(dev, dtype)
    with atomic_path(out_path) as tmp:  # renamed into place once verified
        _trace(net, x, tmp, opset=opset, dynamic=dynamic)
        _add_metadata(tmp, model_names, (h, w), dynamic, half, net)
        if verify:
            verify_onnx(tmp, net, x, dynamic=dynamic)
    return out_path


def _darknet_file(
    weights_or_model: str | os.PathLike[str] | Detector,
    cfg: str | os.PathLike[str] | None,
    names: str | os.PathLike[str] | None,
) -> tuple[Any, list[str]] | None:
    """``(network, class names)`` of a Darknet ``.weights``/``.conv.N``/``.cfg``, else None."""
    from detforge.models.darknet.model import is_darknet_file

    if not isinstance(weights_or_model, str | os.PathLike) or not is_darknet_file(weights_or_model):
        return None
    from detforge.predict.darknet import load_darknet_network

    return load_darknet_network(Path(weights_or_model), cfg=cfg, names=names)


def _darknet_checkpoint(
    model: Any,
    model_names: list[str],
    where: Any,
    cfg: str | os.PathLike[str] | None,
    names: str | os.PathLike[str] | None,
) -> tuple[Any, list[str]] | None:
    """``(network, class names)`` of a checkpoint of a fine-tuned Darknet network, else None
    (then ``cfg``/``names`` are errors)."""
    from detforge.predict.darknet import resolve_names
    from detforge.predict.darknet_onnx import darknet_network_of

    net = darknet_network_of(model)
    path = where if isinstance(where, str | os.PathLike) else None
    if net is None:
        if cfg is not None or names is not None:
            raise DetforgeError("--cfg and --names are for Darknet networks", path=path)
        return None
    if cfg is not None:
        raise DetforgeError("this checkpoint holds its network's cfg: leave out --cfg", path=path)
    return net.eval(), resolve_names(names, net.num_classes, dataset_names=model_names)


def _export_darknet(
    darknet: tuple[Any, list[str]],
    out: Path,
    *,
    imgsz: int | tuple[int, int] | None,
    half: bool,
    class_names: list[str] | None,
    **kwargs: Any,
) -> Path:
    """A Darknet network through :func:`detforge.predict.darknet_onnx.export_darknet_onnx`
    (at its cfg's size, float32)."""
    from detforge.predict.darknet_onnx import export_darknet_onnx

    net, names = darknet
    w, h = net.input_size
    if imgsz is not None and (imgsz if isinstance(imgsz, tuple) else (imgsz, imgsz)) != (h, w):
        raise DetforgeError(
            f"a Darknet network runs at its cfg's size ({w}x{h}); to change it, set width= and "
            "height= in the cfg instead of --imgsz"
        )
    if half:
        raise DetforgeError("half precision is not supported for Darknet networks")
    return export_darknet_onnx(net, class_names or names, out, **kwargs)


def _output_path(
    weights_or_model: str | os.PathLike[str] | Detector, out: str | os.PathLike[str] | None
) -> Path:
    """The ONNX file to write: ``out``, or the checkpoint's path with ``.onnx``; it must end
    in ``.onnx`` (a :class:`DetforgeError` otherwise, or when a bare model comes without one)."""
    if out is None:
        if isinstance(weights_or_model, str | os.PathLike):
            out = Path(weights_or_model).with_suffix(".onnx")
        else:
            raise DetforgeError("give an output path for the ONNX file")
    out_path = Path(out)
    if out_path.suffix.lower() != ".onnx":
        raise DetforgeError("the output file should end in .onnx", path=out_path)
    return out_path


def _trace(net: Detector, x: Any, path: Path, *, opset: int, dynamic: bool) -> None:
    """Trace ``net`` on the ``(B, 3, H, W)`` batch ``x`` into ``path``: input ``images``,
    output ``output``; with ``dynamic``, batch, height and width (and the output's anchor
    axis) are dynamic."""
    dynamic_axes = (
        {"images": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch", 1: "anchors"}}
        if dynamic
        else None
    )
    trace_onnx(net, x, path, opset=opset, dynamic_axes=dynamic_axes)


def trace_onnx(
    net: Any, x: Any, path: Path, *, opset: int, dynamic_axes: dict[str, dict[int, str]] | None
) -> None:
    """Trace the module ``net`` on ``x`` into ``path`` with the TorchScript exporter: input
    ``images``, output ``output``, the given dynamic axes. The exporter's warnings are
    silenced."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (x,),
            str(path),
            input_names=["images"],
            output_names=["output"],
            opset_version=opset,
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
            dynamo=False,
        )


def _add_metadata(
    path: Path, names: list[str], hw: tuple[int, int], dynamic: bool, half: bool, net: Detector
) -> None:
    from detforge.data.letterbox import InputRule

    meta: dict[str, Any] = {
        "class_names": names,
        "imgsz": list(hw),
        "dynamic": dynamic,
        "half": half,
        "strides": list(net.strides),
        "layout": LAYOUT,
        "model_args": net.build_args,
        "preprocess": InputRule(*hw).to_meta(),
    }
    write_metadata(path, meta)


def write_metadata(path: Path, meta: dict[str, Any]) -> None:
    """Check the ONNX file ``path`` and store ``meta`` as its ``detforge`` JSON entry (the
    one metadata key of every detforge export)."""
    import onnx

    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    entry = proto.metadata_props.add()
    entry.key, entry.value = "detforge", json.dumps(meta)
    proto.producer_name = "detforge"
    onnx.save(proto, str(path))


def verify_onnx(path: str | os.PathLike[str], net: Detector, x: Any, *, dynamic: bool) -> None:
    """Compare onnxruntime's output on ``x`` (and, if ``dynamic``, on a second batch size and
    shape) with PyTorch's; ``RuntimeError`` on a mismatch."""
    import numpy as np
    import onnxruntime as ort
    import torch

    providers = ["CPUExecutionProvider"]
    if x.device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    sess = ort.InferenceSession(str(path), providers=providers)
    inputs = [x]
    if dynamic:
        b, _, h, w = x.shape
        inputs.append(torch.rand(b + 1, 3, h + 32, w + 64).to(x.device, x.dtype))
    for inp in inputs:
        try:
            got = sess.run(None, {"images": inp.cpu().numpy()})[0]
        except Exception as exc:  # e.g. float16 kernels missing on the CPU provider
            if x.dtype == torch.float16:
                warnings.warn(f"float16 model not verified on CPU ({exc})", stacklevel=3)
                return
            raise
        with torch.no_grad():
            ref = net(inp).float().cpu().numpy()
        got = got.astype(np.float32)
        if got.shape != ref.shape:
            raise RuntimeError(f"ONNX output shape {got.shape} != PyTorch {ref.shape}")
        size = float(max(inp.shape[2], inp.shape[3]))
        box_err = float(np.abs(got[..., :4] - ref[..., :4]).max())
        p_err = float(np.abs(got[..., 4:] - ref[..., 4:]).max())
        check_close(box_err, p_err, size=size, half=x.dtype == torch.float16)


def check_close(box_err: float, p_err: float, *, size: float, half: bool) -> None:
    """The verification rule of every export: boxes within 1e-3 of the input ``size`` (in
    pixels), probabilities within 1e-3 (2e-2 for float16); ``RuntimeError`` otherwise."""
    tol_box = (2e-2 if half else 1e-3) * size
    tol_p = 2e-2 if half else 1e-3
    if not (box_err <= tol_box and p_err <= tol_p):
        raise RuntimeError(
            f"ONNX export does not match PyTorch: box error {box_err:.3g} px, "
            f"probability error {p_err:.3g}"
        )
