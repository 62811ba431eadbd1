"""``detforge lr-find``: a short learning-rate range test that recommends a stable LR."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

HELP = "learning-rate range test: recommend a stable --lr for train"
DESCRIPTION = """\
Train a fresh model for a few dozen steps while raising the learning rate exponentially, plot
the loss against the LR, and recommend an LR safely below where the loss starts to diverge
(a tenth of the LR of lowest loss). Use it before a long run, or when the loss goes NaN or the
classification loss climbs: 'detforge train DATA --lr auto' runs this test itself.

The LR is in the units of 'detforge train --lr' (the peak LR for a nominal batch of 64; the
trainer scales it to the real batch).

examples:
  detforge lr-find data/obj.data --imgsz 416 --batch 16
  detforge lr-find data/obj.data --optimizer adamw --plot lr.png
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from detforge.cli.common import add_path_map_option

    parser.add_argument("data", help="dataset: a .data file or a dataset folder")
    parser.add_argument("--model", choices=["n", "s", "m"], default="n", help="model scale [n]")
    parser.add_argument("--imgsz", type=int, default=640, help="input size in pixels [640]")
    parser.add_argument("--batch", type=int, default=16, help="images per step [16]")
    parser.add_argument("--optimizer", choices=["sgd", "adamw"], default="sgd", help="[sgd]")
    parser.add_argument("--steps", type=int, default=100, help="steps of the test [100]")
    parser.add_argument("--start", type=float, default=1e-5, help="first LR [1e-5]")
    parser.add_argument("--end", type=float, default=1.0, help="last LR [1]")
    parser.add_argument("--device", default="", help="cpu, cuda or cuda:N [CUDA if available]")
    parser.add_argument("--workers", type=int, default=2, help="loader processes [2]")
    parser.add_argument("--plot", default="lr_find.png", help="plot file [lr_find.png]")
    add_path_map_option(parser)


def run(args: argparse.Namespace) -> int:
    from detforge.cli.common import parse_path_map
    from detforge.errors import DetforgeError
    from detforge.train.config import TrainConfig
    from detforge.train.lr_find import find_lr, plot_lr_find
    from detforge.train.setup import load_training_data
    from detforge.utils.device import resolve_device

    if not 0 < args.start < args.end:
        raise DetforgeError(
            f"--start must be positive and below --end, got {args.start}, {args.end}"
        )
    if args.steps < 10:
        raise DetforgeError(f"--steps must be at least 10, got {args.steps}")
    cfg = TrainConfig(
        data=args.data, model=args.model, imgsz=args.imgsz, batch=args.batch,
        optimizer=args.optimizer, workers=args.workers, path_map=parse_path_map(args.path_map),
        cache="none",
    )  # fmt: skip
    cfg.validate()
    device = resolve_device(args.device)
    data = load_training_data(args.data, path_map=cfg.path_map, check=False)
    res = find_lr(cfg, data, batch=args.batch, device=device, steps=args.steps,
                  start=args.start, end=args.end)  # fmt: skip
    plot_lr_find(Path(args.plot), res)
    print(f"tested {len(res.lrs)} LRs from {args.start:g}; plot: {args.plot}")
    if not math.isfinite(res.suggestion):
        print("no stable LR found: the loss never fell; check the dataset ('detforge check')")
        return 1
    print(f"lowest loss at lr {res.min_loss_lr:.3g}; steepest descent at lr {res.steepest:.3g}")
    print(f"recommended: --lr {res.suggestion:.3g}")
    return 0
