"""The COCO protocol against pycocotools itself, on hundreds of randomized cases.

Each case is written as real COCO files, evaluated by pycocotools (the reference) and by
detforge through its public path (``read_coco`` -> ``read_predictions`` -> ``evaluate``);
all 12 stats and the full precision / recall / scores arrays must agree to 1e-12.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detforge.eval import evaluate, read_predictions
from detforge.eval.coco import STAT_NAMES
from detforge.formats.coco import read_coco

pytest.importorskip("pycocotools")


def pycoco(gt_path: Path, dt_path: Path) -> Any:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        dt = gt.loadRes(str(dt_path))
        e = COCOeval(gt, dt, "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    return e


def random_case(
    rng: np.random.Generator,
    *,
    n_img: int,
    n_cls: int,
    max_gt: int,
    max_dt: int,
    crowd_p: float,
    ties: bool,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """GT dict and results list: noisy copies of GT (mostly right class) plus random boxes;
    some images empty, some classes never annotated, scores with ties when ``ties``."""
    ids = (rng.choice(10_000, n_img, replace=False) + 1).tolist()
    images = [{"id": i, "file_name": f"img{i}.jpg", "width": 120, "height": 90} for i in ids]
    cat_ids = sorted((rng.choice(200, n_cls, replace=False) + 1).tolist())
    cats = [{"id": c, "name": f"c{c}"} for c in cat_ids]
    # Leave the last class without ground truth when there are several.
    gt_cats = cat_ids[:-1] if n_cls > 1 and rng.random() < 0.5 else cat_ids
    anns: list[dict[str, Any]] = []
    dets: list[dict[str, Any]] = []
    for im in ids:
        own = []
        for _ in range(int(rng.integers(0, max_gt + 1))):
            x, y = rng.uniform(0, 100, 2)
            w, h = rng.uniform(1, 70, 2) if rng.random() < 0.7 else rng.uniform(1, 12, 2)
            a = {
                "id": len(anns) + 1,
                "image_id": im,
                "category_id": int(rng.choice(gt_cats)),
                "bbox": [round(float(v), 2) for v in (x, y, w, h)],
                "area": float(w * h * rng.choice([1.0, 0.6, 3.0, 50.0])),
                "iscrowd": int(rng.random() < crowd_p),
            }
            anns.append(a)
            own.append(a)
        for _ in range(int(rng.integers(0, max_dt + 1))):
            if own and rng.random() < 0.7:
                a = own[int(rng.integers(len(own)))]
                b = np.asarray(a["bbox"]) + rng.normal(0, 2.5, 4)
                b[2:] = np.abs(b[2:]) + 0.5
                cat = a["category_id"] if rng.random() < 0.85 else int(rng.choice(cat_ids))
            else:
                b = np.r_[rng.uniform(0, 100, 2), rng.uniform(1, 70, 2)]
                cat = int(rng.choice(cat_ids))
            score = float(rng.integers(0, 4)) / 4 if ties else float(rng.random())
            dets.append(
                {
                    "image_id": im,
                    "category_id": cat,
                    "bbox": [round(float(v), 3) for v in b],
                    "score": score,
                }
            )
    return {"images": images, "annotations": anns, "categories": cats}, dets


def check_case(
    tmp: Path, gt: dict[str, Any], dets: list[dict[str, Any]], ref_gt: dict[str, Any] | None = None
) -> None:
    """detforge on ``gt`` against pycocotools on ``ref_gt`` (default: the same file)."""
    gt_path, dt_path = tmp / "gt.json", tmp / "dt.json"
    gt_path.write_text(json.dumps(gt))
    dt_path.write_text(json.dumps(dets))
    ref_path = gt_path
    if ref_gt is not None:
        ref_path = tmp / "ref_gt.json"
        ref_path.write_text(json.dumps(ref_gt))
    ref = pycoco(ref_path, dt_path)
    g = read_coco(gt_path)
    res = evaluate(g, read_predictions(dt_path, g), protocol="coco")["coco"]
    np.testing.assert_allclose([res["stats"][k] for k in STAT_NAMES], ref.stats, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res["precision"], ref.eval["precision"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(res["recall_array"], ref.eval["recall"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(res["scores"], ref.eval["scores"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_random_small_cases_match_pycocotools(tmp_path: Path, seed: int) -> None:
    """6 x 50 small cases: crowds, score ties, empty images, classes without GT."""
    rng = np.random.default_rng(seed)
    for i in range(50):
        gt, dets = random_case(
            rng,
            n_img=int(rng.integers(1, 7)),
            n_cls=int(rng.integers(1, 5)),
            max_gt=6,
            max_dt=14,
            crowd_p=0.15,
            ties=i % 2 == 0,
        )
        if dets:  # pycocotools cannot load an empty results list
            check_case(tmp_path, gt, dets)


def test_many_classes_match_pycocotools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Also with tiny class batches (classes are evaluated in batches of detections)."""
    import detforge.eval.coco as coco

    monkeypatch.setattr(coco, "_BATCH", 30)
    rng = np.random.default_rng(100)
    for _ in range(4):
        gt, dets = random_case(
            rng, n_img=12, n_cls=40, max_gt=12, max_dt=40, crowd_p=0.05, ties=False
        )
        check_case(tmp_path, gt, dets)


def test_crowded_images_match_pycocotools(tmp_path: Path) -> None:
    """Hundreds of detections per image: the 100-per-class cap, many crowd absorptions."""
    rng = np.random.default_rng(7)
    gt, dets = random_case(rng, n_img=2, n_cls=2, max_gt=40, max_dt=500, crowd_p=0.2, ties=True)
    check_case(tmp_path, gt, dets)


