"""Prediction files (detforge.formats.predictions): matching by id / sidecar / Darknet number /
stem, strict parsing, writers read back by pycocotools."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import Dataset, make_dataset
from detforge.errors import DetforgeError
from detforge.eval import evaluate, read_predictions
from detforge.formats.predictions import (
    coco_records,
    darknet_lines,
    write_coco_results,
    write_darknet_txt,
)


def darknet_like(paths: list[str]) -> Dataset:
    """A GT without real image ids (ids are row numbers), like a Darknet list."""
    return make_dataset(
        ["cat", "dog"],
        paths=paths,
        widths=[100] * len(paths),
        heights=[50] * len(paths),
        box_image=list(range(len(paths))),
        box_cls=[0] * len(paths),
        box_coords=[[0.5, 0.5, 0.2, 0.4]] * len(paths),
        box_format=BoxFormat.CXCYWH_NORM,
    )


def test_results_json_on_darknet_gt_matches_number_in_file_name(tmp_path: Path) -> None:
    # Darknet's coco_results.json uses the digits after the last '_' as image_id.
    gt = darknet_like(["x/COCO_val_000000000042.jpg", "x/COCO_val_000000000007.jpg"])
    res = [
        {"image_id": 7, "category_id": 1, "bbox": [40, 15, 20, 20], "score": 0.9},
        {"image_id": 42, "category_id": 1, "bbox": [40, 15, 20, 20], "score": 0.8},
        {"image_id": 5, "category_id": 1, "bbox": [40, 15, 20, 20], "score": 0.8},
    ]
    p = tmp_path / "r.json"
    p.write_text(json.dumps(res))
    pred = read_predictions(p, gt)
    assert pred.boxes.image.tolist() == [0, 1]  # ids 42 -> row 0, 7 -> row 1
    um = pred.meta["unmatched"]
    assert (um["images"], um["boxes"], um["classes"]) == (["5"], 1, [])
    assert "darknet" in um["image_ids"]
    with pytest.raises(DetforgeError, match=r"1 of 3 predictions \(33.3%\) fit no ground-truth"):
        evaluate(gt, pred)
    r = evaluate(gt, pred, ignore_unmatched=True)
    assert r["darknet"]["mAP"] == 0.5  # cat AP 1, dog AP 0 (no truths)
    assert r["unmatched"]["boxes"] == 1


def test_results_json_string_ids_match_by_stem_and_unknown_categories(tmp_path: Path) -> None:
    gt = darknet_like(["a/one.jpg", "a/two.jpg"])
    res = [
        {"image_id": "two", "category_id": 1, "bbox": [40, 15, 20, 20], "score": 0.9},
        {"image_id": "one.jpg", "category_id": 9, "bbox": [40, 15, 20, 20], "score": 0.9},
    ]
    p = tmp_path / "r.json"
    p.write_text(json.dumps(res))
    pred = read_predictions(p, gt)
    assert pred.boxes.image.tolist() == [1]
    assert pred.meta["unmatched"]["classes"] == [9] and pred.meta["unmatched"]["boxes"] == 1


def test_zero_based_category_ids_are_accepted(tmp_path: Path) -> None:
    gt = darknet_like(["a/one.jpg"])
    p = tmp_path / "r.json"
    p.write_text(json.dumps([{"image_id": 0, "category_id": 0, "bbox": [1, 2, 3, 4], "score": 1}]))
    pred = read_predictions(p, gt)
    assert pred.boxes.cls.tolist() == [0] and pred.meta["unmatched"]["boxes"] == 0
    # never silently: the reading is said (eval prints the reader's notes)
    assert any("read as 0-based class indices" in n for n in pred.meta["notes"])
    p.write_text(json.dumps([{"image_id": 0, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 1}]))
    assert read_predictions(p, gt).meta["notes"] == []  # the ground truth's own ids


def test_txt_reader_is_strict_with_line_numbers(tmp_path: Path) -> None:
    gt = darknet_like(["a/one.jpg"])
    d = tmp_path / "p"
    d.mkdir()
    (d / "one.txt").write_text("0 0.5 0.5 0.2 0.4 0.9\n\n1 0.5 0.5 0.2 0.4 x\n")
    with pytest.raises(DetforgeError, match="not a number") as e:
        read_predictions(d, gt)
    assert e.value.line == 3
    (d / "one.txt").write_text("0 0.5 0.5 0.2 0.4 0.9\n0 0.5 0.5 0.2 0.4\n")
    with pytest.raises(DetforgeError, match="confidence column") as e:
        read_predictions(d, gt)
    assert e.value.line == 2
    (d / "one.txt").write_text("0 0.5 0.5 0.2 0.4 0.9\n7 0.5 0.5 0.2 0.4 0.8\n")
    pred = read_predictions(d, gt)
    assert pred.num_boxes == 1 and pred.meta["unmatched"]["classes"] == [7]
    assert [type(c) for c in pred.meta["unmatched"]["classes"]] == [int]  # named '7', not '7.0'
    assert np.allclose(pred.boxes.coords, [[0.5, 0.5, 0.2, 0.4]])
    (d / "one.txt").write_text("7 0.5 0.5 0.2 0.4 0.8\n9 0.5 0.5 0.2 0.4 0.8\n")
    with pytest.raises(DetforgeError, match=r"\(class 7 is not in the ground truth\)"):
        evaluate(gt, read_predictions(d, gt))


def test_comp4_coordinates_are_one_based(tmp_path: Path) -> None:
    gt = darknet_like(["a/one.jpg"])
    d = tmp_path / "p"
    d.mkdir()
    (d / "comp4_det_test_cat.txt").write_text("one 0.9 41 16 61 36\n")
    (d / "comp4_det_test_bird.txt").write_text("one 0.9 41 16 61 36\n")
    pred = read_predictions(d, gt)
    assert pred.boxes.coords.tolist() == [[40.0, 15.0, 60.0, 35.0]]
    assert pred.meta["unmatched"]["classes"] == ["bird"]
    res = evaluate(gt, pred, protocol="darknet", ignore_unmatched=True)
    assert res["darknet"]["per_class"][0]["AP"] == 1.0
    assert any("detector valid" in n for n in res["notes"]) and res["darknet_valid"]


def test_predictions_without_scores_are_refused() -> None:
    gt = darknet_like(["a/one.jpg"])
    with pytest.raises(DetforgeError, match="no finite score"):
        evaluate(gt, gt)


def test_row_ids_written_by_detforge_win_over_file_name_numbers(tmp_path: Path) -> None:
    # Names end in numbers, but the results use detforge's own ids (row numbers, as written
    # by `detforge eval --out` and `detforge predict`): they must not be re-read as numbers.
    gt = darknet_like(["x/img_5.jpg", "x/img_3.jpg", "x/img_9.jpg"])
    res = [
        {"image_id": i, "category_id": 1, "bbox": [40, 15, 20, 20], "score": 0.9} for i in (0, 1, 2)
    ]
    p = tmp_path / "r.json"
    p.write_text(json.dumps(res))
    pred = read_predictions(p, gt)
    assert pred.boxes.image.tolist() == [0, 1, 2]
    assert "image_ids" not in pred.meta["unmatched"]


def test_huge_integer_image_ids_are_not_rounded(tmp_path: Path) -> None:
    big = 2**53 + 1  # not representable as float64: must not go through the float parser
    gt = make_dataset(["cat"], paths=["a.jpg", "b.jpg"], widths=[10, 10], heights=[10, 10],
                      image_ids=[big, big - 1], meta={"format": "coco"})  # fmt: skip
    p = tmp_path / "r.json"
    p.write_text(
        json.dumps([{"image_id": big, "category_id": 1, "bbox": [1, 1, 2, 2], "score": 1}])
    )
    pred = read_predictions(p, gt)
    assert pred.boxes.image.tolist() == [0]


def test_darknet_lines_hand_computed(tmp_path: Path) -> None:
    text = darknet_lines([[10, 20, 50, 60]], [2], [0.75], 200, 100)
    # cx = 30/200, cy = 40/100, w = 40/200, h = 40/100
    assert text == "2 0.150000 0.400000 0.200000 0.400000 0.750000\n"
    write_darknet_txt(tmp_path / "a.txt", np.zeros((0, 4)), [], [], 10, 10)
    assert (tmp_path / "a.txt").read_text() == ""


def test_coco_results_load_in_pycocotools(tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    gt = {
        "images": [{"id": 7, "width": 200, "height": 100, "file_name": "a.jpg"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 7,
                "category_id": 1,
                "bbox": [10, 20, 40, 40],
                "area": 1600,
                "iscrowd": 0,
            }
        ],
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
    }
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    recs = coco_records(
        [7, 7], [[10, 20, 50, 60], [0, 0, 5.5, 2.25]], [0, 1], [0.9, 0.123456789], [1, 2]
    )
    write_coco_results(tmp_path / "res.json", recs)
    coco = COCO(str(tmp_path / "gt.json"))
    res = coco.loadRes(str(tmp_path / "res.json"))
    anns = res.loadAnns(res.getAnnIds(imgIds=[7]))
    assert [a["bbox"] for a in anns] == [[10, 20, 40, 40], [0, 0, 5.5, 2.25]]
    assert [a["category_id"] for a in anns] == [1, 2]  # 1-based by default
    # full float32 precision, written as the shortest decimal that float32 reads back
    assert anns[0]["area"] == pytest.approx(1600) and anns[1]["score"] == 0.12345679
    assert anns[0]["score"] == 0.9
    mapped = coco_records([7], [[0, 0, 1, 1]], [1], [0.5], [3, 9])
    assert mapped[0]["category_id"] == 9
    write_coco_results(tmp_path / "empty.json", [])
    assert json.loads((tmp_path / "empty.json").read_text()) == []


def test_one_string_image_id_among_ints_matches_the_rest(tmp_path: Path) -> None:
    gt = darknet_like(["a/one.jpg", "a/two.jpg", "a/three.jpg"])
    res = [
        {"image_id": 0, "category_id": 1, "bbox": [40, 15, 20, 20], "score": 0.9},
        {"image_id": 2, "category_id": 1, "bbox": [40, 15, 20, 20], "score": 0.8},
        {"image_id": "two", "category_id": 1, "bbox": [40, 15, 20, 20], "score": 0.7},
        {"image_id": 1.0, "category_id": 1, "bbox": [40, 15, 20, 20], "score": 0.6},
    ]
    p = tmp_path / "r.json"
    p.write_text(json.dumps(res))
    pred = read_predictions(p, gt)
    assert pred.boxes.image.tolist() == [0, 1, 1, 2] and pred.meta["unmatched"]["boxes"] == 0
    assert evaluate(gt, pred)["darknet"]["per_class"][0]["AP"] == 1.0


def _darknet_results(rows: list[tuple[int, int, list[float], float]]) -> str:
    """Text exactly as darknet's print_cocos writes it (``detector valid``, eval=coco)."""
    body = "".join(
        f'{{"image_id":{i}, "category_id":{c}, "bbox":[{b[0]:f}, {b[1]:f}, {b[2]:f}, {b[3]:f}], '
        f'"score":{s:f}}},\n'
        for i, c, b, s in rows
    )
    return "[\n" + body[:-2] + "\n]\n"


