from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from detforge.data.boxes import BoxFormat
from detforge.data.synthetic import SHAPES, generate_shapes_dataset, render_shapes
from detforge.formats.darknet import read_darknet


def _pixel_extent(img: np.ndarray, box: np.ndarray, probe: tuple[int, int]) -> tuple[int, ...]:
    """Bounding box of the pixels having the probe pixel's colour near ``box``."""
    h, w, _ = img.shape
    x1, y1, x2, y2 = (int(v) for v in box)
    col = img[probe[1], probe[0]]
    X0, Y0, X1, Y1 = max(0, x1 - 2), max(0, y1 - 2), min(w, x2 + 2), min(h, y2 + 2)
    ys, xs = np.nonzero(np.all(img[Y0:Y1, X0:X1] == col, axis=2))
    return (xs.min() + X0, ys.min() + Y0, xs.max() + X0 + 1, ys.max() + Y0 + 1)


def test_boxes_hug_every_shape_exactly() -> None:
    arrays, ds = render_shapes(80, classes=SHAPES, size_jitter=0.3, seed=3)
    xy = ds.coords_as(BoxFormat.XYXY_PIXEL)
    assert np.allclose(xy, np.round(xy))  # integer pixel edges
    for j in range(ds.num_boxes):
        img = arrays[int(ds.boxes.image[j])]
        x1, y1, x2, y2 = np.round(xy[j]).astype(int)
        cy = (y1 + 2 * y2) // 3 if ds.class_names[ds.boxes.cls[j]] == "triangle" else (y1 + y2) // 2
        got = _pixel_extent(img, xy[j], ((x1 + x2) // 2, cy))
        assert got == (x1, y1, x2, y2), (j, ds.class_names[ds.boxes.cls[j]])
    assert set(ds.boxes.cls.tolist()) == set(range(len(SHAPES)))
    sizes = {a.shape[:2] for a in arrays}
    assert len(sizes) > 10  # varied sizes
    assert all(
        a.shape[:2] == (h, w)
        for a, w, h in zip(arrays, ds.images.width, ds.images.height, strict=False)
    )


def test_render_is_deterministic_with_negatives_and_splits() -> None:
    a1, d1 = render_shapes(50, seed=7, negatives=0.2)
    a2, d2 = render_shapes(50, seed=7, negatives=0.2)
    a3, _ = render_shapes(50, seed=8, negatives=0.2)
    assert all(np.array_equal(x, y) for x, y in zip(a1, a2, strict=False))
    assert not all(np.array_equal(x, y) for x, y in zip(a1, a3, strict=False))
    assert np.array_equal(d1.boxes.coords, d2.boxes.coords)
    assert int((d1.boxes_per_image() == 0).sum()) == 10
    splits = d1.images.split.tolist()
    assert (splits.count("train"), splits.count("valid"), splits.count("test")) == (35, 10, 5)


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


def test_generated_dataset_reads_back(tmp_path: Path) -> None:
    data = generate_shapes_dataset(tmp_path / "a", num_images=40, seed=2, negatives=0.1)
    generate_shapes_dataset(tmp_path / "b", num_images=40, seed=2, negatives=0.1)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    root = data.parent
    assert (root / "backup").is_dir() and (root / "results").is_dir()
    assert (root / "obj.names").read_text() == "circle\nsquare\ntriangle\n"
    _, ref = render_shapes(40, seed=2, negatives=0.1)
    ds = read_darknet(data, cache=False)
    assert ds.class_names == ref.class_names
    by_name = {Path(p).name: i for i, p in enumerate(ds.images.path)}
    order = [by_name[p] for p in ref.images.path]
    got = ds.select(order)
    assert got.images.split.tolist() == ref.images.split.tolist()
    assert got.images.width.tolist() == ref.images.width.tolist()
    assert got.images.height.tolist() == ref.images.height.tolist()
    assert np.array_equal(got.boxes.cls, ref.boxes.cls)
    assert np.allclose(got.boxes.coords, ref.boxes.coords, atol=1e-6)
    # 4 negatives: two with an empty label file, two with none
    assert ds.meta["no_label_file"] == 2
    assert int((ds.boxes_per_image() == 0).sum()) == 4
    with Image.open(ds.images.path[0]) as im:
        assert im.format == "JPEG" and im.size == (160, 128)


def test_regenerating_replaces_only_our_own_output(tmp_path: Path) -> None:
    from detforge.errors import DetforgeError

    generate_shapes_dataset(tmp_path / "d", num_images=20, seed=1)
    data = generate_shapes_dataset(tmp_path / "d", num_images=10, seed=1)
    assert len(list((tmp_path / "d" / "images").rglob("*.jpg"))) == 10
    assert read_darknet(data, cache=False).num_images == 10
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "precious.jpg").write_bytes(b"x")
    try:
        generate_shapes_dataset(tmp_path / "user", num_images=10)
    except DetforgeError as exc:
        assert "not empty" in exc.message
    else:
        raise AssertionError("wrote into a user's folder")
    assert (tmp_path / "user" / "precious.jpg").read_bytes() == b"x"


def test_empty_split_gets_no_list(tmp_path: Path) -> None:
    data = generate_shapes_dataset(tmp_path / "d", num_images=10, splits=(0.8, 0.2, 0.0))
    assert "test" not in data.read_text() and not (tmp_path / "d" / "test.txt").exists()
    assert read_darknet(data, cache=False).splits() == ["train", "valid"]
