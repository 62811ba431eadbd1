"""DetectionDataset, collate and create_dataloader on tiny datasets written in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import Dataset, make_dataset
from detforge.errors import DetforgeError
from detforge.train import images as I
from detforge.train.data import AugmentConfig, DetectionDataset
from detforge.train.dataloader import collate, create_dataloader, set_epoch

# (h, w) of each image and one white rectangle (integer xyxy pixels) on it
SIZES = [(60, 120), (40, 120), (120, 60), (90, 90), (100, 50), (50, 100)]


def rect_of(h: int, w: int, k: int) -> list[int]:
    x1, y1 = w // 4 + k, h // 4
    return [x1, y1, x1 + w // 3, y1 + h // 3]


def write_rect_dataset(root: Path, fmt: BoxFormat = BoxFormat.CXCYWH_NORM) -> Dataset:
    """PNG images (black, one white rectangle each) and a Dataset of them in ``fmt``."""
    paths, coords = [], []
    for k, (h, w) in enumerate(SIZES):
        img = np.zeros((h, w, 3), dtype=np.uint8)
        x1, y1, x2, y2 = rect_of(h, w, k)
        img[y1:y2, x1:x2] = 255
        p = root / f"im{k}.png"
        Image.fromarray(img).save(p)
        paths.append(str(p))
        if fmt is BoxFormat.CXCYWH_NORM:
            coords.append([(x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h])
        else:
            coords.append([x1, y1, x2, y2])
    known = fmt is not BoxFormat.CXCYWH_NORM
    return make_dataset(
        ("rect",),
        paths=paths,
        widths=[w for _, w in SIZES] if known else None,
        heights=[h for h, _ in SIZES] if known else None,
        splits="train",
        box_image=range(len(SIZES)),
        box_cls=[0] * len(SIZES),
        box_coords=coords,
        box_format=fmt,
    )


def assert_tight(img: np.ndarray, boxes: np.ndarray, tol: float) -> None:
    """Each xyxy box tightly bounds the white pixels around it."""
    mask = img[..., 0] > 127
    for b in boxes:
        x1, y1 = max(int(b[0]) - 3, 0), max(int(b[1]) - 3, 0)
        sub = mask[y1 : int(np.ceil(b[3])) + 3, x1 : int(np.ceil(b[2])) + 3]
        ys, xs = np.nonzero(sub)
        assert len(xs), f"no pixels under {b}"
        got = [xs.min() + x1, ys.min() + y1, xs.max() + 1 + x1, ys.max() + 1 + y1]
        np.testing.assert_allclose(got, b, atol=tol)


@pytest.fixture()
def rect_ds(tmp_path: Path) -> Dataset:
    return write_rect_dataset(tmp_path)


def test_validation_batch_follows_contract(rect_ds: Dataset) -> None:
    data = DetectionDataset(rect_ds, imgsz=64)
    batch = collate([data[i] for i in range(len(data))])
    assert set(batch) == {"img", "batch_idx", "cls", "bboxes", "paths", "orig_shape", "ratio_pad"}
    assert batch["img"].shape == (6, 3, 64, 64) and batch["img"].dtype == torch.uint8
    assert batch["batch_idx"].tolist() == list(range(6)) and batch["cls"].dtype == torch.int64
    assert batch["bboxes"].shape == (6, 4) and batch["bboxes"].dtype == torch.float32
    assert batch["orig_shape"] == SIZES and batch["paths"] == list(rect_ds.images.path)
    for k, (h, w) in enumerate(SIZES):
        img = batch["img"][k].permute(1, 2, 0).numpy()
        box = batch["bboxes"][k].numpy().astype(np.float64)
        assert_tight(img, box[None], tol=1.0)
        # ratio_pad maps the source rectangle onto the letterboxed one (hand-computed)
        (rw, rh), (pw, ph) = batch["ratio_pad"][k]
        r = 64 / max(h, w)
        assert rw == pytest.approx(r, rel=0.03) and rh == pytest.approx(r, rel=0.03)
        src = np.array(rect_of(h, w, k), dtype=np.float64)
        np.testing.assert_allclose(src * [rw, rh, rw, rh] + [pw, ph, pw, ph], box, atol=1e-3)


def test_pixel_boxes_and_unknown_sizes_agree(tmp_path: Path) -> None:
    norm = DetectionDataset(write_rect_dataset(tmp_path), imgsz=64)  # sizes read from headers
    pix = DetectionDataset(write_rect_dataset(tmp_path, BoxFormat.XYXY_PIXEL), imgsz=64)
    np.testing.assert_array_equal(norm.orig_hw, SIZES)
    for i in range(len(SIZES)):
        np.testing.assert_allclose(norm[i]["bboxes"], pix[i]["bboxes"], atol=1e-4)


def test_training_samples_boxes_follow_pixels(rect_ds: Dataset) -> None:
    hyp = AugmentConfig(degrees=0.0, translate=0.2, scale=0.5, fliplr=0.5, flipud=0.5)
    data = DetectionDataset(rect_ds, imgsz=96, augment=True, hyp=hyp, seed=7)
    counts = []
    for epoch in range(3):
        data.set_epoch(epoch)
        for i in range(len(data)):
            s = data[i]
            assert s["img"].shape == (96, 96, 3) and s["img"].dtype == np.uint8
            assert_tight(s["img"], s["bboxes"].astype(np.float64), tol=2.0)
            counts.append(len(s["cls"]))
    assert max(counts) >= 3  # mosaics bring several images' boxes together
    data.set_mosaic(False)
    plain = [len(data[i]["cls"]) for i in range(len(data))]
    assert max(plain) <= 1 and not data.mosaic


def test_same_seed_epoch_image_gives_same_sample(rect_ds: Dataset) -> None:
    a = DetectionDataset(rect_ds, imgsz=64, augment=True, seed=1)
    b = DetectionDataset(rect_ds, imgsz=64, augment=True, seed=1)
    np.testing.assert_array_equal(a[2]["img"], b[2]["img"])
    b.set_epoch(1)
    assert not np.array_equal(a[2]["img"], b[2]["img"])


def test_validation_samples_are_the_inference_input(rect_ds: Dataset) -> None:
    """Validation during training feeds each image exactly what predict/val/map feed it: the
    file decoded to the fitted size and letterboxed alone into the square (any batch mates)."""
    from detforge.data.images import load_image
    from detforge.data.letterbox import InputRule

    rule = InputRule.square(64)
    for batch_size in (1, 4):
        loader = create_dataloader(rect_ds, imgsz=64, batch_size=batch_size, cache="none")
        for b in loader:
            assert tuple(b["img"].shape[2:]) == (64, 64)
            for k, path in enumerate(b["paths"]):
                image, orig = load_image(path, fit=rule.shape)
                want, ratio_pad = rule.apply(image, orig)
                np.testing.assert_array_equal(b["img"][k].permute(1, 2, 0).numpy(), want)
                assert b["ratio_pad"][k] == ratio_pad and b["orig_shape"][k] == orig
                img = b["img"][k].permute(1, 2, 0).numpy()
                assert_tight(img, b["bboxes"][b["batch_idx"] == k].numpy().astype(float), tol=1.0)


def test_ram_cache_decodes_each_image_once(
    rect_ds: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = I.load_image

    def counting(path: str, **kw: object) -> tuple[np.ndarray, tuple[int, int]]:
        calls.append(path)
        return real(path, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(I, "load_image", counting)
    data = DetectionDataset(rect_ds, imgsz=64, augment=True, cache="ram")
    assert sorted(calls) == sorted(rect_ds.images.path) and data.cache is not None
    for epoch in range(2):
        data.set_epoch(epoch)
        for i in range(len(data)):
            data[i]
    assert len(calls) == len(SIZES)
    assert not data.cache.buffer.flags.writeable


def test_disk_cache_reuses_files(
    rect_ds: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = DetectionDataset(rect_ds, imgsz=64, cache="disk", cache_dir=tmp_path / "c")
    assert first.cache is not None and first.cache.decoded == len(SIZES)
    second = DetectionDataset(rect_ds, imgsz=64, cache="disk", cache_dir=tmp_path / "c")
    assert second.cache is not None and second.cache.decoded == 0
    np.testing.assert_array_equal(first[3]["img"], second[3]["img"])
    monkeypatch.setattr(I, "available_memory", lambda: 1000)
    with pytest.raises(DetforgeError, match="needs"):
        DetectionDataset(rect_ds, imgsz=64, cache="ram")
    assert DetectionDataset(rect_ds, imgsz=64, cache="auto").cache is None


def test_loader_with_workers_matches_main_process(rect_ds: Dataset) -> None:
    kw = {"imgsz": 64, "batch_size": 4, "augment": True, "seed": 3, "cache": "ram"}
    main = create_dataloader(rect_ds, workers=0, **kw)  # type: ignore[arg-type]
    multi = create_dataloader(rect_ds, workers=2, **kw)  # type: ignore[arg-type]
    for epoch, mosaic in [(0, True), (1, False)]:
        for loader in (main, multi):
            set_epoch(loader, epoch)
            loader.dataset.set_mosaic(mosaic)  # type: ignore[attr-defined]
        for a, b in zip(main, multi, strict=True):
            assert torch.equal(a["img"], b["img"]) and a["paths"] == b["paths"]
            assert torch.equal(a["bboxes"], b["bboxes"])
            if not mosaic:
                assert len(a["cls"]) <= len(a["paths"])


def test_ranks_split_the_global_batch(rect_ds: Dataset) -> None:
    kw = {"imgsz": 64, "augment": True, "seed": 5, "cache": "none"}
    one = list(create_dataloader(rect_ds, batch_size=4, **kw))  # type: ignore[arg-type]
    ranks = [
        list(create_dataloader(rect_ds, batch_size=2, rank=r, world_size=2, **kw))  # type: ignore[arg-type]
        for r in range(2)
    ]
    for k, batch in enumerate(one):
        parts = [ranks[r][k] for r in range(2)]
        assert sorted(batch["paths"]) == sorted(parts[0]["paths"] + parts[1]["paths"])
        for r in range(2):
            for i, p in enumerate(parts[r]["paths"]):
                j = batch["paths"].index(p)
                assert torch.equal(parts[r]["img"][i], batch["img"][j])


@pytest.mark.parametrize("workers", [0, 2])
def test_broken_image_in_loader_is_one_clean_error(rect_ds: Dataset, workers: int) -> None:
    bad = Path(rect_ds.images.path[4])
    bad.write_bytes(bad.read_bytes()[:60])  # header intact, pixel data cut off
    loader = create_dataloader(rect_ds, imgsz=64, batch_size=2, workers=workers, cache="none")
    with pytest.raises(DetforgeError) as err:
        list(loader)
    assert err.value.path == rect_ds.images.path[4]
    assert "Traceback" not in str(err.value) and "detforge check" in str(err.value)
    bad.write_bytes(b"not an image at all")  # sizes unknown: the header is read up front
    with pytest.raises(DetforgeError) as err:
        DetectionDataset(rect_ds, imgsz=64)
    assert err.value.path == rect_ds.images.path[4]


def test_crowd_and_empty_boxes_are_not_targets(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "a.png")
    ds = make_dataset(
        ("a", "b"),
        paths=[str(tmp_path / "a.png"), str(tmp_path / "a.png")],
        box_image=[0, 0, 0],
        box_cls=[0, 1, 1],
        box_coords=[[0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.4, 0.4], [0.5, 0.5, 0.0, 0.3]],
        crowd=[False, True, False],
    )
    data = DetectionDataset(ds, imgsz=32)
    assert data.num_dropped == 2
    batch = collate([data[0], data[1]])
    assert batch["cls"].tolist() == [0] and batch["batch_idx"].tolist() == [0]
    np.testing.assert_allclose(batch["bboxes"].numpy(), [[12.8, 12.8, 19.2, 19.2]], atol=1e-5)


def test_synthetic_shapes_dataset_through_both_loaders(tmp_path: Path) -> None:
    from detforge.data.synthetic import generate_shapes_dataset
    from detforge.formats.darknet import read_darknet

    data_file = generate_shapes_dataset(tmp_path / "shapes", num_images=24, size_jitter=0.3)
    full = read_darknet(data_file)
    train = create_dataloader(full.split("train"), imgsz=96, batch_size=4, augment=True)
    n_train = full.split("train").num_images
    seen = 0
    for batch in train:
        b, _, h, w = batch["img"].shape
        assert (h, w) == (96, 96) and batch["img"].dtype == torch.uint8
        assert len(batch["paths"]) == b == len(batch["orig_shape"]) == len(batch["ratio_pad"])
        assert batch["cls"].max() < 3 and len(batch["cls"]) == len(batch["bboxes"])
        bx = batch["bboxes"]
        assert (bx[:, 2] > bx[:, 0]).all() and (bx[:, 3] > bx[:, 1]).all()
        assert bx.min() >= 0 and bx.max() <= 96
        seen += b
    assert seen == n_train
    valid = full.split("valid")
    val = create_dataloader(valid, imgsz=96, batch_size=2)
    total = sum(len(batch["cls"]) for batch in val)
    assert total == valid.num_boxes  # validation keeps every box
    for batch in val:
        assert tuple(batch["img"].shape[2:]) == (96, 96)  # the inference square


def test_mixup_and_rotation_paths(rect_ds: Dataset) -> None:
    hyp = AugmentConfig(mixup=1.0, degrees=20.0, shear=5.0, hsv_h=0, hsv_s=0, hsv_v=0)
    data = DetectionDataset(rect_ds, imgsz=64, augment=True, hyp=hyp, seed=2)
    plain = DetectionDataset(rect_ds, imgsz=64, augment=True, hyp=AugmentConfig(mixup=0.0))
    for i in range(len(data)):
        s = data[i]
        assert s["img"].shape == (64, 64, 3) and s["img"].dtype == np.uint8
        b = s["bboxes"]
        assert len(b) == len(s["cls"]) and (b >= 0).all() and (b <= 64).all()
        assert (b[:, 2:] - b[:, :2] > 2).all()  # degenerate boxes were filtered out
    mixed = sum(len(data[i]["cls"]) for i in range(len(data)))
    single = sum(len(plain[i]["cls"]) for i in range(len(plain)))
    assert mixed > single  # mixup brings the second sample's boxes along
