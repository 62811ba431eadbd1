"""``detforge eval``: score any detector's predictions with pycocotools' and Darknet's rules."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from detforge.errors import DetforgeError
from detforge.utils.outputs import add_exist_ok_option, claim_file, results_dir, say_saved

if TYPE_CHECKING:
    from detforge.data.dataset import Dataset
    from detforge.predict.writers import InputGuard

HELP = "score predictions against ground truth: COCO mAP (= pycocotools) and Darknet mAP"
DESCRIPTION = """\
Evaluate the predictions PRED of any detector against the ground truth GT and print the
numbers two reference tools would print, exactly:

  * COCO protocol: the 12 numbers of pycocotools' COCOeval (AP@[.50:.95], AP50, AP75, APs/m/l,
    AR1/10/100, ARs/m/l) with its crowd, area and maxDets rules, plus per-class AP/AP50/AR;
  * Darknet protocol: AlexeyAB darknet's 'detector map' -- per-class AP (--points 0 = area
    under the curve, the default; 11 or 101 points), mAP over all classes of the names file,
    and precision, recall, F1, TP, FP, FN and average IoU at --conf.

GT is any dataset detforge reads: a Darknet .data file (its 'valid' list; --split picks
another), an image list, a folder, an Ultralytics YAML, VOC, TFRecords, or a COCO instances
JSON. PRED is one of
  * a COCO results JSON: [{"image_id", "category_id", "bbox": [x,y,w,h], "score"}, ...]
  * a folder of per-image .txt files 'class cx cy w h conf' (normalized; Ultralytics save_conf)
  * a folder of Darknet 'detector valid' files comp4_det_test_<class>.txt
Images are matched by the sidecar PRED.meta.json that detforge writes beside its prediction
files (dataset, split, model, and the image of every image_id), else by id, else by file stem.
Without --split, the split the predictions were made on is scored; another split is refused.
When more than 1% of the predictions fit no image or class, eval stops with exit 2 (say
--ignore-unmatched to score the rest); fewer are a warning with counts.

Bad values stop eval before any output, naming file and line: box values or scores that are
not finite or beyond 1e7 pixels (normalized: ~9.5 image sizes), negative widths/heights, a
folder mixing comp4 and per-image files, a COCO GT without 'annotations'.

Output: a console table; --json FILE writes the numbers (an existing FILE only with
--exist-ok, never one of the inputs); --out DIR (default: <results>/eval when the .data file
has a results= entry; with --plots and no such entry, runs/eval/<dataset name>; a folder that
exists is numbered DIR-2, DIR-3 ... unless --exist-ok) receives metrics.json,
predictions.json (COCO results) and, with --plots, PR curves, the F1-confidence curve with
the best threshold, and a confusion matrix (PNG).

examples:
  detforge eval annotations/instances_val2017.json detections.json
  detforge eval data/obj.data runs/predict/obj/labels --protocol darknet --points 11
  detforge eval data/obj.data results/ --conf 0.3 --json metrics.json --plots
  detforge eval data/obj.data preds.json --every 10          # 1 image in 10, fast
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from detforge.cli.common import (
        add_darknet_protocol_options,
        add_ignore_unmatched_option,
        add_path_map_option,
        split_name,
    )

    parser.add_argument("gt", metavar="GT", help="ground truth: a dataset or COCO instances JSON")
    parser.add_argument("pred", metavar="PRED", help="predictions: results JSON or .txt folder")
    parser.add_argument(
        "--protocol", choices=["coco", "darknet", "all"], default="all",
        help="which numbers to compute [all]",
    )  # fmt: skip
    add_darknet_protocol_options(parser)
    parser.add_argument("--every", type=int, default=1, metavar="N", help="use 1 image in N [1]")
    parser.add_argument(
        "--split", type=split_name, help="split of GT to evaluate [valid when GT has one]"
    )
    parser.add_argument(
        "--out", metavar="DIR",
        help="folder for metrics, predictions and plots [<results>/eval, or with --plots "
        "runs/eval/<name>; numbered if it exists]",
    )  # fmt: skip
    add_exist_ok_option(parser)
    parser.add_argument("--json", metavar="FILE", help="write the metrics as JSON to FILE")
    parser.add_argument("--plots", action="store_true", help="write PR/F1 curves, confusion matrix")
    parser.add_argument("--images-dir", help="COCO GT: folder the file_name entries are in")
    add_ignore_unmatched_option(parser)
    add_path_map_option(parser)


def run(args: argparse.Namespace) -> int:
    from detforge.cli.common import parse_path_map
    from detforge.eval.api import (
        check_ground_truth,
        check_points,
        evaluate,
        jsonable,
        refuse_no_boxes,
    )
    from detforge.eval.report import format_report
    from detforge.formats.coco import dump_json
    from detforge.formats.detect import read_ground_truth
    from detforge.formats.predictions import read_predictions, read_provenance, save_predictions
    from detforge.utils.io import atomic_write_bytes

    if args.every < 1:
        raise DetforgeError(f"--every must be a positive integer, not {args.every}")
    check_points(args.points)
    if args.json:  # never an input, even with --exist-ok; then no existing file without it
        _input_guard(args, None).check(args.json, option="--json")
        claim_file(args.json, exist_ok=args.exist_ok, option="--json")
    prov = read_provenance(args.pred) if Path(args.pred).exists() else None
    gt, results = read_ground_truth(
        args.gt, split=args.split, images_dir=args.images_dir,
        path_map=parse_path_map(args.path_map), default_split=prov.split if prov else None,
    )  # fmt: skip
    check_ground_truth(gt)
    refuse_no_boxes(gt)
    pred = read_predictions(args.pred, gt)
    guard = _input_guard(args, gt)
    if args.json:
        guard.check(args.json, option="--json")
    result = evaluate(
        gt, pred, protocol=args.protocol, iou=args.iou, points=args.points,
        conf=args.conf, every=args.every, ignore_unmatched=args.ignore_unmatched,
    )  # fmt: skip
    print(format_report(result))
    out = None
    if args.out is not None or results is not None or args.plots:
        out = results_dir(
            "eval", out=args.out, source=args.gt, base=results, exist_ok=args.exist_ok
        )
    if out is not None:
        for name in ("metrics.json", "predictions.json", "predictions.meta.json"):
            guard.check(out / name, option="--out")
        out.mkdir(parents=True, exist_ok=True)
        if args.plots:
            from detforge.eval.plots import write_plots

            write_plots(result, gt, pred, out, iou=args.iou, conf=args.conf)
    clean = jsonable(result)
    if args.json:
        atomic_write_bytes(args.json, dump_json(clean))
    if out is not None:
        atomic_write_bytes(out / "metrics.json", dump_json(clean))
        save_predictions(out / "predictions.json", pred, gt, written_by="detforge eval")
        say_saved("results", out)
    if args.json:
        say_saved("metrics", args.json)
    return 0


def _input_guard(args: argparse.Namespace, gt: Dataset | None) -> InputGuard:
    """What eval reads (:func:`~detforge.predict.writers.dataset_guard`): GT and PRED (every
    file in a folder), the predictions' sidecar and, once ``gt`` is read, its images, their
    label files and a ``.data`` file's lists and names."""
    from detforge.formats.predictions import sidecar_path
    from detforge.predict.writers import dataset_guard

    named = [Path(args.gt), Path(args.pred)]
    files = [p for p in named if not p.is_dir()] + [sidecar_path(args.pred)]
    return dataset_guard([gt] if gt is not None else [], files=files,
                         folders=[p for p in named if p.is_dir()])  # fmt: skip
