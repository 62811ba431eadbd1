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


def test_yaml_round_trip(tmp_path: Path) -> None:
    cfg = TrainConfig(data="x.data", batch="auto", lr=0.02, path_map=[("G:/a", "/mnt/a")])
    write_config(tmp_path / "config.yaml", cfg, {"world_size": 2})
    back = read_config(tmp_path / "config.yaml")
    assert back == cfg
    assert "world_size: 2" in (tmp_path / "config.yaml").read_text()
