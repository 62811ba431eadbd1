"""``detforge check``: find every problem in a dataset before it becomes a NaN loss."""

from __future__ import annotations

import argparse
import os
import sys

from detforge.cli.common import add_label_map_option, add_path_map_option, parse_path_map
from detforge.utils.outputs import add_exist_ok_option, claim_file

HELP = "check a dataset for every fault (bad label lines, corrupt images, leaks) and repair it"
DESCRIPTION = """\
Check DATASET and report every problem with its file and line: label lines with the wrong
number of fields, non-numbers, NaN, bad class ids, coordinates outside [0, 1], zero-size,
out-of-image, sub-pixel and duplicate boxes; missing, empty, truncated, unsupported or
EXIF-rotated images; class names vs classes= and the label map; unused or rare classes;
images shared between splits. Every code is explained in docs/checks.md.

DATASET is a Darknet .data file, an image list, a folder of images with .txt labels beside
them, an Ultralytics dataset YAML, a COCO JSON, a VOC folder or a TFRecord (with
--label-map, or a label_map.pbtxt beside it).

Unlike Darknet, which stops reading a label file at its first bad line, every line is
checked. Results are cached (per file, keyed on size and mtime), so re-checking an unchanged
dataset takes about a second. --fix OUT writes a repaired copy into the new folder OUT (the
source is never modified; unchanged images are linked, not copied) with fixes.json listing
every change, and re-checks it. OUT must be new or empty, or an earlier detforge output
(replaced with --overwrite, which removes only the files detforge wrote there); an OUT left
by an interrupted --fix is replaced by the next run. --json FILE replaces an existing FILE
only with --exist-ok, and never one of the dataset's own files.

exit status: 0 no errors (warnings allowed), 1 errors found (with --fix: errors left in
OUT), 2 bad usage or a dataset that does not exist.

examples:
  detforge check data/obj.data
  detforge check data/obj.data --json report.json --deep
  detforge check data/obj.data --fix data-fixed && detforge train data-fixed/obj.data
  detforge check data/train.record --label-map data/label_map.pbtxt
  detforge check frames/obj.data --group-by '([^/]+)_frame\\d+'
  detforge check cells/obj.data --tiny-px 8 --imbalance 0   # small crops, long tail on purpose
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help=".data file, image list, folder, YAML, JSON, VOC or record")
    parser.add_argument(
        "--json", metavar="FILE",
        help="also write all findings as JSON to FILE (an existing FILE only with --exist-ok)",
    )  # fmt: skip
    add_exist_ok_option(parser, help="with --json: replace an existing FILE")
    parser.add_argument(
        "--deep", action="store_true", help="decode every image fully (slower; finds bad pixels)"
    )
    parser.add_argument(
        "--fix",
        metavar="OUT",
        help="write a repaired Darknet copy into the new folder OUT (TFRecords: salvages the "
        "intact records)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="with --fix: replace an earlier detforge output in OUT (only its own files)",
    )
    add_label_map_option(parser, "TF label map to compare with the class names")
    parser.add_argument(
        "--group-by",
        metavar="parent|REGEX",
        help="report sequences shared between splits: 'parent' folder, or a regex whose first "
        "group names the sequence (as in detforge split)",
    )
    parser.add_argument(
        "--show", type=int, default=5, metavar="N", help="locations shown per code [5]"
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="ignore and do not update the check cache"
    )
    limits = parser.add_argument_group(
        "warning thresholds", "where the three heuristic warnings fire; 0 switches one off"
    )
    limits.add_argument(
        "--tiny-px",
        type=int,
        default=32,
        metavar="PX",
        help="image-tiny below PX pixels in width or height (e.g. 8 for microscopy crops) [32]",
    )
    limits.add_argument(
        "--imbalance",
        type=float,
        default=100.0,
        metavar="RATIO",
        help="class-imbalance when the largest class has RATIO times the boxes of the "
        "smallest [100]",
    )
    limits.add_argument(
        "--near-dup-iou",
        type=float,
        default=0.9,
        metavar="IOU",
        help="box-near-duplicate for same-class boxes of one image overlapping this much [0.9]",
    )
    add_path_map_option(parser)


def run(args: argparse.Namespace) -> int:
    from detforge.check.api import check_dataset
    from detforge.check.limits import CheckLimits
    from detforge.check.report import format_report, write_json

    path_map = parse_path_map(args.path_map)
    limits = CheckLimits(
        near_duplicate_iou=args.near_dup_iou,
        tiny_image_px=args.tiny_px,
        imbalance_ratio=args.imbalance,
    )
    if args.json:
        claim_file(args.json, exist_ok=args.exist_ok, option="--json")
        if os.path.lexists(args.json):  # never over the dataset's own files, --exist-ok or not
            from detforge.check.api import input_guard

            guard = input_guard(args.dataset, path_map=path_map, label_map=args.label_map)
            guard.check(args.json, option="--json")
    if args.fix is not None:
        from detforge.utils.outdir import prepare_output_dir

        prepare_output_dir(args.fix, overwrite=args.overwrite, read_folders=[args.dataset])
    report = check_dataset(
        args.dataset,
        deep=args.deep,
        path_map=path_map,
        label_map=args.label_map,
        group_by=args.group_by,
        cache=not args.no_cache,
        limits=limits,
    )
    print(format_report(report, shown=max(0, args.show)))
    if args.json:
        write_json(report, args.json)
        print(f"findings written to {args.json}")
    if args.fix is None:
        return 1 if report.errors else 0
    from detforge.check.fix import fix_dataset

    fixed = fix_dataset(
        args.dataset,
        args.fix,
        path_map=path_map,
        cache=not args.no_cache,
        label_map=args.label_map,
        overwrite=args.overwrite,
    )
    counts = ", ".join(f"{v} {k}" for k, v in sorted(fixed.counts().items())) or "no changes"
    print(f"\nrepaired copy written to {fixed.data_file} ({counts}; see fixes.json)")
    again = check_dataset(fixed.data_file, cache=not args.no_cache, limits=limits)
    n_err, n_warn = len(again.errors), len(again.warnings)
    print(f"re-check of the copy: {n_err} errors, {n_warn} warnings")
    for f in again.errors[:5]:
        print(f"    {f.location()}: {f.code}: {f.message}", file=sys.stderr)
    return 1 if again.errors else 0
