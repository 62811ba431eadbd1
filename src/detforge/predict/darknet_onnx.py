"""Darknet networks as ONNX: export with Darknet's decoding in the graph, and run the export.

The graph of :func:`export_darknet_onnx` is the network with BatchNorm folded
(:meth:`~detforge.models.darknet.network.DarknetNetwork.fused`) followed by every
``[yolo]``/``[region]`` head's decoding (:func:`~detforge.models.darknet.decode.decode_all`):

* ``images``: ``(B, 3, net_h, net_w)`` float32 RGB in [0, 1] at the cfg's size (the image
  stretched to it, or letterboxed when the cfg says ``letter_box=1``); ``B`` is fixed to
  ``batch`` unless ``dynamic`` (then only the batch axis is dynamic: the decoding is traced at
  the cfg's size, the size Darknet always runs at);
* ``output``: ``(B, N, 5 + C)``, the rows of
  :func:`~detforge.models.darknet.model.forward_rows`: ``cx, cy, w, h`` relative to the input,
  objectness, class probabilities (not multiplied by objectness); no threshold, no NMS.

The ``detforge`` metadata entry (the same JSON object as :mod:`detforge.predict.export`'s)
holds ``arch: "darknet"``, ``class_names``, ``imgsz`` ``[h, w]``, ``dynamic``, ``half``,
``layout`` and ``darknet``: :meth:`DarknetSettings.to_meta
<detforge.predict.darknet.DarknetSettings.to_meta>` (input size, ``letter_box``, NMS kind,
``beta_nms``, classes, every head's spec) plus the cfg text. :func:`onnx_darknet_model` reads it
back, so ``detforge.load("model.onnx")`` runs with Darknet's resize, thresholds and NMS.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detforge.errors import DetforgeError

if TYPE_CHECKING:
    import torch

    from detforge.models.darknet.network import DarknetNetwork
    from detforge.predict.darknet import DarknetModel, RowsAbove
    from detforge.predict.onnx_model import OpenedOnnx

LAYOUT = (
    "(B, N, 5 + C): cx, cy, w, h relative to the input, objectness, class probabilities; "
    "no NMS (Darknet rows)"
)


def _rows_module(net: DarknetNetwork) -> torch.nn.Module:
    """``net`` followed by its decoding, as one module to trace (at the cfg's size)."""
    from torch import nn

    from detforge.models.darknet.decode import decode_all

    class Rows(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            w, h = net.input_size
            return decode_all(self.net(x), net.heads, w, h)

    return Rows().eval()


def darknet_meta(net: DarknetNetwork, names: list[str], *, dynamic: bool) -> dict[str, Any]:
    """The ``detforge`` metadata object of a Darknet export (see the module docstring)."""
    from detforge.predict.darknet import DarknetSettings

    w, h = net.input_size
    darknet = DarknetSettings.of_network(net).to_meta()
    darknet["cfg"] = net.cfg.text
    return {
        "arch": "darknet",
        "class_names": list(names),
        "imgsz": [h, w],
        "dynamic": dynamic,
        "half": False,
        "layout": LAYOUT,
        "darknet": darknet,
    }


def export_darknet_onnx(
    net: DarknetNetwork,
    names: list[str],
    out: str | os.PathLike[str],
    *,
    dynamic: bool = False,
    opset: int = 17,
    batch: int = 1,
    verify: bool = True,
    device: str | None = "cpu",
) -> Path:
    """Write ``net`` (not modified: a fused copy is traced) with its decoding to the ONNX file
    ``out`` (written to a temporary name, then renamed) and return its path. ``verify``: run
    it with onnxruntime on a random batch and compare with PyTorch (boxes within 1e-3 of the
    input size, probabilities within 1e-3), a ``RuntimeError`` on a mismatch."""
    import torch

    from detforge.predict.export import trace_onnx, write_metadata
    from detforge.utils.device import resolve_device
    from detforge.utils.io import atomic_path

    if batch < 1:
        raise DetforgeError(f"--batch must be at least 1, got {batch}")
    if len(names) != net.num_classes:
        raise DetforgeError(
            f"{len(names)} class names for a network with classes={net.num_classes}"
        )
    dev = resolve_device(device)
    out_path = Path(out)
    if out_path.suffix.lower() != ".onnx":
        raise DetforgeError("the output file should end in .onnx", path=out_path)
    model = _rows_module(net.fused().to(dev))
    for p in model.parameters():
        p.requires_grad_(False)
    w, h = net.input_size
    x = torch.rand(batch, 3, h, w, generator=torch.Generator().manual_seed(0)).to(dev)
    axes = {"images": {0: "batch"}, "output": {0: "batch"}} if dynamic else None
    with atomic_path(out_path) as tmp:  # renamed into place once verified
        trace_onnx(model, x, tmp, opset=opset, dynamic_axes=axes)
        write_metadata(tmp, darknet_meta(net, names, dynamic=dynamic))
        if verify:
            _verify(tmp, model, x, dynamic=dynamic)
    return out_path


def _verify(path: Path, model: torch.nn.Module, x: torch.Tensor, *, dynamic: bool) -> None:
    """onnxruntime's rows on ``x`` (and on one more image when ``dynamic``) against PyTorch's."""
    import numpy as np
    import torch

    from detforge.predict.export import check_close
    from detforge.predict.onnx_model import open_onnx, run_batches

    session = open_onnx(path).session
    inputs = [x]
    if dynamic:
        inputs.append(torch.rand(x.shape[0] + 1, *x.shape[1:]).to(x.device))
    for inp in inputs:
        got = run_batches(session, inp.cpu().numpy(), None).astype(np.float32)
        with torch.no_grad():
            ref = model(inp).float().cpu().numpy()
        if got.shape != ref.shape:
            raise RuntimeError(f"ONNX output shape {got.shape} != PyTorch {ref.shape}")
        hw = np.array([inp.shape[3], inp.shape[2]] * 2, dtype=np.float32)
        # boxes in input pixels, as detforge exports are checked
        box_err = float(np.abs((got[..., :4] - ref[..., :4]) * hw).max(initial=0.0))
        p_err = float(np.abs(got[..., 4:] - ref[..., 4:]).max(initial=0.0))
        check_close(box_err, p_err, size=float(hw.max()), half=False)


def onnx_darknet_model(opened: OpenedOnnx) -> DarknetModel:
    """The :class:`~detforge.predict.darknet.DarknetModel` of an opened Darknet export: its
    rows function runs the onnxruntime session (in chunks of a fixed batch) and returns a CPU
    tensor; its settings come from the metadata (a corrupt entry is a DetforgeError)."""
    import numpy as np
    import torch

    from detforge.models.darknet.decode import rows_above
    from detforge.predict.darknet import DarknetModel, DarknetSettings
    from detforge.predict.onnx_model import fixed_batch_of, open_onnx, run_batches

    settings = DarknetSettings.from_meta(opened.meta.get("darknet"), path=opened.path)
    count = len(opened.meta["class_names"])
    if count != settings.num_classes:
        raise DetforgeError(
            f"the 'detforge' metadata of this ONNX file is corrupt ({count} class names for "
            f"classes={settings.num_classes})",
            path=opened.path,
        )
    fixed = fixed_batch_of(opened.session)
    w, h = settings.input_size

    def rows_of(session: Any) -> Callable[[torch.Tensor], torch.Tensor]:
        def rows(x: torch.Tensor) -> torch.Tensor:
            if tuple(x.shape[1:]) != (3, h, w):
                raise DetforgeError(f"this Darknet ONNX model takes (B, 3, {h}, {w}) inputs, "
                                    f"got {tuple(x.shape)}")  # fmt: skip
            arr = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
            return torch.from_numpy(run_batches(session, arr, fixed))

        return rows

    @functools.cache
    def one_thread_above() -> RowsAbove:
        """A second session of one thread (onnxruntime runs concurrent calls of one session
        on its one thread pool), for the CPU streams of DarknetPredictor; opened once."""
        rows = rows_of(open_onnx(opened.path, threads=1).session)
        return lambda x, thresh: rows_above(rows(x), thresh)

    on_cpu = opened.session.get_providers()[0] == "CPUExecutionProvider"
    return DarknetModel(rows_of(opened.session), settings, torch.device("cpu"),
                        backend="onnxruntime-darknet", cpu_batch=fixed or 1,
                        one_thread_above=one_thread_above if on_cpu else None)  # fmt: skip


def darknet_network_of(model: Any) -> DarknetNetwork | None:
    """The Darknet network a loaded checkpoint model holds (a fine-tuned Darknet network,
    ``build_args["arch"] == "darknet"``), else ``None``."""
    from detforge.models.darknet.network import DarknetNetwork

    net = getattr(model, "net", None)
    arch = getattr(model, "build_args", {}).get("arch")
    return net if arch == "darknet" and isinstance(net, DarknetNetwork) else None
