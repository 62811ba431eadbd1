"""``detforge check`` speed vs Ultralytics' label-cache verification, same files, same run.

    python bench/check_speed.py [DATA_DIR] [--images 20000] [--repeat 3] [--ultralytics PATH]

DATA_DIR (default ``bench/data``, git-ignored) receives ``check_<N>/``: ``--images`` distinct
64x48 JPEGs (random noise, so every file differs) with 3 boxes each in the Ultralytics layout
(``images/{train,val}/``, ``labels/{train,val}/``, 90/10 split) and a ``data.yaml``. Both tools
read exactly these files.

Timings, each in a fresh process, median of ``--repeat`` runs:

* ``detforge check data.yaml`` cold (empty cache folder) and cached (second run), whole
  command wall time (Python start-up and imports included) and the checker's own time;
* Ultralytics: ``YOLODataset(...)`` for train and val with their ``labels/*.cache`` files
  deleted first, i.e. its ``verify_image_label`` pass over every image and label (the
  "Scanning ... labels" step before training); the time of the two constructors, measured in
  the process after ``import ultralytics``, the whole process, and -- the most favourable
  number for Ultralytics -- the elapsed time its own "Scanning" progress bars report.

Ultralytics is not a detforge dependency: install it for this benchmark only, outside the
repository, e.g. ``pip install --target /tmp/ultralytics-pkg --no-deps ultralytics`` plus the
few packages it imports (opencv-python-headless, psutil, py-cpuinfo, polars), and pass
``--ultralytics /tmp/ultralytics-pkg``. The OS page cache is warm for every run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable


def build(root: Path, images: int) -> Path:
    """Write the dataset once (a ``.complete`` marker beside it makes reruns skip this)."""
    yaml_path = root / "data.yaml"
    marker = root.parent / f"{root.name}.complete"
    if marker.exists():
        return yaml_path
    import numpy as np
    from PIL import Image

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    n_val = images // 10
    for i in range(images):
        split = "val" if i < n_val else "train"
        img_dir, lab_dir = root / "images" / split, root / "labels" / split
        if i in (0, n_val):
            img_dir.mkdir(parents=True, exist_ok=True)
            lab_dir.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="JPEG", quality=85)
        (img_dir / f"im{i:06d}.jpg").write_bytes(buf.getvalue())
        c = rng.uniform(0.25, 0.75, (3, 2))
        wh = rng.uniform(0.05, 0.4, (3, 2))
        cls = rng.integers(0, 3, 3)
        text = "".join(
            f"{k} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n"
            for k, (x, y), (w, h) in zip(cls, c, wh, strict=True)
        )
        (lab_dir / f"im{i:06d}.txt").write_text(text)
    names = "names:\n  0: a\n  1: b\n  2: c\n"
    yaml_path.write_text(f"path: {root.resolve()}\ntrain: images/train\nval: images/val\n{names}")
    marker.write_text(str(images))
    print(f"built {root} ({images} images) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return yaml_path


ULTRA = """
import os, sys, time, glob
t0 = time.perf_counter()
c0 = time.process_time()
from ultralytics.data.dataset import YOLODataset
root = sys.argv[1]
for f in glob.glob(os.path.join(root, "labels", "*.cache")):
    os.remove(f)
data = {"names": {0: "a", 1: "b", 2: "c"}, "nc": 3, "channels": 3}
t1 = time.perf_counter()
c1 = time.process_time()
n = 0
for split in ("train", "val"):
    ds = YOLODataset(img_path=os.path.join(root, "images", split), data=data, task="detect",
                     augment=False, imgsz=64, cache=False)
    n += len(ds.labels)
t2 = time.perf_counter()
c2 = time.process_time()
print(f"{n} {t2 - t1:.3f} {t1 - t0:.3f} {c2 - c1:.3f}")
"""


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, str, str]:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if res.returncode not in (0, 1):
        raise SystemExit(f"{cmd} failed ({res.returncode}):\n{res.stderr[-2000:]}")
    return wall, res.stdout, res.stderr


_SCAN = re.compile(r"Scanning \S+\.\.\. .*?(\d+)/(\d+) \S+ ([\d.]+)s")


def scan_seconds(stderr: str) -> float:
    """Seconds of Ultralytics' own "Scanning ... labels" progress bars (last state of each)."""
    last: dict[str, float] = {}
    for m in _SCAN.finditer(stderr.replace("\r", "\n")):
        last[m.group(2)] = float(m.group(3))  # keyed by the split's image count
    return sum(last.values())


