"""Tiny on-the-fly datasets with real image files for the conversion tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import Dataset, make_dataset


def make_image_dataset(
    root: Path,
    *,
    num_images: int = 12,
    num_classes: int = 11,
    seed: int = 0,
    splits: tuple[str, ...] = ("train", "valid", "test"),
    negatives: int = 3,
    fmt: str = "png",
) -> Dataset:
    """Images of odd sizes written to ``root/src/<split>/`` and a dataset of random boxes.

    Some images have no boxes (negatives), class ids span ``num_classes`` (the last class
    has no box, so class lists must survive without data), boxes are ``CXCYWH_NORM`` inside
    the image, and two images share a file name in different folders.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    paths, widths, heights, split_col = [], [], [], []
    b_img, b_cls, b_xywh, diff, trunc = [], [], [], [], []
    for i in range(num_images):
        w, h = int(rng.integers(17, 97)), int(rng.integers(13, 81))
        split = splits[i % len(splits)] if splits else ""
        name = "same" if i in (1, 2) else f"img_{i:03d}"
        folder = root / "src" / (split or "all") / f"d{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        p = folder / f"{name}.{fmt}"
        Image.new("RGB", (w, h), tuple(int(c) for c in rng.integers(0, 255, 3))).save(p)
        paths.append(str(p))
        widths.append(w)
        heights.append(h)
        split_col.append(split)
        if i < negatives:
            continue
        for _ in range(int(rng.integers(1, 5))):
            bw, bh = rng.uniform(0.05, 0.6), rng.uniform(0.05, 0.6)
            cx, cy = rng.uniform(bw / 2, 1 - bw / 2), rng.uniform(bh / 2, 1 - bh / 2)
            b_img.append(i)
            b_cls.append(int(rng.integers(0, num_classes - 1)))
            b_xywh.append([cx, cy, bw, bh])
            diff.append(bool(rng.random() < 0.2))
            trunc.append(bool(rng.random() < 0.2))
    names = [f"class {k}" if k == 3 else f"cls_{k}" for k in range(num_classes)]
    return make_dataset(
        names,
        paths=paths,
        widths=widths,
        heights=heights,
        splits=split_col,
        box_image=b_img,
        box_cls=b_cls,
        box_coords=np.round(np.asarray(b_xywh).reshape(-1, 4), 6),
        box_format=BoxFormat.CXCYWH_NORM,
        difficult=diff,
        truncated=trunc,
    )


def _per_image(ds: Dataset) -> list[tuple[tuple[object, ...], np.ndarray, np.ndarray, np.ndarray]]:
    """Images of ``ds`` as ``(sort_key, cls, coords, flags)``, sorted by their boxes."""
    coords = ds.with_format(BoxFormat.CXCYWH_NORM).boxes.coords
    starts = np.searchsorted(ds.boxes.image, np.arange(ds.num_images + 1))
    out = []
    for i in range(ds.num_images):
        sl = slice(int(starts[i]), int(starts[i + 1]))
        order = np.lexsort((*np.round(coords[sl].T[::-1], 4), ds.boxes.cls[sl]))
        cls, xy = ds.boxes.cls[sl][order], coords[sl][order]
        flags = np.stack([ds.boxes.difficult[sl][order], ds.boxes.truncated[sl][order]], 1)
        key = (len(cls), tuple(cls.tolist()), tuple(np.round(xy, 4).ravel().tolist()))
        out.append((key, cls, xy, flags))
    return sorted(out, key=lambda t: t[0])


def assert_same_dataset(a: Dataset, b: Dataset, *, atol: float = 1e-6, flags: bool = False) -> None:
    """Same classes, splits, and per split the same images' boxes (image order may differ).

    Images are matched by their boxes; boxes are compared in ``CXCYWH_NORM`` within ``atol``
    plus ``1e-6`` relative. ``flags`` also compares ``difficult`` / ``truncated``.
    """
    assert a.class_names == b.class_names
    assert a.splits() == b.splits()
    for split in a.splits():
        sa, sb = a.split(split), b.split(split)
        assert sa.num_images == sb.num_images, split
        assert sa.num_boxes == sb.num_boxes, split
        for (_, ca, xa, fa), (_, cb, xb, fb) in zip(_per_image(sa), _per_image(sb), strict=True):
            assert ca.tolist() == cb.tolist(), split
            np.testing.assert_allclose(xb, xa, rtol=1e-6, atol=atol)
            if flags:
                assert fa.tolist() == fb.tolist()


