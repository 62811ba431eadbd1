"""Benchmark: convert N images' labels (no image copying) between formats.

Builds a Darknet dataset of N images (every image a hard link to a 640x480 JPEG, so only
headers are real work), 1-8 boxes each, 10% negatives, 20 classes, train/valid lists; then
times detforge reading it and writing Ultralytics, COCO and Pascal VOC with ``--images none``.

With ``--globox PYTHON`` it also times globox (``AnnotationSet.from_yolo_v5`` + ``save_coco``)
on the same files with the given interpreter (install globox into a throwaway venv; it is
not a detforge dependency).

Usage::

    .venv/bin/python bench/convert_speed.py --num-images 100000 --work /tmp/convbench \
        [--globox /tmp/globox-venv/bin/python]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

GLOBOX_SCRIPT = """
import shutil, sys, time
from pathlib import Path
from globox import AnnotationSet
root = Path(sys.argv[1])
out = root / "out_globox"
shutil.rmtree(out, ignore_errors=True)
(out / "voc").mkdir(parents=True)
t_read = t_coco = t_voc = 0.0
total = 0
for split in ("train", "valid"):
    t0 = time.perf_counter()
    anns = AnnotationSet.from_yolo_v5(
        folder=root / "labels" / split, image_folder=root / "images" / split
    )
    t1 = time.perf_counter()
    anns.save_coco(out / f"instances_{split}.json", auto_ids=True)
    t2 = time.perf_counter()
    anns.save_pascal_voc(out / "voc")
    t3 = time.perf_counter()
    total += len(anns)
    t_read, t_coco, t_voc = t_read + t1 - t0, t_coco + t2 - t1, t_voc + t3 - t2
print(f"{total} {t_read:.3f} {t_coco:.3f} {t_voc:.3f}")
"""


def build(root: Path, n: int, seed: int = 0) -> Path:
    """Write the synthetic Darknet dataset; returns its obj.data (labels beside images)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    if root.exists():
        shutil.rmtree(root)
    proto = root / "proto.jpg"
    root.mkdir(parents=True)
    Image.new("RGB", (640, 480), (90, 120, 30)).save(proto, quality=50)
    lists: dict[str, list[str]] = {"train": [], "valid": []}
    for split in lists:
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
    for i in range(n):
        split = "valid" if i % 5 == 0 else "train"
        img = root / "images" / split / f"img_{i:06d}.jpg"
        if i % 50_000 == 0 and i:  # file systems cap hard links per inode (ext4: 65000)
            proto = root / f"proto{i}.jpg"
            shutil.copy(root / "proto.jpg", proto)
        os.link(proto, img)
        k = 0 if rng.random() < 0.1 else int(rng.integers(1, 9))
        wh = rng.uniform(0.02, 0.4, (k, 2))
        c = rng.uniform(wh / 2, 1 - wh / 2)
        cls = rng.integers(0, 20, k)
        text = "".join(
            f"{a} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n"
            for a, (x, y), (w, h) in zip(cls.tolist(), c.tolist(), wh.tolist(), strict=True)
        )
        # Labels beside images (Darknet) and under labels/ (the YOLO layout globox reads).
        img.with_suffix(".txt").write_text(text)
        (root / "labels" / split / f"img_{i:06d}.txt").write_text(text)
        lists[split].append(str(img))
    for split, paths in lists.items():
        (root / f"{split}.txt").write_text("\n".join(paths) + "\n")
    (root / "obj.names").write_text("".join(f"class{k}\n" for k in range(20)))
    (root / "obj.data").write_text(
        f"classes=20\ntrain={root / 'train.txt'}\nvalid={root / 'valid.txt'}\n"
        f"names={root / 'obj.names'}\n"
    )
    return root / "obj.data"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--num-images", type=int, default=100_000)
    ap.add_argument("--work", default="/tmp/detforge-convert-bench")
    ap.add_argument("--globox", metavar="PYTHON", help="interpreter with globox installed")
    ap.add_argument("--reuse", action="store_true", help="reuse an existing generated dataset")
    args = ap.parse_args()

    from detforge.formats.darknet import read_darknet
    from detforge.formats.detect import write_any

    root = Path(args.work)
    data = root / "obj.data"
    if not (args.reuse and data.is_file()):
        t = time.perf_counter()
        data = build(root, args.num_images)
        print(f"generated {args.num_images} images in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    ds = read_darknet(data, cache=False)
    t_read = time.perf_counter() - t
    print(f"detforge read darknet: {ds.num_images} images, {ds.num_boxes} boxes: {t_read:.2f} s")
    results = {"read darknet (incl. image headers)": t_read}
    for fmt in ("ultralytics", "coco", "voc"):
        out = root / f"out_{fmt}"
        shutil.rmtree(out, ignore_errors=True)
        t = time.perf_counter()
        write_any(ds, out, to=fmt, images="none")
        results[f"write {fmt}"] = time.perf_counter() - t
        print(f"detforge write {fmt}: {results[f'write {fmt}']:.2f} s")
    from detforge.formats.detect import read_any

    # (Ultralytics written with --images none has no images/ folder to read back.)
    t = time.perf_counter()
    back = read_any(root / "out_voc")
    print(f"detforge read voc back: {back.num_boxes} boxes: {time.perf_counter() - t:.2f} s")
    out = root / "out_cli"
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "detforge", "convert", str(data), str(out), "--to", "coco",
         "--images", "none"],
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    print(
        f"detforge convert (CLI, darknet -> coco, whole process): {time.perf_counter() - t:.2f} s"
    )
    if args.globox:
        t = time.perf_counter()
        res = subprocess.run(
            [args.globox, "-c", GLOBOX_SCRIPT, str(root)],
            check=True,
            capture_output=True,
            text=True,
        )
        n, t_read_g, t_coco_g, t_voc_g = res.stdout.split()
        print(
            f"globox read yolo_v5: {n} images: {float(t_read_g):.2f} s; save coco: "
            f"{float(t_coco_g):.2f} s; save pascal voc: {float(t_voc_g):.2f} s; "
            f"whole process {time.perf_counter() - t:.2f} s"
        )


if __name__ == "__main__":
    main()
