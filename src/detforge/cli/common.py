"""Options and helpers several subcommands share."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from detforge.errors import DetforgeError


def add_path_map_option(parser: argparse.ArgumentParser) -> None:
    """``--path-map OLD=NEW`` (repeatable): rewrite path prefixes found in lists and .data files."""
    parser.add_argument(
        "--path-map",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help=(
            "rewrite paths that start with OLD to start with NEW (repeatable), e.g. "
            "'G:/data=/mnt/data' for a dataset made on Windows; slashes of either kind match"
        ),
    )


def add_label_map_option(parser: argparse.ArgumentParser, role: str) -> None:
    """``--label-map FILE``: ``role`` says what the command does with it; every command reads
    it with :func:`detforge.formats.labelmap.read_label_map`, so the help ends with the two
    formats that reads."""
    from detforge.formats.labelmap import LABEL_MAP_FORMATS

    parser.add_argument("--label-map", metavar="FILE", help=f"{role}. FILE is {LABEL_MAP_FORMATS}")


def add_source_format_option(
    parser: argparse.ArgumentParser, *, dest: str = "source_format"
) -> None:
    """``--from FORMAT``: the dataset's format when detection (``formats.detect``) guesses
    wrong; the one spelling every command that reads a dataset uses."""
    from detforge.formats.detect import FORMATS

    parser.add_argument(
        "--from", dest=dest, choices=FORMATS, metavar="FORMAT",
        help=f"the dataset's format ({', '.join(FORMATS)}), when detection guesses wrong",
    )  # fmt: skip


def parse_path_map(items: list[str]) -> list[tuple[str, str]]:
    """``["OLD=NEW", ...] -> [(OLD, NEW), ...]``; a missing ``=`` is a usage error."""
    pairs = []
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old:
            raise DetforgeError(f"--path-map expects OLD=NEW, got {item!r}")
        pairs.append((old, new))
    return pairs


def add_darknet_protocol_options(parser: argparse.ArgumentParser) -> None:
    """``--iou``, ``--points`` and ``--conf`` of the Darknet ``detector map`` protocol (the
    options ``detforge eval`` and ``detforge map`` share)."""
    parser.add_argument(
        "--iou", type=fraction, default=0.5,
        help="Darknet IoU threshold (-iou_thresh); a match needs IoU strictly greater [0.5]",
    )  # fmt: skip
    parser.add_argument(
        "--points", type=int, default=0,
        help="Darknet AP: 0 = area under the PR curve, 11 (VOC2007) or 101 (COCO) points [0]",
    )  # fmt: skip
    parser.add_argument(
        "--conf", type=fraction, default=0.25,
        help="Darknet confidence threshold (-thresh) for P/R/F1/TP/FP/FN and average IoU [0.25]",
    )  # fmt: skip


def add_ignore_unmatched_option(parser: argparse.ArgumentParser) -> None:
    """``--ignore-unmatched``: score the predictions that fit the ground truth even when more
    than :data:`~detforge.eval.api.MAX_UNMATCHED_SHARE` of them do not (the option the refusal
    of :func:`~detforge.eval.api.check_unmatched` names)."""
    parser.add_argument(
        "--ignore-unmatched", action="store_true",
        help="score the predictions that fit the GT even when many do not",
    )  # fmt: skip


def parse_wh(
    text: str, *, option: str = "--imgsz", multiple: int = 1, maximum: int | None = None
) -> tuple[int, int]:
    """``"W"`` or ``"W,H"`` (also ``WxH``) -> ``(W, H)`` positive ints, each a multiple of
    ``multiple`` and at most ``maximum``; anything else is a usage error naming ``option``."""
    parts = text.replace("x", ",").replace("X", ",").split(",")
    try:
        values = [int(p.strip()) for p in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) < 1:
        raise DetforgeError(f"{option} expects W or W,H (positive pixels), got {text!r}")
    if multiple > 1 and any(v % multiple for v in values):
        raise DetforgeError(f"{option} {text}: width and height must be multiples of {multiple}")
    if maximum is not None and max(values) > maximum:
        raise DetforgeError(f"{option} {text}: width and height must be at most {maximum}")
    return values[0], values[1]


def add_darknet_model_options(parser: argparse.ArgumentParser) -> None:
    """``--cfg`` and ``--names`` for a Darknet ``.weights`` model (the commands that take a
    checkpoint take one too)."""
    parser.add_argument(
        "--cfg", default=None, metavar="FILE",
        help="Darknet network .cfg of a .weights model [the same-stem .cfg beside the weights]",
    )  # fmt: skip
    parser.add_argument(
        "--names", default=None, metavar="FILE",
        help="class names of a Darknet model, one per line [the dataset's, else class0..N]",
    )  # fmt: skip


def adopt_dataset_names(model: Any, names: Any, dataset_names: Sequence[str]) -> None:
    """A Darknet model loaded without ``--names`` takes the dataset's class names when their
    count fits (``Predictor.class_names`` is ``class0..`` until then)."""
    from detforge.predict.darknet import DarknetPredictor

    fits = len(dataset_names) == len(getattr(model, "class_names", ()))
    if isinstance(model, DarknetPredictor) and names is None and fits:
        model.class_names = tuple(dataset_names)


def add_class_match_option(parser: argparse.ArgumentParser) -> None:
    """``--classes-by-index`` for the commands that score a model on a dataset."""
    parser.add_argument(
        "--classes-by-index", action="store_true",
        help="score the model's class k as the dataset's class k although their names differ, "
        "as Darknet does (the class counts must be equal)",
    )  # fmt: skip


def match_dataset_classes(
    model: Any, names: Any, dataset_names: Sequence[str], *, by_index: bool, model_path: Any,
    data: Any,
) -> None:  # fmt: skip
    """Make ``model`` predict ``dataset_names`` before it is scored on that dataset, or refuse.

    A Darknet model without ``--names`` takes the dataset's names (:func:`adopt_dataset_names`);
    with ``by_index`` (``--classes-by-index``) any model whose class count fits does
    (:func:`~detforge.eval.api.classes_by_index`); otherwise names that differ are refused
    (:func:`~detforge.eval.api.refuse_other_classes`): scored by name, they would be wrong."""
    from detforge.eval.api import classes_by_index, refuse_other_classes

    adopt_dataset_names(model, names, dataset_names)
    if by_index:
        model.class_names, note = classes_by_index(
            model.class_names, dataset_names, what=model_path, data=data
        )
        if note:
            print(note, file=sys.stderr)
    refuse_other_classes(
        model.class_names, dataset_names, model=model_path, data=data, names_option=names
    )


_MODEL_SUFFIXES = (".pt", ".pth", ".onnx", ".weights")


def model_kind(path: str) -> str:
    """What a positional argument is, by its name: ``"model"`` (a checkpoint, ONNX export or
    Darknet ``.weights``/``.conv.N``), ``"cfg"`` (a Darknet network ``.cfg``) or ``"data"``."""
    import re

    name = path.lower().rstrip("/\\")
    if name.endswith(".cfg"):
        return "cfg"
    if name.endswith(_MODEL_SUFFIXES) or re.search(r"\.conv\.\d+$", name):
        return "model"
    return "data"


def order_model_data(args: Sequence[str]) -> tuple[str, str, str | None]:
    """``(model, data, cfg)`` from 2 or 3 positional arguments in any of the orders
    ``MODEL DATA`` (detforge's, every command), ``DATA MODEL`` (the old ``map`` order) and
    Darknet's ``DATA CFG WEIGHTS``, told apart by file type (:func:`model_kind`). Anything
    else is one line saying which order to use."""
    kinds = [model_kind(a) for a in args]
    usage = (
        "expected MODEL DATA (e.g. 'best.pt data/obj.data'), or Darknet's DATA CFG WEIGHTS; "
        f"got {' '.join(repr(a) for a in args)} ({', '.join(kinds)}); a model is a "
        ".pt, .onnx or .weights file"
    )
    if len(args) == 2:
        if kinds == ["model", "data"]:
            return args[0], args[1], None
        if kinds == ["data", "model"]:
            return args[1], args[0], None
        if kinds == ["cfg", "data"]:  # a bare .cfg: loading refuses it and says what to give
            return args[0], args[1], None
        if kinds == ["data", "cfg"]:
            return args[1], args[0], None
    elif len(args) == 3 and sorted(kinds) == ["cfg", "data", "model"]:
        pick = dict(zip(kinds, args, strict=True))
        return pick["model"], pick["data"], pick["cfg"]
    raise DetforgeError(usage)


def split_name(value: str) -> str:
    """argparse ``type=`` of every ``--split``: a canonical split name (``val`` -> ``valid``);
    anything else lists the valid names (and the nearest one)."""
    import difflib

    from detforge.data.dataset import SPLITS, canonical_split

    name = canonical_split(value)
    known = (*SPLITS, "trainval", "all")
    if name in known:
        return name
    near = difflib.get_close_matches(name, [*known, "val"], n=1, cutoff=0.5)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    raise argparse.ArgumentTypeError(
        f"{value!r} is not a split: use train, valid (or val), test, trainval or all{hint}"
    )


def non_negative_int(value: str) -> int:
    """argparse ``type=`` of every ``--seed`` (and of ``--max-depth``): a whole number >= 0
    (numpy's generators refuse negative seeds); anything else is a usage error."""
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value!r}")
    return number


def positive_int(value: str) -> int:
    """argparse ``type=`` of a size or count that must be at least 1; anything else is a
    usage error."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value!r}")
    return number


MAX_LINE_WIDTH = 100
"""The widest box outline ``--line-width`` draws, in pixels (the label font grows with it:
Pillow refuses fonts of thousands of pixels)."""


def line_width(value: str) -> int:
    """argparse ``type=`` of ``--line-width``: a whole number of pixels from 1 to
    :data:`MAX_LINE_WIDTH`; anything else is a usage error."""
    number = positive_int(value)
    if number > MAX_LINE_WIDTH:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_LINE_WIDTH} pixels, got {value!r}")
    return number


def fraction(value: str) -> float:
    """argparse ``type=`` of a score or IoU threshold: a finite number from 0 to 1 (``nan``,
    ``inf`` and ``-5`` are usage errors)."""
    import math

    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and 0.0 <= number <= 1.0):
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {value!r}")
    return number


def require_model_first(command: str, model: str, other: str) -> None:
    """A one-line error when ``command``'s MODEL and DATA/SOURCE came the other way round."""
    if model_kind(model) == "data" and model_kind(other) == "model":
        raise DetforgeError(
            f"the model comes first: detforge {command} {other} {model} (MODEL, then the "
            "images or dataset it runs on, as in every detforge command)"
        )
