from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from detforge.data.split import assign_splits, find_leaks, group_keys, parse_ratios
from detforge.data.synthetic import render_shapes
from detforge.errors import DetforgeError


def test_parse_ratios() -> None:
    assert parse_ratios("0.8,0.1,0.1") == pytest.approx((0.8, 0.1, 0.1))
    assert parse_ratios("8,1,1") == pytest.approx((0.8, 0.1, 0.1))
    assert parse_ratios("9,1") == pytest.approx((0.9, 0.1))
    for bad in ("a,b", "1,-1", "0,0", "1,1,1,1", ""):
        with pytest.raises(DetforgeError):
            parse_ratios(bad)


def test_parse_ratios_refuses_what_cannot_be_normalized() -> None:
    # each finite, the sum not: was an argmax over no splits deep in assign_splits
    with pytest.raises(DetforgeError, match="too large to add up") as e:
        parse_ratios("1e308,1e308,1")
    assert "\n" not in str(e.value)
    for bad in ("nan,1", "inf,1", "1,-0.5"):
        with pytest.raises(DetforgeError, match="finite non-negative"):
            parse_ratios(bad)
    assert parse_ratios("1e300,1e-300") == pytest.approx((1.0, 0.0))  # tiny shares are fine
    assert parse_ratios("5e-324,5e-324") == pytest.approx((0.5, 0.5))


def test_group_keys() -> None:
    paths = ["/d/clip1/f1.jpg", "/d/clip1/f2.jpg", "/d/clip2/f1.jpg", r"C:\d\clip3_0001.jpg"]
    assert group_keys(paths, "parent")[0][:3] == ["/d/clip1", "/d/clip1", "/d/clip2"]
    keys, unmatched = group_keys(paths, r"(clip\d)_\d+")
    assert keys[3] == "clip3" and unmatched == 3 and len(set(keys)) == 4
    assert group_keys(paths, r"clip\d")[0] == ["clip1", "clip1", "clip2", "clip3"]
    with pytest.raises(DetforgeError):
        group_keys(paths, "(")


def test_unit_groups_hit_exact_counts_and_seed_reproducible() -> None:
    keys = [str(i) for i in range(101)]
    a = assign_splits(keys, (0.8, 0.1, 0.1), seed=4)
    assert (a.count("train"), a.count("valid"), a.count("test")) in [
        (81, 10, 10),
        (80, 11, 10),
        (80, 10, 11),
    ]
    assert a == assign_splits(keys, (0.8, 0.1, 0.1), seed=4)
    assert a != assign_splits(keys, (0.8, 0.1, 0.1), seed=5)
    assert set(assign_splits(keys, (0.5, 0.5), seed=0)) == {"train", "valid"}


def test_groups_never_span_splits() -> None:
    rng = np.random.default_rng(0)
    keys = [f"seq{int(k)}" for k in rng.integers(0, 40, size=1000)]
    splits = assign_splits(keys, (0.7, 0.2, 0.1), seed=1)
    where: dict[str, set[str]] = {}
    for k, s in zip(keys, splits, strict=True):
        where.setdefault(k, set()).add(s)
    assert all(len(v) == 1 for v in where.values())
    share = np.array([splits.count(s) for s in ("train", "valid", "test")]) / 1000
    assert np.abs(share - [0.7, 0.2, 0.1]).max() < 0.06


def test_stratify_balances_class_presence() -> None:
    dev_strat, dev_plain = [], []
    for seed in range(4):
        _, ds = render_shapes(200, seed=seed)
        pres = np.zeros((ds.num_images, 3), dtype=bool)
        pres[ds.boxes.image, ds.boxes.cls] = True
        want = np.array([0.7, 0.2, 0.1])[None] * pres.sum(0)[:, None]
        for presence, acc in ((pres, dev_strat), (None, dev_plain)):
            sp = np.array(
                assign_splits(
                    ds.images.path.tolist(), (0.7, 0.2, 0.1), seed=seed, presence=presence
                )
            )
            got = np.array(
                [[pres[sp == s, k].sum() for s in ("train", "valid", "test")] for k in range(3)]
            )
            acc.append(np.abs(got - want).max())
    assert max(dev_strat) <= 1.0 < max(dev_plain)


def test_find_leaks(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "1.jpg").write_bytes(b"same bytes")
    shutil.copy(tmp_path / "a" / "1.jpg", tmp_path / "b" / "copy.jpg")
    (tmp_path / "a" / "2.jpg").write_bytes(b"same sizes")  # size collides, content differs
    (tmp_path / "a" / "3.jpg").write_bytes(b"x")
    p = [str(tmp_path / r) for r in ("a/1.jpg", "b/copy.jpg", "a/2.jpg", "a/3.jpg", "a/../a/3.jpg")]
    leaks = find_leaks(p, ["train", "valid", "test", "train", "test"])
    kinds = sorted((lk.kind, lk.split_a, lk.split_b) for lk in leaks)
    assert kinds == [("same content", "train", "valid"), ("same path", "train", "test")]
    assert find_leaks(p[:2], ["train", "train"]) == []  # a duplicate within a split is no leak


def test_find_leaks_sees_through_a_link_to_the_folder(tmp_path: Path) -> None:
    """The same image in train and valid, once through a link to its folder: a "same path"
    leak (found without reading it), the paths named as they were listed."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "1.jpg").write_bytes(b"one")
    (tmp_path / "a" / "2.jpg").write_bytes(b"two")
    os.symlink(tmp_path / "a", tmp_path / "lnk")
    p = [str(tmp_path / "a" / "1.jpg"), str(tmp_path / "lnk" / "1.jpg"), str(tmp_path / "a/2.jpg")]
    leaks = find_leaks(p, ["train", "valid", "valid"])
    assert [(lk.kind, lk.split_a, lk.path_a, lk.split_b, lk.path_b) for lk in leaks] == [
        ("same path", "train", p[0], "valid", p[1])
    ]  # fmt: skip


def test_find_leaks_compares_whole_files_after_equal_heads(tmp_path: Path) -> None:
    head = bytes(range(256)) * 300  # 76,800 bytes, more than the 64 KiB head
    (tmp_path / "a.jpg").write_bytes(head + b"A")
    (tmp_path / "b.jpg").write_bytes(head + b"B")  # same size and head, different tail
    (tmp_path / "c.jpg").write_bytes(head + b"A")
    p = [str(tmp_path / n) for n in ("a.jpg", "b.jpg", "c.jpg")]
    assert find_leaks(p[:2], ["train", "valid"]) == []
    leaks = find_leaks(p, ["train", "valid", "test"])
    assert [(lk.path_a, lk.path_b) for lk in leaks] == [(p[0], p[2])]


def test_stratified_groups_still_never_span_splits() -> None:
    rng = np.random.default_rng(3)
    keys = [f"seq{int(k)}" for k in rng.integers(0, 60, size=600)]
    presence = rng.random((600, 4)) < [0.5, 0.2, 0.05, 0.0]
    splits = assign_splits(keys, (0.7, 0.2, 0.1), seed=2, presence=presence)
    where: dict[str, set[str]] = {}
    for k, s in zip(keys, splits, strict=True):
        where.setdefault(k, set()).add(s)
    assert all(len(v) == 1 for v in where.values())
    assert {"train", "valid", "test"} == set(splits)
