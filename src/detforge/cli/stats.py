"""``detforge stats``: what is in a dataset, as a table and as plots."""

from __future__ import annotations

import argparse
import json

HELP = "per-split class histogram, boxes per image, box sizes and aspect ratios (+ PNG plots)"

DESCRIPTION = """\
Print statistics of a dataset in any format detforge reads (Darknet .data / list / folder,
Ultralytics YAML, COCO JSON, Pascal VOC folder, TFRecords): per split, the number of images,
negatives and boxes, boxes per class (and how many images hold each class), boxes per image,
box sizes (pixels; COCO's small < 32 <= medium < 96 <= large) and aspect ratios. An image
listed twice in one split of a Darknet list is counted twice, as Darknet trains on it twice;
a note gives the count and the first such list line ('detforge info' counts it once). An
image in two splits (a leak) is counted in each, and once per split in the 'all' column, as
'detforge info' counts it; a note gives their number.

With --out DIR, also writes stats.json and PNG plots there: class_histogram.png,
boxes_per_image.png, box_sizes.png, aspect_ratios.png (a DIR that exists is numbered DIR-2,
DIR-3 ... unless --exist-ok).

examples:
  detforge stats data/obj.data
  detforge stats ../bccd --out bccd-stats
  detforge stats train.record --label-map label_map.pbtxt
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from detforge.cli.common import (
        add_label_map_option,
        add_path_map_option,
        add_source_format_option,
    )
    from detforge.utils.outputs import add_exist_ok_option

    parser.add_argument("dataset", metavar="DATASET", help="the dataset (format detected)")
    parser.add_argument("--out", metavar="DIR", help="write stats.json and PNG plots here")
    add_exist_ok_option(parser)
    add_source_format_option(parser)
    add_label_map_option(parser, "TFRecord label map / VOC class list")
    parser.add_argument("--images-dir", metavar="DIR", help="COCO: folder of the images")
    add_path_map_option(parser)


def run(args: argparse.Namespace) -> int:
    from detforge.cli.common import parse_path_map
    from detforge.data.lists import repeated_note
    from detforge.data.stats import compute_stats, cross_split_note, format_stats
    from detforge.errors import DetforgeError
    from detforge.formats.common import ensure_sizes
    from detforge.formats.detect import detect_format, read_any
    from detforge.utils.io import atomic_write_text

    ds = read_any(
        args.dataset,
        format=args.source_format,
        label_map=args.label_map,
        images_dir=args.images_dir,
        path_map=parse_path_map(args.path_map),
    )
    if args.source_format is None and detect_format(args.dataset) == "darknet":
        from detforge.cli.paths import refuse_other_layout

        refuse_other_layout(args.dataset, ds.num_boxes, "stats")
    try:
        ds = ensure_sizes(ds)
    except DetforgeError as exc:  # unreadable images: box sizes stay normalized
        print(f"note: {exc}; box sizes are given as fractions of the image")
    stats = compute_stats(ds)
    print(format_stats(stats, ds.class_names), end="")
    repeated = repeated_note(ds, "are counted as images, as training samples each entry")
    notes = [n for n in (repeated, cross_split_note(ds)) if n]
    for n in notes:
        print(f"note: {n}")
    if args.out is not None:
        from detforge.data.stats_plots import plot_stats
        from detforge.utils.outputs import results_dir, say_saved

        out = results_dir("stats", out=args.out, exist_ok=args.exist_ok)
        doc = {
            "class_names": list(ds.class_names),
            "splits": [s.summary() for s in stats],
            "notes": notes,
        }
        atomic_write_text(out / "stats.json", json.dumps(doc, indent=2) + "\n")
        paths = plot_stats(stats, ds.class_names, out)
        print(f"wrote stats.json and {len(paths)} plots")
        say_saved("statistics", out)
    return 0
