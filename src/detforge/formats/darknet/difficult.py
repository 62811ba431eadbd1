"""The ``.data`` key ``difficult=``: a second image list whose labels are *difficult* truths.

Darknet's ``detector map`` (``validate_detector_map``) pairs the ``difficult`` list with the
evaluation list line by line: for the i-th image of ``valid=`` (the ``train=`` list when there is
no ``valid=``), the label file of the i-th ``difficult`` entry (found by the usual
image -> label rule; the image itself need not exist, e.g. VOC's
``JPEGImages/difficult_000001.jpg`` -> ``labels/difficult_000001.txt``) holds boxes that are
neither counted as truths nor allowed to make a false positive. A missing label file means no
difficult boxes. Entries past the end of the evaluation list are ignored, as Darknet ignores them;
a shorter list is an error (Darknet reads past its end).

Here those boxes join the evaluation images with ``difficult=True``, which is how the Darknet
protocol in :mod:`detforge.eval.darknet` already treats difficult truths.
"""

from __future__ import annotations

import numpy as np

from detforge.data.dataset import Dataset, make_dataset
from detforge.errors import DetforgeError
from detforge.formats.darknet.files import DataFile, PathMap, read_image_list
from detforge.formats.darknet.labels import find_label_path, parse_label_text
from detforge.utils.textfile import read_regular_file


def add_difficult_truths(ds: Dataset, df: DataFile, path_map: PathMap = ()) -> Dataset:
    """``ds`` (read from ``df``) with the boxes of ``df.difficult`` added as difficult truths
    of the evaluation split's images; ``ds`` itself when the key is absent."""
    if df.difficult is None:
        return ds
    f, line = df.where("difficult")
    listed = read_image_list(df.difficult, path_map=path_map)
    from detforge.formats.darknet.sources import valid_is_test

    wanted = (
        ["train"] if df.valid is None else ["test", "valid"] if valid_is_test(df) else ["valid"]
    )
    split = next((w for w in wanted if w in ds.splits()), wanted[0])
    rows = np.flatnonzero(ds.images.split == split)
    notes = list(ds.meta.get("notes", []))
    if ds.meta.get("missing_images"):
        notes.append(
            f"{f}:{line}: difficult = ignored: images of the {split} list are missing, so its "
            "lines no longer pair with the difficult list"
        )
        return _with_meta(ds, notes=notes)
    if len(listed) < len(rows):
        raise DetforgeError(
            f"the difficult list has {len(listed)} entries but the {split} list has "
            f"{len(rows)} images: Darknet pairs them line by line",
            path=f,
            line=line,
        )
    img: list[np.ndarray] = []
    cls: list[np.ndarray] = []
    xy: list[np.ndarray] = []
    found = 0
    for row, entry in zip(rows.tolist(), listed, strict=False):
        label = find_label_path(entry)
        if label is None:
            continue
        found += 1
        text = read_regular_file(label).decode("utf-8", errors="replace")
        c, coords = parse_label_text(text, path=label)
        bad = np.flatnonzero((c < 0) | (c >= ds.num_classes))
        if len(bad):
            raise DetforgeError(
                f"class id {int(c[bad[0]])} is outside the {ds.num_classes} names", path=label
            )
        img.append(np.full(len(c), row, dtype=np.int64))
        cls.append(c)
        xy.append(coords)
    added = int(sum(len(c) for c in cls))
    notes.append(
        f"{f}:{line}: difficult = {df.difficult}: {added} difficult boxes from {found} label "
        f"files for {len(rows)} {split} images"
    )
    if not added:
        return _with_meta(ds, notes=notes)
    b = ds.boxes
    return make_dataset(
        ds.class_names,
        paths=ds.images.path.tolist(),
        widths=ds.images.width,
        heights=ds.images.height,
        splits=ds.images.split.tolist(),
        groups=ds.images.group.tolist(),
        image_ids=ds.images.id,
        box_image=np.concatenate([b.image, *img]),
        box_cls=np.concatenate([b.cls, *cls]),
        box_coords=np.concatenate([b.coords, *xy]),
        box_format=b.format,
        crowd=np.concatenate([b.crowd, np.zeros(added, dtype=bool)]),
        difficult=np.concatenate([b.difficult, np.ones(added, dtype=bool)]),
        truncated=np.concatenate([b.truncated, np.zeros(added, dtype=bool)]),
        area=np.concatenate([b.area, np.full(added, np.nan)]),
        score=np.concatenate([b.score, np.full(added, np.nan)]),
        meta={**ds.meta, "notes": notes},
    )


def _with_meta(ds: Dataset, *, notes: list[str]) -> Dataset:
    return Dataset(ds.class_names, ds.images, ds.boxes, {**ds.meta, "notes": notes})
