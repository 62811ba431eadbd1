"""``detforge map``: Darknet's ``detector map`` habit in one command -- predict on a split and
evaluate it with both protocols, results into the ``.data`` file's ``results=`` folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from detforge.cli.common import (
    add_darknet_model_options,
    add_darknet_protocol_options,
    add_path_map_option,
    adopt_dataset_names,
    parse_path_map,
)
from detforge.errors import DetforgeError

HELP = "predict on a split and score it (COCO + Darknet mAP), like 'darknet detector map'"
DESCRIPTION = """\
The Darknet habit in one command: run WEIGHTS (a detforge .pt checkpoint, an exported .onnx,
or a Darknet .weights with its .cfg, also in Darknet's order DATA CFG WEIGHTS) on one split
of DATA (a Darknet .data file, or any dataset detforge reads), then score the predictions
exactly as 'detforge eval' does:

  * COCO protocol: pycocotools' 12 numbers (AP@[.50:.95], AP50, ...) and per-class AP;
  * Darknet protocol: 'detector map' per-class AP, mAP@IoU, precision/recall/F1 at --conf.

Everything goes to the results folder: the .data file's results= entry (relative to the .data
file, created when missing), else 'results' beside the .data file, or --out DIR:
  metrics.json      every number printed
  predictions.json  the detections as COCO results (for 'detforge eval' or pycocotools),
                    with predictions.meta.json (dataset, split, model, image of each id)
  *.png             PR curves, F1-confidence curve, confusion matrix (skip with --no-plots)

Unlike Darknet you do not need a 'results' folder in the current directory, nor the .cfg.

examples:
  detforge map data/obj.data runs/train/obj/weights/best.pt
  detforge map data/obj.data best.pt --split test --points 11 --iou 0.5
  detforge map data/obj.data best.onnx --out eval-onnx
  detforge map data/obj.data yolov4-tiny.cfg yolov4-tiny.weights    # as 'darknet detector map'

A Darknet network is run as 'darknet detector map' runs it: detections above 0.005, per-class
NMS with the cfg's nms_kind at 0.45, boxes not clipped, class names from --names or DATA.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="ground truth: a .data file or any dataset detforge reads")
    parser.add_argument(
        "weights", help="detforge checkpoint (.pt), exported model (.onnx), Darknet .weights, "
        "or (Darknet's order) the .cfg followed by the .weights",
    )  # fmt: skip
    parser.add_argument("darknet_weights", nargs="?", metavar="WEIGHTS", help=argparse.SUPPRESS)
    parser.add_argument("--split", default=None, help="split to score [valid when there is one]")
    add_darknet_protocol_options(parser)
    parser.add_argument(
        "--min-score", type=float, default=None,
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
    parser.add_argument("--out", type=Path, default=None, help="results folder (see above)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    add_darknet_model_options(parser)
    add_path_map_option(parser)


def results_folder(data: Path) -> Path:
    """Where results go when ``--out`` is not given and a ``.data`` file has no ``results=``:
    ``results`` beside the dataset file (inside a dataset folder)."""
    return (data if data.is_dir() else data.parent) / "results"


def run(args: argparse.Namespace) -> int:
    from detforge.eval.api import evaluate, jsonable
    from detforge.eval.report import format_report
    from detforge.formats.coco import dump_json
    from detforge.formats.detect import read_ground_truth
    from detforge.formats.predictions import save_predictions
    from detforge.predict.api import load
    from detforge.utils.io import atomic_write_bytes

    if args.points not in (0, 11, 101) and args.points < 2:
        raise DetforgeError(f"--points must be 0, 11 or 101 (or another N >= 2), not {args.points}")
    path_map = parse_path_map(args.path_map)
    data = Path(args.data)
    cfg = args.cfg
    if args.darknet_weights is not None:  # darknet detector map DATA CFG WEIGHTS
        if cfg is not None:
            raise DetforgeError("give the .cfg either before the weights or with --cfg, not both")
        cfg, args.weights = args.weights, args.darknet_weights
    if not Path(args.weights).is_file():
        raise DetforgeError("weights file not found", path=args.weights)
    # The same ground truth 'detforge eval DATA' reads: for a .data file only the split's list.
    ds, results = read_ground_truth(str(data), split=args.split, images_dir=None, path_map=path_map)
    if ds.num_images == 0:
        raise DetforgeError("no images to evaluate", path=data)
    want = ds.splits()[0] if ds.splits() else None
    model = load(
        args.weights, device=args.device, imgsz=args.imgsz, half=args.half, cfg=cfg,
        names=args.names,
    )  # fmt: skip
    adopt_dataset_names(model, args.names, ds.class_names)
    if tuple(model.class_names) != tuple(ds.class_names):
        print(
            f"warning: the model's classes {list(model.class_names)[:6]} differ from the "
            f"dataset's {list(ds.class_names)[:6]}; scoring by class index",
            file=sys.stderr,
        )
    pred = model.predict_dataset(
        ds, conf=args.min_score, iou=args.nms_iou, max_det=args.max_det, batch=args.batch
    )
    result = evaluate(ds, pred, protocol="all", iou=args.iou, points=args.points, conf=args.conf)
    out = args.out or results or results_folder(data)
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
    print(f"\n{data}{split_txt}: {ds.num_images} images; results in {out}/", file=sys.stderr)
    return 0
