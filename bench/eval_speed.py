"""Time COCO bbox evaluation: pycocotools vs faster-coco-eval vs ``detforge eval``.

The peers install with ``pip install -e '.[bench]'``.

Builds a COCO-sized synthetic set with a fixed seed (default: 5000 images, 80 classes, about 7
ground-truth boxes and 100 detections per image, 1% crowd), writes ``gt.json`` and
``dets.json``, then runs each tool as its own process and reports wall time, peak RSS and the
12 summary numbers (which must agree). detforge is timed as the whole ``detforge eval``
command: interpreter start-up, JSON loading and printing included.

    python bench/eval_speed.py                       # 5000 images, all three tools
    python bench/eval_speed.py --images 50000 --skip pycocotools faster-coco-eval

Run by hand; never from the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PYCOCO = r"""
import json, sys, time, contextlib, io
t0 = time.perf_counter()
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(sys.argv[1]); t1 = time.perf_counter()
    dt = gt.loadRes(sys.argv[2]); t2 = time.perf_counter()
    e = COCOeval(gt, dt, "bbox"); e.evaluate(); t3 = time.perf_counter()
    e.accumulate(); t4 = time.perf_counter(); e.summarize()
print(json.dumps({"stats": [float(x) for x in e.stats], "phases": {"load_gt": t1 - t0,
      "load_res": t2 - t1, "evaluate": t3 - t2, "accumulate": t4 - t3}}))
"""

FASTER = r"""
import json, sys, time, contextlib, io
t0 = time.perf_counter()
from faster_coco_eval import COCO, COCOeval_faster
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(sys.argv[1]); dt = gt.loadRes(sys.argv[2]); t1 = time.perf_counter()
    e = COCOeval_faster(gt, dt, "bbox"); e.evaluate(); e.accumulate(); e.summarize()
    t2 = time.perf_counter()
print(json.dumps({"stats": [float(x) for x in e.stats[:12]], "phases": {"load": t1 - t0,
      "evaluate+accumulate": t2 - t1}}))
