"""Darknet's per-class NMS on a flood: detforge's ``darknet_detections`` vs the previous one.

    python bench/darknet_nms_speed.py [--cfg ../shared/darknet/cfg/yolov4-tiny.cfg]
        [--seed 0] [--repeat 3]

The flood: yolov4-tiny (80 classes, 416x416) with seeded random weights
(``load_darknet(cfg)``, ``torch.manual_seed(seed)``) on a 512x600 photo: 2,535 decoded rows,
nearly all above ``detector test``'s 0.25 and ``detector map``'s 0.005 (tens of thousands of
(box, class) candidates). Plus the normal case: a trained network's handful of boxes (10 rows
with 3 classes among 80, the rest below the threshold).

``baseline`` is the previous implementation (kept below, unchanged: a NumPy loop per kept box
and class for the DIoU kinds, torchvision's ``nms`` per class for ``default``); ``new`` is
``detforge.models.darknet.nms.darknet_detections``. Both run on the same rows in the same
process, taking turns; the fastest of ``--repeat`` calls each (after one warm-up call), and the
kept detections are checked to be identical. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

# ---- baseline: the previous detforge implementation, verbatim --------------------------------


def _old_overlap(
    a: NDArray[np.float64], b: NDArray[np.float64], kind: str, beta: float
) -> NDArray[np.float64]:
    ax1, ay1, ax2, ay2 = a[0] - a[2] / 2, a[1] - a[3] / 2, a[0] + a[2] / 2, a[1] + a[3] / 2
    bx1, by1 = b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2
    bx2, by2 = b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2
    iw = np.minimum(ax2, bx2) - np.maximum(ax1, bx1)
    ih = np.minimum(ay2, by2) - np.maximum(ay1, by1)
    inter = np.where((iw < 0) | (ih < 0), 0.0, iw * ih)
    union = a[2] * a[3] + b[:, 2] * b[:, 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where((inter == 0) | (union == 0), 0.0, inter / union)
    if kind == "default":
        return iou
    cw = np.maximum(ax2, bx2) - np.minimum(ax1, bx1)
    ch = np.maximum(ay2, by2) - np.minimum(ay1, by1)
    c = cw * cw + ch * ch
    d = (a[0] - b[:, 0]) ** 2 + (a[1] - b[:, 1]) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.power(d / c, 0.6 if kind == "greedynms" else beta)
    return np.where(c == 0, iou, iou - term)


def _old_greedy(b: NDArray[np.float64], nms: float, kind: str, beta: float) -> NDArray[np.bool_]:
    n = len(b)
    alive = np.ones(n, dtype=bool)
    i = 0
    while i < n:
        rest = np.flatnonzero(alive[i + 1 :]) + i + 1
        if not rest.size:
            break
        alive[rest[_old_overlap(b[i], b[rest], kind, beta) > nms]] = False
        nxt = np.flatnonzero(alive[i + 1 :])
        if not nxt.size:
            break
        i = i + 1 + int(nxt[0])
    return alive


def _old_nms_per_class(
    boxes: NDArray[np.float64], probs: NDArray[np.float64], nms: float, kind: str, beta: float
) -> NDArray[np.float64]:
    out = probs.copy()
    if not len(out):
        return out
    for k in np.flatnonzero(out.max(0) > 0):
        col = out[:, k]
        order = np.flatnonzero(col > 0)
        order = order[np.argsort(-col[order], kind="stable")]
        if kind == "default":
            from torchvision.ops import nms as tv_nms

            b = torch.from_numpy(boxes[order])
            xyxy = torch.cat([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], 1)
            scores = torch.from_numpy(col[order])
            kept = np.zeros(len(order), dtype=bool)
            kept[tv_nms(xyxy, scores, nms).numpy()] = True
        else:
            kept = _old_greedy(boxes[order], nms, kind, beta)
        col[order[~kept]] = 0.0
    return out


def baseline_detections(
    rows: torch.Tensor, image_w: int, image_h: int, net_w: int, net_h: int, *,
    thresh: float, nms: float, nms_kind: str, beta_nms: float,
) -> tuple[NDArray[Any], ...]:  # fmt: skip
    from detforge.models.darknet.decode import correct_boxes

    r = rows.detach().to("cpu", torch.float32)
    r = r[r[:, 4] > thresh]
    boxes = correct_boxes(r[:, :4], image_w, image_h, net_w, net_h, False).numpy()
    boxes = boxes.astype(np.float64)
    probs = (r[:, 4:5] * r[:, 5:]).numpy().astype(np.float64)
    probs = np.where(probs > thresh, probs, 0.0)
    if nms > 0 and len(boxes):
        probs = _old_nms_per_class(boxes, probs, nms, nms_kind, beta_nms)
    det, cls = np.nonzero(probs)
    scores = probs[det, cls]
    order = np.argsort(-scores, kind="stable")
    det, cls, scores = det[order], cls[order], scores[order]
    b = boxes[det]
    xyxy = np.stack(
        [
            (b[:, 0] - b[:, 2] / 2) * image_w,
            (b[:, 1] - b[:, 3] / 2) * image_h,
            (b[:, 0] + b[:, 2] / 2) * image_w,
            (b[:, 1] + b[:, 3] / 2) * image_h,
        ],
        1,
    )
    return xyxy.reshape(-1, 4).astype(np.float32), scores.astype(np.float32), cls.astype(np.int64)


# ---- the bench ---------------------------------------------------------------------------------


def _best_s(runs: list[Callable[[], object]], repeat: int) -> list[float]:
    """Fastest of ``repeat`` calls of each function, the functions taking turns (one call each
    per round), after a warm-up call each: on a shared machine load hits all alike, and the
    fastest call is the least disturbed one."""
    for run in runs:
        run()
    best = [float("inf")] * len(runs)
    for _ in range(repeat):
        for i, run in enumerate(runs):
            start = time.perf_counter()
            run()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def flood_rows(cfg: str, seed: int) -> torch.Tensor:
    from matplotlib import cbook
    from PIL import Image

    from detforge.models.darknet.model import forward_rows, load_darknet
    from detforge.models.darknet.preprocess import darknet_input

    torch.manual_seed(seed)
    net = load_darknet(cfg)
    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    photo = np.asarray(Image.open(path).convert("RGB"))
    return forward_rows(net, darknet_input(photo, *net.input_size))[0]


def normal_rows(flood: torch.Tensor, seed: int) -> torch.Tensor:
    """The flood's first 10 rows made confident (3 classes), every other row below 0.005."""
    g = torch.Generator().manual_seed(seed)
    rows = flood.clone()
    rows[:, 4:] = 0.001
    rows[:10, 4] = 0.9
    rows[torch.arange(10), 5 + torch.randint(0, 3, (10,), generator=g)] = 0.95
    return rows


