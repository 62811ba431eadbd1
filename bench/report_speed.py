"""``detforge report`` build time and output size: BCCD and 5,000 generated images.

    python bench/report_speed.py [WORK_DIR] [--bccd /work/shared/data/bccd] [--images 5000]
                                 [--repeat 3]

WORK_DIR (default ``bench/data``, git-ignored) receives the generated shapes dataset
(``report_shapes_<N>/``, every image in the ``valid`` split so the whole set is evaluated and
in the gallery) and the fake predictions. No detector is trained: the predictions are the
ground truth jittered (box centre and size moved by N(0, 1.5% of the image)), 15% of boxes
dropped, 10% given the next class, plus a random extra box on 30% of the images, with uniform
scores -- enough to exercise every part of the page with a realistic number of errors.

For each dataset, in fresh processes (Python start-up and imports included), median of
``--repeat`` runs: ``detforge report GT --pred PRED --out DIR`` into an empty folder (cold:
thumbnails made) and again into the same folder (thumbnails reused), the peer
``detforge eval GT PRED`` on the same files (the evaluation the report contains), the size of
the site and of ``assets/data.js``, and the time headless Chromium takes to load the page until
its script has drawn everything (``body[data-ready]``), when Playwright and Chromium are there.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
sys.path.insert(0, str(REPO))  # tests.report.helpers: the fake-prediction writer


def run(argv: list[str]) -> float:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    t0 = time.perf_counter()
    subprocess.run([PY, "-m", "detforge", *argv], check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def browser_load(index: Path) -> float | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        return None
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        page = b.new_page(viewport={"width": 1400, "height": 900})
        t0 = time.perf_counter()
        page.goto(index.resolve().as_uri())
        page.wait_for_selector("body[data-ready]", timeout=120000)
        dt = time.perf_counter() - t0
        b.close()
    return dt


def fake_predictions(gt_source: str, out: Path, split: str | None) -> Path:
    from tests.report.helpers import write_predictions

    from detforge.formats.detect import read_ground_truth

    if out.exists():
        return out
    gt, _ = read_ground_truth(gt_source, split=split, images_dir=None, path_map=[])
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write_predictions(gt, tmp, seed=0, miss=0.15, swap=0.1)
    tmp.rename(out)
    return out


def bench(name: str, gt: str, pred: Path, work: Path, repeat: int) -> None:
    site = work / f"site_{name}"
    cold, warm, ev = [], [], []
    for _ in range(repeat):
        shutil.rmtree(site, ignore_errors=True)
        cold.append(run(["report", gt, "--pred", str(pred), "--out", str(site)]))
        warm.append(run(["report", gt, "--pred", str(pred), "--out", str(site)]))
        ev.append(run(["eval", gt, str(pred)]))
    load = browser_load(site / "index.html")
    n_img = len(list((site / "view").iterdir()))
    print(f"## {name}: {n_img} images in the gallery")
    print(f"report, cold (thumbnails made):    {statistics.median(cold):7.2f} s  {cold}")
    print(f"report, rebuild (thumbnails kept): {statistics.median(warm):7.2f} s  {warm}")
    print(f"peer: detforge eval, same files:   {statistics.median(ev):7.2f} s  {ev}")
    mb = {k: size(site / k) / 1e6 for k in ("assets", "thumbs", "view")}
    data_js = (site / "assets" / "data.js").stat().st_size / 1e6
    print(
        f"site size: {size(site) / 1e6:.1f} MB (data.js {data_js:.2f} MB, assets "
        f"{mb['assets']:.2f} MB, thumbs {mb['thumbs']:.1f} MB, view {mb['view']:.1f} MB)"
    )
    if load is not None:
        print(f"Chromium load until drawn:         {load:7.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("work", nargs="?", default=str(REPO / "bench" / "data"))
    ap.add_argument("--bccd", default="/work/shared/data/bccd")
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if Path(args.bccd).is_dir():
        pred = fake_predictions(args.bccd, work / "report_bccd_pred", None)
        bench("BCCD (VOC, valid split)", args.bccd, pred, work, args.repeat)
    from detforge.data.synthetic import generate_shapes_dataset

    root = work / f"report_shapes_{args.images}"
    data = root / "obj.data"
    if not data.exists():
        data = generate_shapes_dataset(
            root, num_images=args.images, seed=0, size_jitter=0.2, splits=(0.0, 1.0, 0.0)
        )
    pred = fake_predictions(str(data), work / f"report_shapes_{args.images}_pred", None)
    bench(f"{args.images} generated images", str(data), pred, work, args.repeat)


if __name__ == "__main__":
    main()