@pytest.mark.parametrize("name", ["coco_results.json", "renamed.json"])
def test_darknet_coco_results_map_coco_ids_back(tmp_path: Path, name: str) -> None:
    # 13 classes: darknet writes class k as coco_ids[k]: 0..10 -> 1..11, 11 -> 13, 12 -> 14
    names = [f"c{k}" for k in range(13)]
    paths = [f"x/{n:06d}.jpg" for n in (5, 9, 12)]  # darknet's image_id: atoi(file stem)
    gt = make_dataset(
        names, paths=paths, widths=[100] * 3, heights=[50] * 3, box_image=[0, 1, 2],
        box_cls=[11, 12, 10], box_coords=[[40, 15, 20, 20]] * 3, box_format=BoxFormat.XYWH_PIXEL,
    )  # fmt: skip
    rows = [(5, 13, [40, 15, 20, 20], 0.9), (9, 14, [40, 15, 20, 20], 0.8),
            (12, 11, [40, 15, 20, 20], 0.7)]  # fmt: skip
    p = tmp_path / name
    p.write_text(_darknet_results(rows))
    pred = read_predictions(p, gt)
    assert pred.boxes.cls.tolist() == [11, 12, 10]  # not 12 (= category 13 read as 1..K)
    assert pred.boxes.image.tolist() == [0, 1, 2] and pred.meta["unmatched"]["boxes"] == 0
    assert any("coco_ids" in n for n in pred.meta["notes"])
    res = evaluate(gt, pred)
    assert res["coco"]["stats"]["AP50"] == pytest.approx(1.0, abs=1e-12)
    assert [r["AP"] for r in res["darknet"]["per_class"]][10:] == [1.0, 1.0, 1.0]


