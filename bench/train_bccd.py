"""Benchmark: detforge ``n`` vs Ultralytics YOLOv8n, both from scratch, on BCCD, same wall clock.

Trains detforge's ``n`` model on the BCCD train split (``../shared/data/bccd``, Pascal VOC) at
``--imgsz 416`` for ``--budget-s`` seconds of wall clock (``detforge train --time-budget``; the
LR schedule is fitted to the epochs that fit), then scores ``best.pt`` on the test split with
``detforge val``. The peer, Ultralytics YOLOv8n built from ``yolov8n.yaml`` (no pretrained
weights), trains on the same images converted to Ultralytics YAML with the same budget
(Ultralytics' ``time=`` option, in hours), batch and image size; its ``best.pt`` predicts the
test images (conf 0.001, NMS IoU 0.7) and detforge's evaluation engine scores them, so both
models are scored by the same code. Ultralytics' own test-split numbers are reported too.

Ultralytics is AGPL: it is never installed into detforge's environment. Make a throwaway venv
outside the repository only when benchmarking and pass its interpreter::

    python -m venv /tmp/ulvenv && /tmp/ulvenv/bin/pip install ultralytics
    .venv/bin/python bench/train_bccd.py --budget-s 1421 --peer-python /tmp/ulvenv/bin/python

Quick end-to-end check of the script (tiny budget, numbers meaningless)::

    .venv/bin/python bench/train_bccd.py --budget-s 60 --peer-python /tmp/ulvenv/bin/python

Prints a Markdown table for docs/benchmarks.md and writes ``OUT/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BCCD = REPO.parent / "shared" / "data" / "bccd"

PEER = r"""
import json, sys, time
from pathlib import Path
from ultralytics import YOLO
cfg = json.loads(sys.argv[1])
model = YOLO("yolov8n.yaml")
t0 = time.perf_counter()
model.train(data=cfg["data"], imgsz=cfg["imgsz"], batch=cfg["batch"], epochs=cfg["epochs"],
            time=cfg["budget_s"] / 3600.0, device="cpu", workers=cfg["workers"],
            project=cfg["out"], name="ul", exist_ok=True, pretrained=False, amp=False,
            plots=False, seed=0, verbose=False)
train_s = time.perf_counter() - t0
run = Path(cfg["out"]) / "ul"
best = YOLO(str(run / "weights" / "best.pt"))
test = best.val(data=cfg["data"], split="test", imgsz=cfg["imgsz"], batch=cfg["batch"],
                device="cpu", plots=False, verbose=False)
preds = []
for r in best.predict(source=cfg["test_images"], imgsz=cfg["imgsz"], conf=0.001, iou=0.7,
                      device="cpu", stream=True, verbose=False, max_det=300):
    b = r.boxes
    preds.append({"path": r.path, "xyxy": b.xyxy.tolist(), "conf": b.conf.tolist(),
                  "cls": b.cls.int().tolist()})
rows = []
csv = run / "results.csv"
if csv.is_file():
    rows = csv.read_text().splitlines()
json.dump({"train_s": train_s, "epochs": max(len(rows) - 1, 0),
           "own_test_map50_95": float(test.box.map), "own_test_map50": float(test.box.map50),
           "preds": preds}, open(cfg["result"], "w"))
