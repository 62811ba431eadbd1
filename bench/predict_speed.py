"""CPU prediction speed: detforge (PyTorch and onnxruntime) beside Ultralytics YOLOv8n.

Every engine predicts on the same real photographs (the first ``--images`` JPEGs of the BCCD
set, 640x480) from their file paths, end to end: decode, letterbox, forward, NMS, boxes back
to image pixels. Models are untrained (speed only): detforge ``n`` and Ultralytics
``yolov8n.yaml``, both with 80 classes. Each measurement runs in a fresh subprocess (one
warm-up pass over the images, then one timed pass); the engines take turns and the script
prints the median of ``--repeats`` rounds.

Ultralytics is not a detforge dependency: install it outside the repository, e.g.::

    pip install --target /tmp/ultralytics-pkg --no-deps ultralytics \\
        opencv-python-headless psutil py-cpuinfo polars ultralytics-thop

and run::

    .venv/bin/python bench/predict_speed.py --ultralytics /tmp/ultralytics-pkg --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BCCD = Path(__file__).resolve().parents[2] / "shared" / "data" / "bccd" / "JPEGImages"


def images(n: int) -> list[str]:
    paths = sorted(str(p) for p in BCCD.glob("*.jpg"))[:n]
    if len(paths) < n:
        raise SystemExit(f"need {n} images in {BCCD}, found {len(paths)}")
    return paths


def run_detforge(engine: str, paths: list[str], imgsz: int, batch: int, work: Path) -> dict:
    import torch

    import detforge
    from detforge.models.checkpoint import save_checkpoint
    from detforge.models.yolo import create_model

    ckpt = work / "n80.pt"
    if not ckpt.exists():
        torch.manual_seed(0)
        save_checkpoint(ckpt, model=create_model("n", 80), epoch=0,
                        class_names=[f"c{i}" for i in range(80)])  # fmt: skip
    weights = ckpt
    if engine == "onnx":
        from detforge.predict.export import export_onnx

        weights = work / "n80.onnx"
        if not weights.exists():
            export_onnx(ckpt, weights, imgsz=imgsz, dynamic=True, verify=False)
    model = detforge.load(weights, device="cpu")
    model.predict(paths, imgsz=imgsz, batch=batch)  # warm-up
    t, c = time.perf_counter(), time.process_time()
    preds = model.predict(paths, imgsz=imgsz, batch=batch)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    return {"wall_s": wall, "cpu_s": cpu, "boxes": sum(len(p) for p in preds)}


def run_ultralytics(paths: list[str], imgsz: int, batch: int, threads: int) -> dict:
    import ultralytics.utils.torch_utils as tu
    from ultralytics import YOLO

    # Ultralytics' select_device() sets torch's threads to min(8, cores - 1) for CPU work: 1 on
    # a 2-core machine. Give it the same number as detforge gets instead.
    tu.NUM_THREADS = threads

    model = YOLO("yolov8n.yaml")
    kw = {"imgsz": imgsz, "batch": batch, "device": "cpu", "verbose": False, "save": False}
    list(model.predict(paths, stream=True, **kw))  # warm-up
    t, c = time.perf_counter(), time.process_time()
    res = list(model.predict(paths, stream=True, **kw))
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    speed = {k: statistics.mean(r.speed[k] for r in res) for k in res[0].speed}
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "boxes": sum(len(r.boxes) for r in res),
        "speed_ms": speed,
    }


def _limit_onnxruntime_threads(n: int) -> None:
    """Give every onnxruntime session ``n`` intra-op threads, like torch's (bench only)."""
    import onnxruntime as ort

    base = ort.InferenceSession

    def session(*a: object, **kw: object) -> object:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = n
        opts.inter_op_num_threads = 1
        kw.setdefault("sess_options", opts)
        return base(*a, **kw)

    ort.InferenceSession = session


def worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    if args.worker == "onnx":
        _limit_onnxruntime_threads(args.threads)
    paths = images(args.images)
    imgsz = args.imgsz[0]
    if args.worker == "ultralytics":
        out = run_ultralytics(paths, imgsz, args.batch, args.threads)
    else:
        out = run_detforge(args.worker, paths, imgsz, args.batch, Path(args.work))
    out["images"] = len(paths)
    print("RESULT " + json.dumps(out))


def measure(engine: str, args: argparse.Namespace, imgsz: int, work: Path) -> dict:
    cmd = [sys.executable, __file__, "--worker", engine, "--imgsz", str(imgsz),
           "--batch", str(args.batch), "--images", str(args.images),
           "--threads", str(args.threads), "--work", str(work)]  # fmt: skip
    env = dict(os.environ)
    if engine == "ultralytics":
        env["PYTHONPATH"] = args.ultralytics + os.pathsep + env.get("PYTHONPATH", "")
        env["YOLO_OFFLINE"] = "1"
        env["YOLO_CONFIG_DIR"] = str(work / "ultralytics-config")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    line = [s for s in proc.stdout.splitlines() if s.startswith("RESULT ")]
    if proc.returncode or not line:
        raise SystemExit(f"{engine} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(line[-1][7:])


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--imgsz", type=int, nargs="+", default=[416, 640])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--engines", nargs="+", default=["pt", "onnx", "ultralytics"])
    ap.add_argument("--ultralytics", default="/tmp/ultralytics-pkg", help="its install folder")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        results: dict[tuple[str, int], list[dict]] = {}
        for imgsz in args.imgsz:
            work = Path(tmp) / str(imgsz)
            work.mkdir()
            for r in range(args.repeats):
                for engine in args.engines:
                    res = measure(engine, args, imgsz, work)
                    results.setdefault((engine, imgsz), []).append(res)
                    ips = res["images"] / res["wall_s"]
                    cpu = 1000 * res["cpu_s"] / res["images"]
                    print(f"  round {r + 1} {engine:12s} {imgsz}: {ips:6.2f} images/s, "
                          f"{cpu:6.1f} CPU ms/img", flush=True)  # fmt: skip
    print(f"\n{args.images} BCCD images (640x480 JPEG), batch {args.batch}, "
          f"{args.threads} threads, median of {args.repeats}:")  # fmt: skip
    print("| engine | imgsz | images/s | wall ms/img | CPU ms/img | vs Ultralytics (wall, CPU) |")
    print("| --- | --- | --- | --- | --- | --- |")

    def med(engine: str, imgsz: int, key: str) -> float:
        return statistics.median(x[key] / x["images"] for x in results[engine, imgsz])

    for imgsz in args.imgsz:
        have_ref = ("ultralytics", imgsz) in results
        for engine in args.engines:
            wall, cpu = med(engine, imgsz, "wall_s"), med(engine, imgsz, "cpu_s")
            rel = "-"
            if have_ref:
                rw = med("ultralytics", imgsz, "wall_s") / wall
                rc = med("ultralytics", imgsz, "cpu_s") / cpu
                rel = f"{rw:.2f}x, {rc:.2f}x"
            row = [engine, str(imgsz), f"{1 / wall:.2f}", f"{1000 * wall:.1f}", f"{1000 * cpu:.1f}"]
            print("| " + " | ".join([*row, rel]) + " |")
        if have_ref:
            sp = results["ultralytics", imgsz][-1]["speed_ms"]
            print(f"  (Ultralytics' own per-image split at {imgsz}: "
                  + ", ".join(f"{k} {v:.1f} ms" for k, v in sp.items()) + ")")  # fmt: skip
    print("all runs:", json.dumps({f"{e}@{i}": [round(x["images"] / x["wall_s"], 2) for x in v]
                                   for (e, i), v in results.items()}))  # fmt: skip


if __name__ == "__main__":
    main()
