"""The work around a Darknet network's forward pass, one photo, detforge vs OpenCV DNN, same run.

    python bench/darknet_predict_parts.py [--cfg-dir ../shared/darknet/cfg] [--yolov3-tiny DIR]
        [--threads 2] [--calls 200]

``bench/darknet_infer_speed.py`` times whole calls; this script times their parts on the same
512x600 photo at 416 (yolov3-tiny with the real COCO weights when ``--yolov3-tiny DIR`` holds
them, yolov4-tiny with random weights whose heads give tens of one-class boxes), median of
``--calls`` calls each (the parts take turns in rounds of 10 calls), in milliseconds:

* ``resize``: detforge's ``darknet_input`` (darknet's ``resize_image`` bit for bit: the C
  helper where it was built, one thread, as ``predict`` runs it), the same arithmetic in
  PyTorch (its fallback without a C compiler) and PyTorch's align-corners ``interpolate`` (the
  resize before commit a0765ab), both on one torch thread (what the onnxruntime backend ran
  beside onnxruntime); OpenCV's ``blobFromImage``;
* ``decode``: every row decoded then filtered by objectness (``decode_all`` + ``rows_above``)
  against only the rows above 0.25 decoded (``decode_above``, what ``predict`` runs), on the
  network's raw head outputs;
* ``NMS``: ``darknet_detections`` (thresholds, darknet's per-class NMS with the cfg's kind)
  on the rows above 0.25, against OpenCV's usual per-class threshold + ``NMSBoxes`` loop on
  its importer's rows;
* ``thread``: starting and joining an empty thread (what a one-photo call no longer does);
* ``onnxruntime Resize``: the resize as onnxruntime's own ``Resize`` op (linear,
  ``align_corners``) on its threads, and its largest difference from ``darknet_input``;
* ``onnxruntime forward after a resize``: the network exported to ONNX, run right after
  detforge's resize on one torch thread and on every torch thread (whose OpenMP threads then
  spin on the cores onnxruntime needs);
* ``OpenCV forward, Winograd on/off``: ``cv2.dnn`` with its default Winograd convolutions and
  with ``enableWinograd(False)``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from darknet_infer_speed import _few_boxes, _photo, bench_networks, opencv_nms


def _ms(parts: dict[str, Callable[[], object]], calls: int) -> dict[str, float]:
    """Median milliseconds per call of each part: after a warm-up, rounds of 10 calls in
    which the parts take turns, so a slow spell of a shared machine hits all alike."""
    for fn in parts.values():
        for _ in range(3):
            fn()
    times: dict[str, list[float]] = {k: [] for k in parts}
    for _ in range(max(1, calls // 10)):
        for key, fn in parts.items():
            for _ in range(10):
                start = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - start)
    return {k: 1000 * statistics.median(v) for k, v in times.items()}


def bench_parts(name: str, cfg: Path, weights: Path | None, args: argparse.Namespace,
                work: Path) -> dict[str, float]:  # fmt: skip
    import cv2
    import torch

    from detforge.models.darknet.decode import decode_above, decode_all, rows_above
    from detforge.models.darknet.model import load_darknet
    from detforge.models.darknet.nms import darknet_detections
    from detforge.models.darknet.preprocess import darknet_input, native_available, resize_into
    from detforge.models.darknet.weights import write_weights
    from detforge.utils.cpu import torch_threads

    text = cfg.read_text().replace("width=608", "width=416").replace("height=608", "height=416")
    cfg416 = work / f"{name}.cfg"
    cfg416.write_text(text)
    photo = _photo()
    x = darknet_input(photo, 416, 416)
    if weights is None:
        torch.manual_seed(0)
        net = load_darknet(cfg416)
        _few_boxes(net, x)
        weights = write_weights(net, work / f"{name}.weights")
    net = load_darknet(cfg416, weights).fused()
    h, w = photo.shape[:2]
    with torch.no_grad():
        raw = net(x)
    above = decode_above(raw, net.heads, 416, 416, 0.25)[0]
    cvnet = cv2.dnn.readNetFromDarknet(str(cfg416), str(weights))
    cvnet.setInput(cv2.dnn.blobFromImage(photo, 1 / 255.0, (416, 416), swapRB=False))
    cv_rows = np.concatenate(cvnet.forward(cvnet.getUnconnectedOutLayersNames()), 0)

    def one_thread(fn: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            with torch_threads(1):
                return fn()

        return run

    out = np.empty((3, 416, 416), np.float32)

    def interpolate() -> object:
        t = torch.from_numpy(photo.copy()).permute(2, 0, 1)[None].float().div_(255.0)
        return torch.nn.functional.interpolate(t, size=(416, 416), mode="bilinear",
                                               align_corners=True)  # fmt: skip

    def thread() -> None:
        t = threading.Thread(target=lambda: None)
        t.start()
        t.join()

    parts: dict[str, Callable[[], object]] = {
        f"resize, detforge ({'C helper' if native_available() else 'no C helper'})": lambda: (
            darknet_input(photo, 416, 416)
        ),
        "resize, detforge's PyTorch fallback (one torch thread)": one_thread(
            partial(resize_into, photo, out, native=False)
        ),
        "resize, PyTorch interpolate align_corners (one torch thread)": one_thread(interpolate),
        "resize, OpenCV blobFromImage": lambda: cv2.dnn.blobFromImage(
            photo, 1 / 255.0, (416, 416), swapRB=False
        ),
        "decode, every row then filtered": lambda: rows_above(
            decode_all(raw, net.heads, 416, 416), 0.25
        ),
        "decode, only rows above 0.25": lambda: decode_above(raw, net.heads, 416, 416, 0.25),
        "NMS, detforge darknet_detections": lambda: darknet_detections(
            above, w, h, 416, 416, nms_kind=net.nms_kind, beta_nms=net.beta_nms
        ),
        "NMS, OpenCV per-class NMSBoxes loop": lambda: opencv_nms(cv_rows, h, w),
        "thread start + join": thread,
    }
    parts.update(_onnxruntime_parts(net, photo, x, work / f"{name}.onnx"))
    plain = cv2.dnn.readNetFromDarknet(str(cfg416), str(weights))
    plain.enableWinograd(False)
    for label, cvn in (("on", cvnet), ("off", plain)):
        parts[f"OpenCV forward, Winograd {label}"] = partial(_cv_forward, cvn, x.numpy())
    print(f"{name}: {len(above)} rows above 0.25, NMS kind {net.nms_kind}")
    with torch.no_grad():
        return _ms(parts, args.calls)


def _cv_forward(cvnet: Any, blob: np.ndarray) -> object:
    cvnet.setInput(blob)
    return cvnet.forward(cvnet.getUnconnectedOutLayersNames())


def _onnxruntime_parts(
    net: Any, photo: np.ndarray, x: Any, path: Path
) -> dict[str, Callable[[], object]]:
    """onnxruntime's ``Resize`` (its difference from ``darknet_input`` printed), and the
    network's forward in onnxruntime right after detforge's resize on 1 / every torch thread."""
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper

    from detforge.models.darknet.preprocess import darknet_input
    from detforge.utils.cpu import torch_threads

    def session(model: str | bytes) -> Any:
        so = ort.SessionOptions()
        so.intra_op_num_threads = torch.get_num_threads()
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as detforge's
        return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])

    const = helper.make_tensor
    nodes = [
        helper.make_node("Cast", ["img"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["f", "k"], ["g"]),
        helper.make_node("Transpose", ["g"], ["t"], perm=[2, 0, 1]),
        helper.make_node("Unsqueeze", ["t", "axis"], ["u"]),
        helper.make_node(
            "Resize",
            ["u", "", "", "sizes"],
            ["out"],
            mode="linear",
            coordinate_transformation_mode="align_corners",
        ),
    ]
    graph = helper.make_graph(
        nodes, "resize", [helper.make_tensor_value_info("img", TensorProto.UINT8, ["h", "w", 3])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 416, 416])],
        initializer=[const("k", TensorProto.FLOAT, [], [255.0]),
                     const("axis", TensorProto.INT64, [1], [0]),
                     const("sizes", TensorProto.INT64, [4], [1, 3, 416, 416])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    resize = session(model.SerializeToString())
    got = resize.run(None, {"img": photo})[0]
    gap = float(np.abs(got - x.numpy()).max())
    print(f"  onnxruntime Resize vs darknet_input: max |difference| {gap:.2g}")
    torch.onnx.export(net, (x,), str(path), input_names=["images"], opset_version=17,
                      dynamo=False)  # fmt: skip
    forward = session(str(path))

    def after_resize(threads: int | None) -> object:
        with torch_threads(threads):
            blob = darknet_input(photo, 416, 416).numpy()
        return forward.run(None, {"images": blob})

    return {
        "resize, onnxruntime Resize op": lambda: resize.run(None, {"img": photo}),
        "onnxruntime forward + resize on 1 thread": partial(after_resize, 1),
        "onnxruntime forward + resize on every thread": partial(after_resize, None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cfg-dir", type=Path, default=Path("../shared/darknet/cfg"))
    parser.add_argument("--yolov3-tiny", type=Path, default=None,
                        help="folder with the real yolov3-tiny.cfg/.weights")  # fmt: skip
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()

    import cv2
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    print(f"torch {torch.__version__}, opencv {cv2.__version__}, threads {args.threads}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, cfg, weights in bench_networks(args):
            for key, ms in bench_parts(name, cfg, weights, args, Path(tmp)).items():
                print(f"  {key:46s} {ms:7.3f} ms")


if __name__ == "__main__":
    main()
