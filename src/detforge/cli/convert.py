"""``detforge convert``: one dataset, every framework's files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from detforge.cli.common import (
    add_label_map_option,
    add_path_map_option,
    add_source_format_option,
    parse_path_map,
)
from detforge.errors import DetforgeError

if TYPE_CHECKING:
    from detforge.data.dataset import Dataset

HELP = "convert a dataset between Darknet, Ultralytics, COCO, Pascal VOC and TFRecord"

DESCRIPTION = """\
Convert a dataset to another framework's files. The source format is detected:

  obj.data / a .txt image list / a folder of images+labels   Darknet
  data.yaml                                                  Ultralytics
  instances.json, or a folder with annotations/instances_*.json   COCO
  a folder with Annotations/ (+ JPEGImages/, ImageSets/Main/)     Pascal VOC
  x.record / x.tfrecord / a folder of them                   TF Object Detection API

Splits survive every conversion (train/valid/test; 'val' in formats that say val). Images
are hard-linked into OUT by default (symlinked or copied where linking is impossible), never
duplicated needlessly; --images copy copies them, --images none writes labels only. The
source is never modified. OUT must be new or empty, or hold an earlier detforge output
(replaced with --overwrite: only the files detforge wrote are removed); OUT may not overlap
the folders the source is read from: be, contain or lie inside the source, its image or label
folders, or the dataset folder holding images/ and labels/ (OUT beside obj.data is fine when
it is in none of them). Crowd boxes (COCO iscrowd) are dropped, with a count,
for formats that cannot mark them. An image listed twice in one split of a Darknet list
(oversampling) is written once for COCO, VOC and TFRecord (one record per image) and kept
for Darknet and Ultralytics; a note gives the count and the first such list line.

TFRecord output embeds the images, writes label_map.pbtxt from the class names (or checks a
given --label-map against them: a mismatch is what gives TF a NaN loss) and, with
--pipeline, a copy of your pipeline.config with num_classes, input paths, label map path and
a sane batch_size filled in. Pascal VOC boxes follow the VOC devkit's 1-based inclusive pixels
(x1 = xmin - 1, x2 = xmax), exactly inverted on writing; a VOC image is the one named like its
XML file (as the devkit does; <filename> only when no such image exists).

Before writing, the source is checked against its images with detforge check's rules: every
image must be a readable image (nothing else is linked or copied), a stated image size must be
the image's (--trust-size decides otherwise), boxes must lie inside the image (--clip-boxes,
--skip-bad), and Darknet/Ultralytics labels on an EXIF-rotated image are refused for COCO, VOC
and TFRecord targets (Darknet ignores EXIF; re-save such images upright first).