def main() -> None:
    from detforge.models.darknet.nms import darknet_detections

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cfg", default="../shared/darknet/cfg/yolov4-tiny.cfg")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    flood = flood_rows(args.cfg, args.seed)
    cases = [("flood", flood, 0.25), ("flood", flood, 0.005),
             ("normal", normal_rows(flood, args.seed), 0.25)]  # fmt: skip
    print("| rows | thresh | nms_kind | candidates | kept | baseline s | new s | speed-up |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, rows, thresh in cases:
        cand = int(((rows[:, 4:5] * rows[:, 5:] > thresh) & (rows[:, 4:5] > thresh)).sum())
        for kind in ("default", "greedynms", "diounms"):
            runs = {
                fn: partial(
                    fn,
                    rows,
                    512,
                    600,
                    416,
                    416,
                    thresh=thresh,
                    nms=0.45,
                    nms_kind=kind,
                    beta_nms=0.6,
                )
                for fn in (baseline_detections, darknet_detections)
            }
            old, new = (tuple(run()) for run in runs.values())
            assert all(np.array_equal(x, y) for x, y in zip(new, old, strict=True)), kind
            repeat = args.repeat if name == "flood" else 50 * args.repeat
            t_old, t_new = _best_s(list(runs.values()), repeat)
            print(f"| {name} ({len(rows)}) | {thresh} | {kind} | {cand} | {len(new[1])} | "
                  f"{t_old:.4f} | {t_new:.4f} | {t_old / t_new:.1f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
