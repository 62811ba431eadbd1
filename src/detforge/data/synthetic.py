"""A synthetic, learnable detection dataset: filled shapes on coloured backgrounds.

Every shape's box is exact: the box ``(x1, y1, x2, y2)`` (continuous pixels) is the smallest
one holding every pixel of the shape. Shapes never touch (at least ``GAP`` pixels apart), fill
colours contrast with the background, and some images hold no object at all (negatives).
Everything is determined by ``seed``.

* :func:`render_shapes` -- images in memory (``(H, W, 3)`` uint8 arrays) and their
  :class:`~detforge.data.dataset.Dataset`, for tests that need no files.
* :func:`generate_shapes_dataset` -- the same written as a Darknet dataset (JPEG images, labels,
  lists, ``obj.names``, ``obj.data``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import Dataset, make_dataset
from detforge.errors import DetforgeError
from detforge.utils.io import atomic_open, atomic_write_text

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "cross")
"""Shape names :func:`render_shapes` can draw (class names must be among them)."""

GAP = 3
"""Minimum empty pixels between two shapes' boxes."""

MARKER = ".detforge-synthetic"
"""File marking a folder as :func:`generate_shapes_dataset` output (it may be regenerated)."""

_SPLIT_NAMES = ("train", "valid", "test")


def _luma(c: NDArray[np.int64]) -> float:
    return float(0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2])


