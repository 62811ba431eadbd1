"""Stock networks against OpenCV's independent Darknet importer (cv2.dnn.readNetFromDarknet):
outputs before NMS within 1e-4, and detections after NMS on a real photo."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from detforge.models.darknet.cfg import read_cfg
from detforge.models.darknet.cpu_pack import pack_for_cpu
from detforge.models.darknet.layers import ConvLayer
from detforge.models.darknet.model import detect, forward_above, forward_rows, load_darknet
from detforge.models.darknet.network import DarknetNetwork
from detforge.models.darknet.preprocess import darknet_input
from detforge.models.darknet.weights import write_weights
from tests.models.darknet.conftest import CFG_DIR
from tests.models.darknet.helpers import (
    assert_not_saturated,
    assert_rows_match,
    ours_and_opencv,
    randomize,
)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def _small_copy(src: Path, dst: Path, size: int | None) -> Path:
    """The stock cfg, with [net] width/height set to ``size`` to keep the test cheap."""
    text = src.read_text()
    if size is not None:
        cfg = read_cfg(src)
        lines = text.splitlines()
        for key in ("width", "height"):
            lines[cfg.net.lines[key] - 1] = f"{key}={size}"
        text = "\n".join(lines) + "\n"
    dst.write_text(text)
    return dst


@pytest.mark.parametrize(
    ("name", "size"), [("yolov4-tiny", None), ("yolov7-tiny", None), ("yolov4-csp", 256)]
)
def test_random_weights_match_opencv(
    name: str, size: int | None, tmp_path: Path, photo: np.ndarray
) -> None:
    cfg = _small_copy(CFG_DIR / f"{name}.cfg", tmp_path / f"{name}.cfg", size)
    net = load_darknet(cfg)
    randomize(net, photo)
    weights = write_weights(net, tmp_path / f"{name}.weights")
    w, h = net.input_size
    x = darknet_input(photo, w, h, letter_box=net.letter_box)
    ours, ref = ours_and_opencv(net, cfg, weights, x)
    assert_not_saturated(ours)
    assert_rows_match(ours, ref)
    _assert_above_is_rows_filtered(net, x)
    _assert_packed_matches(net, x, ref)


def _assert_packed_matches(net: DarknetNetwork, x: torch.Tensor, ref: np.ndarray) -> None:
    """What ``detforge.load`` runs on a CPU (BatchNorm folded, convolutions packed, the
    suited 3x3 layers by Winograd) matches OpenCV too."""
    packed = net.fused()
    assert pack_for_cpu(packed) > 0
    convs = [m.packed for m in packed.layers if isinstance(m, ConvLayer) and m.packed]
    assert any(p.winograd is not None for p in convs)
    got = forward_rows(packed, x).numpy()[0]
    got[:, 5:] *= got[:, 4:5]
    assert_rows_match(got, ref)


def _assert_above_is_rows_filtered(net: DarknetNetwork, x: torch.Tensor) -> None:
    """forward_above (only the rows above the threshold decoded) gives forward_rows' rows
    (just checked against OpenCV) filtered by objectness, in order; per image of a batch."""
    pair = torch.cat([x, x.flip(-1)])
    rows = forward_rows(net, pair).numpy()
    obj = np.unique(rows[0, :, 4])
    gaps = np.flatnonzero(np.diff(obj) > 1e-5)  # a threshold no rounding puts a row across
    k = gaps[np.searchsorted(gaps, int(0.9 * len(obj))) % len(gaps)]
    thresh = float(obj[k] + obj[k + 1]) / 2
    above = forward_above(net, pair, thresh)
    for got, full in zip(above, rows, strict=True):
        want = full[full[:, 4] > thresh]
        assert 0 < len(want) < len(full)
        np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-6)


def test_yolov2_tiny_region_matches_opencv(tmp_path: Path, photo: np.ndarray) -> None:
    cfg = _small_copy(CFG_DIR / "yolov2-tiny.cfg", tmp_path / "yolov2-tiny.cfg", 320)
    net = load_darknet(cfg)
    randomize(net, photo)
    weights = write_weights(net, tmp_path / "yolov2-tiny.weights")
    x = darknet_input(photo, 320, 320)
    ours, ref = ours_and_opencv(net, cfg, weights, x)
    assert_not_saturated(ours)
    # OpenCV's region layer zeroes class scores <= the cfg's thresh (.6 in yolov2-tiny)
    assert_rows_match(ours, ref, cls_thresh=0.6)


def test_real_yolov3_tiny_matches_opencv(yolov3_tiny: Path, photo: np.ndarray) -> None:
    cfg, weights = yolov3_tiny / "yolov3-tiny.cfg", yolov3_tiny / "yolov3-tiny.weights"
    net = load_darknet(cfg, weights)
    x = darknet_input(photo, *net.input_size)
    ours, ref = ours_and_opencv(net, cfg, weights, x)
    assert_rows_match(ours, ref)
    assert ours[:, 4].max() > 0.5  # the real network sees something in the photo
    _assert_packed_matches(net, x, ref)


def _opencv_detections(
    cfg: Path,
    weights: Path,
    x: torch.Tensor,
    image_w: int,
    image_h: int,
    thresh: float = 0.25,
    nms: float = 0.45,
) -> list[tuple[int, float, np.ndarray]]:
    """OpenCV's usual post-processing: per-class score > thresh, cv2.dnn.NMSBoxes per class."""
    cvnet = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    cvnet.setInput(x.numpy())
    rows = np.concatenate(cvnet.forward(cvnet.getUnconnectedOutLayersNames()), 0)
    out = []
    for k in range(rows.shape[1] - 5):
        sel = np.flatnonzero((rows[:, 4] > thresh) & (rows[:, 5 + k] > thresh))
        if not sel.size:
            continue
        b = rows[sel, :4]
        xywh = np.stack(
            [
                (b[:, 0] - b[:, 2] / 2) * image_w,
                (b[:, 1] - b[:, 3] / 2) * image_h,
                b[:, 2] * image_w,
                b[:, 3] * image_h,
            ],
            1,
        )
        keep = cv2.dnn.NMSBoxes(xywh.tolist(), rows[sel, 5 + k].tolist(), thresh, nms)
        for i in np.asarray(keep).reshape(-1):
            x1, y1, bw, bh = xywh[i]
            out.append((k, float(rows[sel[i], 5 + k]), np.array([x1, y1, x1 + bw, y1 + bh])))
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_real_photo_detections_match_opencv(yolov3_tiny: Path, photo: np.ndarray) -> None:
    cfg, weights = yolov3_tiny / "yolov3-tiny.cfg", yolov3_tiny / "yolov3-tiny.weights"
    net = load_darknet(cfg, weights)
    h, w = photo.shape[:2]
    dets = detect(net, photo)
    names = (yolov3_tiny / "coco.names").read_text().split("\n")
    assert names[int(dets.classes[0])] == "tie" and dets.scores[0] > 0.8  # Hopper's bow tie
    ref = _opencv_detections(cfg, weights, darknet_input(photo, *net.input_size), w, h)
    assert len(dets.scores) == len(ref) > 0

    def matched(
        k: int, s: float, box: np.ndarray, others: list[tuple[int, float, np.ndarray]]
    ) -> bool:
        return any(
            k2 == k and abs(s2 - s) <= 0.02 and _iou(box, b2) >= 0.9 for k2, s2, b2 in others
        )

    ours = [
        (int(k), float(s), b.astype(np.float64))
        for k, s, b in zip(dets.classes, dets.scores, dets.boxes, strict=True)
    ]
    assert all(matched(*d, ref) for d in ours)
    assert all(matched(*d, ours) for d in ref)