def test_darknet_coco_results_without_numbered_names_is_refused(tmp_path: Path) -> None:
    # darknet numbers images by the digits their names start with; 'img_a' has none (id 0)
    gt = darknet_like(["x/img_a.jpg", "x/img_b.jpg"])
    p = tmp_path / "coco_results.json"
    p.write_text(_darknet_results([(0, 1, [40, 15, 20, 20], 0.9), (0, 1, [1, 1, 5, 5], 0.5)]))
    pred = read_predictions(p, gt)
    assert pred.meta["unmatched"]["boxes"] == 2  # not silently all on the first image
    with pytest.raises(DetforgeError, match="2 of 2 predictions"):
        evaluate(gt, pred)


def test_float32_decimals_are_short_and_exact() -> None:
    from detforge.formats.predictions import float32_decimals

    v = np.float32([241.00032, 10.1, 1e-5, 0.123456789, 3000.5])
    got = float32_decimals(v)
    assert got.tolist() == [241.00032, 10.1, 1e-05, 0.12345679, 3000.5]
    assert np.array_equal(got.astype(np.float32), v)
    with pytest.raises(DetforgeError, match="not finite"):
        float32_decimals([1.0, np.nan])


def test_comp4_writer_round_trip_and_eval_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from detforge.cli.main import main
    from detforge.formats.predictions import write_comp4

    gt = darknet_like(["a/one.jpg", "a/two.jpg"])
    pred = make_dataset(
        gt.class_names, paths=list(gt.images.path), widths=[100, 100], heights=[50, 50],
        box_image=[0, 1], box_cls=[0, 1], box_coords=[[40, 15, 60, 35], [1.5, 2.25, 9, 9]],
        box_format=BoxFormat.XYXY_PIXEL, score=[0.9, 0.25],
    )  # fmt: skip
    write_comp4(tmp_path / "v", pred)
    back = read_predictions(tmp_path / "v", gt)
    assert sorted(back.boxes.coords.tolist()) == sorted(pred.boxes.coords.tolist())
    # the CLI says these are detector valid's detections, not detector map's
    img = tmp_path / "img"
    img.mkdir()
    from PIL import Image

    for stem in ("one", "two"):
        Image.new("RGB", (100, 50)).save(img / f"{stem}.jpg")
        (img / f"{stem}.txt").write_text("0 0.5 0.5 0.2 0.4\n")
    (img / "obj.names").write_text("cat\ndog\n")
    assert main(["eval", str(img), str(tmp_path / "v"), "--protocol", "darknet"]) == 0
    out = capsys.readouterr().out
    assert "note: comp4_det_test_* files come from 'darknet detector valid'" in out
    assert "'detector map' scoring of 'detector valid' detections" in out
    assert "identical to AlexeyAB" not in out