"""


def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    line = " ".join(cmd)
    print("$", line if len(line) < 400 else line[:400] + " ...", flush=True)
    return subprocess.run(cmd, check=True, text=True, **kw)


def detforge_side(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    import csv

    import torch

    run_dir = out / "detforge"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    cmd = [
        sys.executable, "-m", "detforge", "train", str(args.data), "--skip-bad", "--model", "n",
        "--imgsz", str(args.imgsz), "--batch", str(args.batch), "--epochs", str(args.epochs),
        "--time-budget", str(args.budget_s), "--workers", str(args.workers), "--device", "cpu",
        "--out", str(run_dir), "--no-progress", *args.train_arg,
    ]  # fmt: skip
    t0 = time.perf_counter()
    run(cmd)
    wall = time.perf_counter() - t0
    with open(run_dir / "metrics.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    last = torch.load(run_dir / "weights" / "last.pt", weights_only=True)
    train_s = float(last["extra"]["time_s"])
    ips = [float(r["images_per_s"]) for r in rows]
    val = [float(r["val/mAP50-95"]) for r in rows if r.get("val/mAP50-95")]
    report = out / "detforge-test.json"
    run([
        sys.executable, "-m", "detforge", "val", str(run_dir / "weights" / "best.pt"),
        str(args.data),
        "--split", "test", "--protocol", "coco", "--json", str(report), "--device", "cpu",
    ])  # fmt: skip
    res = json.loads(report.read_text())
    return {
        "tool": "detforge n (from scratch)",
        "train_s": train_s,
        "wall_s_incl_setup": wall,
        "epochs": len(rows),
        "images_per_s": sum(ips) / len(ips),
        "best_val_map50_95": max(val) if val else float("nan"),
        "test_map50_95": res["coco"]["stats"]["AP"],
        "test_map50": res["coco"]["stats"]["AP50"],
        "per_class_ap": {c["name"]: c["AP"] for c in res["coco"].get("per_class", [])},
    }


def peer_side(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    import numpy as np

    from detforge.data.boxes import BoxFormat
    from detforge.data.dataset import make_dataset
    from detforge.eval import evaluate
    from detforge.formats.detect import read_any, write_any

    ds = read_any(args.data)
    ul_data = out / "ul-data"
    if ul_data.exists():
        shutil.rmtree(ul_data)
    yaml_path = Path(str(write_any(ds, ul_data, to="ultralytics").path))
    test = ds.split("test")
    result = out / "peer.json"
    cfg = {
        "data": str(yaml_path), "imgsz": args.imgsz, "batch": args.batch,
        "epochs": args.epochs, "budget_s": args.budget_s, "workers": args.workers,
        "out": str(out), "result": str(result),
        "test_images": [str(p) for p in test.images.path],
    }  # fmt: skip
    script = out / "peer_run.py"
    script.write_text(PEER)
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    run([args.peer_python, str(script), json.dumps(cfg)], cwd=out, env=env)
    peer = json.loads(result.read_text())
    index = {Path(p).name: i for i, p in enumerate(test.images.path)}
    b_img, b_cls, b_xyxy, b_score = [], [], [], []
    for p in peer["preds"]:
        i = index[Path(p["path"]).name]
        b_img += [i] * len(p["conf"])
        b_cls += p["cls"]
        b_xyxy += p["xyxy"]
        b_score += p["conf"]
    pred = make_dataset(
        test.class_names, paths=list(test.images.path), widths=test.images.width,
        heights=test.images.height, image_ids=test.images.id, box_image=b_img, box_cls=b_cls,
        box_coords=np.asarray(b_xyxy, dtype=np.float64).reshape(-1, 4),
        box_format=BoxFormat.XYXY_PIXEL, score=b_score,
    )  # fmt: skip
    rep = evaluate(test, pred, protocol="coco")
    n_train = ds.split("train").num_images
    return {
        "tool": "Ultralytics YOLOv8n (yolov8n.yaml, from scratch)",
        "train_s": peer["train_s"],
        "epochs": peer["epochs"],
        "images_per_s": n_train * peer["epochs"] / max(peer["train_s"], 1e-9),
        "test_map50_95": rep["coco"]["stats"]["AP"],
        "test_map50": rep["coco"]["stats"]["AP50"],
        "own_test_map50_95": peer["own_test_map50_95"],
        "own_test_map50": peer["own_test_map50"],
        "per_class_ap": {c["name"]: c["AP"] for c in rep["coco"].get("per_class", [])},
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| tool | train s | epochs | images/s | test mAP50-95 | test mAP50 | Platelets AP |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['tool']} | {r['train_s']:.0f} | {r['epochs']} | {r['images_per_s']:.2f} | "
            f"{r['test_map50_95']:.3f} | {r['test_map50']:.3f} | "
            f"{r['per_class_ap'].get('Platelets', float('nan')):.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=BCCD, help="BCCD folder [../shared/data/bccd]")
    ap.add_argument("--budget-s", type=float, default=1421.0, help="training wall clock [1421]")
    ap.add_argument("--epochs", type=int, default=300, help="epoch cap (budget decides) [300]")
    ap.add_argument("--imgsz", type=int, default=416)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="work folder [a new temp folder]")
    ap.add_argument("--peer-python", default=None, help="python of a venv with ultralytics")
    ap.add_argument(
        "--side",
        choices=["both", "detforge", "peer"],
        default="both",
        help="run one side only, e.g. both at once in two processes pinned to separate cores",
    )
    ap.add_argument(
        "--train-arg",
        action="append",
        default=[],
        help="extra option for 'detforge train' (repeatable), e.g. --train-arg=--optimizer=adamw",
    )
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="train-bccd-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}")
    rows = []
    if args.side in ("both", "detforge"):
        rows.append(detforge_side(args, out))
    if args.side in ("both", "peer"):
        if not args.peer_python:
            ap.error("the Ultralytics side needs --peer-python")
        rows.append(peer_side(args, out))
    (out / f"results-{args.side}.json").write_text(json.dumps(rows, indent=2))
    print()
    print(table(rows))
    print(f"\nfull results: {out / f'results-{args.side}.json'}")


if __name__ == "__main__":
    main()
