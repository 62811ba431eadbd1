"""``detforge split``: train/valid/test lists that keep video sequences together."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from detforge.cli.common import add_path_map_option, non_negative_int, parse_path_map
from detforge.errors import DetforgeError

if TYPE_CHECKING:
    from detforge.data.dataset import Dataset

HELP = "split images into train/valid/test lists (group-aware, stratified, leak report)"
DESCRIPTION = """\
Split the images of one or more SOURCEs (folders of images with Darknet labels, image
lists, or .data files) into train.txt, valid.txt and test.txt in --out, with an obj.names
and an obj.data whose backup/ and results/ folders are created there. Nothing is copied:
the lists name the original images (absolute paths), whose labels stay beside them.

--group-by keeps every sequence inside one split, so near-identical video frames never
sit on both sides of the train/validation line:
  parent   the folder holding the image is the sequence
  REGEX    searched in the image's absolute path (forward slashes); the first capture
           group (or the whole match) is the sequence, e.g. '([^/]+)_frame\\d+' for
           clip01_frame0007.jpg
--stratify balances the share of images containing each class across the splits.
Afterwards the same file path or byte-identical content found in two splits is reported
(only files whose sizes collide are read).

examples:
  detforge split data/frames --out data/split --ratios 0.8,0.1,0.1 --group-by parent
  detforge split old/obj.data --out new --ratios 0.9,0.1 --stratify --seed 1
  detforge split /mnt/data/train.txt --out split --path-map G:/data=/mnt/data  # made on Windows
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # '--ratios -1,1,1' is a value (refused as negative by parse_ratios), not an unknown
    # option: argparse's own rule takes only '-1' and '-0.5' for numbers (no option here
    # looks like one)
    parser._negative_number_matcher = re.compile(r"^-\.?\d")
    parser.add_argument(
        "sources", nargs="+", metavar="SOURCE", help="folders, image lists or .data files"
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="output folder (new, empty or an earlier split)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an earlier detforge output in --out"
    )
    parser.add_argument(
        "--ratios",
        default="0.8,0.1,0.1",
        metavar="R",
        help="train,valid,test shares; '8,1,1' also works [0.8,0.1,0.1]",
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed [0]")
    parser.add_argument(
        "--group-by",
        default=None,
        metavar="REGEX|parent",
        help="keep each sequence in one split (see above)",
    )
    parser.add_argument(
        "--stratify", action="store_true", help="balance class presence across splits"
    )
    parser.add_argument(
        "--names",
        default=None,
        metavar="FILE",
        help="class names file to use [the sources' own]",
    )
    parser.add_argument(
        "--leaks",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="report files found in two splits (--no-leaks skips reading files) [on]",
    )
    add_path_map_option(parser)


def _merge(parts: Sequence[Dataset], names: list[str] | None) -> Dataset:
    """One dataset from several sources with agreeing class names."""
    from detforge.data.dataset import concat_datasets

    if names is None:
        tuples = {p.class_names for p in parts if p.num_classes}
        if len(tuples) > 1 and all(all(n.isdigit() for n in t) for t in tuples):
            tuples = {max(tuples, key=len)}  # numbered classes only: take the widest
        if len(tuples) > 1:
            a, b = sorted(tuples)[:2]
            raise DetforgeError(
                f"sources have different class names ({', '.join(a)} vs {', '.join(b)}); "
                "give --names FILE to choose"
            )
        names = list(tuples.pop()) if tuples else []
    return concat_datasets([replace(p, class_names=tuple(names)) for p in parts])


def _read_source(source: str, path_map: list[tuple[str, str]]) -> Dataset:
    """One SOURCE as Darknet data; a folder of another layout (VOC, COCO, ...) or one with
    no labels at all is an error that names the command to run instead."""
    from detforge.cli.paths import layout_hint, refuse_other_layout
    from detforge.formats.darknet import read_darknet

    try:
        part = read_darknet(source, path_map=path_map, read_sizes=False)
    except DetforgeError:
        hint = layout_hint(source, "split")
        if hint is None:
            raise
        raise DetforgeError(hint, path=source) from None
    # no boxes, or boxes without class names: maybe another layout (its names elsewhere)
    unnamed = all(n.isdigit() for n in part.class_names)
    refuse_other_layout(source, 0 if unnamed else part.num_boxes, "split")
    return part


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from detforge.data.dataset import SPLITS
    from detforge.data.lists import first_entries, repeated_entries
    from detforge.data.split import assign_splits, find_leaks, group_keys, parse_ratios
    from detforge.formats.darknet import read_names
    from detforge.formats.darknet.write import write_data_files
    from detforge.formats.detect import source_file_folders
    from detforge.utils.outdir import output_dir

    ratios = parse_ratios(args.ratios)
    pm = parse_path_map(args.path_map)
    parts = [_read_source(s, pm) for s in args.sources]
    names = read_names(args.names) if args.names else None
    ds = _merge(parts, names)
    if ds.num_boxes and int(ds.boxes.cls.max()) >= ds.num_classes:
        raise DetforgeError(
            f"labels use class {int(ds.boxes.cls.max())} but there are only "
            f"{ds.num_classes} class names"
        )
    keep = first_entries(ds.images.path.tolist())  # an image listed twice is one image
    dropped = ds.num_images - len(keep)
    # of those, the entries repeating an image within one split of the sources; the rest
    # repeat an image of another split (a leak in the sources, undone by the new split)
    repeats = len(repeated_entries(ds.images.path.tolist(), ds.images.split.tolist()))
    ds = ds.select(keep)
    if ds.num_images == 0:
        raise DetforgeError("no images found in " + ", ".join(args.sources))
    paths = [os.path.abspath(p) for p in ds.images.path.tolist()]
    keys, unmatched = group_keys(paths, args.group_by)
    presence = None
    if args.stratify:
        presence = np.zeros((ds.num_images, ds.num_classes), dtype=bool)
        presence[ds.boxes.image, ds.boxes.cls] = True
    splits = assign_splits(keys, ratios, seed=args.seed, presence=presence)
    ds = ds.with_splits(splits)

    split_arr = np.asarray(splits, dtype=object)
    lists = {}
    for s in SPLITS:
        idx = np.flatnonzero(split_arr == s)
        if len(idx) or s == "train":  # an empty train list is still written
            lists[s] = [paths[i] for i in idx.tolist()]
    # OUT may not lie in (or contain) the sources' image, label or dataset folders either
    read = sorted({f for part in parts for f in source_file_folders(part)})
    with output_dir(
        args.out,
        command="split",
        overwrite=args.overwrite,
        read_folders=args.sources,
        file_folders=read,
    ) as o:
        out = o.resolve()
        data_path = write_data_files(out, lists, ds.class_names)

    key_arr = np.asarray(keys, dtype=object)
    per_img = ds.boxes_per_image()
    print(f"{ds.num_images} images, {len(set(keys))} groups -> {out}")
    if repeats:
        print(f"  {repeats} duplicate list entries (an image listed again in its split) "
              "counted once")  # fmt: skip
    if dropped - repeats:
        print(f"  {dropped - repeats} images listed in more than one split of the sources (a "
              "leak there) counted once")  # fmt: skip
    if unmatched:
        print(f"  note: --group-by matched no group in {unmatched} paths; each is its own group")
    print(f"  {'split':<6} {'images':>8} {'groups':>7} {'negatives':>9} {'boxes':>8}  share")
    for s in SPLITS:
        m = split_arr == s
        if not m.any():
            continue
        print(
            f"  {s:<6} {int(m.sum()):>8} {len(set(key_arr[m].tolist())):>7} "
            f"{int((per_img[m] == 0).sum()):>9} {int(per_img[m].sum()):>8}  "
            f"{m.mean():.3f}"
        )
    if presence is not None and ds.num_classes:
        print("  images containing each class (train/valid/test):")
        for k, name in enumerate(ds.class_names):
            cnt = [int(presence[split_arr == s, k].sum()) for s in SPLITS]
            print(f"    {name:<20} {'/'.join(map(str, cnt))}")
    leaks = find_leaks(paths, splits) if args.leaks else []
    if not args.leaks:
        print("  leak check skipped (--no-leaks)")
    elif leaks:
        print(f"  WARNING: {len(leaks)} file(s) in two splits (the same image leaks):")
        for lk in leaks[:20]:
            print(f"    {lk.kind}: {lk.split_a} {lk.path_a} == {lk.split_b} {lk.path_b}")
    else:
        print("  no leaks: no path or byte-identical file is in two splits")
    print(f"  wrote {data_path}")
    return 0
