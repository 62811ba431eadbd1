"""``detforge lists``: image lists from folders (``find | sort``, ``sed '0~N!d'``, ``shuf``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from detforge.cli.common import add_path_map_option, non_negative_int, parse_path_map
from detforge.errors import DetforgeError
from detforge.utils.outputs import add_exist_ok_option, claim_file

HELP = "write a sorted list of the images under folders, or thin/shuffle a list (1 in N)"
DESCRIPTION = """\
Write an image list: every image under the given folders, one path per line, sorted by
code point (like LC_ALL=C sort). Label files (.txt) and hidden names are never listed.
Folders are scanned as a stream (os.scandir), so folders of a million files are fine.

Give image lists instead of folders to thin or shuffle them: their entries are kept in
their order (blank and # lines dropped, relative entries resolved against the list's
folder, --path-map applied), so 'detforge lists train.txt -o train_10.txt --every 10' is
the guide's "cat train.txt | sed '0~10!d'" done right.

Paths are written absolute, so the list works from any working directory; with
--relative they are written relative to the list's own folder (detforge resolves relative
list entries against the list's folder; Darknet against its working directory).

--every N keeps entries N, 2N, 3N, ... of the sorted list, exactly like sed '0~N!d'
(1 in N frames of a video); --shuffle then shuffles reproducibly (--seed).

An image named on more than one line (listed twice, or in two input lists) is written each
time (Darknet trains on each entry: a list may repeat on purpose); a note counts them.

An existing LIST is replaced only with --exist-ok; an input list, an image, its label file
or any other file inside a scanned folder never is.

examples:
  detforge lists data/train -o data/train.txt
  detforge lists data/cam1 data/cam2 -o all.txt --every 10
  detforge lists frames/ -o - --shuffle --seed 3 | head
  detforge lists train.txt -o train_10.txt --every 10
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "folders",
        nargs="+",
        metavar="DIR|LIST",
        help="folders to scan (recursively), or image lists to thin/shuffle",
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="LIST",
        help="list file to write ('-' for standard output)",
    )
    parser.add_argument(
        "--every",
        type=int,
        default=1,
        metavar="N",
        help="keep entries N, 2N, 3N, ... (sed '0~N!d'); 1 = all [1]",
    )
    parser.add_argument("--shuffle", action="store_true", help="shuffle the list (after --every)")
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="random seed for --shuffle [0]"
    )
    parser.add_argument(
        "--ext",
        default=None,
        metavar="EXTS",
        help="comma-separated suffixes to list, e.g. '.jpg,.png' "
        "[jpg jpeg png gif bmp webp tif tiff]",
    )
    parser.add_argument(
        "--max-depth",
        type=non_negative_int,
        default=None,
        metavar="D",
        help="descend at most D folder levels (0 = the folder itself only)",
    )
    parser.add_argument(
        "--relative", action="store_true", help="write paths relative to the list file's folder"
    )
    add_exist_ok_option(parser, help="replace an existing LIST (never an input)")
    add_path_map_option(parser)


def _claim_output(
    output: str, roots: list[str], paths: list[str], *, lists: bool, exist_ok: bool
) -> None:
    """A :class:`DetforgeError` unless ``output`` may be written: an existing file only with
    ``exist_ok``, and never an input list, an image read or listed, its label file, or any
    file inside a scanned folder."""
    from detforge.predict.writers import InputGuard

    out = claim_file(output, exist_ok=exist_ok, option="--output")
    if not os.path.lexists(out):
        return
    if lists and any(os.path.samefile(r, out) for r in roots if out.exists()):
        raise DetforgeError(
            "--output is one of the input lists; detforge never overwrites its input "
            "(write to a new file)",
            path=out,
        )
    guard = InputGuard(paths, files=roots if lists else (), folders=() if lists else roots)
    guard.check(out, option="--output")


def run(args: argparse.Namespace) -> int:
    from detforge.data.lists import list_images, repeated_entries, shuffle_paths, take_every
    from detforge.formats.darknet import read_image_list, write_image_list

    exts = None if args.ext is None else [e.strip() for e in args.ext.split(",") if e.strip()]
    roots = [os.path.abspath(f) for f in args.folders]
    is_list = [os.path.isfile(r) for r in roots]
    if all(is_list):
        pm = parse_path_map(args.path_map)
        paths = [p for r in roots for p in read_image_list(r, path_map=pm)]
    elif any(is_list):
        raise DetforgeError("give either folders or image lists, not both")
    else:
        paths = list_images(roots, extensions=exts, max_depth=args.max_depth)
    found = len(paths)
    if args.output != "-":
        _claim_output(args.output, roots, paths, lists=all(is_list), exist_ok=args.exist_ok)
    paths = take_every(paths, args.every)
    if args.shuffle:
        paths = shuffle_paths(paths, seed=args.seed)
    repeats = repeated_entries(paths)  # any spelling of a path (an image in two lists, too)
    if args.output == "-":
        text = "".join(f"{p}\n" for p in paths)
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is not None:  # names that are not UTF-8 keep their bytes
            sys.stdout.flush()
            buffer.write(text.encode("utf-8", "surrogateescape"))
            buffer.flush()
        else:
            sys.stdout.write(text)
            sys.stdout.flush()
    else:
        out = Path(args.output)
        if args.relative:
            base = os.path.abspath(out.parent)
            paths = [os.path.relpath(p, base) for p in paths]
        write_image_list(out, paths)
    kept = f", kept {len(paths)} (every {args.every})" if args.every > 1 else ""
    where = "" if args.output == "-" else f" -> {args.output}"
    stream = sys.stderr if args.output == "-" else sys.stdout
    print(f"{found} {'entries' if all(is_list) else 'images'}{kept}{where}", file=stream)
    if repeats:
        i, first = repeats[0]
        print(
            f"note: {len(repeats)} entries name an image already written on an earlier line; "
            f"kept (Darknet trains on each entry); first: {paths[i]}, line {i + 1} (first on "
            f"line {first + 1})",
            file=stream,
        )
    return 0
