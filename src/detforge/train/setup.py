"""Everything the trainer needs before its first step, except the loop itself.

* :func:`load_training_data` -- read the dataset, check it, pick the train and validation
  images (``--val-fraction``), leave out bad images when ``--skip-bad`` asks for it.
* :func:`load_weights_into` -- ``--weights``: copy every tensor whose name and shape match.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from detforge.data.dataset import Dataset
from detforge.errors import DetforgeError

if TYPE_CHECKING:
    import torch

Note = Callable[[str], None]


@dataclass
class TrainingData:
    """The training and validation images (both with known sizes) and what was done to them."""

    train: Dataset
    val: Dataset
    class_names: tuple[str, ...]
    notes: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)
    source: str = ""
    """What was read: the dataset given, or the clean copy ``--skip-bad`` made."""


def check_source(
    source: str,
    *,
    skip_bad: bool,
    path_map: Sequence[tuple[str, str]],
    clean_dir: Path | None,
    note: Note,
) -> tuple[str, list[str]]:
    """Run the dataset checker; stop on errors unless ``skip_bad``.

    With ``skip_bad`` the checker's repair writes the clean part (bad images and bad label
    lines dropped; images linked, the source untouched) to ``clean_dir`` and that copy is
    trained on. Returns the source to read and a description of each thing left out.
    """
    from detforge.check import check_dataset, fix_dataset

    if skip_bad and clean_dir is not None and (clean_dir / "obj.data").is_file():
        note(f"--skip-bad: training on the clean copy made earlier, {clean_dir}")
        return str(clean_dir / "obj.data"), []
    report = check_dataset(source, path_map=tuple(path_map))
    errors = report.errors
    if not errors:
        if report.warnings:
            note(f"dataset check: {len(report.warnings)} warning(s); see 'detforge check {source}'")
        return source, []
    if not skip_bad or clean_dir is None:
        first = "; ".join(f"{f.location()}: {f.message}" for f in errors[:3])
        raise DetforgeError(
            f"the dataset check found {len(errors)} error(s), e.g. {first}. Fix them (see "
            f"'detforge check {source}' and 'detforge check --fix OUT'), or pass --skip-bad to "
            "train on the clean part"
        )
    fixed = fix_dataset(source, clean_dir, path_map=tuple(path_map))
    left = [
        f"{c['action']} {c['path']}"
        + (f":{c['line']}" if c.get("line") else "")
        + f" ({c['reason']})"
        for c in fixed.changes
        if str(c["action"]).startswith("drop")
    ]
    note(
        f"--skip-bad: {len(errors)} error(s) found; training on the clean part written to "
        f"{clean_dir} ({len(left)} item(s) left out"
        + (": " + "; ".join(left[:5]) + (" ..." if len(left) > 5 else "") if left else "")
        + ")"
    )
    return str(fixed.data_file), left


def require_dataset(source: str, dataset: Dataset | None) -> None:
    """A ``DetforgeError`` naming ``source`` when there is no dataset there (and none given)."""
    if dataset is None and not Path(source).exists():
        raise DetforgeError("dataset not found; pass a .data file or a dataset folder", path=source)


def require_model_files(*, weights: str | None, cfg: str | None) -> None:
    """A ``DetforgeError`` naming ``--weights`` or ``--cfg`` when the file is not there, or when
    ``weights`` is not a model file this run can start from (a detforge checkpoint, or a
    Darknet one with ``cfg``), so that a wrong path fails before a run folder is made."""
    from detforge.models.filekind import describe_foreign_model, is_darknet_weights
    from detforge.utils.textfile import require_file

    for option, path in (("weights", weights), ("cfg", cfg)):
        if path:
            require_file(path, f"--{option}")
    if weights and not (cfg and is_darknet_weights(weights)):
        foreign = describe_foreign_model(weights)
        if foreign is not None:
            raise DetforgeError(foreign, path=weights)


def load_training_data(
    source: str,
    *,
    check: bool = True,
    skip_bad: bool = False,
    val_fraction: float = 1.0,
    seed: int = 0,
    path_map: Sequence[tuple[str, str]] = (),
    note: Note = print,
    dataset: Dataset | None = None,
    clean_dir: Path | None = None,
) -> TrainingData:
    """Read (or take ``dataset``), check, and split into training and validation images.

    Validation uses the ``valid`` split, else ``test``, else a seeded 10% of ``train`` (said in
    a note). ``val_fraction < 1`` keeps a fixed seeded subset of it, so epochs stay
    comparable. ``clean_dir`` is where ``skip_bad`` writes the clean copy.
    """
    notes: list[str] = []

    def say(msg: str) -> None:
        notes.append(msg)
        note(msg)

    left: list[str] = []
    require_dataset(source, dataset)
    if check and dataset is None:
        source, left = check_source(
            source, skip_bad=skip_bad, path_map=path_map, clean_dir=clean_dir, note=say
        )
    if dataset is None:
        from detforge.formats.detect import read_any

        dataset = read_any(source, path_map=tuple(path_map))
    ds = dataset
    splits = set(ds.images.split.tolist())
    train = ds.split("train") if "train" in splits else ds
    if "valid" in splits:
        val = ds.split("valid")
    elif "test" in splits:
        val = ds.split("test")
        say("no validation split: validating on the test split")
    else:
        rng = np.random.default_rng(seed)
        perm = rng.permutation(train.num_images)
        n_val = max(1, train.num_images // 10)
        val = train.select(np.sort(perm[:n_val]))
        train = train.select(np.sort(perm[n_val:]))
        say(f"no validation split: holding out {n_val} training image(s) for validation")
    if train.num_images == 0:
        raise DetforgeError("the dataset has no training images", path=source)
    if val_fraction < 1.0 and val.num_images > 1:
        rng = np.random.default_rng(seed + 1)
        n = max(1, round(val.num_images * val_fraction))
        val = val.select(np.sort(rng.permutation(val.num_images)[:n]))
        say(f"--val-fraction {val_fraction:g}: validating on {n} fixed image(s)")
    for part in (train, val):
        if part.num_images and np.any(part.images.width <= 0):
            raise DetforgeError(
                "some image sizes are unknown (unreadable images?); run 'detforge check'",
                path=source,
            )
    return TrainingData(train, val, ds.class_names, notes, left, source)


def load_weights_into(model: torch.nn.Module, state: dict[str, Any]) -> tuple[int, int]:
    """Copy the tensors of ``state`` whose names and shapes match ``model``'s.

    Returns ``(copied, total)`` counting weight tensors only (floating point, more than one
    element; counters such as ``num_batches_tracked`` would match any architecture). A
    different number of classes leaves the class outputs of the head at their initial values,
    which is the usual way to fine-tune.
    """
    own = model.state_dict()
    matched = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    model.load_state_dict(matched, strict=False)

    def weights(d: dict[str, Any]) -> int:
        return sum(1 for v in d.values() if v.dtype.is_floating_point and v.numel() > 1)

    return weights(matched), weights(own)
