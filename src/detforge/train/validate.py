"""Validation: run a model over a split, post-process, and score with the evaluation engine.

Predictions are mapped from the letterboxed network input back to original image pixels
(each batch's ``ratio_pad``, through :func:`detforge.data.letterbox.unletterbox_boxes`),
gathered into a :class:`~detforge.data.dataset.Dataset` whose boxes carry ``score``, and scored
by :func:`detforge.eval.evaluate` with the COCO protocol, so the numbers printed during
training are the numbers ``detforge eval`` gives.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import Dataset, make_dataset
from detforge.data.letterbox import unletterbox_boxes

if TYPE_CHECKING:
    import torch

Prediction = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]
"""``(boxes (K, 4) xyxy original-image pixels, scores (K,), classes (K,))``."""


@dataclass
class ValResult:
    """COCO mAP@[.5:.95] and mAP@.5 (``-1`` when the split has no boxes), and the raw report."""

    map50_95: float
    map50: float
    report: dict[str, Any] = field(default_factory=dict)
    preview: list[tuple[Any, Any, Any]] = field(default_factory=list)
    """First batch's ``(input image HxWx3 uint8, prediction in input px, truth in input px)``."""


def fitness(map50: float, map50_95: float) -> float:
    """The single number ``best.pt`` maximises: ``0.1 * mAP50 + 0.9 * mAP50-95``."""
    return 0.1 * map50 + 0.9 * map50_95


def predict_batches(
    model: torch.nn.Module,
    batches: Iterable[dict[str, Any]],
    *,
    device: torch.device,
    conf: float = 0.001,
    iou: float = 0.7,
    max_det: int = 300,
    preview: int = 0,
    progress: bool | None = None,
) -> tuple[dict[str, Prediction], list[tuple[Any, Any, Any]]]:
    """``{image path: Prediction}`` for every image of ``batches`` (training-batch dicts).

    Also returns up to ``preview`` triples ``(input image, (boxes, scores, classes) in input
    px, (truth boxes, truth classes) in input px)`` from the first batches.
    """
    import torch

    from detforge.models.postprocess import postprocess
    from detforge.utils.progress import progress as bar

    was_training = model.training
    model.eval()
    out: dict[str, Prediction] = {}
    shots: list[tuple[Any, Any, Any]] = []
    autocast = torch.autocast(device_type="cuda", enabled=device.type == "cuda")
    with torch.inference_mode(), autocast:
        for batch in bar(batches, desc="validate", unit="batch", enabled=progress):
            imgs = batch["img"].to(device, non_blocking=True).float() / 255.0
            dets = postprocess(model(imgs), conf=conf, iou=iou, max_det=max_det)
            for i, (b, s, c) in enumerate(dets):
                b_np = b.float().cpu().numpy().astype(np.float64)
                s_np = s.float().cpu().numpy().astype(np.float64)
                c_np = c.cpu().numpy().astype(np.int64)
                if len(shots) < preview:
                    sel = (batch["batch_idx"] == i).cpu().numpy()
                    truth = (batch["bboxes"].cpu().numpy()[sel], batch["cls"].cpu().numpy()[sel])
                    image = batch["img"][i].permute(1, 2, 0).cpu().numpy()
                    shots.append((image, (b_np, s_np, c_np), truth))
                boxes = unletterbox_boxes(b_np, batch["ratio_pad"][i], batch["orig_shape"][i])
                out[str(batch["paths"][i])] = (boxes, s_np, c_np)
    model.train(was_training)
    return out, shots


def predictions_dataset(gt: Dataset, preds: dict[str, Prediction]) -> Dataset:
    """The images of ``gt`` with ``preds`` as score-carrying XYXY_PIXEL boxes (same ids)."""
    img_index = {str(p): i for i, p in enumerate(gt.images.path)}
    box_image: list[NDArray[np.int64]] = []
    coords: list[NDArray[np.float64]] = []
    cls: list[NDArray[np.int64]] = []
    score: list[NDArray[np.float64]] = []
    for path, (b, s, c) in preds.items():
        i = img_index.get(path)
        if i is None or not len(b):
            continue
        box_image.append(np.full(len(b), i, dtype=np.int64))
        coords.append(b)
        cls.append(c)
        score.append(s)

    def cat(parts: list[Any], shape: tuple[int, ...], dtype: Any) -> Any:
        return np.concatenate(parts) if parts else np.zeros(shape, dtype=dtype)

    return make_dataset(
        gt.class_names,
        paths=list(gt.images.path),
        widths=gt.images.width,
        heights=gt.images.height,
        splits=list(gt.images.split),
        image_ids=gt.images.id,
        box_image=cat(box_image, (0,), np.int64),
        box_cls=cat(cls, (0,), np.int64),
        box_coords=cat(coords, (0, 4), np.float64),
        box_format=BoxFormat.XYXY_PIXEL,
        score=cat(score, (0,), np.float64),
    )


def coco_map(report: dict[str, Any]) -> tuple[float, float]:
    """``(mAP50-95, mAP50)`` from an :func:`detforge.eval.evaluate` report."""
    stats = report.get("coco", {}).get("stats", {})
    if isinstance(stats, dict):
        m = _first(stats, ("AP", "mAP", "map", "AP@[.5:.95]", "mAP50-95"))
        m50 = _first(stats, ("AP50", "mAP50", "map50", "AP@.5"))
        return m, m50
    if isinstance(stats, list | tuple) and len(stats) >= 2:  # pycocotools' 12-vector
        return float(stats[0]), float(stats[1])
    raise KeyError("evaluation report has no COCO stats")


def _first(d: dict[str, Any], keys: Sequence[str]) -> float:
    for k in keys:
        if k in d:
            return float(d[k])
    raise KeyError(f"evaluation report has none of {list(keys)}; has {sorted(d)}")


def evaluate_predictions(
    gt: Dataset, preds: dict[str, Prediction]
) -> tuple[float, float, dict[str, Any]]:
    """Score ``preds`` against ``gt`` with the COCO protocol: ``(mAP50-95, mAP50, report)``."""
    from detforge.eval import evaluate

    if gt.num_boxes == 0:
        return -1.0, -1.0, {}
    report = evaluate(gt, predictions_dataset(gt, preds), protocol="coco")
    m, m50 = coco_map(report)
    return m, m50, report


def run_validation(
    model: torch.nn.Module,
    gt: Dataset,
    batches: Iterable[dict[str, Any]],
    *,
    device: torch.device,
    conf: float = 0.001,
    iou: float = 0.7,
    max_det: int = 300,
    preview: int = 0,
    progress: bool | None = None,
) -> ValResult:
    """Predict ``batches`` (built from ``gt``'s images) and score them against ``gt``."""
    preds, shots = predict_batches(
        model, batches, device=device, conf=conf, iou=iou, max_det=max_det,
        preview=preview, progress=progress,
    )  # fmt: skip
    m, m50, report = evaluate_predictions(gt, preds)
    return ValResult(map50_95=m, map50=m50, report=report, preview=shots)
