"""``detforge info``: what is in a dataset, per split and per class."""

from __future__ import annotations

import argparse
import json

from detforge.cli.common import add_label_map_option, add_path_map_option, parse_path_map

HELP = "count images, negatives, boxes and classes per split"
DESCRIPTION = """\
Summarize a dataset -- Darknet (a .data file, an image list or a folder of images with
labels), or any format detforge reads (Ultralytics YAML, COCO JSON, Pascal VOC folder,
TFRecords): images, labelled and negative images (no boxes; 'no .txt' counts those without a
label file at all), boxes, boxes and images per class, per split, and the range of image
sizes (read from file headers, cached). Files named in two splits are reported as leaks. An
image listed twice in one list (or split) is one image, counted once, as 'detforge split'
counts it; the duplicate entries are counted on a line of their own ('detforge check' names
each one: Darknet trains such an image twice as often).

Relative paths in a .data file or list are resolved against that file's folder.

examples:
  detforge info data/obj.data
  detforge info data/obj.data --path-map G:/data=/mnt/data
  detforge info data/train.txt --json > info.json
  detforge info VOCdevkit/VOC2012
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", metavar="DATA", help=".data file, image list or folder")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--leaks",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="look for the same file in two splits [on]",
    )
    parser.add_argument(
        "--missing",
        choices=["error", "skip"],
        default="error",
        help="a listed image that does not exist: stop or skip it [error]",
    )
    add_label_map_option(parser, "TFRecords: the label map; VOC: a class list fixing the order")
    add_path_map_option(parser)


def run(args: argparse.Namespace) -> int:
    from detforge.cli.paths import refuse_other_layout
    from detforge.data.lists import one_entry_per_image
    from detforge.data.split import find_leaks
    from detforge.data.stats import format_summary, summarize
    from detforge.formats.darknet import read_darknet
    from detforge.formats.detect import detect_format, read_any

    pm = parse_path_map(args.path_map)
    fmt = detect_format(args.data)
    if fmt == "darknet":
        ds = read_darknet(args.data, path_map=pm, missing=args.missing)
        refuse_other_layout(args.data, ds.num_boxes, "info")
    else:
        ds = read_any(args.data, path_map=pm, label_map=args.label_map)
    duplicates = 0
    if fmt in ("darknet", "ultralytics"):  # image lists: an image listed twice is one image
        ds, duplicates = one_entry_per_image(ds)
    summary = summarize(ds)
    summary["duplicate_entries"] = duplicates
    missing = ds.meta.get("missing_images", [])
    summary["missing_images"] = len(missing)
    summary["unreadable_images"] = dict(ds.meta.get("size_errors", {}))
    invalid = ds.meta.get("invalid_boxes", [])
    summary["invalid_boxes"] = [vars(b) for b in invalid]
    leaks = []
    if args.leaks and len(ds.splits()) > 1:
        leaks = find_leaks(ds.images.path.tolist(), ds.images.split.tolist())
    summary["leaks"] = [vars(lk) for lk in leaks]
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"dataset: {args.data}")
    print(format_summary(summary))
    if missing:
        print(f"missing images skipped: {len(missing)} (first: {missing[0]})")
    if duplicates:
        print(
            f"duplicate list entries counted once: {duplicates} (an image listed twice in one "
            "split; see detforge check)"
        )
    if invalid:
        print(
            f"invalid boxes left out: {len(invalid)} (not counted above; first: "
            f"{invalid[0].message()}; see detforge check)"
        )
    for path, msg in list(summary["unreadable_images"].items())[:10]:
        print(f"unreadable: {path}: {msg}")
    if leaks:
        print(f"WARNING: {len(leaks)} file(s) in two splits:")
        for lk in leaks[:20]:
            print(f"  {lk.kind}: {lk.split_a} {lk.path_a} == {lk.split_b} {lk.path_b}")
    return 0