def detforge_runs(yaml_path: Path, repeat: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {
        "cold": [],
        "cold_own": [],
        "cold_cpu": [],
        "cached": [],
        "cached_own": [],
        "cached_cpu": [],
    }
    for _ in range(repeat):
        cache = tempfile.mkdtemp(prefix="detforge-bench-cache-")
        env = {**os.environ, "DETFORGE_CACHE": cache}
        report = Path(cache) / "report.json"
        cmd = [PY, "-m", "detforge", "check", str(yaml_path), "--show", "0", "--json", str(report)]
        for kind in ("cold", "cached"):
            wall, _, _ = run(cmd, env)
            summary = json.loads(report.read_text())["summary"]
            out[kind].append(wall)
            out[f"{kind}_own"].append(float(summary["seconds"]))
            out[f"{kind}_cpu"].append(float(summary["cpu_seconds"]))
            if kind == "cold":
                assert summary["cached_files"] == 0
                out.setdefault("images", []).append(summary["images"])
                out.setdefault("boxes", []).append(summary["boxes"])
                out.setdefault("errors", []).append(summary["errors"])
        shutil.rmtree(cache, ignore_errors=True)
    return out


def ultralytics_runs(root: Path, pkg: str, repeat: int) -> dict[str, list[float]]:
    env = {
        **os.environ,
        "PYTHONPATH": pkg,
        "YOLO_OFFLINE": "1",
        "YOLO_CONFIG_DIR": tempfile.mkdtemp(prefix="ul-config-"),
    }
    out: dict[str, list[float]] = {
        "wall": [],
        "verify": [],
        "verify_cpu": [],
        "images": [],
        "scan": [],
    }
    for _ in range(repeat):
        wall, stdout, stderr = run([PY, "-c", ULTRA, str(root)], env)
        n, verify, _imports, verify_cpu = stdout.strip().splitlines()[-1].split()
        out["verify_cpu"].append(float(verify_cpu))
        out["scan"].append(scan_seconds(stdout + stderr))
        out["wall"].append(wall)
        out["verify"].append(float(verify))
        out["images"].append(float(n))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir", nargs="?", default=str(REPO / "bench" / "data"))
    ap.add_argument("--images", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ultralytics", metavar="PATH", help="folder with ultralytics installed")
    args = ap.parse_args()
    root = Path(args.data_dir) / f"check_{args.images}"
    yaml_path = build(root, args.images)
    n = args.images
    rows: list[tuple[str, list[float]]] = []
    d = detforge_runs(yaml_path, args.repeat)
    for name, key in [
        ("detforge check, cold (process wall time)", "cold"),
        ("detforge check, cold (checker wall time)", "cold_own"),
        ("detforge check, cold (checker CPU time)", "cold_cpu"),
        ("detforge check, cached (process wall time)", "cached"),
        ("detforge check, cached (checker wall time)", "cached_own"),
    ]:
        rows.append((name, d[key]))
    if args.ultralytics:
        u = ultralytics_runs(root, args.ultralytics, args.repeat)
        assert int(u["images"][0]) == n, u
        for name, key in [
            ("Ultralytics label cache, cold (process wall time)", "wall"),
            ("Ultralytics label cache, cold (verification wall time)", "verify"),
            ("Ultralytics label cache, cold (verification CPU time)", "verify_cpu"),
            ("Ultralytics label cache, its 'Scanning' bars only", "scan"),
        ]:
            rows.append((name, u[key]))
    print(f"dataset: {n} JPEGs 64x48, {d['boxes'][0]} boxes, {d['errors'][0]} errors found")
    print(f"median of {args.repeat} runs\n")
    print("| run | median s | images/s (median) | min s | runs (s) |")
    print("| --- | ---: | ---: | ---: | --- |")
    for name, runs in rows:
        sec = statistics.median(runs)
        rate = f"{n / sec:,.0f}" if sec > 0 else "-"
        every = ", ".join(f"{r:.2f}" for r in runs)
        print(f"| {name} | {sec:.2f} | {rate} | {min(runs):.2f} | {every} |")


if __name__ == "__main__":
    main()
