"""What convert verifies against the real images before writing (formats.verify)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detforge.data.boxes import BoxFormat
from detforge.data.dataset import Dataset, make_dataset
from detforge.errors import DetforgeError
from detforge.formats.verify import verify_images


def _image(path: Path, size: tuple[int, int] = (64, 48), orientation: int = 1) -> str:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", size, (90, 10, 10))
    if orientation != 1:
        exif = im.getexif()
        exif[0x0112] = orientation
        im.save(path, exif=exif.tobytes())
    else:
        im.save(path)
    return str(path)


def _ds(
    path: str,
    coords: list[list[float]],
    fmt: BoxFormat,
    size: tuple[int, int] = (0, 0),
    meta: dict[str, object] | None = None,
) -> Dataset:
    return make_dataset(
        ["cat"],
        paths=[path],
        widths=[size[0]],
        heights=[size[1]],
        box_image=[0] * len(coords),
        box_cls=[0] * len(coords),
        box_coords=np.asarray(coords, dtype=np.float64).reshape(-1, 4),
        box_format=fmt,
        meta=meta or {"format": "coco", "source": "x.json", "json_paths": ["x.json"]},
    )


def test_a_file_that_is_not_an_image_is_never_linked(tmp_path: Path) -> None:
    text = tmp_path / "passwd"
    text.write_text("root:x:0:0:root:/root:/bin/bash\n")
    ds = _ds(str(text), [[0.5, 0.5, 0.1, 0.1]], BoxFormat.CXCYWH_NORM,
             meta={"format": "darknet", "label_paths": [str(tmp_path / "passwd.txt")]})  # fmt: skip
    with pytest.raises(DetforgeError, match=r"passwd\.txt: .*passwd is not a readable image "
                       r"\(image-not-image"):  # fmt: skip
        verify_images(ds, fmt="darknet", to="coco", place_images=True)
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(Path(_image(tmp_path / "whole.jpg")).read_bytes()[:300])
    with pytest.raises(DetforgeError, match="image-truncated"):
        verify_images(_ds(str(truncated), [], BoxFormat.CXCYWH_NORM), fmt="darknet",
                      to="darknet", place_images=False)  # fmt: skip


def test_stated_size_must_be_the_images_unless_an_option_says_which(tmp_path: Path) -> None:
    img = _image(tmp_path / "a.jpg", (132, 145))
    ds = _ds(img, [[10, 10, 50, 50]], BoxFormat.XYWH_PIXEL, size=(1320, 145))
    with pytest.raises(DetforgeError, match=r"x.json: image id 0 .*the annotation says 1320 x "
                       r"145 px but the image .*a\.jpg is 132 x 145"):  # fmt: skip
        verify_images(ds, fmt="coco", to="darknet", place_images=True)
    real = verify_images(ds, fmt="coco", to="darknet", place_images=True, trust_size="image")
    assert (real.ds.images.width[0], real.ds.images.height[0]) == (132, 145)
    assert real.ds.boxes.coords.tolist() == [[10, 10, 50, 50]] and real.notes
    kept = verify_images(ds, fmt="coco", to="darknet", place_images=True, trust_size="annotation")
    assert kept.ds.images.width[0] == 1320
    # the stored size or the size shown after EXIF rotation are both the image's
    rotated = _image(tmp_path / "r.jpg", (60, 40), orientation=6)
    for size in ((60, 40), (40, 60)):
        ok = _ds(rotated, [[1, 1, 5, 5]], BoxFormat.XYWH_PIXEL, size=size)
        verify_images(ok, fmt="coco", to="darknet", place_images=True)


@pytest.mark.parametrize(
    ("coords", "fmt", "size"),
    [
        ([[100, 100, 500, 500]], BoxFormat.XYWH_PIXEL, (132, 145)),  # COCO past the image
        ([[259, 10, 900, 60]], BoxFormat.XYXY_PIXEL, (640, 480)),  # VOC xmax 900 of 640
        ([[1.5, 0.5, 0.1, 0.1]], BoxFormat.CXCYWH_NORM, (0, 0)),  # Darknet x 1.5
    ],
)
def test_boxes_outside_the_image_are_refused_clipped_or_skipped(
    tmp_path: Path, coords: list[list[float]], fmt: BoxFormat, size: tuple[int, int]
) -> None:
    img = _image(tmp_path / "a.jpg", size if size[0] else (64, 48))
    ds = _ds(img, [*coords, [0, 0, 10, 10] if fmt is not BoxFormat.CXCYWH_NORM else
                   [0.5, 0.5, 0.2, 0.2]], fmt, size=size)  # fmt: skip
    with pytest.raises(DetforgeError, match=r"coord-above-one: .* --clip-boxes .* --skip-bad"):
        verify_images(ds, fmt="coco", to="darknet", place_images=True)
    skipped = verify_images(ds, fmt="coco", to="darknet", place_images=True, skip_bad=True)
    assert skipped.ds.num_boxes == 1 and skipped.notes[0].startswith("left out: ")
    clipped = verify_images(ds, fmt="coco", to="darknet", place_images=True, clip=True).ds
    norm = clipped.with_format(BoxFormat.CXCYWH_NORM).boxes.coords
    xyxy = np.column_stack([norm[:, :2] - norm[:, 2:] / 2, norm[:, :2] + norm[:, 2:] / 2])
    assert xyxy.min() >= -1e-9 and xyxy.max() <= 1 + 1e-9
    assert clipped.num_boxes == (1 if fmt is BoxFormat.CXCYWH_NORM else 2)  # x 1.45..1.55: gone


def test_darknet_labels_on_an_exif_rotated_image_are_refused_for_pixel_targets(
    tmp_path: Path,
) -> None:
    img = _image(tmp_path / "r.jpg", (60, 40), orientation=6)
    ds = _ds(img, [[0.2, 0.5, 0.2, 0.2]], BoxFormat.CXCYWH_NORM, size=(40, 60),
             meta={"format": "darknet", "label_paths": [str(tmp_path / "r.txt")]})  # fmt: skip
    for to in ("coco", "voc", "tfrecord"):
        with pytest.raises(DetforgeError, match=r"r\.txt: image .*r\.jpg has EXIF orientation 6"):
            verify_images(ds, fmt="darknet", to=to, place_images=True)
    # normalized to normalized keeps the labels as they are
    assert verify_images(ds, fmt="darknet", to="ultralytics", place_images=True).ds.num_boxes == 1
