"""TF OD API records: TensorFlow's own raccoon file, our writer, label maps."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest

from detforge.data.boxes import BoxFormat
from detforge.errors import DetforgeError
from detforge.formats.labelmap import read_label_map, write_label_map
from detforge.formats.tfrecord.example import bytes_values, decode_example
from detforge.formats.tfrecord.framing import read_records
from detforge.formats.tfrecord.tfod import TFOD_KEYS, split_from_record_name, write_tfod
from detforge.formats.tfrecord.tfod_read import read_tfod
from tests.formats.fmt_helpers import assert_same_dataset, make_image_dataset


@pytest.fixture(scope="module")
def raccoon(ref_data: Path) -> Path:
    return ref_data / "raccoon-tfrecord"


def test_tensorflow_record_matches_csv_within_1e3_px(raccoon: Path) -> None:
    ds = read_tfod(raccoon / "test.record", label_map=read_label_map(raccoon / "label_map.pbtxt"))
    assert ds.class_names == ("raccoon",) and ds.splits() == ["test"]
    with open(raccoon / "test_labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert ds.num_boxes == len(rows) == 44 and ds.num_images == 40
    xyxy = ds.coords_as(BoxFormat.XYXY_PIXEL)
    by_file: dict[str, list[tuple[float, ...]]] = {}
    for i, b in zip(ds.boxes.image.tolist(), xyxy.tolist(), strict=True):
        by_file.setdefault(str(ds.images.path[i]), []).append(tuple(b))
    for r in rows:
        i = ds.images.path.tolist().index(r["filename"])
        assert (ds.images.width[i], ds.images.height[i]) == (int(r["width"]), int(r["height"]))
        want = tuple(float(r[k]) for k in ("xmin", "ymin", "xmax", "ymax"))
        got = min(
            by_file[r["filename"]],
            key=lambda b: max(abs(x - y) for x, y in zip(b, want, strict=True)),
        )
        assert max(abs(x - y) for x, y in zip(got, want, strict=True)) < 1e-3, r["filename"]
        assert r["class"] == "raccoon"


def test_extracted_images_are_the_embedded_bytes(raccoon: Path, tmp_path: Path) -> None:
    ds = read_tfod(raccoon / "test.record", extract_images_to=tmp_path / "img")
    first = decode_example(next(read_records(raccoon / "test.record")))
    p = Path(ds.images.path[0])
    assert p.parent == tmp_path / "img" / "test"
    assert p.read_bytes() == bytes_values(first, "image/encoded")[0]
    # Without a label map the names come from the records' class/text.
    assert ds.class_names == ("raccoon",)


def test_written_records_use_exact_keys_and_round_trip(tmp_path: Path) -> None:
    ds = make_image_dataset(tmp_path, num_images=7, num_classes=5, negatives=2, fmt="jpg")
    written, lm = write_tfod(ds, tmp_path / "tf")
    assert set(written) == {"train", "valid", "test"}
    assert [p.name for p in written["valid"]] == ["val.record"]
    assert read_label_map(lm) == {k + 1: n for k, n in enumerate(ds.class_names)}
    ex = decode_example(next(read_records(written["train"][0])))
    assert set(ex) == set(TFOD_KEYS)
    enc = bytes_values(ex, "image/encoded")[0]
    assert bytes_values(ex, "image/key/sha256")[0].decode() == hashlib.sha256(enc).hexdigest()
    assert bytes_values(ex, "image/format") == [b"jpeg"]
    back = read_tfod(tmp_path / "tf", label_map=read_label_map(lm))
    assert_same_dataset(ds, back, flags=True)
    labels = [int(v) for p in written.values() for d in read_records(p[0])
              for v in decode_example(d)["image/object/class/label"].values]  # fmt: skip
    assert min(labels) >= 1  # 1-based on disk


def test_label_map_must_match_names(tmp_path: Path) -> None:
    ds = make_image_dataset(tmp_path, num_images=4, num_classes=3, negatives=0)
    wrong = write_label_map(tmp_path / "wrong.pbtxt", ["cls_0", "cls_2", "cls_1"])
    with pytest.raises(DetforgeError, match="NaN loss") as info:
        write_tfod(ds, tmp_path / "tf", label_map=wrong)
    assert "id 2 is 'cls_2' in the label map but 'cls_1'" in str(info.value)
    assert not (tmp_path / "tf").exists()
    good = write_label_map(tmp_path / "good.pbtxt", ds.class_names)
    write_tfod(ds, tmp_path / "tf", label_map=good)


def test_label_and_text_that_disagree_are_an_error_naming_the_record(tmp_path: Path) -> None:
    ds = make_image_dataset(tmp_path, num_images=4, num_classes=3, negatives=0)
    written, _ = write_tfod(ds, tmp_path / "tf")
    swapped = {1: "cls_1", 2: "cls_0", 3: "cls_2"}  # label 1 is 'cls_1' here, its text 'cls_0'
    with pytest.raises(DetforgeError, match=r"record \d+ .*class/label \d is 'cls_\d' in the "
                       r"label map but class/text says 'cls_\d'"):  # fmt: skip
        read_tfod(written["train"][0], label_map=swapped)


def _one_record(path: Path, *, labels: list[int] | None, texts: list[str] | None) -> Path:
    """A record file holding one 64 x 48 JPEG with one box, class fields as given."""
    import io

    import numpy as np
    from PIL import Image

    from detforge.formats.tfrecord.example import encode_example
    from detforge.formats.tfrecord.framing import write_sharded
    from detforge.formats.tfrecord.tfod import example_from_image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48)).save(buf, format="JPEG")
    ex = example_from_image(encoded=buf.getvalue(), image_format="jpeg", width=64, height=48,
                            filename="a.jpg", source_id="1", xyxy_norm=np.array([[.1, .1, .5, .5]]),
                            labels=labels or [1], texts=texts or ["raccoon"], difficult=[0],
                            truncated=[0])  # fmt: skip
    if labels is None:
        del ex["image/object/class/label"]
    if texts is None:
        del ex["image/object/class/text"]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_sharded(path, iter([encode_example(ex)]), shards=1)
    return path


@pytest.mark.parametrize(
    ("labels", "texts", "label_map", "message"),
    [
        ([7], ["raccoon"], {1: "raccoon"}, "class/label 7 .*not in the label map"),
        ([1], ["dog"], {1: "raccoon"}, "class/label 1 is 'raccoon' in the label map but "
                                       "class/text says 'dog'"),
        (None, ["raccoon"], {1: "raccoon"}, "1 boxes but no image/object/class/label"),
        # without class/text an id the label map lacks was only a 'records use class ids'
        # error on the whole source; now, as check, an error at its record
        ([7], None, {1: "raccoon"}, "box 1: class/label 7 is not in the label map --"),
        (None, None, None, "1 boxes but no image/object/class/label"),
    ],
)  # fmt: skip
def test_class_label_and_text_must_agree_and_exist(
    tmp_path: Path,
    labels: list[int] | None,
    texts: list[str] | None,
    label_map: dict[int, str] | None,
    message: str,
) -> None:
    rec = _one_record(tmp_path / "train.record", labels=labels, texts=texts)
    with pytest.raises(DetforgeError, match="record 1 \\(a.jpg\\): .*" + message) as info:
        read_tfod(rec, label_map=label_map)
    assert info.value.path == str(rec) and "\n" not in str(info.value)


def test_one_label_with_two_texts_across_records_is_an_error(tmp_path: Path) -> None:
    _one_record(tmp_path / "tf" / "train.record", labels=[1], texts=["raccoon"])
    _one_record(tmp_path / "tf" / "valid.record", labels=[1], texts=["dog"])
    with pytest.raises(DetforgeError, match="class/label 1 is 'raccoon' in earlier boxes"):
        read_tfod(tmp_path / "tf")


def test_class_problems_is_the_one_label_vs_text_rule() -> None:
    """One rule for the reader (first problem refuses the record) and check (each reported)."""
    from detforge.formats.tfrecord.tfod import class_problems

    names = {1: "cat", 2: "dog"}
    got = class_problems([1, 0, 3, 2, 3], ["cat", "", "", "cow", "x"], names, label_map=True)
    assert got == (
        [
            (1, "class/label 0 is not 1-based (0 is the background in the TF OD API)"),
            (2, "class/label 3 is not in the label map"),
            (3, "class/label 2 is 'dog' in the label map but class/text says 'cow' -- the "
                "guide's NaN-loss mismatch; fix the record or the label map"),
            (4, "class/label 3 (class/text 'x') is not in the label map"),
        ],
        {},
    )  # fmt: skip
    # without a label map the first text of an id names it, for later boxes of the record too
    assert class_problems([3, 3, 1], ["cow", "cow", "cat"], names, label_map=False) == (
        [],
        {3: "cow"},
    )
    assert class_problems([3, 3], ["cow", "ox"], {}, label_map=False) == (
        [(1, "class/label 3 is 'cow' in earlier boxes but class/text says 'ox' -- the guide's "
             "NaN-loss mismatch; fix the record or the label map")],
        {3: "cow"},
    )  # fmt: skip
    assert class_problems([3], [], {}, label_map=False) == ([], {})  # no text: nothing learned


def test_truncated_record_file_is_reported(raccoon: Path, tmp_path: Path) -> None:
    cut = tmp_path / "test.record"
    data = (raccoon / "test.record").read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DetforgeError, match="interrupted") as info:
        read_tfod(cut)
    assert info.value.path == str(cut)


def test_split_from_record_names() -> None:
    assert split_from_record_name("train.record") == "train"
    assert split_from_record_name("val.record-00001-of-00004") == "valid"
    assert split_from_record_name("test.tfrecord") == "test"
    assert split_from_record_name("all.record") == ""
    # a name that is no split: no split (written as training data), not a split called 'x'
    assert split_from_record_name("x.record") == ""
    assert split_from_record_name("raccoon_data.tfrecord-00000-of-00002") == ""


def test_exif_rotated_jpeg_is_embedded_upright(tmp_path: Path) -> None:
    import io

    from PIL import Image

    from detforge.data.dataset import make_dataset
    from detforge.formats.tfrecord.example import int64_values

    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when displayed
    p = tmp_path / "rot.jpg"
    Image.new("RGB", (30, 20), (200, 10, 10)).save(p, exif=exif.tobytes())
    ds = make_dataset(["a"], paths=[str(p)], splits=["train"], box_image=[0], box_cls=[0],
                      box_coords=[[0.5, 0.5, 0.2, 0.2]])  # fmt: skip
    written, _ = write_tfod(ds, tmp_path / "tf")
    ex = decode_example(next(read_records(written["train"][0])))
    assert (int64_values(ex, "image/width"), int64_values(ex, "image/height")) == ([20], [30])
    with Image.open(io.BytesIO(bytes_values(ex, "image/encoded")[0])) as im:
        assert im.size == (20, 30)  # what TF decodes (it ignores EXIF) matches width/height


def test_boxes_tensorflow_hates_are_refused_or_clipped(tmp_path: Path) -> None:
    from PIL import Image

    from detforge.data.dataset import make_dataset
    from detforge.formats.tfrecord.example import float_values

    Image.new("RGB", (100, 50)).save(tmp_path / "a.png")
    ds = make_dataset(
        ["a"],
        paths=[str(tmp_path / "a.png")],
        splits=["train"],
        box_image=[0, 0, 0],
        box_cls=[0, 0, 0],
        box_coords=[[-10, 5, 30, 20], [10, 10, 10, 30], [20, 10, 40, 20]],  # out, empty, ok
        box_format=BoxFormat.XYXY_PIXEL,
        widths=[100],
        heights=[50],
    )
    with pytest.raises(DetforgeError, match=r"1 boxes extend outside .* 1 have zero area"):
        write_tfod(ds, tmp_path / "tf")
    written, _ = write_tfod(ds, tmp_path / "tf", clip=True)
    ex = decode_example(next(read_records(written["train"][0])))
    assert float_values(ex, "image/object/bbox/xmin") == pytest.approx([0.0, 0.2])
    assert float_values(ex, "image/object/bbox/xmax") == pytest.approx([0.3, 0.4])


def test_a_huge_class_name_is_quoted_clipped(tmp_path: Path) -> None:
    """A 5 MB line in a --label-map class list came back whole in the mismatch error (a 5 MB
    'error line'); every name quoted there is cut to detforge.errors.MAX_QUOTED."""
    rec = _one_record(tmp_path / "train.record", labels=[1], texts=["r" * 5_000_000])
    with pytest.raises(DetforgeError) as info:
        read_tfod(rec, label_map={1: "m" * 5_000_000})
    assert str(info.value) == (
        f"{rec}: record 1 (a.jpg): box 1: class/label 1 is '{'m' * 77}...' in the label map "
        f"but class/text says '{'r' * 77}...' -- the guide's NaN-loss mismatch; fix the record "
        "or the label map -- 'detforge check --fix OUT' salvages the intact records"
    )
