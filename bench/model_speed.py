"""CPU speed of the detector: eval forward (fused, inference mode) and a training step
(forward + DetectionLoss + backward + SGD step) at a given size and batch, with params and
FLOPs, for detforge's model and, in the same run, a YOLOv8n-shaped reference.

Run by hand, e.g.::

    .venv/bin/python bench/model_speed.py --scale n --imgsz 416 --batch 16 --threads 2

Variants, measured interleaved (one run of each in turn, ``--repeats`` rounds, median after
a warm-up) so that load from other processes hits them alike:

* ``v8-ref``: the same backbone/neck with YOLOv8n's head (full 3x3 class branch) in
  plain NCHW memory format: the architecture and layout Ultralytics runs for YOLOv8n;
* ``detforge``: ``create_model(scale)`` as shipped (depthwise-separable class branch,
  channels-last weights; ``fuse()`` before inference).

* ``ultralytics`` (``--ultralytics``; needs the ``ultralytics`` package, e.g. run this script
  with a throwaway venv's python and ``PYTHONPATH=src``): YOLOv8n itself, built from
  ``yolov8n.yaml`` (its ``fuse()`` for inference; its own loss for the training step).

Both wall-clock and process CPU time are reported: on a machine shared with other work the
CPU time (with ``--threads 1``) is the stabler number.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections.abc import Callable

import torch

from detforge.models.backbone import CSPBackbone
from detforge.models.yolo import Detector, create_model
from detforge.train.loss import DetectionLoss


def build(variant: str, scale: str, num_classes: int) -> Detector:
    model = create_model(scale, num_classes)
    if variant == "detforge":
        return model
    cfg = dataclasses.replace(
        model.config,
        box_hidden=max(16, model.config.widths[2] // 4, 64),
        cls_hidden=max(model.config.widths[2], min(num_classes, 100)),
        cls_depthwise=False,
    )
    net = Detector(
        backbone=CSPBackbone(widths=cfg.widths, depths=cfg.depths),
        backbone_channels=(cfg.widths[2], cfg.widths[3], cfg.widths[4]),
        config=cfg,
        num_classes=num_classes,
    )
    net.build_args = dict(model.build_args)
    return net  # NCHW (contiguous) weights


def ultralytics_model(num_classes: int, *, fused: bool) -> torch.nn.Module:
    """YOLOv8n from the ultralytics package (benchmark reference only)."""
    import types

    from ultralytics.nn.tasks import DetectionModel

    m = DetectionModel("yolov8n.yaml", nc=num_classes, verbose=False)
    m.args = types.SimpleNamespace(box=7.5, cls=0.5, dfl=1.5)
    if fused:
        m.eval()
        m.fuse(verbose=False)
    return m


def gflops(model: torch.nn.Module, x: torch.Tensor) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 1e9


def interleaved(fns: dict[str, Callable[[], None]], repeats: int) -> dict[str, tuple[float, float]]:
    """name -> (median wall s, median CPU s) over ``repeats`` rounds after one warm-up."""
    for fn in fns.values():
        fn()
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t, c = time.perf_counter(), time.process_time()
            fn()
            wall[k].append(time.perf_counter() - t)
            cpu[k].append(time.process_time() - c)
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in fns}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", default="n")
    ap.add_argument("--imgsz", type=int, default=416)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--classes", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-train", action="store_true")
    ap.add_argument("--ultralytics", action="store_true", help="also time YOLOv8n itself")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    b, s = args.batch, args.imgsz
    print(
        f"scale {args.scale}, {s}x{s}, batch {b}, {args.classes} classes, "
        f"{args.threads} threads, torch {torch.__version__}"
    )
    torch.manual_seed(0)
    models = {v: build(v, args.scale, args.classes) for v in ("v8-ref", "detforge")}
    x = torch.rand(b, 3, s, s)
    shown: dict[str, torch.nn.Module] = dict(models)
    if args.ultralytics:
        shown["ultralytics"] = ultralytics_model(args.classes, fused=False).eval()
    for name, m in shown.items():
        m.eval()
        params = sum(p.numel() for p in m.parameters()) / 1e6
        print(f"{name:11s} params {params:.3f} M, {gflops(m, x[:1]):.2f} GFLOPs/image")

    if not args.no_train:
        g = torch.Generator().manual_seed(0)
        n_t = 6 * b
        xy = torch.rand(n_t, 2, generator=g) * (s - 64)
        wh = torch.rand(n_t, 2, generator=g) * 56 + 8
        batch = {
            "batch_idx": torch.arange(n_t) // 6,  # sorted, as a collate makes them
            "cls": torch.randint(0, args.classes, (n_t,), generator=g),
            "bboxes": torch.cat((xy, xy + wh), 1),
        }

        def ul_train_step() -> Callable[[], None]:
            m = ultralytics_model(args.classes, fused=False).train()
            opt = torch.optim.SGD(m.parameters(), lr=1e-4, momentum=0.9)
            bx = batch["bboxes"]
            xywh = torch.cat(((bx[:, :2] + bx[:, 2:]) / 2, bx[:, 2:] - bx[:, :2]), 1) / s
            ul_batch = {
                "img": x,
                "batch_idx": batch["batch_idx"].float(),
                "cls": batch["cls"].float()[:, None],
                "bboxes": xywh,
            }

            def step() -> None:
                loss, _ = m.loss(ul_batch)
                opt.zero_grad(set_to_none=True)
                loss.sum().backward()
                opt.step()

            return step

        def train_step(m: Detector) -> Callable[[], None]:
            m.train()
            loss_fn = DetectionLoss(m)
            opt = torch.optim.SGD(m.parameters(), lr=1e-4, momentum=0.9)

            def step() -> None:
                loss, _ = loss_fn(m(x), batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

            return step

        steps = {k: train_step(m) for k, m in models.items()}
        if args.ultralytics:
            steps["ultralytics"] = ul_train_step()
        res = interleaved(steps, args.repeats)
        for k, (w, c) in res.items():
            print(
                f"train step {k:11s}: wall {w:.2f} s/batch = {b / w:.2f} img/s; "
                f"CPU {c:.2f} s/batch = {b / c:.2f} img/s per busy core-set"
            )

    for m in models.values():
        m.eval()
    models["v8-ref"].fuse(channels_last=False)  # Ultralytics fuses Conv+BN for predict too
    models["detforge"].fuse()

    def infer(m: Detector) -> Callable[[], None]:
        def run() -> None:
            with torch.inference_mode():
                m(x)

        return run

    runs = {k: infer(m) for k, m in models.items()}
    if args.ultralytics:
        runs["ultralytics"] = infer(ultralytics_model(args.classes, fused=True))  # type: ignore[arg-type]
    res = interleaved(runs, args.repeats)
    for k, (w, c) in res.items():
        print(
            f"inference  {k:11s}: wall {1000 * w / b:.1f} ms/image; CPU {1000 * c / b:.1f} ms/image"
        )
    (w0, c0), (w1, c1) = res["v8-ref"], res["detforge"]
    print(f"inference speed-up detforge vs v8-ref: wall {w0 / w1:.2f}x, CPU {c0 / c1:.2f}x")
    if args.ultralytics:
        w2, c2 = res["ultralytics"]
        print(
            f"inference speed-up detforge vs ultralytics: wall {w2 / w1:.2f}x, CPU {c2 / c1:.2f}x"
        )


if __name__ == "__main__":
    main()