"""

NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def make_set(n_images: int, seed: int = 0) -> tuple[dict[str, object], list[dict[str, object]]]:
    """Synthetic GT (COCO instances dict) and detections (results list), deterministic."""
    rng = np.random.default_rng(seed)
    n_cls = 80
    cat_ids = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
    images = [{"id": i + 1, "file_name": f"{i + 1:012d}.jpg", "width": 640, "height": 480}
              for i in range(n_images)]  # fmt: skip
    n_gt = rng.poisson(7, n_images)
    g_img = np.repeat(np.arange(n_images), n_gt)
    G = len(g_img)
    g_cls = rng.zipf(1.6, G) % n_cls  # a few frequent classes, a long tail
    wh = np.exp(rng.uniform(np.log(4), np.log(400), (G, 2)))
    wh = np.minimum(wh, [639, 479])
    xy = rng.uniform(0, 1, (G, 2)) * ([640, 480] - wh)
    g_box = np.round(np.concatenate([xy, wh], 1), 2)
    crowd = rng.random(G) < 0.01
    area = np.round(g_box[:, 2] * g_box[:, 3] * rng.uniform(0.5, 0.9, G), 2)
    cols = zip(g_img, g_cls, g_box.tolist(), area, crowd, strict=True)
    anns = [
        {"id": j + 1, "image_id": int(i) + 1, "category_id": cat_ids[int(c)], "bbox": b,
         "area": float(a), "iscrowd": int(cr)}
        for j, (i, c, b, a, cr) in enumerate(cols)
    ]  # fmt: skip
    # 100 detections per image: ~4 noisy copies of each GT box, the rest random boxes.
    dets = []
    start = np.concatenate([[0], np.cumsum(n_gt)])
    for i in range(n_images):
        gb, gc = g_box[start[i] : start[i + 1]], g_cls[start[i] : start[i + 1]]
        k = min(len(gb) * 4, 100)
        src = rng.integers(0, max(len(gb), 1), k)
        b1 = gb[src] + rng.normal(0, 1, (k, 4)) * np.c_[gb[src, 2:], gb[src, 2:]] * 0.12
        c1 = np.where(rng.random(k) < 0.9, gc[src], rng.integers(0, n_cls, k))
        r = 100 - k
        wh2 = np.exp(rng.uniform(np.log(4), np.log(400), (r, 2)))
        b2 = np.concatenate(
            [rng.uniform(0, 1, (r, 2)) * ([640, 480] - np.minimum(wh2, 600)), wh2], 1
        )
        c2 = rng.integers(0, n_cls, r)
        b = np.round(np.concatenate([b1, b2]), 2)
        b[:, 2:] = np.maximum(b[:, 2:], 1.0)
        s = np.round(np.concatenate([rng.beta(4, 2, k), rng.beta(1, 4, r)]), 3)
        for bb, cc, ss in zip(
            b.tolist(), np.concatenate([c1, c2]).tolist(), s.tolist(), strict=False
        ):
            dets.append({"image_id": i + 1, "category_id": cat_ids[cc], "bbox": bb, "score": ss})
    cats = [{"id": c, "name": f"class{c}", "supercategory": "none"} for c in cat_ids]
    return {"images": images, "annotations": anns, "categories": cats}, dets


def timed(cmd: list[str]) -> tuple[float, float, float, str]:
    """Run ``cmd`` under /usr/bin/time -v: (wall s, peak RSS GiB, CPU user+sys s, stdout)."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{cmd[:3]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    rss_kb, cpu = 0, 0.0
    for line in proc.stderr.splitlines():
        if "Maximum resident set size" in line:
            rss_kb = int(line.split(":")[1])
        if "User time (seconds)" in line or "System time (seconds)" in line:
            cpu += float(line.split(":")[1])
    return wall, rss_kb / 2**20, cpu, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=None, help="keep the generated files here")
    ap.add_argument("--skip", nargs="*", default=[], help="pycocotools and/or faster-coco-eval")
    ap.add_argument("--repeat", type=int, default=3, help="detforge runs (it is the fast one)")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="detforge-evalbench-"))
    work.mkdir(parents=True, exist_ok=True)
    gt_path, dt_path = work / "gt.json", work / "dets.json"
    print(f"load average before the run: {os.getloadavg()}", flush=True)
    if not (gt_path.exists() and dt_path.exists()) or args.workdir is None:
        gt, dets = make_set(args.images, args.seed)
        gt_path.write_text(json.dumps(gt))
        dt_path.write_text(json.dumps(dets))
        print(
            f"set: {args.images} images, {len(gt['annotations'])} GT boxes "  # type: ignore[arg-type]
            f"({sum(a['iscrowd'] for a in gt['annotations'])} crowd), "  # type: ignore[index, union-attr]
            f"{len(dets)} detections, dets.json {dt_path.stat().st_size / 2**20:.0f} MiB"
        )
    py = sys.executable
    detforge = [py, "-m", "detforge", "eval", str(gt_path), str(dt_path), "--protocol", "coco",
                "--json", str(work / "detforge.json")]  # fmt: skip
    rows = []
    all_stats = {}
    if "pycocotools" not in args.skip:
        wall, rss, cpu, out = timed([py, "-c", PYCOCO, str(gt_path), str(dt_path)])
        r = json.loads(out)
        all_stats["pycocotools"] = r["stats"]
        rows.append(("pycocotools", wall, rss, cpu, r["phases"]))
    if "faster-coco-eval" not in args.skip:
        wall, rss, cpu, out = timed([py, "-c", FASTER, str(gt_path), str(dt_path)])
        r = json.loads(out)
        all_stats["faster-coco-eval"] = r["stats"]
        rows.append(("faster-coco-eval", wall, rss, cpu, r["phases"]))
    for i in range(args.repeat):
        wall, rss, cpu, _ = timed(detforge)
        rows.append((f"detforge eval #{i + 1}", wall, rss, cpu, {}))
    st = json.loads((work / "detforge.json").read_text())["coco"]["stats"]
    all_stats["detforge"] = [st[k] for k in NAMES]
    print(f"{'tool':<20} {'wall s':>8} {'CPU s':>8} {'peak GiB':>9}  phases (wall)")
    for name, wall, rss, cpu, phases in rows:
        ph = ", ".join(f"{k} {v:.1f}s" for k, v in phases.items())
        print(f"{name:<20} {wall:8.2f} {cpu:8.2f} {rss:9.2f}  {ph}")
    print(f"load average after the run: {os.getloadavg()}")
    ref = all_stats["detforge"]
    for name, stats in all_stats.items():
        diff = max(abs(a - b) for a, b in zip(stats, ref, strict=False))
        print(f"{name:<18} max |stat - detforge| = {diff:.3g}")
    print("detforge stats:", dict(zip(NAMES, [round(x, 6) for x in ref], strict=False)))
    if os.environ.get("KEEP") is None and args.workdir is None:
        for p in work.iterdir():
            p.unlink()
        work.rmdir()


if __name__ == "__main__":
    main()
