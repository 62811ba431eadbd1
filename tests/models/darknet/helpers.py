"""Shared helpers: well-conditioned random weights and the comparison with OpenCV's importer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from detforge.models.darknet.model import forward_rows
from detforge.models.darknet.network import DarknetNetwork
from detforge.models.darknet.preprocess import darknet_input
from detforge.models.darknet.weights import write_weights

OPENCV_YOLO_THRESH = 0.2  # OpenCV zeroes class scores <= the layer's thresh (0.2 for [yolo])


def randomize(net: DarknetNetwork, image: np.ndarray, seed: int = 0) -> None:
    """Random weights whose activations stay in range (not saturated): BN statistics are set
    from one real image (data-dependent init, variances + 0.5), scales/biases at random."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.normal_(0, 1.0 / fan_in**0.5, generator=g)
                if m.bias is not None:
                    m.bias.uniform_(-0.3, 0.3, generator=g)
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.5, 0.5, generator=g)
                m.momentum = 1.0
        net.train()
        w, h = net.input_size
        net(darknet_input(image, w, h, letter_box=net.letter_box))
        net.eval()
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = 0.01
                # OpenCV's BatchNorm epsilon is not Darknet's 1e-5 (normalize_cpu): with
                # variances near 0 the two importers differ by ~1e-2 and OpenCV is the one
                # that departs from Darknet, so keep variances away from 0 for the comparison.
                assert m.running_var is not None
                m.running_var.add_(0.5)


def ours_and_opencv(
    net: DarknetNetwork, cfg: Path, weights: Path, x: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """Decoded rows (N, 5 + C) from us (class columns multiplied by objectness, as OpenCV
    reports them) and from ``cv2.dnn.readNetFromDarknet`` on the same input blob."""
    import cv2

    ours = forward_rows(net, x).numpy()
    ours = np.concatenate(list(ours), 0)
    ours[:, 5:] *= ours[:, 4:5]
    cvnet = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    cvnet.setInput(x.numpy())
    ref = np.concatenate(cvnet.forward(cvnet.getUnconnectedOutLayersNames()), 0)
    return ours, ref


def assert_rows_match(
    ours: np.ndarray, ref: np.ndarray, *, tol: float = 1e-4, cls_thresh: float = OPENCV_YOLO_THRESH
) -> None:
    """Boxes and objectness everywhere, class scores where OpenCV keeps them (``> thresh``);
    where OpenCV zeroed a score ours must be at most the threshold."""
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours[:, :5], ref[:, :5], atol=tol, rtol=0)
    kept = ref[:, 5:] > 0
    np.testing.assert_allclose(ours[:, 5:][kept], ref[:, 5:][kept], atol=tol, rtol=0)
    assert (ours[:, 5:][~kept] <= cls_thresh + tol).all()


def assert_not_saturated(rows: np.ndarray) -> None:
    """The comparison means something: objectness spread out, not all 0 or 1."""
    obj = rows[:, 4]
    assert ((obj > 0.02) & (obj < 0.98)).mean() > 0.2, "random weights saturate the outputs"


TINY_CFG = """[net]
width=96
height=64
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=16
size=3
stride=2
pad=1
activation=mish

[convolutional]
size=1
stride=1
pad=1
filters=21
activation=linear

[yolo]
mask=0,1,2
anchors=10,12, 20,24, 40,30
classes=2
num=3
nms_kind={nms_kind}
beta_nms=0.6
"""


def tiny_darknet(folder: Path, *, name: str = "tiny", nms_kind: str = "greedynms",
                 seed: int = 3) -> tuple[Path, Path]:  # fmt: skip
    """A small 2-class Darknet network (96x64 input, one [yolo] head) with random weights
    written by our writer: ``(cfg, weights)`` with the same stem."""
    from detforge.models.darknet.model import load_darknet

    folder.mkdir(parents=True, exist_ok=True)
    cfg = folder / f"{name}.cfg"
    cfg.write_text(TINY_CFG.format(nms_kind=nms_kind))
    net = load_darknet(cfg)
    image = np.random.default_rng(seed).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    randomize(net, image, seed=seed)
    return cfg, write_weights(net, folder / f"{name}.weights")


def scenes(n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` small RGB images of different sizes with a few bright rectangles."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = 60 + 10 * i, 100 - 5 * i
        im = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
        for _ in range(3):
            x, y = rng.integers(0, w - 20), rng.integers(0, h - 20)
            im[y : y + 20, x : x + 15] = rng.integers(150, 255, 3, dtype=np.uint8)
        out.append(im)
    return out


def self_labelled_dataset(
    net: DarknetNetwork,
    images: list[np.ndarray],
    folder: Path,
    *,
    thresh: float,
    jitter: Callable[[np.ndarray], np.ndarray],
) -> Path:
    """A Darknet dataset in ``folder`` (``img<i>.png`` + labels, ``valid.txt``, names ``doe``
    and ``stag``) labelled with ``net``'s own detections above ``thresh``, each box (K, 4)
    xyxy px moved by ``jitter(boxes)`` and clipped to its image; returns ``obj.data``."""
    from PIL import Image

    from detforge.models.darknet.model import detect

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, im in enumerate(images):
        path = folder / f"img{i}.png"
        Image.fromarray(im).save(path)
        d = detect(net, im, thresh=thresh)
        h, w = im.shape[:2]
        b = np.clip(d.boxes + jitter(d.boxes), 0, [w, h, w, h])
        lines = [
            f"{c} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} "
            f"{(y2 - y1) / h:.6f}"
            for c, (x1, y1, x2, y2) in zip(d.classes, b, strict=True)
        ]
        path.with_suffix(".txt").write_text("\n".join(lines) + "\n")
        paths.append(str(path))
    (folder / "obj.names").write_text("doe\nstag\n")
    (folder / "valid.txt").write_text("\n".join(paths) + "\n")
    data = folder / "obj.data"
    data.write_text("classes = 2\ntrain = valid.txt\nvalid = valid.txt\nnames = obj.names\n")
    return data
