"""``detforge darknet-cfg``: rewrite a Darknet .cfg for your number of classes."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from detforge.cli.common import non_negative_int, positive_int
from detforge.errors import DetforgeError
from detforge.utils.outputs import add_exist_ok_option, claim_file
from detforge.utils.textfile import require_file

HELP = "rewrite a Darknet .cfg for N classes (classes=, filters=, max_batches, steps)"

DESCRIPTION = """\
Rewrite a Darknet .cfg (yolov3/v4/v7, tiny, ...) for your dataset, the edits the Darknet README
asks for by hand:

  classes=N                  in every [yolo] / [Gaussian_yolo] / [region] section
  filters=(N+5)*masks        in the last [convolutional] before each [yolo]
                             ((N+9)*masks before [Gaussian_yolo], (N+5)*num before [region])
  max_batches=max(2000*N, 6000, training images)   steps=80%,90% of max_batches
  width=, height=            with --imgsz W[,H] (multiples of 32)
  anchors=                   with --anchors auto (k-means of the --data boxes at that size, as
                             'detforge anchors' / 'darknet detector calc_anchors'; boxes
                             sized as letterboxed when the cfg says letter_box=1) or a list
  batch=, subdivisions=      a cfg left with its "Testing" batch=1 gets its commented "Training"
                             values (else batch=64, subdivisions=16); subdivisions then grow
                             with the input area so a mini-batch needs no more memory than the
                             cfg's own setting (--subdivisions N sets it)

Everything else (comments, spacing, other settings) is kept byte for byte. The cfg is checked
with the rules of 'detforge predict'/'train' before it is written (layers that Darknet runs
but not detforge, as [Gaussian_yolo], are kept, with a note). The input is
never modified. An existing OUT.cfg is replaced only with --exist-ok, and never when it is one
of the inputs (IN.cfg, --names, or a file of --data). The class count comes from --classes,
or from --names / --data.

examples:
  detforge darknet-cfg yolov4-tiny.cfg --classes 3 -o yolov4-tiny-obj.cfg
  detforge darknet-cfg yolov4.cfg --data obj.data -o yolov4-obj.cfg
  detforge darknet-cfg yolov4.cfg --classes 12 --max-batches 30000 -o yolov4-obj.cfg
  detforge darknet-cfg yolov4-tiny.cfg --data obj.data --imgsz 608 --anchors auto -o obj-608.cfg
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cfg", metavar="IN.cfg", help="the cfg to start from (not modified)")
    parser.add_argument(
        "-o", "--output", required=True, metavar="OUT.cfg",
        help="cfg to write (an existing one only with --exist-ok)",
    )  # fmt: skip
    parser.add_argument("--classes", type=int, metavar="N", help="number of classes")
    parser.add_argument("--names", metavar="FILE", help="take N from a .names file")
    parser.add_argument(
        "--data",
        metavar="DATA",
        help="take N and the training image count from a .data file (its classes= or names=) "
        "or any dataset detforge reads (a VOC/COCO/Ultralytics folder ...)",
    )
    parser.add_argument(
        "--max-batches", type=positive_int, metavar="N", help="override the max_batches rule"
    )
    parser.add_argument(
        "--train-images",
        type=int,
        default=0,
        metavar="N",
        help="training images (max_batches is at least this)",
    )
    parser.add_argument(
        "--imgsz", metavar="W[,H]", help="network input size (multiples of 32, at most 8192)"
    )
    parser.add_argument(
        "--anchors",
        metavar="auto|LIST",
        help="'auto': k-means anchors of the --data boxes; or 'w,h, w,h, ...' (num= pairs)",
    )
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of --anchors auto [0]"
    )
    parser.add_argument("--subdivisions", type=int, metavar="N", help="set subdivisions=N")
    add_exist_ok_option(parser, help="replace an existing OUT.cfg (never an input)")


def _claim_output(args: argparse.Namespace) -> None:
    """A :class:`DetforgeError` unless ``-o`` may be written: an existing file only with
    ``--exist-ok``, and never one darknet-cfg reads (IN.cfg, ``--names``, ``--data`` and
    everything of that dataset), ``--exist-ok`` or not."""
    if os.path.lexists(args.output):
        from detforge.predict.writers import InputGuard

        guards = [InputGuard([], files=[f for f in (args.cfg, args.names, args.data) if f])]
        if args.data and os.path.exists(args.data):  # else reading it says what is wrong
            from detforge.check.api import input_guard

            guards.append(input_guard(args.data))
        for guard in guards:
            guard.check(args.output, option="--output")
    claim_file(args.output, exist_ok=args.exist_ok, option="--output")


