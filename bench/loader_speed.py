"""Training-loader throughput on BCCD at imgsz 416, batch 16 (run by hand, never from tests).

Measures images/s of the *augmented training* loader (mosaic, affine, HSV, flip, collate)
with 0 and 2 worker processes, without cache and with the RAM and disk caches, over epochs of
BCCD's train split (205 images), after one warm-up epoch that also starts the workers.

    .venv/bin/python bench/loader_speed.py                      # detforge only
    PYTHONPATH=src /tmp/ulvenv/bin/python bench/loader_speed.py --peer ultralytics

``--peer ultralytics`` also times Ultralytics' own YOLO training loader (its
``build_yolo_dataset``/``build_dataloader`` with default augmentation) on the same images,
exported to Ultralytics layout by detforge into a temporary folder, interleaved with the
detforge runs so both see the same machine load; each configuration runs ``--repeat`` rounds
and the best is reported. Ultralytics is not a detforge dependency: install it in a throwaway
virtual environment that can also import torch and detforge's dependencies.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BCCD = REPO.parent / "shared" / "data" / "bccd"


def timed_epochs(make: Callable[[], Iterable[Any]], epochs: int, n_images: int) -> dict[str, float]:
    """Build a loader, run one warm-up epoch, then time ``epochs`` epochs."""
    t0 = time.perf_counter()
    loader = make()
    build = time.perf_counter() - t0
    t1 = time.perf_counter()
    for _ in loader:
        pass
    warm = time.perf_counter() - t1
    t2 = time.perf_counter()
    seen = 0
    for e in range(epochs):
        if hasattr(loader, "sampler") and hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(e + 1)
        if hasattr(loader, "dataset") and hasattr(loader.dataset, "set_epoch"):
            loader.dataset.set_epoch(e + 1)
        for batch in loader:
            seen += len(batch["img"])
    dt = time.perf_counter() - t2
    assert seen == epochs * n_images, (seen, n_images)
    return {"build_s": build, "warmup_s": warm, "img_per_s": seen / dt}


def bccd_train() -> Any:
    from detforge.formats.voc import read_voc

    return read_voc(BCCD).split("train")


CACHE_DIR = Path(tempfile.mkdtemp(prefix="detforge-bench-cache-"))


def detforge_loader(ds: Any, cache: str, workers: int, imgsz: int, batch: int) -> Any:
    from detforge.train.dataloader import create_dataloader

    return create_dataloader(
        ds, imgsz=imgsz, batch_size=batch, augment=True, workers=workers, cache=cache, seed=0,
        cache_dir=CACHE_DIR, show_progress=False,
    )  # fmt: skip


def ultralytics_factory(imgsz: int, batch: int) -> Callable[[str, int], Any]:
    """A ``(cache, workers) -> DataLoader`` maker for Ultralytics' own training loader."""
    import contextlib
    import io

    from ultralytics.cfg import get_cfg
    from ultralytics.data.build import build_dataloader, build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset
    from ultralytics.utils import LOGGER

    from detforge.formats.ultralytics import write_ultralytics
    from detforge.formats.voc import read_voc

    LOGGER.setLevel("ERROR")
    tmp = Path(tempfile.mkdtemp(prefix="bccd-ul-"))
    # copies (not links): Ultralytics' disk cache writes .npy files beside the images
    yaml_path = write_ultralytics(read_voc(BCCD), tmp, images="copy")  # needs all splits
    data = check_det_dataset(str(yaml_path))

    def make(cache: str, workers: int) -> Any:
        ul_cache = False if cache == "none" else cache
        cfg = get_cfg(overrides={"imgsz": imgsz, "cache": ul_cache, "workers": workers})
        with contextlib.redirect_stderr(io.StringIO()):
            dset = build_yolo_dataset(cfg, data["train"], batch, data, mode="train", stride=32)
        return build_dataloader(dset, batch, workers, shuffle=True, rank=-1)

    return make


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--peer", choices=["ultralytics"], help="also time a peer tool, interleaved")
    ap.add_argument("--epochs", type=int, default=5, help="timed epochs after the warm-up epoch")
    ap.add_argument("--repeat", type=int, default=2, help="rounds; the best round is reported")
    ap.add_argument("--caches", default="none,ram,disk", help="comma-separated cache modes")
    ap.add_argument("--imgsz", type=int, default=416)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    ds = bccd_train()
    makers: dict[str, Callable[[str, int], Any]] = {
        "detforge": lambda c, w: detforge_loader(ds, c, w, args.imgsz, args.batch)
    }
    if args.peer:
        makers["ultralytics"] = ultralytics_factory(args.imgsz, args.batch)
    print("| loader | cache | workers | build s | warm-up epoch s | images/s (best) | all rounds |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for cache in args.caches.split(","):
        for workers in (0, 2):
            results: dict[str, list[dict[str, float]]] = {k: [] for k in makers}
            for _ in range(args.repeat):  # interleaved, so both see the same machine load
                for name, make in makers.items():
                    r = timed_epochs(
                        lambda m=make, c=cache, w=workers: m(c, w), args.epochs, ds.num_images
                    )
                    results[name].append(r)
            for name, rs in results.items():
                best = max(rs, key=lambda r: r["img_per_s"])
                rounds = ", ".join(f"{r['img_per_s']:.0f}" for r in rs)
                print(
                    f"| {name} | {cache} | {workers} | {best['build_s']:.1f} | "
                    f"{best['warmup_s']:.1f} | {best['img_per_s']:.1f} | {rounds} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