@pytest.mark.parametrize("spread", [10, 10**15])
def test_factorize_equals_numpy_unique(spread: int) -> None:
    from detforge.formats.predictions.align import factorize

    a = np.random.default_rng(0).integers(-spread, spread, 5000)
    uniq, inv = factorize(a)
    ref, ref_inv = np.unique(a, return_inverse=True)
    assert np.array_equal(uniq, ref) and np.array_equal(inv, ref_inv.reshape(-1))


def test_non_integer_category_is_a_one_line_error(tmp_path: Path) -> None:
    gt = darknet_like(["a/one.jpg"])
    p = tmp_path / "r.json"
    row = {"image_id": 0, "category_id": 1.5, "bbox": [1, 2, 3, 4], "score": 1}
    p.write_text(json.dumps([row]))
    with pytest.raises(DetforgeError, match="category_id"):
        read_predictions(p, gt)


def test_darknet_split_reads_keep_the_whole_dataset_ids(tmp_path: Path) -> None:
    from PIL import Image

    from detforge.formats.darknet import read_darknet

    lists = {"train": ["a", "b", "c"], "valid": ["d", "e"], "test": ["f", "g"]}
    for split, stems in lists.items():
        for s in stems:
            Image.new("RGB", (8, 6)).save(tmp_path / f"{s}.png")
            (tmp_path / f"{s}.txt").write_text("0 0.5 0.5 0.5 0.5\n")
        (tmp_path / f"{split}.txt").write_text("".join(f"{s}.png\n" for s in stems))
    data = tmp_path / "obj.data"
    data.write_text("classes = 1\ntrain = train.txt\nvalid = valid.txt\ntest = test.txt\n")
    whole = read_darknet(data)
    want = {Path(p).stem: i for p, i in zip(whole.images.path, whole.images.id, strict=True)}
    assert want == {s: i for i, s in enumerate("abcdefg")}
    for split in lists:
        part = read_darknet(data, split=split)
        got = {Path(p).stem: int(i) for p, i in zip(part.images.path, part.images.id, strict=True)}
        assert got == {s: want[s] for s in lists[split]}
    (tmp_path / "b.png").unlink()  # a missing image keeps the others' ids
    skipped = read_darknet(data, missing="skip", cache=False)
    assert skipped.images.id.tolist() == [0, 2, 3, 4, 5, 6]
    assert read_darknet(data, split="test", missing="skip").images.id.tolist() == [5, 6]


