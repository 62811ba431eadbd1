"""``detforge lr-find``: a short learning-rate range test that recommends a stable LR."""

from __future__ import annotations

import argparse
import math
from typing import Any

HELP = "learning-rate range test: recommend a stable --lr for train"
DESCRIPTION = """\
Train a fresh model for a few dozen steps while raising the learning rate exponentially, plot
the loss against the LR, and recommend an LR safely below where the loss starts to diverge
(a tenth of the LR of lowest loss). Use it before a long run, or when the loss goes NaN or the
classification loss climbs: 'detforge train DATA --lr auto' runs this test itself.

The LR is in the units of 'detforge train --lr' (the peak LR for a nominal batch of 64; the
trainer scales it to the real batch).

With --cfg the test runs that Darknet network, as 'detforge train --cfg' would fine-tune it:
from --weights (a .weights or partial .conv.N file), --freeze N layers fixed, the heads rebuilt
for the dataset's classes, its [yolo] loss, the cfg's input size, no gradient clipping, and LRs
from 1e-8 to 1e-2 (its loss sums every cell: its LRs are ~1e-5). Read the curve there: for a
pretrained network the recommendation rule can fall far below a good rate (fine-tuning
yolov3-tiny on BCCD: 6.9e-6, against the cfg's 6.25e-5 that the fine-tuning benchmark uses),
so 'train --cfg' keeps the cfg's rate and does not take --lr auto. Without --cfg, --weights
is a detforge checkpoint to start from.

examples:
  detforge lr-find data/obj.data --imgsz 416 --batch 16
  detforge lr-find data/obj.data --optimizer adamw --plot lr.png
  detforge lr-find data/obj.data --cfg yolov3-tiny.cfg --weights yolov3-tiny.weights --freeze 8
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from detforge.cli.common import add_path_map_option
    from detforge.utils.outputs import add_exist_ok_option

    parser.add_argument("data", help="dataset: a .data file or a dataset folder")
    parser.add_argument("--model", choices=["n", "s", "m"], default="n", help="model scale [n]")
    parser.add_argument(
        "--imgsz", type=int, default=None, help="input size in pixels [640; the cfg's size]"
    )
    parser.add_argument("--batch", type=int, default=16, help="images per step [16]")
    parser.add_argument("--optimizer", choices=["sgd", "adamw"], default="sgd", help="[sgd]")
    parser.add_argument("--steps", type=int, default=100, help="steps of the test [100]")
    parser.add_argument(
        "--start", type=float, default=None, help="first LR [1e-5; 1e-8 with --cfg]"
    )
    parser.add_argument("--end", type=float, default=None, help="last LR [1; 1e-2 with --cfg]")
    parser.add_argument(
        "--cfg", metavar="FILE", default=None, help="a Darknet network .cfg to test instead"
    )
    parser.add_argument(
        "--weights",
        metavar="FILE",
        default=None,
        help="start from: a Darknet .weights/.conv.N (with --cfg) or a detforge checkpoint",
    )
    parser.add_argument(
        "--freeze",
        type=int,
        default=0,
        metavar="N",
        help="with --cfg: keep the first N layers fixed [0]",
    )
    parser.add_argument("--device", default="", help="cpu, cuda or cuda:N [CUDA if available]")
    parser.add_argument("--workers", type=int, default=2, help="loader processes [2]")
    parser.add_argument("--plot", default="lr_find.png", help="plot file [lr_find.png]")
    add_exist_ok_option(parser, help="replace an existing --plot file")
    add_path_map_option(parser)


def run(args: argparse.Namespace) -> int:
    from detforge.cli.common import parse_path_map
    from detforge.errors import DetforgeError
    from detforge.predict.writers import dataset_guard
    from detforge.train.config import TrainConfig
    from detforge.train.lr_find import default_range, find_lr, plot_lr_find
    from detforge.train.setup import load_training_data
    from detforge.utils.device import resolve_device
    from detforge.utils.outputs import claim_file

    low, high = default_range(darknet=bool(args.cfg))
    start = args.start if args.start is not None else low
    end = args.end if args.end is not None else high
    if not 0 < start < end:
        raise DetforgeError(f"--start must be positive and below --end, got {start:g}, {end:g}")
    if args.steps < 10:
        raise DetforgeError(f"--steps must be at least 10, got {args.steps}")
    plot = claim_file(args.plot, exist_ok=args.exist_ok, option="--plot")
    sizes: dict[str, Any] = {"imgsz": 640}
    cfg_lr = 0.0
    if args.cfg:  # the input size and clipping of 'detforge train --cfg'; the test picks the LR
        from detforge.train.darknet_model import darknet_cli_defaults

        sizes = darknet_cli_defaults(args.cfg, args.batch)
        cfg_lr = sizes.pop("lr")
    if args.imgsz:
        sizes["imgsz"] = args.imgsz
    cfg = TrainConfig(
        data=args.data, model=args.model, batch=args.batch, optimizer=args.optimizer,
        workers=args.workers, path_map=parse_path_map(args.path_map), cache="none",
        cfg=args.cfg, weights=args.weights, freeze=args.freeze, **sizes,
    )  # fmt: skip
    cfg.validate()
    device = resolve_device(args.device)
    data = load_training_data(args.data, path_map=cfg.path_map, check=False)
    guard = dataset_guard([data.train, data.val], files=[args.data, args.cfg, args.weights])
    guard.check(plot, option="--plot")
    res = find_lr(cfg, data, batch=args.batch, device=device, steps=args.steps,
                  start=start, end=end)  # fmt: skip
    plot_lr_find(plot, res)
    print(f"tested {len(res.lrs)} LRs from {start:g}; plot: {args.plot}")
    if not math.isfinite(res.suggestion):
        print("no stable LR found: the loss never fell; check the dataset ('detforge check')")
        return 1
    print(f"lowest loss at lr {res.min_loss_lr:.3g}; steepest descent at lr {res.steepest:.3g}")
    print(f"recommended: --lr {res.suggestion:.3g}")
    if args.cfg:  # for a pretrained network the rule can be far off (see the description)
        print(
            f"the cfg's own rate, train --cfg's default: --lr {cfg_lr:.3g} (learning_rate / batch)"
        )
    return 0