def test_one_thousand_boxes_match_pycocotools(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    gt, dets = random_case(rng, n_img=1, n_cls=1, max_gt=60, max_dt=1000, crowd_p=0.1, ties=False)
    assert len(dets) > 300
    check_case(tmp_path, gt, dets)


def test_crowd_iou_uses_detection_area(tmp_path: Path) -> None:
    """Hand-checked: a detection inside a crowd region is ignored, not a false positive."""
    gt = {
        "images": [{"id": 1, "width": 100, "height": 100, "file_name": "a.jpg"}],
        "categories": [{"id": 1, "name": "a"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100,
             "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [50, 50, 50, 50], "area": 2500,
             "iscrowd": 1},
        ],
    }  # fmt: skip
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": [60, 60, 10, 10], "score": 0.9},  # in crowd
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.8},
    ]
    check_case(tmp_path, gt, dets)
    g = read_coco(tmp_path / "gt.json")
    res = evaluate(g, read_predictions(tmp_path / "dt.json", g), protocol="coco")
    # Crowd-ignored first detection: precision stays 1 (minus pycocotools' eps) everywhere.
    assert res["coco"]["stats"]["AP"] == pytest.approx(1.0, abs=1e-12)
    assert res["coco"]["per_class"][0]["AP"] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("chunk", [64, 1000, 1 << 20])
def test_json_fast_path_equals_json_module(
    tmp_path: Path, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The object-free results parser reads exactly what ``json`` reads (17-digit floats),
    whatever the chunking."""
    import detforge.formats.predictions.fastjson as preds
    from detforge.formats.predictions.fastjson import parse_results as _fast_results

    monkeypatch.setattr(preds, "_CHUNK", chunk)

    rng = np.random.default_rng(3)
    rows = [
        {"image_id": int(i), "category_id": int(c), "bbox": [float(v) for v in b],
         "score": float(s)}
        for i, c, b, s in zip(
            rng.integers(1, 10**6, 500), rng.integers(1, 91, 500),
            rng.uniform(-5, 1000, (500, 4)), rng.random(500), strict=True,
        )
    ]  # fmt: skip
    for text in (json.dumps(rows), json.dumps(rows, indent=1) + "\n", json.dumps(rows)[:-1] + " ]"):
        fast = _fast_results(text.encode())
        assert fast is not None
        vals, keys = fast
        assert keys == ["image_id", "category_id", "bbox", "score"]
        ref = np.array([[r["image_id"], r["category_id"], *r["bbox"], r["score"]] for r in rows])
        assert np.array_equal(vals, ref)
    # Anything unusual falls back to the JSON parser.
    assert _fast_results(json.dumps([{**rows[0], "score": 1e-7}]).encode()) is None
    assert _fast_results(json.dumps([{**rows[0], "extra": 1}]).encode()) is None
    assert _fast_results(json.dumps([{**rows[0], "image_id": "a1"}]).encode()) is None
    swapped = [rows[0], {"score": 0.5, **{k: v for k, v in rows[1].items() if k != "score"}}]
    assert _fast_results(json.dumps(swapped).encode()) is None
    late = [*rows[:-1], {**rows[-1], "extra": 1}]  # only the last object differs
    assert _fast_results(json.dumps(late).encode()) is None
    assert _fast_results(json.dumps(rows)[:-1].encode()) is None  # truncated file


def test_area_boundaries_and_degenerate_boxes_match_pycocotools(tmp_path: Path) -> None:
    """Areas exactly 32^2 / 96^2 (inside both neighbouring ranges), zero-size boxes (a GT one
    is left out by the reader, a predicted one is scored), boxes beyond the image, a GT
    without an area field."""
    images = [{"id": i, "width": 200, "height": 200, "file_name": f"{i}.jpg"} for i in (1, 2)]
    boxes = [
        [0, 0, 32, 32], [50, 50, 96, 96], [10, 10, 0, 5], [150, 150, 80, 80], [5, 5, 31.9, 32],
        [100, 0, 32.1, 32], [0, 100, 48, 48],
    ]  # fmt: skip
    anns = []
    for i, b in enumerate(boxes):
        a = {"id": i + 1, "image_id": 1 + i % 2, "category_id": 1, "bbox": b,
             "area": float(b[2] * b[3]), "iscrowd": int(i == 6)}  # fmt: skip
        anns.append(a)
    anns[3]["area"] = 9216.0  # area field disagrees with the box: the field decides
    gt = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "a"}]}
    dets = []
    for i, b in enumerate(boxes):
        for j, s in enumerate((0.9, 0.5)):
            d = [b[0] + j, b[1], b[2], b[3] + j]
            dets.append({"image_id": 1 + i % 2, "category_id": 1, "bbox": d, "score": s})
    dets.append({"image_id": 1, "category_id": 1, "bbox": [0, 0, 32, 32], "score": 0.7})
    dets.append({"image_id": 2, "category_id": 1, "bbox": [0, 0, 0, 0], "score": 0.95})
    # the zero-size GT box ([10, 10, 0, 5]) is an impossible box: detforge's reader leaves it
    # out (listed), so pycocotools is given the same ground truth without it
    ref_gt = {**gt, "annotations": [a for a in anns if a["bbox"][2] > 0 and a["bbox"][3] > 0]}
    check_case(tmp_path, gt, dets, ref_gt)
    (left,) = read_coco(tmp_path / "gt.json").meta["invalid_boxes"]
    assert left.code == "box-zero-size" and left.record == "annotation #2 (id 3)"