def test_sidecar_matches_by_path_and_is_ignored_once_the_file_changes(tmp_path: Path) -> None:
    from detforge.formats.predictions import Provenance, read_provenance

    gt = darknet_like(["a/one.jpg", "a/two.jpg"])  # ids 0, 1
    # made elsewhere: id 7 was a/two.jpg there
    prov = Provenance(written_by="test", images={7: "a/two.jpg"}, category_ids=[1, 2])
    recs = coco_records([7], [[40, 15, 60, 35]], [0], [0.9], [1, 2])
    p = tmp_path / "dets.json"
    write_coco_results(p, recs, provenance=prov)
    assert (tmp_path / "dets.meta.json").is_file()
    pred = read_predictions(p, gt)
    assert pred.boxes.image.tolist() == [1] and pred.meta["provenance"] is not None
    # another tool rewrites the results: the sidecar no longer describes them
    p.write_text(json.dumps(recs, indent=1))
    assert read_provenance(p) is None
    pred = read_predictions(p, gt)
    assert pred.meta["unmatched"]["boxes"] == 1  # id 7 is no image of this GT
    assert any("another version" in n for n in pred.meta["notes"])


def test_sidecar_path_through_a_link_to_the_folder_is_the_same_image(tmp_path: Path) -> None:
    """Predictions made on lnk/b/one.jpg (lnk -> data) belong to data/b/one.jpg, not to the
    first image named one (data/a/one.jpg), which the stem alone would pick."""
    from detforge.formats.predictions import Provenance

    for sub in ("a", "b"):
        (tmp_path / "data" / sub).mkdir(parents=True)
    os.symlink(tmp_path / "data", tmp_path / "lnk")
    gt = darknet_like([str(tmp_path / "data" / s / "one.jpg") for s in ("a", "b")])  # ids 0, 1
    prov = Provenance(
        written_by="test", images={7: str(tmp_path / "lnk" / "b" / "one.jpg")}, category_ids=[1, 2]
    )
    p = tmp_path / "dets.json"
    write_coco_results(
        p, coco_records([7], [[40, 15, 60, 35]], [0], [0.9], [1, 2]), provenance=prov
    )
    assert read_predictions(p, gt).boxes.image.tolist() == [1]


def test_a_folder_with_comp4_and_per_image_files_is_refused(tmp_path: Path) -> None:
    gt = darknet_like(["a/one.jpg"])
    d = tmp_path / "p"
    d.mkdir()
    (d / "one.txt").write_text("0 0.5 0.5 0.2 0.4 0.9\n")
    (d / "comp4_det_test_cat.txt").write_text("one 0.9 41 16 61 36\n")
    with pytest.raises(DetforgeError, match="mixed prediction formats") as e:
        read_predictions(d, gt)
    assert e.value.path == str(d)
    assert "comp4_det_test_cat.txt" in str(e.value) and "one.txt" in str(e.value)


