"""``detforge train``: train a detector on a dataset (one process, or one per GPU with torchrun)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from detforge.errors import DetforgeError

HELP = "train a YOLO-style detector on a dataset"
DESCRIPTION = """\
Train detforge's anchor-free YOLO-style detector on DATA: a Darknet .data file (its train and
valid lists) or any dataset 'detforge convert' reads. The dataset is checked first; errors
stop training (--skip-bad trains on the clean images and lists what it left out).

Everything goes to a new run folder, printed at the end: --out, default
runs/train/<dataset name> (obj.data -> runs/train/obj, then obj-2, obj-3, ...; --exist-ok
writes into an existing one). It holds weights/last.pt and weights/best.pt
(torch.load(weights_only=True) safe), config.yaml, metrics.csv, results.png, TensorBoard
events, train.log, preview/epoch_NNN.jpg (ground truth left, predictions right, on fixed
validation images -- look at it after the first epochs), and at the end the confusion
matrix, PR and F1 curves of the best weights and labels/*.png for the validation split.
A .data file with backup= also gets copies there: <data stem>_last.pt, <data stem>_best.pt.

On a terminal a progress bar shows the epoch; elsewhere (nohup, CI, a log file) a progress
line is printed every 30 s. Ctrl-C or kill leaves weights/last.pt whole (files are written
to a temporary name and renamed); Ctrl-C prints the --resume command that continues.

The learning rate and weight decay are given for a nominal batch of 64 and scaled to the real
batch. Warmup is always on, also when fine-tuning with --weights (which starts at epoch 0):
--warmup-epochs, at least --warmup-min-iters steps, and never more than a third of the run.
A NaN/inf loss skips the step and logs the batch's images in train.log; repeated NaNs roll
back to the last good checkpoint with half the LR; persistent NaNs stop with a diagnosis.

examples:
  detforge train data/obj.data --epochs 100 --imgsz 416        # -> runs/train/obj
  detforge train data/obj.data --model s --batch auto --device cuda
  detforge train data/obj.data --weights runs/train/obj/weights/best.pt --epochs 30 --lr 0.002
  detforge train data/obj.data --cfg yolov4-tiny.cfg --weights yolov4-tiny.conv.29 --anchors auto
  detforge train --resume runs/train/obj-2               # continue an interrupted run
  detforge train --resume runs/train/obj-2 --epochs 150  # ... and extend it
  detforge train data/obj.data --lr auto                 # LR range test first
  torchrun --nproc_per_node 4 -m detforge train data/obj.data --batch 16   # 4 GPUs, 64/step
"""

_SKIP = {"data", "path_map", "progress", "resume", "weights", "out", "exist_ok"}
_CHOICES: dict[str, list[str]] = {
    "model": ["n", "s", "m"],
    "optimizer": ["sgd", "adamw"],
    "schedule": ["cosine", "linear"],
    "cache": ["auto", "ram", "none"],
}


def _number_or_auto(kind: type) -> Any:
    def parse(text: str) -> Any:
        if text.strip().lower() == "auto":
            return "auto"
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None

    parse.__name__ = f"{kind.__name__} or auto"
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from detforge.cli.common import add_path_map_option, non_negative_int
    from detforge.train.config import TrainConfig, field_docs

    docs = {k: v.replace("``", "'") for k, v in field_docs().items()}
    defaults = TrainConfig()
    parser.add_argument("data", nargs="?", help="dataset: a .data file or a dataset folder")
    main = parser.add_argument_group("run")
    main.add_argument("--out", default=argparse.SUPPRESS, metavar="RUN", help=docs["out"])
    main.add_argument("--exist-ok", action="store_true", default=argparse.SUPPRESS,
                      help=docs["exist_ok"])  # fmt: skip
    main.add_argument("--weights", default=argparse.SUPPRESS, metavar="FILE", help=docs["weights"])
    main.add_argument("--resume", default=argparse.SUPPRESS, metavar="RUN", help=docs["resume"])
    bar = main.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="always show progress bars (elsewhere than a terminal: a line "
                          "every 30 s) [bars on a terminal only]")  # fmt: skip
    bar.add_argument("--no-progress", dest="progress", action="store_false",
                     help="never show progress bars or lines")  # fmt: skip
    add_path_map_option(parser)
    opts = parser.add_argument_group("options (defaults in brackets)")
    for f in dataclasses.fields(TrainConfig):
        if f.name in _SKIP:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        shown = "none" if default is None else ("auto" if default == "" else default)
        text = f"{docs.get(f.name, '')} [{shown}]"
        kw: dict[str, Any] = {"default": argparse.SUPPRESS, "help": text, "dest": f.name}
        if isinstance(default, bool):
            kw["action"] = argparse.BooleanOptionalAction
        elif f.name == "batch":
            kw["type"], kw["metavar"] = _number_or_auto(int), "N|auto"
        elif f.name == "lr":
            kw["type"], kw["metavar"] = _number_or_auto(float), "LR|auto"
        elif f.name == "seed":
            kw["type"], kw["metavar"] = non_negative_int, "N"
        elif isinstance(default, int):
            kw["type"], kw["metavar"] = int, "N"
        elif isinstance(default, float):
            kw["type"], kw["metavar"] = float, "X"
        else:
            kw["metavar"] = "FILE" if f.name.endswith("weights") or f.name == "cfg" else "NAME"
            kw["metavar"] = "auto|LIST" if f.name == "anchors" else kw["metavar"]
            if f.name in _CHOICES:
                kw["choices"], kw["metavar"] = _CHOICES[f.name], None
        opts.add_argument(flag, **kw)


def config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`TrainConfig` for ``args``; ``--resume`` starts from the run's saved config
    and applies only the options given on the command line (e.g. a larger ``--epochs``)."""
    from detforge.cli.common import parse_path_map
    from detforge.train.config import TrainConfig, read_config
    from detforge.train.runs import resume_checkpoint_path, run_dir_of

    given = {k: v for k, v in vars(args).items() if not k.startswith("_") and k != "command"}
    given["path_map"] = parse_path_map(given.pop("path_map", []) or [])
    if given.get("progress") is None:
        given.pop("progress", None)
    data = given.pop("data", None)
    if "resume" in given:
        run = run_dir_of(resume_checkpoint_path(given["resume"]))
        cfg = read_config(run / "config.yaml")
        if data and Path(data).resolve() != Path(cfg.data).resolve():
            raise DetforgeError(
                f"--resume continues the run's own dataset ({cfg.data}); drop DATA, or start a "
                "new run with --weights to train on another dataset"
            )
        if not given["path_map"]:
            given.pop("path_map")
        values = {**cfg.to_dict(), **given, "resume": str(run), "weights": None}
        values["path_map"] = [tuple(p) for p in values["path_map"]]
        return TrainConfig(**values)
    if not data:
        raise DetforgeError("give DATA (a .data file or dataset folder), or --resume RUN")
    if given.get("cfg"):  # a Darknet network: its own input size and learning rate
        from detforge.train.config import TrainConfig
        from detforge.train.darknet_model import darknet_cli_defaults

        batch = given.get("batch", TrainConfig.batch)
        given = {**darknet_cli_defaults(given["cfg"], batch), **given}
    return TrainConfig(data=data, **given)


def run(args: argparse.Namespace) -> int:
    from detforge.train.ddp import dist_info_from_env
    from detforge.train.trainer import train

    cfg = config_from_args(args)
    result = train(cfg)
    if dist_info_from_env().is_main:
        print(
            f"done: {result.epochs_done} epoch(s), {result.stop_reason}; best epoch "
            f"{result.best_epoch} (fitness {result.best_fitness:.4f}); run {result.run_dir}, "
            f"best weights {result.best_weights}"
        )
    return 0