def make_oversampled_list(root: Path) -> Path:
    """``root/train.txt`` naming ``a.jpg`` on lines 1, 3 and 5 (Darknet oversampling; line 3
    spelled ``./a.jpg``, line 4 a comment) and ``b.jpg`` on line 2; 40x30 images with one
    box each and ``obj.names`` (``cat``) beside it."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    for stem in ("a", "b"):
        Image.new("RGB", (40, 30), (10, 20, 30)).save(root / f"{stem}.jpg")
        (root / f"{stem}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "obj.names").write_text("cat\n")
    lst = root / "train.txt"
    lst.write_text("a.jpg\nb.jpg\n./a.jpg\n# oversampled\na.jpg\n")
    return lst


SPLIT_STEMS = {"train": "a", "valid": "b", "test": "c"}
"""The image of each split in :func:`make_split_sources`: ``a`` holds 2 zero-size boxes
besides its good one, ``b`` 1, ``c`` none."""


def make_split_sources(root: Path) -> dict[str, Path]:
    """The same three-split dataset as Pascal VOC (``ImageSets/Main`` lists), a COCO folder
    (``annotations/instances_<split>.json``, images in ``<split>/``) and an Ultralytics
    ``data.yaml``: one 100x50 image per split (:data:`SPLIT_STEMS`), each with one good
    ``cat`` box (x 10..30, y 10..30 px) and the zero-size boxes the readers leave out."""
    import json

    from PIL import Image

    bad = {"train": 2, "valid": 1, "test": 0}
    voc, coco, ul = root / "voc", root / "coco", root / "ul"
    for d in (voc / "Annotations", voc / "JPEGImages", voc / "ImageSets" / "Main"):
        d.mkdir(parents=True)
    obj = "<object><name>cat</name><bndbox><xmin>{}</xmin><ymin>11</ymin><xmax>{}</xmax>"
    obj += "<ymax>30</ymax></bndbox></object>"
    for split, stem in SPLIT_STEMS.items():
        short = {"valid": "val"}.get(split, split)
        xs = [(11, 30), (40, 40), (60, 60)][: 1 + bad[split]]
        Image.new("RGB", (100, 50)).save(voc / "JPEGImages" / f"{stem}.jpg")
        (voc / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.jpg</filename><size><width>100</width><height>50"
            f"</height></size>{''.join(obj.format(*x) for x in xs)}</annotation>"
        )
        (voc / "ImageSets" / "Main" / f"{short}.txt").write_text(f"{stem}\n")
        bboxes = [[10, 10, 20, 20], [5, 5, 0, 10], [5, 5, 10, 0]][: 1 + bad[split]]
        (coco / "annotations").mkdir(parents=True, exist_ok=True)
        (coco / short).mkdir()
        Image.new("RGB", (100, 50)).save(coco / short / f"{stem}.jpg")
        doc = {
            "images": [{"id": 1, "file_name": f"{stem}.jpg", "width": 100, "height": 50}],
            "annotations": [
                {"id": k + 1, "image_id": 1, "category_id": 1, "bbox": b, "iscrowd": 0}
                for k, b in enumerate(bboxes)
            ],
            "categories": [{"id": 1, "name": "cat"}],
        }
        (coco / "annotations" / f"instances_{short}.json").write_text(json.dumps(doc))
        lines = ["0 0.2 0.4 0.2 0.4", "0 0.5 0.5 0 0.2", "0 0.5 0.5 0.2 0"][: 1 + bad[split]]
        for kind in ("images", "labels"):
            (ul / kind / short).mkdir(parents=True)
        Image.new("RGB", (100, 50)).save(ul / "images" / short / f"{stem}.jpg")
        (ul / "labels" / short / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    yaml = ul / "data.yaml"
    yaml.write_text(f"path: {ul}\ntrain: images/train\nval: images/val\ntest: images/test\n")
    with yaml.open("a") as f:
        f.write("names: [cat]\n")
    return {"voc": voc, "coco": coco, "ultralytics": yaml}