def _classes_and_images(args: argparse.Namespace) -> tuple[int, int]:
    """The class count (from ``--classes``, ``--names`` or ``--data``) and the number of
    training images (``--train-images``, else that of ``--data``; 0 when unknown)."""
    from detforge.formats.darknet.files import read_data_file, read_image_list, read_names

    train_images = int(args.train_images)
    if args.classes is not None:
        return int(args.classes), train_images
    if args.names:
        return len(read_names(args.names)), train_images
    if args.data and not str(args.data).lower().endswith(".data"):  # any dataset detforge reads
        from detforge.formats.detect import read_any

        ds = read_any(args.data)
        if not train_images:
            train_images = ds.split("train").num_images if "train" in ds.splits() else 0
        return len(ds.class_names), train_images or ds.num_images
    if args.data:
        df = read_data_file(args.data)
        if df.train and Path(df.train).is_file() and not train_images:
            train_images = len(read_image_list(df.train))
        if df.names and Path(df.names).is_file():
            if df.classes is not None:  # as every reader: the two counts must agree
                from detforge.formats.darknet.sources import check_class_count

                check_class_count(df, df.names)
            return len(read_names(df.names)), train_images
        if df.classes:
            return int(df.classes), train_images
        raise DetforgeError("the .data file has neither classes= nor a names file", path=args.data)
    raise DetforgeError("give the class count: --classes N, --names FILE or --data FILE")


def _classes_option(args: argparse.Namespace) -> str:
    """The option the class count came from, as :func:`_classes_and_images` picks it."""
    if args.classes is not None:
        return f"--classes {args.classes}"
    return f"--names {args.names}" if args.names else f"--data {args.data}"


def _anchors(args: argparse.Namespace, size: tuple[int, int]) -> str | None:
    """The ``anchors=`` value ``--anchors`` asks for (``None``: leave the cfg's)."""
    from detforge.formats.darknet.cfg import cfg_anchor_count, cfg_letter_box
    from detforge.models.darknet.cfg import read_cfg_text

    if not args.anchors:
        return None
    text = read_cfg_text(args.cfg)
    count = cfg_anchor_count(text, path=args.cfg)
    if args.anchors.strip().lower() == "auto":
        if not args.data:
            raise DetforgeError("--anchors auto needs the dataset: --data FILE")
        from detforge.data.anchors import anchors_for_dataset
        from detforge.formats.detect import read_any

        boxed = cfg_letter_box(text, path=args.cfg)  # boxes sized as the network will see them
        res = anchors_for_dataset(read_any(args.data), count, size[0], size[1], seed=args.seed,
                                  letter_box=boxed)  # fmt: skip
        how = " (letterboxed, as the cfg's letter_box=1)" if boxed else ""
        print(f"anchors from {res.boxes} boxes at {size[0]}x{size[1]}{how}: mean IoU "
              f"{100 * res.mean_iou:.2f}%")  # fmt: skip
        return res.darknet_text()
    from detforge.data.anchors import parse_anchor_list

    return parse_anchor_list(args.anchors, count)


def run(args: argparse.Namespace) -> int:
    from detforge.cli.common import parse_wh
    from detforge.formats.darknet.cfg import cfg_net_size, default_max_batches, rewrite_cfg
    from detforge.models.darknet.cfg import read_cfg_text
    from detforge.models.darknet.cfgkeys import MAX_INPUT

    require_file(args.cfg, "cfg")
    _claim_output(args)
    classes, train_images = _classes_and_images(args)
    size = parse_wh(args.imgsz, multiple=32, maximum=MAX_INPUT) if args.imgsz else None
    text = read_cfg_text(args.cfg)  # predict's reader: binary files refused, a BOM dropped
    anchors = _anchors(args, size or cfg_net_size(text, path=args.cfg))
    changes = rewrite_cfg(
        args.cfg,
        args.output,
        classes=classes,
        max_batches=args.max_batches,
        train_images=train_images,
        size=size,
        anchors=anchors,
        subdivisions=args.subdivisions,
        classes_from=_classes_option(args),
        note=lambda text: print(f"note: {text}"),
    )
    for c in changes:
        print(c)
    mb = args.max_batches or default_max_batches(classes, train_images)
    print(f"wrote {args.output}: {classes} classes, max_batches {mb}, {len(changes)} lines changed")
    return 0
