"""TF OD API pipeline.config filled in textually, everything else kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from detforge.errors import DetforgeError
from detforge.formats.tfrecord.pipeline import checkpoint_step, edit_pipeline_text, write_pipeline
from detforge.formats.tfrecord.textproto import parse

PIPELINE = """\
# SSD with Mobilenet v2 configuration for MSCOCO Dataset.
model {
  ssd {
    num_classes: 90
    box_coder {
      faster_rcnn_box_coder {
        y_scale: 10.0
      }
    }
  }
}
train_config: {
  batch_size: 512   # zoo machines
  fine_tune_checkpoint: "PATH_TO_BE_CONFIGURED/model.ckpt-200000"
  num_steps: 200000
  optimizer {
    momentum_optimizer: { learning_rate: { cosine_decay_learning_rate { total_steps: 200000 } } }
  }
}
train_input_reader: {
  tf_record_input_reader {
    input_path: "PATH_TO_BE_CONFIGURED/mscoco_train.record-?????-of-00100"
  }
  label_map_path: "PATH_TO_BE_CONFIGURED/mscoco_label_map.pbtxt"
}
eval_config: {
  num_examples: 8000
}
eval_input_reader: {
  label_map_path: "PATH_TO_BE_CONFIGURED/mscoco_label_map.pbtxt"
  shuffle: false
  num_readers: 1
}
"""


def _values(text: str) -> dict[str, list[object]]:
    out: dict[str, list[object]] = {}
    for top in parse(text):
        for n in [top, *top.walk()]:
            out.setdefault(n.name, []).append(n.value)
    return out


def test_fills_in_paths_classes_and_batch_size() -> None:
    result = edit_pipeline_text(
        PIPELINE,
        num_classes=3,
        label_map_path="/out/label_map.pbtxt",
        train_inputs=["/out/train.record-?????-of-00004"],
        eval_inputs=["/out/val.record"],
        eval_examples=87,
    )
    v = _values(result.text)
    assert v["num_examples"] == ["87"]
    assert v["num_classes"] == ["3"]
    assert v["label_map_path"] == ["/out/label_map.pbtxt"] * 2
    assert v["input_path"] == ["/out/train.record-?????-of-00004", "/out/val.record"]
    assert v["batch_size"] == ["8"]
    assert any("batch_size 512" in w for w in result.warnings)
    # Untouched settings and comments survive byte for byte.
    for keep in ("y_scale: 10.0", "# zoo machines", "total_steps: 200000", "num_readers: 1",
                 "# SSD with Mobilenet v2"):  # fmt: skip
        assert keep in result.text
    assert len(result.text.splitlines()) == len(PIPELINE.splitlines()) + 3  # inserted reader
    # Fine-tuning from step 200000 with num_steps 200000 ends at once.
    assert any("end immediately" in w and "200000" in w for w in result.warnings)


def test_explicit_batch_size_and_no_checkpoint_warning() -> None:
    text = PIPELINE.replace("num_steps: 200000", "num_steps: 250000")
    result = edit_pipeline_text(text, num_classes=1, label_map_path="lm", batch_size=2)
    assert _values(result.text)["batch_size"] == ["2"]
    assert not any("end immediately" in w for w in result.warnings)
    assert not any("batch_size" in w for w in result.warnings)
    # input paths untouched when none given
    assert "mscoco_train.record-?????-of-00100" in result.text


def test_checkpoint_step_from_name_or_index(tmp_path: Path) -> None:
    assert checkpoint_step("/m/model.ckpt-12345") == 12345
    assert checkpoint_step("/m/ckpt-0") == 0
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-777"\n')
    assert checkpoint_step(str(tmp_path / "model.ckpt")) == 777
    assert checkpoint_step(str(tmp_path / "nothing" / "model.ckpt")) is None


def test_write_pipeline_never_edits_source(tmp_path: Path) -> None:
    src = tmp_path / "pipeline.config"
    src.write_text(PIPELINE)
    with pytest.raises(DetforgeError, match="must differ"):
        write_pipeline(src, src, num_classes=2, label_map_path="x")
    write_pipeline(src, tmp_path / "out.config", num_classes=2, label_map_path="x")
    assert src.read_text() == PIPELINE
    assert "num_classes: 2" in (tmp_path / "out.config").read_text()
    with pytest.raises(DetforgeError, match="not a TF OD pipeline"):
        edit_pipeline_text("train_config { batch_size: 1 }", num_classes=2, label_map_path="x")
