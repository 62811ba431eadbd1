"""``torchrun --nproc_per_node 2 -m detforge train``: two gloo processes on the CPU share the
data, log and write once, and take the optimizer steps of one process with the same global
batch."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from detforge.train.trainer import train

from ._tiny import one_torch_thread, tiny_config, tiny_data  # noqa: F401 (autouse fixture)


@pytest.mark.slow
def test_two_process_gloo_run(tmp_path: Path) -> None:
    data = tiny_data(tmp_path / "ds", num_images=20)  # 16 train, 4 valid
    out = tmp_path / "runs" / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "detforge", "train", str(data), "--out", str(out), "--device", "cpu",
        "--imgsz", "64", "--batch", "4", "--epochs", "2", "--workers", "0", "--mosaic", "0",
        "--close-mosaic", "0", "--warmup-min-iters", "2", "--no-plots", "--no-tensorboard",
        "--no-check", "--no-progress", "--cache", "ram",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("done: 2 epoch(s)") == 1  # rank 0 only
    assert sorted(p.name for p in out.parent.iterdir()) == ["ddp"]  # one run folder
    resolved = yaml.safe_load((out / "config.yaml").read_text())["resolved"]
    assert resolved["world_size"] == 2 and resolved["global_batch"] == 8
    log = (out / "train.log").read_text()
    assert log.count("training n on 16 images") == 1 and "2 process(es)" in log
    ddp = torch.load(out / "weights" / "last.pt", weights_only=True)
    # each rank sees half of the 16 images: 2 steps of 2 x 4 per epoch, like 1 process x 8
    assert ddp["extra"]["step"] == 4 and ddp["extra"]["epochs_done"] == 2

    single = train(tiny_config(data, tmp_path / "runs" / "single", batch=8, epochs=2))
    one = torch.load(single.run_dir / "weights" / "last.pt", weights_only=True)
    assert one["extra"]["step"] == ddp["extra"]["step"]
    # The logged losses are the mean over both ranks' batches (all-reduced), so they are in the
    # units of the one-process run. They are not equal to it: each rank normalises BatchNorm
    # and the loss (its target-score sum) over its own 4 images.
    with open(out / "metrics.csv", encoding="utf-8") as f:
        ddp_rows = list(csv.DictReader(f))
    assert len(ddp_rows) == 2 and all(float(r["train/box"]) > 0 for r in ddp_rows)
