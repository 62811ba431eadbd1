"""``detforge report``: a static site to browse a dataset, its evaluation and its errors."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from detforge.errors import DetforgeError
from detforge.utils.outputs import add_output_options

HELP = "write an offline HTML report: dataset, evaluation, error browser, label mistakes, run"
DESCRIPTION = """\
Write a self-contained static site into --out (default runs/report/<dataset name>; a folder
that exists is numbered DIR-2, DIR-3 ... unless --exist-ok) as index.html plus assets/,
thumbs/, view/, that
you open in a browser straight from disk: no server, no network, nothing loaded from the web,
so it works on a plane and can be zipped and attached to a ticket. It shows

  * the dataset: images, boxes and negatives per split and class, box size and aspect
    histograms, and the 'detforge check' findings linked to their images;
  * with --pred: per model (several --pred files = several models side by side) the 12 COCO
    numbers and Darknet's mAP -- the numbers 'detforge eval' prints for the same files --, one
    row per class, PR and F1-confidence curves and the confusion matrix;
  * an error browser: thumbnails worst first (false positives + misses), ground truth dashed
    and predictions solid, filters by split, class and error kind (FP, FN, wrong class,
    duplicate, localisation), a score slider that redraws at another threshold, a click (or
    Enter) opens the image with every box listed; arrow keys move through the gallery;
  * likely label mistakes: truths that a confident prediction contradicts, ranked;
  * with --run: the training run's loss and mAP curves (metrics.csv), the preview per
    epoch and its config.yaml.

GT and PRED are read exactly as 'detforge eval' reads them (GT: .data, list, folder,
Ultralytics YAML, VOC, TFRecords or COCO JSON; with --pred the evaluated split is valid unless
--split; PRED: COCO results JSON, a folder of 'class cx cy w h conf' .txt files, or Darknet
comp4 files). Thumbnails are made once: rebuilding into the same folder (--exist-ok; only an
earlier report is ever written over) reuses them.

examples:
  detforge report data/obj.data
  detforge report data/obj.data --pred runs/predict/obj/labels --out report/
  detforge report data/obj.data --pred a.json b.json --name yolo-n --name yolo-s --out cmp/
  detforge report data/obj.data --pred preds.json --run runs/train/obj-3 --out report/
  detforge report instances_val.json --pred dets.json --images-dir val2017 --out report/
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from detforge.cli.common import (
        add_darknet_protocol_options,
        add_ignore_unmatched_option,
        add_path_map_option,
        fraction,
        split_name,
    )

    parser.add_argument("gt", metavar="GT", help="ground truth: a dataset or COCO instances JSON")
    parser.add_argument(
        "--pred", nargs="+", action="extend", default=[], metavar="PRED",
        help="predictions (results JSON or .txt folder); several = several models",
    )  # fmt: skip
    parser.add_argument(
        "--name", action="append", default=[], metavar="NAME",
        help="name of each --pred model, in order [the file or folder name]",
    )  # fmt: skip
    parser.add_argument("--run", metavar="RUN_DIR", help="a 'detforge train' run folder")
    add_output_options(parser, "report", out_help="folder to write the site to "
                       "[runs/report/<name>, numbered if it exists]")  # fmt: skip
    parser.add_argument(
        "--split", type=split_name, help="split of GT to show/evaluate [valid with --pred]"
    )
    parser.add_argument("--images-dir", help="COCO GT: folder the file_name entries are in")
    add_darknet_protocol_options(parser)
    add_ignore_unmatched_option(parser)
    parser.add_argument(
        "--high", type=fraction, default=0.5,
        help="score a prediction needs to contradict a label (likely label mistakes) [0.5]",
    )  # fmt: skip
    parser.add_argument("--no-check", action="store_true", help="leave out the check findings")
    parser.add_argument("--title", help="page title [Report: GT]")
    add_path_map_option(parser)


def _model_names(preds: list[str], names: list[str]) -> list[str]:
    """One unique name per prediction source: ``--name`` values first, else the file name
    (the parent folder's too when the name alone says little, e.g. ``labels``)."""
    if len(names) > len(preds):
        raise DetforgeError(f"{len(names)} --name values for {len(preds)} --pred sources")
    out: list[str] = []
    for k, p in enumerate(preds):
        path = Path(p)
        base = path.name if path.name not in ("labels", "predictions.json", "") else (
            f"{path.parent.name}/{path.name}"
        )  # fmt: skip
        name = names[k] if k < len(names) else base
        while name in out:
            name = f"{name}#{k + 1}"
        out.append(name)
    return out


def run(args: argparse.Namespace) -> int:
    from detforge.cli.common import parse_path_map
    from detforge.eval.api import check_unmatched
    from detforge.formats.common import ensure_sizes
    from detforge.formats.detect import read_any, read_ground_truth
    from detforge.formats.predictions import read_predictions, read_provenance
    from detforge.report import Model, build_report

    if args.points not in (0, 11, 101) and args.points < 2:
        raise DetforgeError(f"--points must be 0, 11 or 101 (or another N >= 2), not {args.points}")
    path_map = parse_path_map(args.path_map)
    names = _model_names(args.pred, args.name)
    full = read_any(args.gt, images_dir=args.images_dir, path_map=path_map)
    if args.pred or args.split:
        made_on = [read_provenance(p) for p in args.pred if Path(p).exists()]
        first = next((m.split for m in made_on if m is not None and m.split), None)
        gt, _ = read_ground_truth(
            args.gt, split=args.split, images_dir=args.images_dir, path_map=path_map,
            default_split=first,  # the split the predictions were made on
        )  # fmt: skip
    else:
        gt = full
    if gt.num_images == 0:
        raise DetforgeError("the dataset has no images", path=args.gt)
    gt = ensure_sizes(gt)
    models = []
    for name, p in zip(names, args.pred, strict=True):
        pred = read_predictions(p, gt)
        unmatched = dict(pred.meta.get("unmatched") or {})
        unmatched["total"] = max(int(unmatched.get("total", 0)), pred.num_boxes)  # as evaluate
        # refused here in one line, before a warning about the same boxes
        check_unmatched(unmatched, ignore=args.ignore_unmatched, source=p)
        lost = int(unmatched.get("boxes", 0))
        if lost:
            print(f"warning: {p}: {lost} predictions match no image or class of the ground "
                  "truth; they are counted as 'detforge eval' counts them and not drawn",
                  file=sys.stderr)  # fmt: skip
        models.append(Model(name, pred, source=p))
    check = None
    if not args.no_check:
        from detforge.check import check_dataset

        try:
            check = check_dataset(args.gt, path_map=path_map)
        except DetforgeError as exc:
            print(f"warning: check findings left out: {exc}", file=sys.stderr)
    from detforge.utils.outputs import results_dir, say_saved

    out = results_dir("report", out=args.out, source=args.gt, exist_ok=args.exist_ok)
    index = build_report(
        gt, out, title=args.title, models=models, dataset=full, check=check,
        run_dir=args.run, source=args.gt, conf=args.conf, iou=args.iou, points=args.points,
        high=args.high, ignore_unmatched=args.ignore_unmatched,
        note=lambda m: print(m, file=sys.stderr),
    )  # fmt: skip
    say_saved("report", index)
    print(f"open it in a browser: {index.resolve().as_uri()}")
    return 0
