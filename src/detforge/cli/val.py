"""``detforge val``: evaluate a checkpoint on a split of a dataset with the evaluation engine."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from detforge.errors import DetforgeError
from detforge.utils.textfile import require_file

if TYPE_CHECKING:
    from detforge.data.dataset import Dataset

HELP = "evaluate a trained checkpoint on a dataset split (COCO mAP, Darknet mAP)"
DESCRIPTION = """\
Run WEIGHTS (a detforge checkpoint, e.g. runs/train/obj/weights/best.pt, or its .onnx
export) over one split of DATA (a .data file or any dataset 'detforge convert' reads), each image
letterboxed into the model's input square exactly as 'detforge predict' does, and score the
predictions with the same evaluation engine as 'detforge eval' (COCO mAP50-95 and mAP50,
identical to pycocotools; Darknet mAP with --protocol darknet or all). The image size
defaults to the one the model was trained or exported at.

examples:
  detforge val runs/train/obj/weights/best.pt data/obj.data
  detforge val runs/train/obj/weights/best.pt data/obj.data --split test --json test-metrics.json
  detforge val best.pt data/obj.data --protocol all --device cuda
  detforge val yolov4-tiny.weights data/obj.data --cfg yolov4-tiny.cfg

A Darknet .weights runs with Darknet's rules ('darknet detector map'): the image stretched to
the cfg size (letterboxed if letter_box=1), detections above 0.005, per-class NMS with the
cfg's nms_kind at 0.45; class names from --names, else the dataset's.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from detforge.cli.common import (
        add_class_match_option,
        add_darknet_model_options,
        add_path_map_option,
        split_name,
    )
    from detforge.utils.outputs import add_exist_ok_option

    parser.add_argument(
        "weights", help="detforge checkpoint (.pt), exported model (.onnx) or Darknet .weights"
    )
    parser.add_argument("data", help="dataset: a .data file or a dataset folder")
    parser.add_argument(
        "--split", type=split_name, default="valid", help="split to evaluate [valid]"
    )
    parser.add_argument("--imgsz", type=int, default=None, help="input size [checkpoint's]")
    parser.add_argument("--batch", type=int, default=16, help="images per batch [16]")
    parser.add_argument("--device", default="", help="cpu, cuda or cuda:N [CUDA if available]")
    parser.add_argument("--half", action="store_true", help="float16 on a CUDA device")
    parser.add_argument(
        "--conf", type=float, default=None, help="score threshold [0.001; Darknet: 0.005]"
    )
    parser.add_argument(
        "--iou", type=float, default=None, help="NMS IoU threshold [0.7; Darknet: 0.45]"
    )
    parser.add_argument(
        "--max-det", type=int, default=None, help="detections per image [300; Darknet: all]"
    )
    parser.add_argument(
        "--protocol", choices=["coco", "darknet", "all"], default="all",
        help="which metrics to compute [all]",
    )  # fmt: skip
    parser.add_argument(
        "--json", metavar="FILE", help="write the metrics as JSON (as 'detforge eval --json')"
    )
    add_exist_ok_option(parser)
    parser.add_argument(
        "--save-json", metavar="FILE",
        help="write the predictions as COCO results (+ FILE.meta.json), as 'predict' does",
    )  # fmt: skip
    add_darknet_model_options(parser)
    add_class_match_option(parser)
    add_path_map_option(parser)


def run(args: argparse.Namespace) -> int:

    from detforge.cli.common import (
        match_dataset_classes,
        parse_path_map,
        require_model_first,
    )
    from detforge.data.dataset import canonical_split
    from detforge.eval.api import evaluate, jsonable
    from detforge.eval.report import format_report
    from detforge.formats.coco import dump_json
    from detforge.formats.detect import read_ground_truth
    from detforge.predict.api import load
    from detforge.train.validate import coco_map
    from detforge.utils.io import atomic_write_bytes
    from detforge.utils.outputs import claim_file, say_saved

    require_model_first("val", str(args.weights), args.data)
    require_file(args.weights, "weights")
    if args.json:
        claim_file(args.json, exist_ok=args.exist_ok, option="--json")
    if args.save_json:
        claim_file(args.save_json, exist_ok=args.exist_ok, option="--save-json")
    model = load(
        args.weights, device=args.device, imgsz=args.imgsz, half=args.half, cfg=args.cfg,
        names=args.names,
    )  # fmt: skip
    split = canonical_split(args.split)
    # The ground truth 'eval' and 'map' read (for a .data file only the split's list).
    part, _ = read_ground_truth(args.data, split=split, path_map=parse_path_map(args.path_map))
    if part.num_images == 0:
        raise DetforgeError(f"the dataset has no {split!r} images", path=args.data)
    _refuse_inputs(args, part)
    match_dataset_classes(
        model, args.names, part.class_names, by_index=args.classes_by_index,
        model_path=args.weights, data=args.data,
    )  # fmt: skip
    pred = model.predict_dataset(
        part, conf=args.conf, iou=args.iou, max_det=args.max_det, batch=args.batch
    )
    report: dict[str, Any] = evaluate(part, pred, protocol=args.protocol)
    print(format_report(report))
    if args.protocol in ("coco", "all"):
        m, m50 = coco_map(report)
        print(f"{split}: {part.num_images} images, mAP50-95 {m:.4f}, mAP50 {m50:.4f} (COCO)")
    if args.json:
        atomic_write_bytes(args.json, dump_json(jsonable(report)))
        say_saved("metrics", args.json)
    if args.save_json:
        from detforge.formats.predictions import save_predictions

        save_predictions(
            args.save_json, pred, part, written_by="detforge val", dataset=args.data,
            model=args.weights, settings={"conf": args.conf, "iou": args.iou,
                                          "max_det": args.max_det, "imgsz": args.imgsz},
        )  # fmt: skip
        say_saved("predictions", args.save_json)
    return 0


def _refuse_inputs(args: argparse.Namespace, ds: Dataset) -> None:
    """``--json`` and ``--save-json`` (and its sidecar) must not name a file val reads:
    WEIGHTS, its cfg and names, or anything of the dataset (:func:`dataset_guard`)."""
    from detforge.formats.predictions import sidecar_path
    from detforge.predict.writers import dataset_guard, model_files

    files = model_files(args.weights, cfg=args.cfg, names=args.names)
    guard = dataset_guard([ds], files=files)
    if args.json:
        guard.check(args.json, option="--json")
    if args.save_json:
        guard.check(args.save_json, option="--save-json")
        guard.check(sidecar_path(args.save_json), option="--save-json")
