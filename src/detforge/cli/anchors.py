"""``detforge anchors``: anchor boxes for a dataset (Darknet's ``detector calc_anchors``)."""

from __future__ import annotations

import argparse

HELP = "anchor boxes for a dataset: IoU k-means on box sizes (Darknet's calc_anchors)"

DESCRIPTION = """\
Compute anchors for a Darknet-style detector the way 'darknet detector calc_anchors' does:
the width and height of every training box (the train split, or every box when the dataset has
no splits), scaled to the network input size, clustered by k-means with the distance 1 - IoU.
Prints the anchors (sorted by area, ready to paste as anchors= in a .cfg) and the mean IoU of
each box with its best anchor. The same data and --seed always give the same anchors.
--letter-box sizes each box as it appears in a letterboxed input (a cfg with letter_box=1,
or 'detforge train --cfg', which trains on letterboxed images) instead of a stretched one.

examples:
  detforge anchors data/obj.data --num 6 --imgsz 416
  detforge anchors ../bccd --num 9 --imgsz 608,416 --seed 3
  detforge darknet-cfg yolov4-tiny.cfg --data obj.data --anchors auto -o obj.cfg   # same anchors
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from detforge.cli.common import (
        add_label_map_option,
        add_path_map_option,
        add_source_format_option,
        non_negative_int,
    )

    parser.add_argument("dataset", metavar="DATASET", help="the dataset (format detected)")
    parser.add_argument("--num", type=int, default=9, metavar="K", help="anchors to make [9]")
    parser.add_argument(
        "--imgsz", default="416", metavar="W[,H]", help="network input size in pixels [416]"
    )
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the initial draw [0]"
    )
    parser.add_argument(
        "--letter-box",
        action="store_true",
        help="size boxes as in a letterboxed input (aspect kept) [stretched, as Darknet]",
    )
    add_source_format_option(parser)
    add_label_map_option(parser, "TFRecord label map / VOC class list")
    add_path_map_option(parser)


def run(args: argparse.Namespace) -> int:
    from detforge.cli.common import parse_path_map, parse_wh
    from detforge.data.anchors import anchors_for_dataset
    from detforge.formats.detect import read_any

    width, height = parse_wh(args.imgsz)
    ds = read_any(
        args.dataset,
        format=args.source_format,
        label_map=args.label_map,
        path_map=parse_path_map(args.path_map),
    )
    res = anchors_for_dataset(
        ds, args.num, width, height, seed=args.seed, letter_box=args.letter_box
    )
    how = ", letterboxed" if args.letter_box else ""
    print(
        f"{res.boxes} boxes, {args.num} anchors at {width}x{height}{how}, "
        f"{res.rounds} k-means rounds"
    )
    print(f"anchors = {res.darknet_text()}")
    print(f"mean IoU = {100 * res.mean_iou:.2f}%")
    if res.left_out:
        print(
            f"note: {res.left_out} box size(s) left out: not finite, no area, or larger than "
            "the input (see detforge check)"
        )
    return 0
