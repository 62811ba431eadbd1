"""A short prepared check for a machine with a CUDA GPU (issue 6: AMP, --batch auto, CUDA).

Run it on the GPU machine from the repository root (about 2-4 minutes, nothing downloaded)::

    python bench/train_gpu_check.py --out /tmp/gpu-check

It runs ``detforge doctor``; measures ``--batch auto`` directly (and checks that the memory fit
never picks a batch that then runs out of memory); trains the synthetic shapes dataset on
``cuda`` with ``--batch auto`` and AMP for a few epochs and checks the run (AMP on, finite
losses, checkpoints loadable with ``weights_only=True``, validation numbers); compares
``predict --half`` and an ``export --half`` ONNX model (when onnxruntime has its CUDA
provider) with float32 predictions; trains two processes under ``torchrun`` with the NCCL
backend when the machine has two GPUs (NCCL refuses two ranks on one GPU, so with one GPU that
check says it was skipped and why); and prints one PASS/FAIL line per check. Exit status 1 if
any check fails.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("/tmp/gpu-check"))
    ap.add_argument("--epochs", type=int, default=5)
    args = ap.parse_args()
    import torch
    import yaml

    from detforge.cli.main import main as cli
    from detforge.data.synthetic import generate_shapes_dataset
    from detforge.models.yolo import create_model
    from detforge.train.autobatch import auto_batch
    from detforge.train.runs import read_metrics_csv

    results: list[tuple[str, bool, str]] = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        results.append((name, ok, detail))
        print(f"{'PASS' if ok else 'FAIL'} {name} {detail}", flush=True)

    check("doctor exits 0", cli(["doctor"]) == 0)
    if not torch.cuda.is_available():
        check("CUDA available", False, "(no GPU: nothing else to check)")
        return 1
    dev = torch.device("cuda", 0)
    model = create_model("n", 3).to(dev)
    t0 = time.perf_counter()
    batch, reason = auto_batch(model, imgsz=640, device=dev)
    check("auto_batch at 640", batch >= 1, f"{reason} in {time.perf_counter() - t0:.1f} s")
    try:  # the chosen batch must really fit one training-like step
        x = torch.rand(batch, 3, 640, 640, device=dev)
        with torch.autocast("cuda"):
            out = model.train()(x)
        sum(o.float().sum() for o in out).backward()  # type: ignore[union-attr]
        check(
            "auto batch fits", True, f"peak {torch.cuda.max_memory_allocated(dev) / 2**30:.1f} GiB"
        )
    except torch.cuda.OutOfMemoryError as exc:
        check("auto batch fits", False, str(exc)[:200])
    del model
    torch.cuda.empty_cache()

    data = generate_shapes_dataset(args.out / "shapes", num_images=200, imgsz=(256, 192), seed=0)
    run = args.out / "run"
    t0 = time.perf_counter()
    code = cli([
        "train", str(data), "--out", str(run), "--device", "cuda", "--batch", "auto",
        "--imgsz", "256", "--epochs", str(args.epochs), "--workers", "2", "--no-progress",
    ])  # fmt: skip
    check("CUDA training exits 0", code == 0, f"{time.perf_counter() - t0:.0f} s")
    if code == 0:
        resolved = yaml.safe_load((run / "config.yaml").read_text())["resolved"]
        check("AMP on", resolved["amp"] is True, f"batch {resolved['batch']}")
        rows = read_metrics_csv(run / "metrics.csv")
        finite = all(math.isfinite(r["train/box"]) for r in rows) and rows[-1]["nan_steps"] == 0
        check("finite losses", finite, f"last row {rows[-1]}")
        ck = torch.load(run / "weights" / "best.pt", weights_only=True)
        check("best.pt loads with weights_only", ck["format"] == "detforge-checkpoint")
        check("validation ran", rows[-1].get("val/mAP50") is not None,
              f"mAP50 {rows[-1].get('val/mAP50')}")  # fmt: skip
        check_half(run / "weights" / "best.pt", data, args.out, check, cli)
    check_nccl(data, args.out, check)
    return 0 if all(ok for _, ok, _ in results) else 1


def check_half(best: Path, data: Path, out: Path, check: Any, cli: Any) -> None:
    """``predict --half`` and ``export --half`` on CUDA: float16 detections agree with float32
    ones (same count within 10%, matched boxes within 2 px, scores within 0.02)."""
    import numpy as np

    import detforge
    from detforge.formats.darknet import read_darknet

    paths = [str(p) for p in read_darknet(data).split("valid").images.path][:32]
    ref = detforge.load(best, device="cuda").predict(paths, conf=0.25)
    half = detforge.load(best, device="cuda", half=True).predict(paths, conf=0.25)
    check("predict --half agrees with fp32", _agree(ref, half, np), _summary(ref, half))
    code = cli(["predict", str(best), str(data) + ":valid", "--device", "cuda", "--half",
                "--save-txt", "--out", str(out / "predict-half")])  # fmt: skip
    check("predict --half CLI exits 0", code == 0)
    onnx = out / "best-half.onnx"
    code = cli(["export", str(best), "--half", "--device", "cuda", "-o", str(onnx)])
    check("export --half exits 0", code == 0)
    if code != 0:
        return
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        check("fp16 ONNX on CUDA", True, "(skipped: onnxruntime has no CUDA provider here)")
        return
    got = detforge.load(onnx, device="cuda").predict(paths, conf=0.25)
    check("fp16 ONNX on CUDA agrees with fp32", _agree(ref, got, np), _summary(ref, got))


def check_nccl(data: Path, out: Path, check: Any) -> None:
    """Two ranks under ``torchrun`` (NCCL, one GPU each) train two epochs: both exit 0 and
    rank 0 leaves a ``best.pt`` that loads with ``weights_only=True``."""
    import subprocess

    import torch

    n = torch.cuda.device_count()
    if n < 2:
        check("2-process NCCL training", True,
              f"(skipped: needs 2 GPUs, found {n}; NCCL refuses two ranks on one GPU)")  # fmt: skip
        return
    run = out / "run-ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "detforge", "train", str(data), "--out", str(run), "--device", "0,1",
        "--imgsz", "256", "--epochs", "2", "--batch", "16", "--workers", "2", "--no-progress",
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    best = run / "weights" / "best.pt"
    ok = proc.returncode == 0 and best.is_file()
    if ok:
        ok = torch.load(best, weights_only=True)["format"] == "detforge-checkpoint"
    detail = f"{time.perf_counter() - t0:.0f} s" if ok else proc.stderr[-400:]
    check("2-process NCCL training", ok, detail)


def _summary(a: list[Any], b: list[Any]) -> str:
    return f"({sum(len(p) for p in a)} vs {sum(len(p) for p in b)} boxes)"


def _agree(ref: list[Any], got: list[Any], np: Any) -> bool:
    n_ref, n_got = sum(len(p) for p in ref), sum(len(p) for p in got)
    if abs(n_ref - n_got) > max(2, 0.1 * n_ref):
        return False
    for a, b in zip(ref, got, strict=True):
        for box, score, cls in zip(a.boxes, a.scores, a.classes, strict=True):
            same = b.classes == cls
            if not same.any():
                continue  # a borderline box on one side only; counted above
            err = np.abs(b.boxes[same] - box).max(axis=1)
            j = int(np.argmin(err))
            if err[j] <= 2.0 and abs(float(b.scores[same][j]) - float(score)) > 0.02:
                return False
    return True


if __name__ == "__main__":
    sys.exit(main())
