"""``detforge show``: look at a dataset's ground truth, or ground truth beside predictions."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from detforge.cli.common import (
    add_path_map_option,
    add_source_format_option,
    fraction,
    line_width,
    non_negative_int,
    parse_path_map,
    split_name,
)
from detforge.errors import DetforgeError
from detforge.utils.outputs import add_output_options, results_dir, say_saved

HELP = "draw ground-truth boxes (and predictions: matches, misses, false positives)"
DESCRIPTION = """\
Draw a dataset's ground-truth boxes with class names on its images, so you can see that the
labels sit where they should ("you should see ground truth boxes"). With --pred, ground truth
and predictions are drawn side by side: found ground truth and matching predictions (TP) in
green, missed ground truth (FN) in orange, false positives (FP) in crimson, with a legend.

DATASET is any dataset detforge reads (a .data file, image list, folder, Ultralytics YAML, VOC,
COCO JSON, TFRecords). PRED is what 'detforge eval' reads: a COCO results JSON, a folder of
'class cx cy w h conf' files (detforge predict --save-txt), or Darknet comp4 files.

Pictures go to --out (default runs/show/<dataset name>, numbered -2, -3 ... when it exists;
--exist-ok writes into an existing one) as <image name>.jpg (two images of one name:
<folder>_<image name>.jpg, as convert and predict name them); --grid also writes contact
sheets grid_000.jpg, ... of --grid-size pictures each (grid_000-sheet.jpg where an image's
picture is grid_000.jpg).

examples:
  detforge show data/obj.data --split train --limit 50 --grid
  detforge show data/obj.data --pred runs/predict/obj/labels --out look
  detforge show instances_val.json --pred detections.json --conf 0.4 --grid --random
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="a dataset in any format detforge reads")
    parser.add_argument("--pred", help="predictions to compare: results JSON or .txt folder")
    parser.add_argument("--split", type=split_name, help="only this split (train, valid, test)")
    add_source_format_option(parser, dest="format")
    parser.add_argument("--format", dest="format", help=argparse.SUPPRESS)  # the old spelling
    add_output_options(parser, "show")
    parser.add_argument(
        "--limit", type=int, default=200, help="draw at most N images, 0 = all [200]"
    )
    parser.add_argument("--random", action="store_true", help="pick --limit images at random")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed for --random [0]")
    parser.add_argument("--grid", action="store_true", help="also write contact sheets")
    parser.add_argument("--grid-size", type=int, default=16, help="pictures per sheet [16]")
    parser.add_argument("--conf", type=fraction, default=0.25, help="predictions shown from [0.25]")
    parser.add_argument("--iou", type=fraction, default=0.5, help="IoU for a match [0.5]")
    parser.add_argument(
        "--line-width", type=line_width, default=None, help="box outline, pixels (1-100)"
    )
    add_path_map_option(parser)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from detforge.formats.detect import read_any, read_ground_truth
    from detforge.predict.draw import contact_sheet
    from detforge.predict.gallery import picture_names, render_dataset
    from detforge.predict.writers import InputGuard, save_image
    from detforge.utils.progress import progress

    if args.limit < 0 or args.grid_size < 1:
        raise DetforgeError("--limit must be >= 0 and --grid-size >= 1")
    path_map = parse_path_map(args.path_map)
    if args.pred and not args.split and str(args.dataset).lower().endswith(".data"):
        # the split the predictions were made on
        from detforge.formats.predictions import read_provenance

        made_on = read_provenance(args.pred) if Path(args.pred).exists() else None
        args.split = made_on.split if made_on is not None else None
    if args.split:
        # One split; of a .data file only its list, numbered as 'detforge eval' and
        # 'predict --save-json' do.
        ds, _ = read_ground_truth(
            args.dataset, split=args.split, format=args.format, path_map=path_map
        )
    else:
        ds = read_any(args.dataset, format=args.format, path_map=path_map)
    if ds.num_images == 0:
        raise DetforgeError("the dataset has no images", path=args.dataset)
    pred = None
    if args.pred:
        from detforge.formats.predictions import read_predictions

        pred = read_predictions(args.pred, ds)
        lost = int((pred.meta.get("unmatched") or {}).get("boxes", 0))
        if lost:
            print(
                f"warning: {lost} predictions match no image or class of the dataset "
                "(image ids, file stems or class ids differ); they are not drawn",
                file=sys.stderr,
            )
    rows = np.arange(ds.num_images)
    if args.limit and args.limit < len(rows):
        if args.random:
            rows = np.sort(np.random.default_rng(args.seed).choice(rows, args.limit, False))
        else:
            rows = rows[: args.limit]
    out = results_dir("show", out=args.out, source=args.dataset, exist_ok=args.exist_ok)
    guard = InputGuard([str(p) for p in ds.images.path])
    names = picture_names(ds)
    sheet: list[tuple[object, str]] = []
    sheets = written = 0
    failed: list[str] = []

    taken = {names[i] for i in rows.tolist()}  # a picture named grid_000 keeps its name

    def flush() -> None:
        nonlocal sheets
        pics, caps = [p for p, _ in sheet], [c for _, c in sheet]
        name = f"grid_{sheets:03d}"
        while name in taken:
            name = f"{name}-sheet"
        sheet_path = guard.check(out / f"{name}.jpg")
        save_image(sheet_path, contact_sheet(pics, captions=caps))
        sheets += 1
        sheet.clear()

    rendered = render_dataset(
        ds, pred, rows=rows.tolist(), conf=args.conf, iou=args.iou, line_width=args.line_width,
        names=names,
    )  # fmt: skip
    for r in progress(rendered, total=len(rows), desc="show", unit="img"):
        if r.error is not None:
            failed.append(r.error)
            continue
        save_image(guard.check(out / f"{r.name}.jpg"), r.image)
        written += 1
        if args.grid:
            sheet.append((r.image, r.caption))
            if len(sheet) == args.grid_size:
                flush()
    if args.grid and sheet:
        flush()
    shown = f"{written} of {ds.num_images} images"
    print(f"drew {shown}" + (f" and {sheets} contact sheets" if sheets else ""))
    say_saved("pictures", out)
    if failed:
        print(f"warning: {len(failed)} images could not be read, e.g. {failed[0]}", file=sys.stderr)
        return 1
    return 0
