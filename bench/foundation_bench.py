"""Foundation benchmarks: ``detforge lists`` on a 1,000,000-entry folder vs ``find | sort``,
and a cold vs cached load of a 100,000-image Darknet dataset.

    python bench/foundation_bench.py [DATA_DIR] [--entries 1000000] [--images 100000] [--repeat 3]

DATA_DIR (default ``bench/data``, git-ignored) receives:

* ``flat_1m/``: one folder of ``--entries`` empty files, half ``.jpg`` and half ``.txt`` labels;
* ``ds_100k/``: ``--images`` tiny JPEGs (8 sizes) in 100 sequence folders, a label file for 9 of
  every 10 images, ``all.txt``, ``obj.names``, ``obj.data``.

Both are built once and reused. Every timing runs the real command in a fresh process (so
Python start-up and imports are included) and the cache lives in ``DATA_DIR/cache``. The OS
page cache is warm for every run (the files were just written or scanned); nothing here drops
it. Results are printed as a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable


def build_flat(folder: Path, entries: int) -> None:
    marker = folder.parent / f"{folder.name}.complete"  # outside the scanned folder
    if marker.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    for i in range(entries // 2):
        for ext in (".jpg", ".txt"):
            os.close(os.open(folder / f"frame_{i:07d}{ext}", flags, 0o644))
    marker.write_text(str(entries))
    print(f"built {folder} ({entries} entries) in {time.perf_counter() - t0:.1f} s")


def build_dataset(root: Path, images: int) -> Path:
    data = root / "obj.data"
    if (root.parent / f"{root.name}.complete").exists():
        return data
    from PIL import Image

    t0 = time.perf_counter()
    variants = []
    for k in range(8):
        buf = io.BytesIO()
        Image.new("RGB", (32 + 8 * k, 24 + 4 * k), (30 * k, 100, 200 - 20 * k)).save(
            buf, format="JPEG", quality=80
        )
        variants.append(buf.getvalue())
    lines = []
    for i in range(images):
        seq = root / "images" / f"seq{i % 100:03d}"
        if i < 100:
            seq.mkdir(parents=True, exist_ok=True)
        p = seq / f"frame_{i:06d}.jpg"
        p.write_bytes(variants[i % 8])
        if i % 10:
            p.with_suffix(".txt").write_text(f"{i % 3} 0.5 0.5 0.25 0.25\n1 0.2 0.3 0.1 0.1\n")
        lines.append(f"images/{p.parent.name}/{p.name}\n")
    (root / "all.txt").write_text("".join(lines))
    (root / "obj.names").write_text("a\nb\nc\n")
    data.write_text("classes = 3\ntrain = all.txt\nnames = obj.names\n")
    (root.parent / f"{root.name}.complete").write_text(str(images))
    print(f"built {root} ({images} images) in {time.perf_counter() - t0:.1f} s")
    return data


CPU: dict[str, list[float]] = {}  # row name -> user+sys CPU seconds of each run


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd: str, env: dict[str, str] | None = None, row: str = "") -> float:
    c0, t0 = children_cpu(), time.perf_counter()
    subprocess.run(cmd, shell=True, check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    CPU.setdefault(row, []).append(children_cpu() - c0)
    return wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("data_dir", nargs="?", default=str(REPO / "bench" / "data"))
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-lists", action="store_true", help="only the dataset load rows")
    args = ap.parse_args()
    base = Path(args.data_dir).resolve()
    flat = base / f"flat_{args.entries}"
    build_flat(flat, args.entries)
    data = build_dataset(base / f"ds_{args.images}", args.images)
    out = base / "out"
    out.mkdir(exist_ok=True)
    detforge = f"{PY} -m detforge"
    rows = []
    print(f"load average before the runs (1, 5, 15 min): {os.getloadavg()}")

    same = None
    if not args.skip_lists:
        find_cmd = f"find {flat} -type f -not -name '*.txt' | LC_ALL=C sort > {out}/find.txt"
        lists_cmd = f"{detforge} lists {flat} -o {out}/lists.txt"
        timed(find_cmd)  # warm the page cache for both
        r_find = f"`find | LC_ALL=C sort`, {args.entries:,} entries"
        r_lists = f"`detforge lists`, {args.entries:,} entries"
        t_find = [timed(find_cmd, row=r_find) for _ in range(args.repeat)]
        t_lists = [timed(lists_cmd, row=r_lists) for _ in range(args.repeat)]
        same = (out / "find.txt").read_bytes() == (out / "lists.txt").read_bytes()
        rows.append((r_find, t_find))
        rows.append((r_lists, t_lists))

    env = dict(os.environ, DETFORGE_CACHE=str(base / "cache"))
    load = (
        f'{PY} -c "import time; t=time.perf_counter(); '
        f"from detforge.formats.darknet import read_darknet; ds=read_darknet('{data}'); "
        f"print(f'{{time.perf_counter()-t:.3f}}', ds.num_images, ds.num_boxes)\""
    )

    def load_time(row: str) -> float:
        c0 = children_cpu()
        res = subprocess.run(load, shell=True, check=True, env=env, capture_output=True, text=True)
        CPU.setdefault(row, []).append(children_cpu() - c0)  # the whole process
        return float(res.stdout.split()[0])

    n_files = sum(1 for _ in (data.parent / "images").rglob("*"))
    r_floor = f"`find -printf '%s %T@'` (stat floor), {n_files:,} files of the dataset"
    r_cold = f"`read_darknet`, {args.images:,} images, no cache (cold)"
    r_cached = f"`read_darknet`, {args.images:,} images, cached"
    r_icold = f"`detforge info` (whole command), {args.images:,} images, cold"
    r_icached = f"`detforge info` (whole command), {args.images:,} images, cached"
    # the floor for any per-file (size, mtime) check: find stat()s every file of the dataset
    floor_cmd = f"find {data.parent}/images -printf '%s %T@\\n' > /dev/null"
    floor, cold, cached, info_cold, info_cached = [], [], [], [], []
    for _ in range(args.repeat):  # interleaved, so that load changes hit every row alike
        floor.append(timed(floor_cmd, row=r_floor))
        shutil.rmtree(base / "cache", ignore_errors=True)
        cold.append(load_time(r_cold))
        cached.append(load_time(r_cached))
        floor.append(timed(floor_cmd, row=r_floor))
        cached.append(load_time(r_cached))
    for _ in range(args.repeat):
        shutil.rmtree(base / "cache", ignore_errors=True)
        info_cold.append(timed(f"{detforge} info {data}", env, row=r_icold))
        info_cached.append(timed(f"{detforge} info {data}", env, row=r_icached))
    # the stat pass alone, in-process: the C helper (one chunk per core) against os.stat
    stat_rows = []
    for native in (False, True):
        code = (
            "import os, time\ntry:\n from detforge.utils.filestat import native_available, "
            "stat_many\nexcept ImportError:\n print('nan'); raise SystemExit\n"
            f"ps = sorted(os.path.join(d, f) for d, _, fs in os.walk('{data.parent}/images') "
            "for f in fs); "
            f"ok = {native} <= native_available(); t = time.perf_counter(); "
            f"ok and stat_many(ps, native={native}); "
            "print(f'{time.perf_counter() - t:.3f}' if ok else 'nan')"
        )
        name = f"`stat_many` alone, {n_files:,} files, " + ("C helper" if native else "os.stat")
        ts = []
        for _ in range(args.repeat):
            out = subprocess.run([PY, "-c", code], check=True, capture_output=True, text=True)
            ts.append(float(out.stdout))
        if ts[0] == ts[0]:  # nan: the helper is not built
            stat_rows.append((name, ts))
    rows.append((r_floor, floor))
    rows += stat_rows
    rows.append((r_cold, cold))
    rows.append((r_cached, cached))
    rows.append((r_icold, info_cold))
    rows.append((r_icached, info_cached))

    if same is not None:
        print(f"\nlists output identical to find | sort: {same}")
    print(f"load average after the runs (1, 5, 15 min): {os.getloadavg()}\n")
    print("| what | median s | min s | runs (wall s) | CPU user+sys s, median (runs) |")
    print("| --- | ---: | ---: | --- | --- |")
    for name, ts in rows:
        runs = ", ".join(f"{t:.2f}" for t in ts)
        cpu = CPU.get(name, [])
        cpus = ", ".join(f"{c:.2f}" for c in cpu)
        if not cpu:  # timed inside the process: no CPU figure
            print(
                f"| {name} | {statistics.median(ts):.2f} | {min(ts):.2f} | "
                f"{', '.join(f'{t:.2f}' for t in ts)} | - |"
            )
            continue
        print(
            f"| {name} | {statistics.median(ts):.2f} | {min(ts):.2f} | {runs} "
            f"| {statistics.median(cpu):.2f} ({cpus}) |"
        )
    if same is not None:
        ratio = statistics.median(rows[1][1]) / statistics.median(rows[0][1])
        print(f"\ndetforge lists / find|sort (median): {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
