"""Run folder naming and layout, metrics.csv (and its reconciliation with last.pt),
results.png, stale temporary files, and the ground-truth-vs-predictions preview."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detforge.errors import DetforgeError
from detforge.predict.draw import draw_comparison
from detforge.train.preview import draw_preview
from detforge.train.runs import (
    new_run_dir,
    next_run_dir,
    plot_results,
    read_metrics_csv,
    reconcile_rows,
    remove_stale_tmp,
    resume_checkpoint_path,
    run_dir_of,
    write_metrics_csv,
)
from detforge.utils.io import atomic_open


def test_next_run_dir_counts_up(tmp_path: Path) -> None:
    base = tmp_path / "runs" / "train"
    assert next_run_dir(base) == base
    base.mkdir(parents=True)
    assert next_run_dir(base) == tmp_path / "runs" / "train-2"
    (tmp_path / "runs" / "train-2").mkdir()
    assert next_run_dir(base) == tmp_path / "runs" / "train-3"


def test_metrics_csv_round_trip_and_plot(tmp_path: Path) -> None:
    rows = [
        {"epoch": 1, "train/box": 2.5, "train/cls": 1.25, "train/dfl": 1.0, "lr": 0.01},
        {"epoch": 2, "train/box": 2.0, "train/cls": 1.0, "train/dfl": 0.9, "lr": 0.005,
         "val/mAP50": 0.5, "val/mAP50-95": 0.25},
    ]  # fmt: skip
    write_metrics_csv(tmp_path / "metrics.csv", rows)
    text = (tmp_path / "metrics.csv").read_text().splitlines()
    assert text[0] == "epoch,train/box,train/cls,train/dfl,lr,val/mAP50,val/mAP50-95"
    assert text[1] == "1,2.5,1.25,1,0.01,,"
    back = read_metrics_csv(tmp_path / "metrics.csv")
    assert back[1]["val/mAP50"] == 0.5 and back[0]["val/mAP50"] is None and back[0]["epoch"] == 1
    plot_results(tmp_path / "results.png", back)
    with Image.open(tmp_path / "results.png") as im:
        assert im.size[0] > 6 * im.size[1] / 2  # six panels side by side
    assert not list(tmp_path.glob(".*tmp*"))


def test_default_run_folder_is_named_after_the_dataset_and_numbered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert new_run_dir("", "data/obj.data") == Path("runs/train/obj")
    assert new_run_dir("", "datasets/bccd/") == Path("runs/train/bccd")
    Path("runs/train/obj").mkdir(parents=True)
    assert new_run_dir("", "data/obj.data") == Path("runs/train/obj-2")
    assert new_run_dir("", "data/obj.data", exist_ok=True) == Path("runs/train/obj")
    assert new_run_dir("mine", "data/obj.data") == Path("mine")


def test_a_file_where_the_run_folder_goes_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("runs").write_text("keep")  # the default runs folder is a file
    for exist_ok in (False, True):
        with pytest.raises(DetforgeError, match=r"not a folder.*give --out DIR") as err:
            new_run_dir("", "data/obj.data", exist_ok=exist_ok)
        assert err.value.path == "runs"
    with pytest.raises(DetforgeError, match="give another --out") as err:
        new_run_dir("runs/x", "data/obj.data")  # --out inside a file
    assert err.value.path == "runs"
    with pytest.raises(DetforgeError, match="--out is an existing file") as err:
        new_run_dir("runs", "data/obj.data", exist_ok=True)  # --out a file: never numbered past
    assert err.value.path == "runs"
    assert Path("runs").read_text() == "keep"


def test_resume_path_accepts_the_folder_or_a_checkpoint_and_old_layouts(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with pytest.raises(DetforgeError, match="nothing to resume"):
        resume_checkpoint_path(run)
    (run / "weights").mkdir(parents=True)
    (run / "weights" / "last.pt").write_bytes(b"x")
    (run / "config.yaml").write_text("data: obj.data\n")
    assert resume_checkpoint_path(run) == run / "weights" / "last.pt"
    assert run_dir_of(resume_checkpoint_path(run / "weights" / "last.pt")) == run
    old = tmp_path / "old"
    old.mkdir()
    (old / "last.pt").write_bytes(b"x")  # runs written before weights/ existed
    assert resume_checkpoint_path(old) == old / "last.pt" and run_dir_of(old / "last.pt") == old


@pytest.mark.parametrize("name", ["yolov4.weights", "obj.data", "weights/best.pt"])
def test_resume_of_a_file_outside_a_run_names_that_file(tmp_path: Path, name: str) -> None:
    # it used to read '<its folder>/config.yaml' and say "config.yaml: the run's config not
    # found", naming a file the user never gave
    given = tmp_path / name
    given.parent.mkdir(parents=True, exist_ok=True)
    given.write_bytes(b"x")
    with pytest.raises(DetforgeError) as info:
        resume_checkpoint_path(given)
    assert info.value.path == str(given)
    assert str(info.value).endswith(
        "not a file of a detforge run (no config.yaml in its run folder): --resume takes a "
        "run folder such as runs/train/obj, or its weights/last.pt; to start a new run from a "
        "checkpoint, use --weights"
    )


def test_stale_temporary_files_of_a_killed_write_are_removed(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    keep = [tmp_path / "metrics.csv", tmp_path / "weights" / "last.pt", tmp_path / "notes.tmp"]
    for p in keep:
        p.write_text("x")
    with pytest.raises(RuntimeError), atomic_open(tmp_path / "weights" / "best.pt", "wb") as f:
        f.write(b"half")
        stale = Path(f.name)
        raise RuntimeError  # atomic_open removes its own temp file on an exception ...
    assert not stale.exists()
    stale.write_bytes(b"half")  # ... but kill -9 leaves it: this is what is left
    other = tmp_path / ".metrics.csv.abc123.tmp"
    other.write_text("a,b")
    assert sorted(remove_stale_tmp(tmp_path)) == sorted([stale, other])
    assert all(p.exists() for p in keep) and not stale.exists()


def test_metrics_rows_follow_last_pt() -> None:
    rows = [{"epoch": e, "train/box": 1.0 / e} for e in (1, 2, 3)]
    # killed after metrics.csv had row 3 but before last.pt held epoch 3: row 3 is dropped
    assert [r["epoch"] for r in reconcile_rows({"epoch": 1, "extra": {"epochs_done": 2}},
                                               rows)] == [1, 2]  # fmt: skip
    # a last.pt carrying its rows wins over a stale or short metrics.csv
    ck = {"epoch": 2, "extra": {"epochs_done": 3, "metrics": rows}}
    assert [r["epoch"] for r in reconcile_rows(ck, rows[:1])] == [1, 2, 3]


def test_preview_draws_truth_left_predictions_right_like_show(tmp_path: Path) -> None:
    img = np.full((64, 64, 3), 255, dtype=np.uint8)
    pred = (np.array([[10.0, 10, 30, 30], [5, 5, 9, 9]]), np.array([0.9, 0.1]), np.array([0, 0]))
    truth = (np.array([[40.0, 40, 60, 60]]), np.array([1]))
    draw_preview(tmp_path / "p.jpg", [img, img], [pred, pred], [truth, truth], ["a", "b"],
                 title="epoch 3")  # fmt: skip
    sheet = np.asarray(Image.open(tmp_path / "p.jpg").convert("RGB")).astype(int)
    # each row is exactly the picture 'show --pred' draws (low scores left out)
    pic = draw_comparison(
        img, truth[0], truth[1], pred[0][:1], pred[2][:1], pred[1][:1], class_names=["a", "b"]
    )
    row = np.asarray(pic).astype(int)
    rh, rw = row.shape[:2]
    head = sheet.shape[0] - 2 * (rh + 4)
    assert head > 10 and sheet.shape[1] == rw
    assert np.abs(sheet[head : head + rh] - row).mean() < 3  # JPEG noise only
    assert (np.abs(sheet[:head] - 255) > 60).any()  # the heading has text
    left, right = sheet[head : head + 64, :64], sheet[head : head + 64, rw - 64 :]
    # the truth edge (x=40) is drawn only on the left, the prediction edge (x=10) only right
    assert (np.abs(left[50, 40] - 255) > 60).any() and not (np.abs(right[50, 40] - 255) > 60).any()
    assert (np.abs(right[20, 10] - 255) > 60).any() and not (np.abs(left[20, 10] - 255) > 60).any()
