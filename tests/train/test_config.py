"""TrainConfig: every option documented, bad values rejected, YAML round trip."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from detforge.errors import DetforgeError
from detforge.train.config import TrainConfig, field_docs, read_config, write_config


def test_every_option_has_a_default_and_a_doc() -> None:
    docs = field_docs()
    for f in dataclasses.fields(TrainConfig):
        assert docs.get(f.name), f.name
    TrainConfig().validate()  # the defaults are valid


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"imgsz": 100}, "multiple of 32"),
        ({"imgsz": 8224}, "--imgsz must be a multiple of 32 from 32 to 8192"),
        ({"batch": "many"}, "--batch"),
        ({"batch": 0}, "at least 1"),
        ({"lr": "fast"}, "--lr"),
        ({"val_fraction": 0.0}, "--val-fraction"),
        ({"weights": "a.pt", "resume": "runs/train"}, "exclude each other"),
        ({"model": "xl"}, "n, s or m"),
    ],
)
def test_bad_options_are_user_errors(change: dict[str, object], words: str) -> None:
    with pytest.raises(DetforgeError, match=words):
        TrainConfig(**change).validate()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"nominal_batch": 0}, "--nominal-batch must be a whole number >= 1, got 0"),
        ({"workers": -1}, "--workers must be a whole number >= 0, got -1"),
        ({"warmup_epochs": float("nan")}, "--warmup-epochs must be a number >= 0, got nan"),
        ({"time_budget": float("inf")}, "--time-budget must be a number >= 0, got inf"),
        ({"time_budget": -5.0}, "--time-budget must be a number >= 0, got -5.0"),
        ({"weight_decay": -1.0}, "--weight-decay must be a number >= 0, got -1.0"),
        ({"momentum": 1.0}, "--momentum must be a number in [0, 1), got 1.0"),
        ({"fliplr": 2.0}, "--fliplr must be a number in [0, 1], got 2.0"),
        ({"mosaic": -1.0}, "--mosaic must be a number in [0, 1], got -1.0"),
        ({"scale": 1.0}, "--scale must be a number in [0, 1), got 1.0"),
        ({"translate": 2.0}, "--translate must be a number in [0, 1), got 2.0"),
        ({"degrees": float("nan")}, "--degrees must be a number in [0, 180], got nan"),
        ({"box": float("nan")}, "--box must be a number >= 0, got nan"),
        ({"conf": 2.0}, "--conf must be a number in [0, 1], got 2.0"),
        ({"iou": 0.0}, "--iou must be a number in (0, 1], got 0.0"),
        ({"max_det": 0}, "--max-det must be a whole number >= 1, got 0"),
        ({"patience": -1}, "--patience must be a whole number >= 0, got -1"),
        ({"ema_tau": 0.0}, "--ema-tau must be a number > 0, got 0.0"),
        ({"ema_decay": 2.0}, "--ema-decay must be a number in [0, 1], got 2.0"),
        ({"nan_lr_factor": 5.0}, "--nan-lr-factor must be a number in (0, 1], got 5.0"),
        ({"preview_images": -1}, "--preview-images must be a whole number >= 0, got -1"),
        ({"lr_find_steps": 3}, "--lr-find-steps must be a whole number >= 10, got 3"),
        ({"clip_grad": -1.0}, "--clip-grad must be a number >= 0, got -1.0"),
    ],
)
def test_numbers_outside_their_range_are_refused_not_used(
    change: dict[str, object], message: str
) -> None:
    # These used to train (negative patience stopped after epoch 1, 'no improvement for -1
    # epochs'; --fliplr 2, --scale 5 and --box nan trained on nothing) or died with a
    # traceback (--nominal-batch 0: ZeroDivisionError; --warmup-epochs nan: ValueError).
    with pytest.raises(DetforgeError) as info:
        TrainConfig(**change).validate()  # type: ignore[arg-type]
    assert str(info.value) == message


def test_range_edges_that_make_sense_are_accepted() -> None:
    TrainConfig(
        workers=0, patience=0, time_budget=0.0, mosaic=1.0, fliplr=0.0, conf=0.0, iou=1.0,
        clip_grad=0.0, momentum=0.0, preview_images=0, ema_decay=1.0, nan_rollbacks=0,
    ).validate()  # fmt: skip


def test_yaml_round_trip(tmp_path: Path) -> None:
    cfg = TrainConfig(data="x.data", batch="auto", lr=0.02, path_map=[("G:/a", "/mnt/a")])
    write_config(tmp_path / "config.yaml", cfg, {"world_size": 2})
    back = read_config(tmp_path / "config.yaml")
    assert back == cfg
    assert "world_size: 2" in (tmp_path / "config.yaml").read_text()


def test_config_yaml_holds_existing_paths_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run started as 'detforge train ds/obj.data' kept 'data: ds/obj.data': --resume from
    # any other folder said 'ds/obj.data: dataset not found'.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "obj.data").write_text("classes = 1\n")
    (tmp_path / "net.cfg").write_text("[net]\n")
    cfg = TrainConfig(data="ds/../ds/obj.data", cfg="net.cfg", backbone_weights="imagenet")
    write_config(tmp_path / "config.yaml", cfg)
    back = read_config(tmp_path / "config.yaml")
    assert back.data == str(tmp_path / "ds" / "obj.data")
    assert back.cfg == str(tmp_path / "net.cfg")
    assert back.backbone_weights == "imagenet" and back.weights is None  # not paths here