examples:
  detforge convert data/obj.data out/yolo --to ultralytics
  detforge convert ../bccd out/bccd-darknet --to darknet
  detforge convert out/yolo/data.yaml out/tf --to tfrecord --shards 4 \\
      --pipeline ssd_mobilenet/pipeline.config
  detforge convert train.record out/darknet --to darknet --label-map label_map.pbtxt
  detforge convert instances_train.json out/voc --to voc --images-dir coco/train2017
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SRC", help="the dataset to convert (format detected)")
    parser.add_argument("out", metavar="OUT", help="output folder (created; must not be SRC)")
    parser.add_argument(
        "--to",
        required=True,
        choices=("darknet", "ultralytics", "coco", "voc", "tfrecord"),
        help="target format",
    )
    add_source_format_option(parser)
    parser.add_argument(
        "--images",
        default="link",
        metavar="link|copy|none",
        help="how images reach OUT: link, copy, or none (labels only) [link]",
    )
    parser.add_argument(
        "--images-dir",
        metavar="DIR",
        help="COCO source: the folder its file_name entries are relative to",
    )
    add_label_map_option(
        parser,
        "TFRecord source: its label map [a label_map.pbtxt found beside the records]; "
        "TFRecord target: a label map the class names must match; VOC source: a class list "
        "fixing the class order",
    )
    parser.add_argument(
        "--shards", type=int, default=1, metavar="N", help="TFRecord target: files per split [1]"
    )
    parser.add_argument(
        "--clip-boxes",
        action="store_true",
        help=(
            "clip boxes that reach outside the image to it and drop those left without area; "
            "without it a box whose centre or size lies outside the image (check: "
            "coord-negative, coord-above-one) is an error, and for a TFRecord target any box "
            "past the border (TensorFlow trains to NaN on them)"
        ),
    )
    parser.add_argument(
        "--trust-size",
        choices=("image", "annotation"),
        help=(
            "when an annotation's stated image size is not the image's (check: "
            "image-size-mismatch): use the real size from the image file ('image'; boxes are "
            "kept as written) or the stated one ('annotation'); without it a mismatch is an "
            "error"
        ),
    )
    parser.add_argument(
        "--pipeline",
        metavar="CONFIG",
        help="TFRecord target: a TF OD API pipeline.config to fill in (written to OUT)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        metavar="N",
        help="with --pipeline: train batch_size [the config's, capped at 8]",
    )
    parser.add_argument(
        "--checkpoint-step",
        type=int,
        metavar="N",
        help="with --pipeline: the fine-tune checkpoint's global step, if its name lacks it",
    )
    parser.add_argument(
        "--skip-bad",
        action="store_true",
        help="convert without the boxes the reader found invalid (NaN, negative or zero size, "
        "impossible image sizes, outside the image), listing each; without it they are an error",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier detforge output in OUT (only the files detforge wrote there)",
    )
    add_path_map_option(parser)


def _image_options(args: argparse.Namespace) -> tuple[str, str | None]:
    """``(mode, images_dir)``; ``--images DIR`` is accepted as ``--images-dir DIR``."""
    mode, images_dir = str(args.images), args.images_dir
    if mode not in ("link", "copy", "none"):
        if Path(mode).is_dir() and images_dir is None:
            return "link", mode
        raise DetforgeError(f"--images must be link, copy or none (got {mode!r})")
    return mode, images_dir


def _pipeline(
    args: argparse.Namespace,
    out: Path,
    ds_names: tuple[str, ...],
    files: list[Path],
    eval_examples: int,
) -> None:
    from detforge.formats.tfrecord.pipeline import write_pipeline
    from detforge.formats.tfrecord.tfod import split_from_record_name

    out = out.resolve()
    by_split: dict[str, list[Path]] = {}
    for f in files:
        if f.suffix != ".pbtxt":
            by_split.setdefault(split_from_record_name(f.name), []).append(f)

    def pattern(paths: list[Path]) -> list[str]:
        if len(paths) == 1:
            return [str(paths[0].resolve())]
        first = paths[0].resolve()
        head, _, total = first.name.rpartition("-of-")
        return [str(first.with_name(f"{head.rsplit('-', 1)[0]}-?????-of-{total}"))]

    train = by_split.get("train") or by_split.get("") or []
    evals = by_split.get("valid") or by_split.get("test") or []
    result = write_pipeline(
        args.pipeline,
        out / "pipeline.config",
        num_classes=len(ds_names),
        label_map_path=str(out / "label_map.pbtxt"),
        train_inputs=pattern(train) if train else [],
        eval_inputs=pattern(evals) if evals else [],
        batch_size=args.batch_size,
        checkpoint_step_hint=args.checkpoint_step,
        eval_examples=eval_examples,
    )
    print(f"pipeline: {out / 'pipeline.config'} ({len(result.changes)} settings changed)")
    for w in result.warnings:
        print(f"warning: {w}")


