"""Every training option in one dataclass, with its default and a one-line doc.

The CLI builds a :class:`TrainConfig` from its flags (``detforge train --help`` shows the same
docs), the Python API takes one directly, and the trainer writes the resolved copy (with
``batch``, ``lr``, ``device`` and ``out`` filled in) to ``<run>/config.yaml``. Nothing deeper
than the trainer receives the whole config: builders get the few values they need.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from detforge.data.letterbox import check_input_size
from detforge.errors import DetforgeError

AUTO = "auto"
"""The value of ``batch`` / ``lr`` that asks the trainer to measure a good one."""


@dataclass
class TrainConfig:
    """Options of one training run. Units: images, pixels, epochs, seconds."""

    data: str = ""
    """Dataset: a Darknet ``.data`` file, or anything ``detforge convert`` reads."""
    model: str = "n"
    """Model scale: ``n``, ``s`` or ``m``."""
    backbone: str | None = None
    """Optional torchvision backbone (``resnet18``, ``mobilenet_v3_large`` ...) instead of CSP."""
    backbone_weights: str | None = None
    """ImageNet weights for ``backbone``: a local file, or ``imagenet`` (torchvision download)."""
    weights: str | None = None
    """Checkpoint to fine-tune from; training starts at epoch 0 with warmup."""
    cfg: str | None = None
    """A Darknet ``.cfg``: fine-tune that network (a ``[yolo]``-head loss) instead of ``model``;
    ``weights`` may then be a Darknet ``.weights`` or partial ``.conv.N`` file. On the command
    line ``imgsz`` then defaults to the cfg's width, ``lr`` to its learning_rate / ``batch`` and
    ``clip_grad`` to 0 (Darknet does not clip; its loss is a sum over every cell)."""
    freeze: int = 0
    """With ``cfg``: keep the first N cfg layers fixed (e.g. 15: yolov3-tiny's backbone)."""
    anchors: str | None = None
    """With ``cfg``: ``auto`` replaces the cfg's anchors= by k-means anchors of the training
    boxes, sized as training sees them (letterboxed at ``imgsz``), as ``detforge anchors
    --letter-box``; or a ``w,h, w,h, ...`` list. Free when the heads are rebuilt for a new
    class count; otherwise the loaded heads must adapt to the new anchors."""
    resume: str | None = None
    """Run folder (or its ``last.pt``) to continue; ``epochs`` may be raised to extend it."""
    epochs: int = 100
    """Number of passes over the training split."""
    imgsz: int = 640
    """Training/validation input size in pixels (multiple of 32)."""
    batch: int | str = 16
    """Images per step per process, or ``auto`` (CUDA: measured from free memory)."""
    nominal_batch: int = 64
    """Batch size the default LR and weight decay are tuned for; other sizes are scaled."""
    accumulate: int = 1
    """Batches whose gradients are summed before one optimizer step."""
    device: str = ""
    """``cpu``, ``cuda`` or ``cuda:N``; empty picks CUDA when available."""
    workers: int = 4
    """Data-loading worker processes (0 loads in the main process)."""
    seed: int = 0
    """Seed of the model init, shuffling and augmentations."""
    optimizer: str = "sgd"
    """``sgd`` (Nesterov momentum) or ``adamw``."""
    lr: float | str = 0.01
    """Peak learning rate at ``nominal_batch``, or ``auto`` (runs the LR range test first)."""
    lr_find_steps: int = 100
    """Steps of the LR range test that ``lr: auto`` runs first."""
    lr_final: float = 0.01
    """Final LR as a fraction of the peak LR."""
    schedule: str = "cosine"
    """LR decay after warmup: ``cosine`` or ``linear``."""
    momentum: float = 0.937
    """SGD momentum / Adam beta1."""
    weight_decay: float = 5e-4
    """L2 weight decay at ``nominal_batch`` (never on norm layers or biases)."""
    warmup_epochs: float = 3.0
    """Linear warmup length in epochs (always at least ``warmup_min_iters`` steps)."""
    warmup_min_iters: int = 100
    """Minimum warmup length in optimizer steps."""
    warmup_bias_lr: float = 0.1
    """Starting LR of biases during SGD warmup (falls to the scheduled LR; AdamW starts at 0)."""
    warmup_momentum: float = 0.8
    """Starting momentum during warmup (rises to ``momentum``)."""
    ema: bool = True
    """Keep an exponential moving average of the weights and validate/save it."""
    ema_decay: float = 0.9999
    """EMA decay once warmed up."""
    ema_tau: float = 2000.0
    """EMA decay ramp, in updates: ``decay * (1 - exp(-updates / tau))``."""
    clip_grad: float = 10.0
    """Gradient-norm clip (0 disables; 0 by default with ``cfg``)."""
    amp: bool = True
    """Mixed precision on CUDA (never on CPU)."""
    box: float = 7.5
    """Gain of the box (CIoU) loss."""
    cls: float = 0.5
    """Gain of the classification (BCE) loss; lower it if classification loss climbs."""
    dfl: float = 1.5
    """Gain of the distribution-focal box loss."""
    mosaic: float = 1.0
    """Probability of a 4-image mosaic."""
    close_mosaic: int = 10
    """Switch mosaic off for the last this-many epochs."""
    hsv_h: float = 0.015
    """Hue jitter (fraction)."""
    hsv_s: float = 0.7
    """Saturation jitter (fraction)."""
    hsv_v: float = 0.4
    """Value jitter (fraction)."""
    fliplr: float = 0.5
    """Probability of a left-right flip."""
    flipud: float = 0.0
    """Probability of an up-down flip (microscopy, aerial)."""
    degrees: float = 0.0
    """Random rotation range in degrees."""
    translate: float = 0.1
    """Random translation as a fraction of the image size."""
    scale: float = 0.5
    """Random scale gain range (+/-)."""
    cache: str = "auto"
    """Decoded-image cache: ``auto`` (RAM when it fits), ``ram`` or ``none``."""
    val_every: int = 1
    """Validate every N epochs (and always after the last)."""
    val_fraction: float = 1.0
    """Share of the validation split used for per-epoch validation (fixed subset)."""
    patience: int = 50
    """Stop after this many epochs without a better validation fitness (0 disables)."""
    conf: float = 0.001
    """Score threshold of validation predictions."""
    iou: float = 0.7
    """NMS IoU threshold of validation predictions."""
    max_det: int = 300
    """Predictions kept per validation image."""
    time_budget: float = 0.0
    """Stop after this many seconds of training (0: no limit); the schedule fits the budget."""
    check: bool = True
    """Check the dataset before the first step; errors stop training."""
    skip_bad: bool = False
    """Train on the clean part of a dataset with errors, listing what was left out."""
    nan_skip_limit: int = 5
    """Consecutive non-finite steps before rolling back to the last good checkpoint."""
    nan_rollbacks: int = 3
    """Rollbacks (each halving the LR) before training stops with a diagnosis."""
    nan_lr_factor: float = 0.5
    """LR multiplier applied at each NaN rollback."""
    out: str = ""
    """Run folder, numbered ``-2``, ``-3`` ... if taken [``runs/train/<dataset name>``]."""
    exist_ok: bool = False
    """Write into ``out`` even when it exists (files detforge writes there are replaced)."""
    plots: bool = True
    """Write ``results.png`` and a predictions-vs-truth picture each epoch."""
    tensorboard: bool = True
    """Write TensorBoard scalar events when the ``tensorboard`` package is installed."""
    preview_images: int = 4
    """Fixed validation images drawn each epoch (predictions next to ground truth)."""
    progress: bool | None = None
    """Progress bars (``None``: on a terminal; elsewhere a line every 30 s; ``False``: none)."""
    path_map: list[tuple[str, str]] = field(default_factory=list)
    """Path prefix rewrites ``(old, new)`` applied to lists and ``.data`` files."""

    def validate(self) -> None:
        """Raise :class:`DetforgeError` for options no run could use (every number must be
        finite and inside its :data:`RANGES` interval; nothing is clamped)."""
        for name, (low, high, open_low, open_high) in RANGES.items():
            _check_range(name, getattr(self, name), low, high, open_low, open_high)
        if self.model not in ("n", "s", "m"):
            raise DetforgeError(f"--model must be n, s or m, not {self.model!r}")
        if self.epochs < 1:
            raise DetforgeError(f"--epochs must be at least 1, got {self.epochs}")
        check_input_size(self.imgsz, self.imgsz, name="--imgsz")
        if isinstance(self.batch, str) and self.batch != AUTO:
            raise DetforgeError(f"--batch must be a number or 'auto', not {self.batch!r}")
        if isinstance(self.batch, int) and self.batch < 1:
            raise DetforgeError(f"--batch must be at least 1, got {self.batch}")
        if isinstance(self.lr, str) and self.lr != AUTO:
            raise DetforgeError(f"--lr must be a number or 'auto', not {self.lr!r}")
        if isinstance(self.lr, float) and not 0 < self.lr < 10:
            raise DetforgeError(f"--lr must be in (0, 10), got {self.lr}")
        if self.optimizer not in ("sgd", "adamw"):
            raise DetforgeError(f"--optimizer must be sgd or adamw, not {self.optimizer!r}")
        if self.schedule not in ("cosine", "linear"):
            raise DetforgeError(f"--schedule must be cosine or linear, not {self.schedule!r}")
        if not 0 < self.val_fraction <= 1:
            raise DetforgeError(f"--val-fraction must be in (0, 1], got {self.val_fraction}")
        if self.val_every < 1:
            raise DetforgeError(f"--val-every must be at least 1, got {self.val_every}")
        if self.accumulate < 1:
            raise DetforgeError(f"--accumulate must be at least 1, got {self.accumulate}")
        if self.cache not in ("auto", "ram", "none"):
            raise DetforgeError(f"--cache must be auto, ram or none, not {self.cache!r}")
        if self.freeze and not self.cfg:
            raise DetforgeError("--freeze N goes with --cfg (a Darknet network's first N layers)")
        if self.anchors and not self.cfg:
            raise DetforgeError("--anchors goes with --cfg (a Darknet network's anchors=)")
        if self.freeze < 0:
            raise DetforgeError(f"--freeze must be 0 or more, got {self.freeze}")
        if self.cfg and self.lr == AUTO:
            raise DetforgeError(
                "--lr auto is not available with --cfg (fine-tuning yolov3-tiny on BCCD, the "
                "range test's rule gave a rate 9x below the cfg's); the default is the cfg's "
                "learning_rate / batch, and 'detforge lr-find DATA --cfg CFG --weights W' "
                "plots the test"
            )
        if self.weights and self.resume:
            raise DetforgeError(
                "--weights and --resume exclude each other: --weights starts a new run "
                "from a checkpoint, --resume continues an interrupted run"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-safe dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["path_map"] = [list(p) for p in self.path_map]
        return d


RANGES: dict[str, tuple[float, float, bool, bool]] = {
    # name: (low, high, low excluded, high excluded); ints are whole numbers
    "workers": (0, math.inf, False, True),
    "seed": (0, math.inf, False, True),
    "nominal_batch": (1, math.inf, False, True),
    "lr_find_steps": (10, math.inf, False, True),  # as 'detforge lr-find --steps'
    "lr_final": (0.0, 1.0, False, False),
    "momentum": (0.0, 1.0, False, True),  # Adam's beta1 < 1
    "weight_decay": (0.0, math.inf, False, True),
    "warmup_epochs": (0.0, math.inf, False, True),
    "warmup_min_iters": (0, math.inf, False, True),
    "warmup_bias_lr": (0.0, math.inf, False, True),
    "warmup_momentum": (0.0, 1.0, False, True),
    "ema_decay": (0.0, 1.0, False, False),
    "ema_tau": (0.0, math.inf, True, True),
    "clip_grad": (0.0, math.inf, False, True),
    "box": (0.0, math.inf, False, True),
    "cls": (0.0, math.inf, False, True),
    "dfl": (0.0, math.inf, False, True),
    "mosaic": (0.0, 1.0, False, False),
    "close_mosaic": (0, math.inf, False, True),
    "hsv_h": (0.0, 1.0, False, False),
    "hsv_s": (0.0, 1.0, False, False),
    "hsv_v": (0.0, 1.0, False, False),
    "fliplr": (0.0, 1.0, False, False),
    "flipud": (0.0, 1.0, False, False),
    "degrees": (0.0, 180.0, False, False),
    "translate": (0.0, 1.0, False, True),  # a whole image's shift leaves nothing
    "scale": (0.0, 1.0, False, True),  # gains 1 - scale .. 1 + scale stay above 0
    "patience": (0, math.inf, False, True),
    "conf": (0.0, 1.0, False, False),
    "iou": (0.0, 1.0, True, False),
    "max_det": (1, math.inf, False, True),
    "time_budget": (0.0, math.inf, False, True),
    "nan_skip_limit": (1, math.inf, False, True),
    "nan_rollbacks": (0, math.inf, False, True),
    "nan_lr_factor": (0.0, 1.0, True, False),
    "preview_images": (0, math.inf, False, True),
}
"""The interval of each numeric option that :meth:`TrainConfig.validate` checks here (the
others have their own rules there): ``(low, high, low excluded, high excluded)``."""


def _check_range(
    name: str, value: Any, low: float, high: float, open_low: bool, open_high: bool
) -> None:
    """A one-line error naming ``--name`` unless ``value`` is a finite number in the interval
    (ints for options whose bounds are whole numbers)."""
    whole = isinstance(low, int) and not isinstance(low, bool)
    ok = isinstance(value, int) if whole else isinstance(value, (int, float))
    ok = ok and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if open_low else value >= low)
    ok = ok and (value < high if open_high else value <= high)
    if ok:
        return
    lo, hi = "(" if open_low else "[", ")" if open_high else "]"
    if math.isinf(high):
        what = f"{'a whole number' if whole else 'a number'} {'>' if open_low else '>='} {low:g}"
    else:
        what = f"a number in {lo}{low:g}, {high:g}{hi}"
    raise DetforgeError(f"--{name.replace('_', '-')} must be {what}, got {value!r}")


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """A :class:`TrainConfig` from a dict (e.g. a resumed run's ``config.yaml``).

    Unknown keys are ignored so that runs written by newer versions still resume.
    """
    known = {f.name for f in fields(TrainConfig)}
    kwargs = {k: v for k, v in values.items() if k in known}
    if "path_map" in kwargs:
        kwargs["path_map"] = [tuple(p) for p in kwargs["path_map"] or []]
    return TrainConfig(**kwargs)


PATH_OPTIONS = ("data", "cfg", "weights", "backbone_weights")
"""Options naming a file or folder; the run's ``config.yaml`` holds them as absolute paths."""


def write_config(path: Path, cfg: TrainConfig, extra: dict[str, Any] | None = None) -> None:
    """Write the resolved config (plus ``extra`` facts such as the world size) as YAML.

    The :data:`PATH_OPTIONS` that name an existing file or folder are written absolute, so
    that ``--resume`` (and every reader of the run) finds them from any working directory;
    other values (``imagenet``, a path missing here) are written as given."""
    import os

    import yaml

    from detforge.utils.io import atomic_write_text

    doc = cfg.to_dict()
    for key in PATH_OPTIONS:
        if doc[key] and os.path.exists(doc[key]):
            doc[key] = os.path.abspath(doc[key])
    if extra:
        doc["resolved"] = extra
    atomic_write_text(path, yaml.safe_dump(doc, sort_keys=False))


def read_config(path: Path) -> TrainConfig:
    """Read a ``config.yaml`` written by :func:`write_config`."""
    from detforge.utils.yamlfile import load_yaml

    doc = load_yaml(path, "the run's config")
    if not isinstance(doc, dict):
        raise DetforgeError("the run's config is not a mapping", path=path)
    doc.pop("resolved", None)
    return config_from_dict(doc)


def field_docs() -> dict[str, str]:
    """``{option: one-line doc}`` read from the attribute docstrings above (for ``--help``)."""
    import ast
    import inspect

    src = inspect.getsource(TrainConfig)
    tree = ast.parse(src)
    docs: dict[str, str] = {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    for prev, node in itertools.pairwise(body):
        if (
            isinstance(prev, ast.AnnAssign)
            and isinstance(prev.target, ast.Name)
            and isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            docs[prev.target.id] = node.value.value.strip()
    return docs
