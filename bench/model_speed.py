"""CPU speed of the detector: eval forward (fused, no_grad) and a training step
(forward + DetectionLoss + backward) at a given size and batch, plus params and FLOPs.

Run by hand, e.g.::

    .venv/bin/python bench/model_speed.py --scale n --imgsz 416 --batch 16 --threads 2

``--variant v8`` builds the same architecture with a YOLOv8n-shaped head (full 3x3 class
branch of max(C, c3) channels) so the lean head can be compared in the same run.
Prints one line per measurement; the median of ``--repeats`` timed runs after a warm-up.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from detforge.models.yolo import Detector, create_model
from detforge.train.loss import DetectionLoss


def build(scale: str, num_classes: int, variant: str) -> Detector:
    model = create_model(scale, num_classes)
    if variant == "default":
        return model
    if variant == "v8":
        cfg = dataclasses.replace(
            model.config,
            box_hidden=max(16, model.config.widths[2] // 4, 64),
            cls_hidden=max(model.config.widths[2], min(num_classes, 100)),
            cls_depthwise=False,
        )
    else:
        raise SystemExit(f"unknown variant {variant}")
    from detforge.models.backbone import CSPBackbone

    net = Detector(
        backbone=CSPBackbone(widths=cfg.widths, depths=cfg.depths),
        backbone_channels=(cfg.widths[2], cfg.widths[3], cfg.widths[4]),
        config=cfg,
        num_classes=num_classes,
    )
    net.build_args = dict(model.build_args)
    return net


def gflops(model: torch.nn.Module, x: torch.Tensor) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 1e9


def timed(fn: object, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", default="n")
    ap.add_argument("--variant", default="default", choices=["default", "v8"])
    ap.add_argument("--imgsz", type=int, default=416)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--classes", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-train", action="store_true")
    ap.add_argument("--no-fuse", action="store_true")
    ap.add_argument("--channels-last", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build(args.scale, args.classes, args.variant)
    b, s = args.batch, args.imgsz
    x = torch.rand(b, 3, s, s)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    model.eval()
    fl = gflops(model, x[:1])
    print(f"{args.scale}/{args.variant}: params {params:.3f} M, {fl:.2f} GFLOPs per {s}x{s} image")

    if not args.no_train:
        model.train()
        loss_fn = DetectionLoss(model)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        g = torch.Generator().manual_seed(0)
        n_t = 6 * b
        xy = torch.rand(n_t, 2, generator=g) * (s - 64)
        wh = torch.rand(n_t, 2, generator=g) * 56 + 8
        batch = {
            "batch_idx": torch.arange(n_t) % b,
            "cls": torch.randint(0, args.classes, (n_t,), generator=g),
            "bboxes": torch.cat((xy, xy + wh), 1),
        }

        def step() -> None:
            loss, _ = loss_fn(model(x), batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        step()
        t = timed(step, args.repeats)
        print(f"  train step: {t:.3f} s/batch of {b} -> {b / t:.2f} images/s")

    model.eval()
    if not args.no_fuse:
        model.fuse()
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        x = x.contiguous(memory_format=torch.channels_last)

    def infer() -> None:
        with torch.inference_mode():
            model(x)

    infer()
    t = timed(infer, args.repeats)
    print(f"  inference:  {t:.3f} s/batch of {b} -> {1000 * t / b:.1f} ms/image")


if __name__ == "__main__":
    main()