def run(args: argparse.Namespace) -> int:
    from detforge.formats.detect import detect_format, read_any, source_file_folders
    from detforge.utils.outdir import out_folder, output_dir, prepare_output_dir

    mode, images_dir = _image_options(args)
    src, out = Path(args.source), out_folder(args.out)  # not Path(""): that is "."
    if args.pipeline and args.to != "tfrecord":
        raise DetforgeError("--pipeline goes with --to tfrecord")
    fmt = args.source_format or detect_format(src)
    prepare_output_dir(out, overwrite=args.overwrite, read_folders=[src])
    label_map = args.label_map if fmt in ("tfrecord", "voc") else None
    read = {
        "format": fmt,
        "label_map": label_map,
        "images_dir": images_dir,
        "path_map": parse_path_map(args.path_map),
    }
    if fmt == "tfrecord":  # images are extracted into OUT while reading
        with output_dir(
            out, command="convert", overwrite=args.overwrite, read_folders=[src], note=_note
        ) as o:
            extract = o / "source_images" if mode != "none" else None
            ds = read_any(src, extract_images_to=extract, **read)  # type: ignore[arg-type]
            status = _write(args, o, ds, fmt, mode)
            if extract is not None:
                _drop_extracted(o, extract)
            return status
    ds = read_any(src, **read)  # type: ignore[arg-type]
    with output_dir(
        out,
        command="convert",
        overwrite=args.overwrite,
        read_folders=[src],
        file_folders=source_file_folders(ds),
        note=_note,
    ) as o:
        return _write(args, o, ds, fmt, mode)


def _drop_extracted(out: Path, extract: Path) -> None:
    """Remove the images extracted from TFRecords into ``extract`` (inside ``out``) once the
    written dataset no longer needs them: every image it names was hard-linked or copied into
    place (they are kept when one is a symlink into ``extract``). Left there, a Darknet output
    read as a folder counted each image twice, the extracted copy as an unlabelled negative.
    """
    import shutil

    if not extract.is_dir():
        return
    root = extract.resolve()
    for p in out.rglob("*"):
        if p.is_symlink() and p.resolve().is_relative_to(root):
            return
    shutil.rmtree(extract)


def _note(text: str) -> None:
    print(f"note: {text}")


def _write(args: argparse.Namespace, out: Path, ds: Dataset, fmt: str, mode: str) -> int:
    """Write ``ds`` into ``out`` (the folder :func:`~detforge.utils.outdir.output_dir` yields)."""
    from detforge.data.validity import refuse_invalid
    from detforge.formats.common import settle_repeated_entries
    from detforge.formats.detect import write_any
    from detforge.formats.verify import verify_images

    ds, repeated = settle_repeated_entries(ds, args.to)  # before counting or checking images
    if repeated:
        _note(repeated)
    refuse_invalid(ds, skip_bad=args.skip_bad, note=_note)
    checked = verify_images(
        ds,
        fmt=fmt,
        to=args.to,
        place_images=mode != "none" or args.to == "tfrecord",
        trust_size=args.trust_size,
        clip=args.clip_boxes,
        skip_bad=args.skip_bad,
    )
    ds = checked.ds
    for text in checked.notes:
        _note(text)
    result = write_any(
        ds,
        out,
        to=args.to,
        images=mode,  # type: ignore[arg-type]
        label_map=args.label_map if args.to == "tfrecord" else None,
        shards=args.shards,
        clip_boxes=args.clip_boxes,
    )
    counts = ", ".join(
        f"{s or 'no split'} {int((ds.images.split == s).sum())}" for s in ds.splits()
    )
    print(
        f"converted {ds.num_images} images, {ds.num_boxes} boxes, {ds.num_classes} classes "
        f"({counts}) from {fmt} to {args.to}: {result.path}"
    )
    for note in [*ds.meta.get("warnings", []), *ds.meta.get("notes", []), *result.notes]:
        print(f"note: {note}")
    if args.pipeline:
        eval_split = "valid" if "valid" in ds.splits() else "test"
        n_eval = int((ds.images.split == eval_split).sum())
        _pipeline(args, out, ds.class_names, result.files, n_eval)
    return 0