@pytest.mark.parametrize("name", ["one.txt", "comp4_det_test_cat.txt"])
def test_a_folder_named_like_a_prediction_file_is_refused(tmp_path: Path, name: str) -> None:
    gt = darknet_like(["a/one.jpg", "a/two.jpg"])
    d = tmp_path / "p"
    d.mkdir()
    (d / "two.txt").write_text("0 0.5 0.5 0.2 0.4 0.9\n")
    (d / name).mkdir()
    with pytest.raises(DetforgeError, match=r"folder .* named like a prediction file") as e:
        read_predictions(d, gt)
    assert e.value.path == str(d / name) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("0 nan 0.5 0.1 0.1 0.9", "not a finite number"),
        ("0 0.5 0.5 0.1 0.1 inf", "not a finite number"),
        ("nan 0.5 0.5 0.1 0.1 0.9", "class is not a finite number"),
        ("1e300 0.5 0.5 0.1 0.1 0.9", "class is not a finite number"),
        ("0 0.5 0.5 1e30 1e30 0.9", "beyond 9.54 image sizes"),
        ("0 0.5 0.5 0.1 0.1 1e300", "score is beyond"),
        ("0 0.5 0.5 -0.1 0.1 0.9", "negative width or height"),
    ],
)
def test_txt_values_no_evaluation_can_use_name_the_line(
    tmp_path: Path, line: str, message: str
) -> None:
    gt = darknet_like(["a/one.jpg"])
    d = tmp_path / "p"
    d.mkdir()
    (d / "one.txt").write_text(f"0 0.5 0.5 0.2 0.4 0.9\n\n{line}\n")
    with pytest.raises(DetforgeError, match=message) as e:
        read_predictions(d, gt)
    assert (e.value.path, e.value.line) == (str(d / "one.txt"), 3)
    (d / "one.txt").write_text("0 0.5 0.5 0 0 0.9\n0 -0.5 1.5 9 9 0.9\n")  # legal, if odd
    assert read_predictions(d, gt).num_boxes == 2


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("one 0.9 nan 16 61 36", "not a finite number"),
        ("one 0.9 41 16 1e300 36", "beyond 1e\\+07 pixels"),
        ("one 0.9 61 16 41 36", "corners are swapped"),
        ("one 0.9 41 36 61 16", "corners are swapped"),
    ],
)
def test_comp4_values_no_evaluation_can_use_name_the_line(
    tmp_path: Path, line: str, message: str
) -> None:
    gt = darknet_like(["a/one.jpg"])
    d = tmp_path / "p"
    d.mkdir()
    f = d / "comp4_det_test_cat.txt"
    f.write_text(f"one 0.9 41 16 61 36\n{line}\n")
    with pytest.raises(DetforgeError, match=message) as e:
        read_predictions(d, gt)
    assert (e.value.path, e.value.line) == (str(f), 2)
    f.write_text("one 0.9 41 16 41 16\n")  # zero size (darknet clips to the image): legal
    assert read_predictions(d, gt).num_boxes == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bbox": [1e308, 1, 2, 3]}, "result #1 .*beyond 1e\\+07 pixels"),
        ({"bbox": [1, 2, -3, 4]}, "result #1 .*negative width or height"),
        ({"bbox": [True, 1, 2, 3]}, "result #1: 'bbox' must be 4 numbers .*true"),
        ({"bbox": [1, 2, 3, 4, 5]}, "result #1: 'bbox' must be 4 numbers"),
        ({"bbox": ["1", "2", "3", "4"]}, "result #1: 'bbox' must be 4 numbers"),
        ({"score": "0.5"}, "result #1: 'score' must be a number"),
        ({"score": 1e300}, "result #1 .*score is beyond"),
    ],
)
def test_results_json_values_are_strict_and_name_the_result(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    gt = darknet_like(["a/one.jpg"])
    good = {"image_id": 0, "category_id": 1, "bbox": [40, 15, 20, 20], "score": 0.9}
    p = tmp_path / "r.json"
    p.write_text(json.dumps([good, {**good, **change}]))
    with pytest.raises(DetforgeError, match=message) as e:
        read_predictions(p, gt)
    assert e.value.path == str(p) and "\n" not in str(e.value)
    p.write_text(json.dumps([good, {**good, "bbox": [0, 0, 0, 0]}]))  # zero size: scored
    assert read_predictions(p, gt).num_boxes == 2
