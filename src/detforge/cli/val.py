"""``detforge val``: evaluate a checkpoint on a split of a dataset with the evaluation engine."""

from __future__ import annotations

import argparse
from typing import Any

from detforge.errors import DetforgeError

HELP = "evaluate a trained checkpoint on a dataset split (COCO mAP, Darknet mAP)"
DESCRIPTION = """\
Run WEIGHTS (a detforge checkpoint, e.g. runs/train/best.pt) over one split of DATA (a .data
file or any dataset 'detforge convert' reads), with letterboxed rectangular batches, and score
the predictions with the same evaluation engine as 'detforge eval' (COCO mAP50-95 and mAP50,
identical to pycocotools; Darknet mAP with --protocol darknet or all). The image size defaults
to the one the checkpoint was trained at.

examples:
  detforge val runs/train/best.pt data/obj.data
  detforge val runs/train/best.pt data/obj.data --split test --json test-metrics.json
  detforge val best.pt data/obj.data --protocol all --device cuda
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from detforge.cli.common import add_path_map_option

    parser.add_argument("weights", help="detforge checkpoint (.pt)")
    parser.add_argument("data", help="dataset: a .data file or a dataset folder")
    parser.add_argument("--split", default="valid", help="split to evaluate [valid]")
    parser.add_argument("--imgsz", type=int, default=None, help="input size [checkpoint's]")
    parser.add_argument("--batch", type=int, default=16, help="images per batch [16]")
    parser.add_argument("--device", default="", help="cpu, cuda or cuda:N [CUDA if available]")
    parser.add_argument("--workers", type=int, default=2, help="loader processes [2]")
    parser.add_argument("--conf", type=float, default=0.001, help="score threshold [0.001]")
    parser.add_argument("--iou", type=float, default=0.7, help="NMS IoU threshold [0.7]")
    parser.add_argument("--max-det", type=int, default=300, help="detections per image [300]")
    parser.add_argument(
        "--protocol", choices=["coco", "darknet", "all"], default="all",
        help="which metrics to compute [all]",
    )  # fmt: skip
    parser.add_argument(
        "--json", metavar="FILE", help="write the metrics as JSON (as 'detforge eval --json')"
    )
    add_path_map_option(parser)


def run(args: argparse.Namespace) -> int:
    from detforge.cli.common import parse_path_map
    from detforge.data.dataset import canonical_split
    from detforge.eval.api import evaluate, jsonable
    from detforge.eval.report import format_report
    from detforge.formats.coco import dump_json
    from detforge.formats.detect import read_any
    from detforge.models.checkpoint import load_model
    from detforge.train.dataloader import create_dataloader
    from detforge.train.setup import resolve_device
    from detforge.train.validate import coco_map, predict_batches, predictions_dataset
    from detforge.utils.io import atomic_write_bytes

    device = resolve_device(args.device)
    model, names, meta = load_model(args.weights, device=device)
    ds = read_any(args.data, path_map=parse_path_map(args.path_map))
    split = canonical_split(args.split)
    part = ds.split(split)
    if part.num_images == 0:
        have = ", ".join(ds.splits()) or "none"
        raise DetforgeError(f"the dataset has no {split!r} images (splits: {have})", path=args.data)
    if tuple(names) != tuple(ds.class_names):
        raise DetforgeError(
            f"the checkpoint's classes {names} differ from the dataset's "
            f"{list(ds.class_names)}; evaluate on the dataset it was trained for"
        )
    imgsz = args.imgsz or int((meta.get("config") or {}).get("imgsz", 640))
    loader = create_dataloader(
        part, imgsz=imgsz, batch_size=args.batch, augment=False, rect=True,
        workers=args.workers, cache="none",
    )  # fmt: skip
    preds, _ = predict_batches(
        model, loader, device=device, conf=args.conf, iou=args.iou, max_det=args.max_det
    )
    report: dict[str, Any] = evaluate(
        part, predictions_dataset(part, preds), protocol=args.protocol
    )
    print(format_report(report))
    if args.protocol in ("coco", "all"):
        m, m50 = coco_map(report)
        print(f"{split}: {part.num_images} images, mAP50-95 {m:.4f}, mAP50 {m50:.4f} (COCO)")
    if args.json:
        atomic_write_bytes(args.json, dump_json(jsonable(report)))
    return 0
