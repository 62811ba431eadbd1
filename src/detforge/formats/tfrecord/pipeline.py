"""Fill in a TF Object Detection API ``pipeline.config`` for a converted dataset.

The config is text-format protobuf. It is edited *textually*: each value is located by the
byte span :mod:`detforge.formats.tfrecord.textproto` reports and only that span is replaced, so
comments, spacing and every other setting stay exactly as the user had them. Edited:

* every ``num_classes`` inside ``model { ... }``;
* ``train_input_reader`` / ``eval_input_reader``: ``label_map_path`` and
  ``tf_record_input_reader { input_path }`` (inserted when missing);
* ``train_config { batch_size }``: set to the given value, or capped (default 8) because zoo
  configs use batch sizes like 512 that exhaust a workstation's memory (the guide's stutter);
* ``eval_config { num_examples }``: the eval split's size, when given.

And checked: ``num_steps`` at or below the step of ``fine_tune_checkpoint`` (from its name,
``model.ckpt-200000``, or the ``checkpoint`` index file beside it) makes training end at once
(the guide's "training ends immediately"); that is returned as a warning.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from detforge.errors import DetforgeError
from detforge.formats.tfrecord.textproto import Node, parse, quote
from detforge.utils.io import atomic_write_text

DEFAULT_MAX_BATCH = 8


@dataclass
class PipelineEdit:
    """The result of :func:`edit_pipeline_text`: new text, what changed, and warnings."""

    text: str
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def checkpoint_step(fine_tune_checkpoint: str) -> int | None:
    """The global step of a checkpoint path, or ``None`` when it cannot be told.

    ``.../model.ckpt-200000`` -> 200000; else the ``checkpoint`` file beside it
    (``model_checkpoint_path: "model.ckpt-200000"``).
    """
    m = re.search(r"-(\d+)(?:\.index)?$", fine_tune_checkpoint.strip())
    if m:
        return int(m.group(1))
    index = Path(fine_tune_checkpoint).parent / "checkpoint"
    if index.is_file():
        m = re.search(
            r'model_checkpoint_path:\s*"[^"]*-(\d+)"', index.read_text("utf-8", "replace")
        )
        if m:
            return int(m.group(1))
    return None


def _first(nodes: Sequence[Node], name: str) -> Node | None:
    return next((n for n in nodes if n.name == name), None)


# Over 80 lines on purpose: one pass of span edits over the config, one block per field.
def edit_pipeline_text(
    text: str,
    *,
    num_classes: int,
    label_map_path: str,
    train_inputs: Sequence[str] = (),
    eval_inputs: Sequence[str] = (),
    batch_size: int | None = None,
    max_batch_size: int = DEFAULT_MAX_BATCH,
    checkpoint_step_hint: int | None = None,
    eval_examples: int | None = None,
    path: str | None = None,
) -> PipelineEdit:
    """Edit pipeline text (see module docstring); pure, returns a :class:`PipelineEdit`.

    ``train_inputs`` / ``eval_inputs`` are record paths or shard patterns; empty leaves the
    reader's ``input_path`` as it was. ``checkpoint_step_hint`` overrides the step read from
    the checkpoint name. ``eval_examples`` (the eval split's size) replaces an existing
    ``eval_config { num_examples }`` (zoo configs say 8000, COCO's val size).
    """
    top = parse(text, path=path)
    edits: list[tuple[int, int, str]] = []
    result = PipelineEdit(text)

    def replace_value(node: Node, value: str, what: str) -> None:
        old = text[node.value_start : node.value_end]
        if old != value:
            edits.append((node.value_start, node.value_end, value))
            result.changes.append(f"line {node.line}: {what}: {old} -> {value}")

    model = _first(top, "model")
    counts = [n for n in model.walk() if n.name == "num_classes"] if model else []
    if not counts:
        raise DetforgeError("no num_classes inside model { ... }: not a TF OD pipeline", path=path)
    for n in counts:
        replace_value(n, str(num_classes), "num_classes")

    for reader_name, inputs in (
        ("train_input_reader", train_inputs),
        ("eval_input_reader", eval_inputs),
    ):
        for reader in (n for n in top if n.name == reader_name and n.is_message):
            lm = reader.find("label_map_path")
            if lm:
                replace_value(lm[0], quote(label_map_path), f"{reader_name}.label_map_path")
            else:
                edits.append(
                    (
                        reader.value_start + 1,
                        reader.value_start + 1,
                        f"\n  label_map_path: {quote(label_map_path)}",
                    )
                )
                result.changes.append(f"line {reader.line}: {reader_name}.label_map_path added")
            if not inputs:
                continue
            rec = reader.find("tf_record_input_reader")
            new_paths = "".join(f"\n    input_path: {quote(p)}" for p in inputs)
            if not rec:
                edits.append(
                    (
                        reader.value_start + 1,
                        reader.value_start + 1,
                        f"\n  tf_record_input_reader {{{new_paths}\n  }}",
                    )
                )
                result.changes.append(
                    f"line {reader.line}: {reader_name}.tf_record_input_reader added"
                )
                continue
            old = rec[0].find("input_path")
            for extra in old[1:]:
                edits.append((extra.start, extra.value_end, ""))
            if old:
                value = quote(inputs[0]) + "".join(
                    f"\n    input_path: {quote(p)}" for p in inputs[1:]
                )
                replace_value(old[0], value, f"{reader_name}.input_path")
            else:
                edits.append((rec[0].value_start + 1, rec[0].value_start + 1, new_paths))
                result.changes.append(f"line {rec[0].line}: {reader_name}.input_path added")

    train = _first(top, "train_config")
    if train is not None:
        bs = train.find("batch_size")
        if bs:
            current = int(str(bs[0].value))
            want = batch_size if batch_size is not None else min(current, max_batch_size)
            if want != current and batch_size is None:
                result.warnings.append(
                    f"batch_size {current} is a model-zoo setting for large machines; set to "
                    f"{want} (double it while memory allows; --batch-size to choose)"
                )
            replace_value(bs[0], str(want), "train_config.batch_size")
        elif batch_size is not None:
            edits.append(
                (train.value_start + 1, train.value_start + 1, f"\n  batch_size: {batch_size}")
            )
            result.changes.append(f"line {train.line}: train_config.batch_size added")
        steps_node = train.find("num_steps")
        ckpt_node = train.find("fine_tune_checkpoint")
        if ckpt_node:
            step = checkpoint_step_hint
            if step is None:
                step = checkpoint_step(str(ckpt_node[0].value))
            num_steps = int(str(steps_node[0].value)) if steps_node else 0
            if step is not None and steps_node and num_steps <= step:
                result.warnings.append(
                    f"num_steps {num_steps} is not above the fine-tune checkpoint's step {step}: "
                    f"training would end immediately; set num_steps to about {step + num_steps}"
                )
            elif step is None and steps_node:
                result.warnings.append(
                    "cannot tell the fine-tune checkpoint's step; if training ends at once, "
                    "raise num_steps above it (zoo checkpoints are often at 200000+)"
                )
    eval_cfg = _first(top, "eval_config")
    if eval_cfg is not None and eval_examples is not None:
        for n in eval_cfg.find("num_examples"):
            replace_value(n, str(eval_examples), "eval_config.num_examples")
    new = text
    for start, end, value in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        new = new[:start] + value + new[end:]
    result.text = new
    return result


def write_pipeline(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    **options: object,
) -> PipelineEdit:
    """Edit ``src`` (never modified) with :func:`edit_pipeline_text` options into ``dst``."""
    s, d = Path(src), Path(dst)
    if not s.is_file():
        raise DetforgeError("pipeline config not found", path=s)
    if d.exists() and d.resolve() == s.resolve():
        raise DetforgeError("output pipeline must differ from the input", path=d)
    result = edit_pipeline_text(s.read_text(encoding="utf-8"), path=str(s), **options)  # type: ignore[arg-type]
    atomic_write_text(d, result.text)
    return result