def _draw(
    draw: object, shape: str, x0: int, y0: int, w: int, h: int, fill: tuple[int, ...]
) -> None:
    """Draw ``shape`` covering exactly pixels ``x0..x0+w-1`` x ``y0..y0+h-1``."""
    from PIL import ImageDraw

    assert isinstance(draw, ImageDraw.ImageDraw)
    x1, y1 = x0 + w - 1, y0 + h - 1
    if shape == "circle":
        draw.ellipse([x0, y0, x1, y1], fill=fill)
    elif shape == "square":
        draw.rectangle([x0, y0, x1, y1], fill=fill)
    elif shape == "triangle":
        draw.polygon([(x0, y1), (x1, y1), (x0 + (w - 1) // 2, y0)], fill=fill, outline=fill)
        if w % 2 == 0:  # symmetric apex: two top pixels
            draw.polygon([(x0, y1), (x1, y1), (x0 + w // 2, y0)], fill=fill, outline=fill)
    elif shape == "diamond":
        mx, my = x0 + (w - 1) // 2, y0 + (h - 1) // 2
        pts = [(mx, y0), (x1, my), (mx, y1), (x0, my)]
        draw.polygon(pts, fill=fill, outline=fill)
        draw.line([(mx, y0), (mx, y1)], fill=fill)
        draw.line([(x0, my), (x1, my)], fill=fill)
    elif shape == "cross":
        tw, th = max(2, w // 3), max(2, h // 3)
        cx0, cy0 = x0 + (w - tw) // 2, y0 + (h - th) // 2
        draw.rectangle([cx0, y0, cx0 + tw - 1, y1], fill=fill)
        draw.rectangle([x0, cy0, x1, cy0 + th - 1], fill=fill)
    else:  # pragma: no cover - guarded by render_shapes
        raise ValueError(shape)


def _image_size(
    rng: np.random.Generator, imgsz: tuple[int, int], size_jitter: float
) -> tuple[int, int]:
    w, h = imgsz
    if size_jitter > 0:
        w = round(w * rng.uniform(1 - size_jitter, 1 + size_jitter))
        h = round(h * rng.uniform(1 - size_jitter, 1 + size_jitter))
    return max(w, 32), max(h, 32)


def _split_column(n: int, splits: Sequence[float], rng: np.random.Generator) -> list[str]:
    ratios = np.asarray(splits, dtype=np.float64)
    if len(ratios) > 3 or np.any(ratios < 0) or ratios.sum() <= 0:
        raise DetforgeError(f"splits must be up to 3 non-negative ratios, got {tuple(splits)}")
    counts = np.floor(ratios / ratios.sum() * n).astype(int)
    counts[0] += n - counts.sum()
    names = [s for s, c in zip(_SPLIT_NAMES, counts.tolist(), strict=False) for _ in range(c)]
    order = rng.permutation(n)
    out = [""] * n
    for k, i in enumerate(order.tolist()):
        out[i] = names[k]
    return out


# Over 80 lines on purpose: one drawing routine, shape kinds side by side.
def render_shapes(
    num_images: int = 60,
    *,
    imgsz: tuple[int, int] = (160, 128),
    size_jitter: float = 0.0,
    classes: Sequence[str] = ("circle", "square", "triangle"),
    seed: int = 0,
    splits: Sequence[float] = (0.7, 0.2, 0.1),
    negatives: float = 0.1,
    max_objects: int = 4,
    min_size: float = 0.15,
    max_size: float = 0.45,
) -> tuple[list[NDArray[np.uint8]], Dataset]:
    """Draw ``num_images`` images of shapes and return them with their dataset.

    ``imgsz`` is ``(width, height)`` in pixels; ``size_jitter`` > 0 scales each image's width
    and height independently by up to that fraction (varied sizes). Each non-negative image has
    1..``max_objects`` shapes whose sides are ``min_size..max_size`` of the shorter image side.
    About ``negatives`` of the images have no object. Returns images as ``(H, W, 3)`` uint8 RGB
    arrays and a :class:`Dataset` whose paths are ``img_0000.jpg``... (no files exist), with
    boxes in ``CXCYWH_NORM`` and splits assigned by ``splits`` (train, valid, test ratios).
    """
    from PIL import Image, ImageDraw

    bad = [c for c in classes if c not in SHAPES]
    if bad or not classes:
        raise DetforgeError(f"unknown shape classes {bad}; choose from {', '.join(SHAPES)}")
    rng = np.random.default_rng(seed)
    split_col = _split_column(num_images, splits, rng)
    n_neg = round(negatives * num_images)
    negative = np.zeros(num_images, dtype=bool)
    negative[rng.choice(num_images, size=min(n_neg, num_images), replace=False)] = True
    arrays: list[NDArray[np.uint8]] = []
    widths, heights, b_img, b_cls, b_xyxy = [], [], [], [], []
    for i in range(num_images):
        w, h = _image_size(rng, imgsz, size_jitter)
        top = rng.integers(0, 256, size=3)
        bottom = np.clip(top + rng.integers(-40, 41, size=3), 0, 255)
        ramp = np.linspace(0.0, 1.0, h)[:, None, None]
        bg = (top[None, None, :] * (1 - ramp) + bottom[None, None, :] * ramp).astype(np.uint8)
        img = Image.fromarray(np.repeat(bg, w, axis=1), "RGB")
        draw = ImageDraw.Draw(img)
        bg_luma = _luma(top)
        placed: list[tuple[int, int, int, int]] = []
        k = 0 if negative[i] else int(rng.integers(1, max_objects + 1))
        short = min(w, h)
        for _ in range(k):
            for _try in range(30):
                cls = int(rng.integers(0, len(classes)))
                s = int(rng.integers(int(min_size * short), int(max_size * short) + 1))
                bw = bh = s
                if classes[cls] in ("triangle", "cross"):
                    bh = max(8, round(s * rng.uniform(0.8, 1.2)))
                x0 = int(rng.integers(0, w - bw + 1))
                y0 = int(rng.integers(0, h - bh + 1))
                box = (x0, y0, x0 + bw, y0 + bh)
                if all(
                    box[0] >= q[2] + GAP
                    or q[0] >= box[2] + GAP
                    or box[1] >= q[3] + GAP
                    or q[1] >= box[3] + GAP
                    for q in placed
                ):
                    break
            else:
                continue
            while True:
                fill = rng.integers(0, 256, size=3)
                if abs(_luma(fill) - bg_luma) >= 70 and abs(_luma(fill) - _luma(bottom)) >= 70:
                    break
            _draw(draw, classes[cls], x0, y0, bw, bh, tuple(int(v) for v in fill))
            placed.append(box)
            b_img.append(i)
            b_cls.append(cls)
            b_xyxy.append(box)
        arrays.append(np.asarray(img, dtype=np.uint8))
        widths.append(w)
        heights.append(h)
    ds = make_dataset(
        list(classes),
        paths=[f"img_{i:04d}.jpg" for i in range(num_images)],
        widths=widths,
        heights=heights,
        splits=split_col,
        box_image=b_img,
        box_cls=b_cls,
        box_coords=np.asarray(b_xyxy, dtype=np.float64).reshape(-1, 4),
        box_format=BoxFormat.XYXY_PIXEL,
        meta={"source": "synthetic shapes", "seed": seed},
    )
    return arrays, ds.with_format(BoxFormat.CXCYWH_NORM)


# Over 80 lines on purpose: the generator's steps in order: images, labels, lists, names, .data.
def generate_shapes_dataset(
    out_dir: str | os.PathLike[str],
    *,
    num_images: int = 60,
    imgsz: tuple[int, int] = (160, 128),
    size_jitter: float = 0.0,
    classes: Sequence[str] = ("circle", "square", "triangle"),
    seed: int = 0,
    splits: Sequence[float] = (0.7, 0.2, 0.1),
    negatives: float = 0.1,
    max_objects: int = 4,
    quality: int = 92,
) -> Path:
    """Write a synthetic Darknet dataset into ``out_dir`` and return its ``obj.data`` path.

    Layout (all paths inside are relative, resolved against the file naming them)::

        out_dir/images/{train,valid,test}/img_0000.jpg + img_0000.txt (labels beside images)
        out_dir/{train,valid,test}.txt   out_dir/obj.names   out_dir/obj.data
        out_dir/backup/   out_dir/results/

    Negatives alternate between an empty label file and no label file at all (both mean "no
    objects"). See :func:`render_shapes` for the other arguments; ``quality`` is the JPEG
    quality. Existing files of the same names are replaced.
    """
    from PIL import Image

    out = Path(out_dir)
    marker = out / MARKER
    if out.exists() and any(out.iterdir()):
        if not marker.exists():
            raise DetforgeError(
                "output folder is not empty and was not made by generate_shapes_dataset; "
                "choose a new folder",
                path=out,
            )
        shutil.rmtree(out / "images", ignore_errors=True)  # our own earlier output
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text("written by detforge.data.synthetic.generate_shapes_dataset\n")
    arrays, ds = render_shapes(
        num_images,
        imgsz=imgsz,
        size_jitter=size_jitter,
        classes=classes,
        seed=seed,
        splits=splits,
        negatives=negatives,
        max_objects=max_objects,
    )
    starts = np.concatenate([[0], np.cumsum(ds.boxes_per_image())]).tolist()
    lists: dict[str, list[str]] = {s: [] for s in _SPLIT_NAMES}
    negative_seen = 0
    for i, (arr, name, split) in enumerate(
        zip(arrays, ds.images.path.tolist(), ds.images.split.tolist(), strict=True)
    ):
        rel = f"images/{split}/{name}"
        img_path = out / rel
        img_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(img_path, "wb") as f:
            Image.fromarray(arr, "RGB").save(f, format="JPEG", quality=quality)
        a, b = starts[i], starts[i + 1]
        if a == b:
            negative_seen += 1
            if negative_seen % 2 == 0:
                lists[split].append(rel)
                continue  # no label file at all
        lines = "".join(
            f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n"
            for c, (x, y, w, h) in zip(
                ds.boxes.cls[a:b].tolist(), ds.boxes.coords[a:b].tolist(), strict=True
            )
        )
        atomic_write_text(img_path.with_suffix(".txt"), lines)
        lists[split].append(rel)
    data_lines = [f"classes = {len(classes)}"]
    for split, entries in lists.items():
        if not entries and split != "train":
            (out / f"{split}.txt").unlink(missing_ok=True)  # from an earlier generation
            continue  # an empty split gets no list and no key
        atomic_write_text(out / f"{split}.txt", "".join(f"{e}\n" for e in entries))
        data_lines.append(f"{split} = {split}.txt")
    atomic_write_text(out / "obj.names", "".join(f"{c}\n" for c in classes))
    data_lines += ["names = obj.names", "backup = backup", "results = results"]
    for folder in ("backup", "results"):
        (out / folder).mkdir(exist_ok=True)
    atomic_write_text(out / "obj.data", "\n".join(data_lines) + "\n")
    return out / "obj.data"
