"""``detforge map``: Darknet's ``detector map`` habit in one command -- predict on a split and
evaluate it with both protocols, results into one new folder (:mod:`detforge.utils.outputs`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from detforge.cli.common import (
    add_class_match_option,
    add_darknet_model_options,
    add_darknet_protocol_options,
    add_path_map_option,
    fraction,
    match_dataset_classes,
    order_model_data,
    parse_path_map,
    split_name,
)
from detforge.errors import DetforgeError
from detforge.utils.outputs import add_output_options, results_dir, say_saved
from detforge.utils.textfile import require_file

HELP = "predict on a split and score it (COCO + Darknet mAP), like 'darknet detector map'"
DESCRIPTION = """\
The Darknet habit in one command: run MODEL (a detforge .pt checkpoint, an exported .onnx,
or a Darknet .weights with its .cfg) on one split of DATA (a Darknet .data file, or any
dataset detforge reads), then score the predictions exactly as 'detforge eval' does:

  * COCO protocol: pycocotools' 12 numbers (AP@[.50:.95], AP50, ...) and per-class AP;
  * Darknet protocol: 'detector map' per-class AP, mAP@IoU, precision/recall/F1 at --conf.

MODEL comes first, as in every detforge command; Darknet's own order DATA CFG WEIGHTS and
the older 'map DATA MODEL' are read too (told apart by file type).

Everything goes to one new folder: --out DIR, else <results>/map when the .data file has a
results= entry (relative to the .data file), else runs/map/<dataset name>; an existing folder
is never written into: the next free DIR-2, DIR-3 ... is used (or --exist-ok):
  metrics.json      every number printed
  predictions.json  the detections as COCO results (for 'detforge eval' or pycocotools),
                    with predictions.meta.json (dataset, split, model, image of each id)
  *.png             PR curves, F1-confidence curve, confusion matrix (skip with --no-plots)

Unlike Darknet you do not need a 'results' folder in the current directory, nor the .cfg.

examples:
  detforge map runs/train/obj/weights/best.pt data/obj.data
  detforge map best.pt data/obj.data --split test --points 11 --iou 0.5
  detforge map best.onnx data/obj.data --out eval-onnx
  detforge map data/obj.data yolov4-tiny.cfg yolov4-tiny.weights    # as 'darknet detector map'

A Darknet network is run as 'darknet detector map' runs it: detections above 0.005, per-class
NMS with the cfg's nms_kind at 0.45, boxes not clipped, class names from --names or DATA.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "weights", metavar="MODEL",
        help="detforge checkpoint (.pt), exported model (.onnx) or Darknet .weights",
    )  # fmt: skip
    parser.add_argument("data", help="ground truth: a .data file or any dataset detforge reads")
    parser.add_argument("darknet_weights", nargs="?", metavar="WEIGHTS", help=argparse.SUPPRESS)
    parser.add_argument(
        "--split", type=split_name, default=None, help="split to score [valid when there is one]"
    )
    add_darknet_protocol_options(parser)
    parser.add_argument(
        "--min-score", type=fraction, default=None,
        help="keep detections scoring at least this (mAP needs the low tail) "
        "[0.001; Darknet: 0.005]",
    )  # fmt: skip
    parser.add_argument(
        "--nms-iou", type=float, default=None, help="NMS IoU threshold [0.7; Darknet: 0.45]"
    )
    parser.add_argument(
        "--max-det", type=int, default=None, help="detections per image [300; Darknet: all]"
    )
    parser.add_argument("--imgsz", type=int, default=None, help="input size [checkpoint's]")
    parser.add_argument("--batch", type=int, default=16, help="images per forward pass [16]")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N [auto]")
    parser.add_argument("--half", action="store_true", help="float16 on a CUDA device")
    add_output_options(parser, "map", out_help="results folder (see above)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    add_darknet_model_options(parser)
    add_class_match_option(parser)
    add_path_map_option(parser)


def run(args: argparse.Namespace) -> int:
    from detforge.eval.api import check_points, evaluate, jsonable
    from detforge.eval.report import format_report
    from detforge.formats.coco import dump_json
    from detforge.formats.detect import read_ground_truth
    from detforge.formats.predictions import save_predictions
    from detforge.predict.api import load
    from detforge.utils.io import atomic_write_bytes

    check_points(args.points)
    if args.nms_iou is not None and not 0.0 < args.nms_iou <= 1.0:
        raise DetforgeError(f"--nms-iou must be above 0 and at most 1, not {args.nms_iou}")
    path_map = parse_path_map(args.path_map)
    given = [args.weights, args.data] + ([args.darknet_weights] if args.darknet_weights else [])
    args.weights, args.data, cfg = order_model_data(given)
    data = Path(args.data)
    if cfg is not None and args.cfg is not None:
        raise DetforgeError("give the .cfg either as an argument or with --cfg, not both")
    cfg = cfg or args.cfg
    require_file(args.weights, "weights")
    # The same ground truth 'detforge eval DATA' reads: for a .data file only the split's list.
    ds, results = read_ground_truth(str(data), split=args.split, images_dir=None, path_map=path_map)
    if ds.num_images == 0:
        raise DetforgeError("no images to evaluate", path=data)
    want = ds.splits()[0] if ds.splits() else None
    # a file in the way of the results folder is refused before the slow predictions
    out = results_dir("map", out=args.out, source=data, base=results, exist_ok=args.exist_ok)
    model = load(
        args.weights, device=args.device, imgsz=args.imgsz, half=args.half, cfg=cfg,
        names=args.names,
    )  # fmt: skip
    match_dataset_classes(
        model, args.names, ds.class_names, by_index=args.classes_by_index,
        model_path=args.weights, data=data,
    )  # fmt: skip
    pred = model.predict_dataset(
        ds, conf=args.min_score, iou=args.nms_iou, max_det=args.max_det, batch=args.batch
    )
    result = evaluate(ds, pred, protocol="all", iou=args.iou, points=args.points, conf=args.conf)
    out.mkdir(parents=True, exist_ok=True)
    if not args.no_plots:
        from detforge.eval.plots import write_plots

        write_plots(result, ds, pred, out, iou=args.iou, conf=args.conf)
    print(format_report(result))
    atomic_write_bytes(out / "metrics.json", dump_json(jsonable(result)))
    save_predictions(
        out / "predictions.json", pred, ds, written_by="detforge map", dataset=data,
        model=args.weights,
        settings={"conf": args.min_score, "iou": args.nms_iou, "max_det": args.max_det},
    )  # fmt: skip
    split_txt = f" {want}" if want else ""
    print(f"\n{data}{split_txt}: {ds.num_images} images", file=sys.stderr)
    say_saved("results", out)
    return 0
