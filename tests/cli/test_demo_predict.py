from __future__ import annotations

from pathlib import Path

import pytest

from detforge.cli.demo.basics import DemoRun
from detforge.cli.demo.predict import step_predict, step_show
from tests.predict.helpers import random_checkpoint, self_labelled_darknet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.slow
def test_demo_ends_with_pictures(tmp_path: Path) -> None:
    ckpt = random_checkpoint(tmp_path / "m.pt")
    data = self_labelled_darknet(tmp_path / "data", ckpt, n=3)
    run = DemoRun(out=tmp_path / "demo", files={"data": data})
    step_predict(run)  # no weights yet: skipped, says so
    assert "predictions" not in run.files
    run.files["weights"] = ckpt
    step_predict(run)
    step_show(run)
    out = run.out
    assert len(list((out / "predict").glob("*.jpg"))) == 3
    assert len(list((out / "predict" / "labels").glob("*.txt"))) == 3
    assert (out / "predict" / "detections.json").is_file()
    assert (out / "map" / "metrics.json").is_file()
    assert (out / "show" / "grid_000.jpg").is_file() and len(
        list((out / "show").glob("img*.jpg"))
    ) == 3
