"""Prediction files: the one read/write pair every command uses.

Layouts (details in each module):

* COCO results JSON ``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...]``
  (:mod:`.coco_json`): ``predict/val --save-json``, ``eval``/``map`` ``predictions.json``,
  and darknet's ``coco_results.json`` (its ``coco_ids`` table mapped back);
* a folder of per-image ``class cx cy w h conf`` ``.txt`` files (:mod:`.text`):
  ``predict --save-txt``, ``darknet detector test -save_labels``, Ultralytics ``save_conf``;
* a folder of darknet ``comp4_det_test_<class>.txt`` files (:mod:`.text`, ``detector valid``);
* the provenance sidecar ``<name>.meta.json`` (:mod:`.provenance`): dataset, split, model and
  the image each ``image_id`` is about.

Reading::

    pred = read_predictions(path, gt)   # Dataset on gt's image table, boxes with scores
    pred.meta["unmatched"]              # {"boxes", "total", "images", "classes"}
    pred.meta["provenance"]             # Provenance | None
    pred.meta["notes"]                  # [str], e.g. what darknet files are and are not
    pred.meta["split"]                  # the split the predictions were made on, when known

Writing::

    save_predictions(path, pred, gt, written_by="detforge map", dataset=..., model=...)
    write_coco_results(path, dataset_records(pred, gt), provenance=Provenance(...))
    write_coco_results(path, coco_records(ids, xyxy, classes, scores, category_ids))
    write_darknet_txt(path, xyxy, classes, scores, width, height)
    write_comp4(folder, pred)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from detforge.data.dataset import Dataset, canonical_split
from detforge.errors import DetforgeError
from detforge.formats.predictions.coco_json import (
    DARKNET_COCO_IDS,
    coco_records,
    dataset_records,
    float32_decimals,
    read_coco_results,
    write_coco_results,
)
from detforge.formats.predictions.provenance import (
    Provenance,
    read_provenance,
    sidecar_path,
    stale_sidecar,
    write_provenance,
)
from detforge.formats.predictions.text import (
    darknet_lines,
    prediction_files,
    read_comp4_predictions,
    read_txt_predictions,
    write_comp4,
    write_darknet_txt,
)


def check_split(prov: Provenance | None, gt: Dataset, path: Path) -> str | None:
    """The split ``prov`` names, or a one-line error when ``gt`` holds only other splits
    (predictions made on one split, scored against another)."""
    if prov is None or not prov.split:
        return None
    want = canonical_split(prov.split)
    have = [s for s in gt.splits() if s]
    if have and want not in have:
        raise DetforgeError(
            f"these predictions were made on {prov.describe()}, but the ground truth is the "
            f"{'/'.join(map(repr, have))} split; score them against the {want!r} split "
            f"(detforge eval ... --split {want})",
            path=path,
        )
    return want


def read_predictions(path: str | os.PathLike[str], gt: Dataset) -> Dataset:
    """Predictions at ``path`` (a results JSON, a folder of ``.txt`` files or of darknet
    ``comp4`` files) as a Dataset on ``gt``'s image table; see the module docstring.

    A provenance sidecar, when present, decides which image each ``image_id`` is about and
    refuses a ground truth of another split; ``meta["split"]`` then names the split, and
    :func:`detforge.eval.evaluate` scores only that split of a ground truth with several.
    """
    p = Path(path)
    if not p.exists():
        raise DetforgeError("predictions not found", path=p)
    prov = read_provenance(p)
    split = check_split(prov, gt, p)
    if p.is_file():
        if p.suffix.lower() != ".json":
            raise DetforgeError(
                "predictions must be a COCO results .json file or a folder of .txt files", path=p
            )
        pred = read_coco_results(p, gt, provenance=prov)
    elif prediction_files(p)[0] == "comp4":
        pred = read_comp4_predictions(p, gt)
    else:
        pred = read_txt_predictions(p, gt, provenance=prov)
    if split is not None:
        pred.meta["split"] = split
    if prov is None and stale_sidecar(p):
        pred.meta["notes"].append(
            f"{sidecar_path(p).name} was written for another version of {p.name} and is ignored"
        )
    return pred


def save_predictions(
    path: str | os.PathLike[str],
    pred: Dataset,
    gt: Dataset,
    *,
    written_by: str,
    dataset: str | os.PathLike[str] | None = None,
    model: str | os.PathLike[str] | None = None,
    settings: dict[str, Any] | None = None,
) -> None:
    """``pred`` (on ``gt``'s images) as COCO results with the ground truth's ids, and its
    provenance sidecar: the source's when it had one, else ``dataset``/``model`` given."""
    from detforge.formats.coco import coco_category_ids

    prov = pred.meta.get("provenance")
    images = dict(zip(gt.images.id.tolist(), map(str, gt.images.path), strict=True))
    splits = sorted({str(s) for s in gt.images.split} - {""})
    new = Provenance(
        written_by=written_by,
        dataset=str(dataset) if dataset else (prov.dataset if prov else None),
        split=splits[0] if len(splits) == 1 else (prov.split if prov else None),
        model=str(model) if model else (prov.model if prov else None),
        classes=list(gt.class_names),
        category_ids=coco_category_ids(gt),
        images=images,
        settings=settings if settings is not None else (dict(prov.settings) if prov else {}),
    )
    write_coco_results(path, dataset_records(pred, gt), provenance=new)


__all__ = [
    "DARKNET_COCO_IDS",
    "Provenance",
    "check_split",
    "coco_records",
    "darknet_lines",
    "dataset_records",
    "float32_decimals",
    "prediction_files",
    "read_coco_results",
    "read_comp4_predictions",
    "read_predictions",
    "read_provenance",
    "read_txt_predictions",
    "save_predictions",
    "sidecar_path",
    "write_coco_results",
    "write_comp4",
    "write_darknet_txt",
    "write_provenance",
]
