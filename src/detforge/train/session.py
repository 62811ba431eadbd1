"""Set-up of a training run: everything before the first step (what DETR's ``main.py`` does
before it calls ``train_one_epoch``).

:func:`build_session` opens the run folder (a new numbered one, ``--exist-ok``'s, or the one
``--resume`` names, where a killed run's temporary files are removed and its metrics rows
reconciled with ``last.pt``), loads and checks the data, builds the network and its loss
(:func:`build_model_and_loss`, the seam a second model family plugs into), the optimizer, EMA,
loaders and :class:`~detforge.train.reporter.Reporter`, and restores a resumed run's state.
The loop (``trainer.py``) works on the returned :class:`Session` only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detforge.data.dataset import Dataset
from detforge.errors import DetforgeError
from detforge.train.config import AUTO, TrainConfig, write_config
from detforge.train.ddp import DistInfo, broadcast_object
from detforge.train.runs import RunLog, RunPaths
from detforge.utils.progress import Clock

if TYPE_CHECKING:
    import torch

    from detforge.train.loaders import Loaders
    from detforge.train.nan_guard import NanGuard
    from detforge.train.optim import Hparams, ModelEMA
    from detforge.train.reporter import Reporter
    from detforge.train.setup import TrainingData
    from detforge.train.state import RunState

LossFn = Callable[[Any, dict[str, Any]], "tuple[torch.Tensor, torch.Tensor]"]
"""``loss_fn(raw_outputs, batch) -> (loss to back-propagate, detached (3,) items)``."""


@dataclass
class Session:
    """Everything the loop needs, built once by :func:`build_session`."""

    cfg: TrainConfig
    info: DistInfo
    device: torch.device
    run: RunPaths
    log: RunLog
    data: TrainingData
    model: torch.nn.Module
    net: torch.nn.Module
    """``model`` wrapped for DDP (``model`` itself in one process)."""
    loss_fn: LossFn
    opt: torch.optim.Optimizer
    ema: ModelEMA | None
    scaler: Any
    use_amp: bool
    hp: Hparams
    """The step LR and weight decay (scaled to the global batch)."""
    loaders: Loaders
    state: RunState
    guard: NanGuard
    rep: Reporter
    clock: Clock
    steps_per_epoch: int
    warmup: int
    bias_lr0: float
    """SGD biases start warmup at a high LR; Adam's steps are already ~lr each, so not there."""
    good: dict[str, Any] = field(default_factory=dict)
    """The NaN rollback target: a snapshot after the last good epoch."""
    position: tuple[int, int, int] = (-1, 0, 0)
    """``(epoch, batch, batches)`` the loop is at, 0-based (what an interrupt reports)."""


def build_model_and_loss(
    cfg: TrainConfig, num_classes: int, *, world_size: int
) -> tuple[torch.nn.Module, LossFn]:
    """The network ``cfg.model`` names and its loss: the one place a model family is chosen.

    detforge's YOLO-style detector (``n``/``s``/``m``) with :class:`DetectionLoss`; another
    family (e.g. a Darknet ``.cfg`` network with a ``[yolo]``-head loss) adds its branch here
    and needs nothing else from the loop, which sees only ``model(images)`` and ``loss_fn``.
    """
    if cfg.cfg:  # a Darknet network ([yolo] heads): see train/darknet_model.py
        from detforge.train.darknet_model import build_darknet

        return build_darknet(cfg, num_classes)
    from detforge.models.yolo import create_model
    from detforge.train.loss import DetectionLoss

    model = create_model(
        cfg.model, num_classes, backbone=cfg.backbone, backbone_weights=cfg.backbone_weights
    )
    loss = DetectionLoss(model, box=cfg.box, cls=cfg.cls, dfl=cfg.dfl, world_size=world_size)
    return model, loss


def load_pretrained(model: torch.nn.Module, cfg: TrainConfig, log: Callable[[str], None]) -> None:
    """``--weights``: copy the checkpoint's matching tensors into ``model`` (EMA preferred)."""
    from detforge.models.checkpoint import load_checkpoint
    from detforge.train.darknet_model import ARCH
    from detforge.train.setup import load_weights_into

    assert cfg.weights
    src = load_checkpoint(cfg.weights)
    got, total = load_weights_into(model, src["ema"] or src["model"])
    built = src["model_args"]
    if got < total / 2 and built.get("arch") == ARCH and not cfg.cfg:
        raise DetforgeError(
            f"a Darknet network trained with --cfg, not a --model {cfg.model} detector: "
            "fine-tune it with its network, --cfg CFG (e.g. the .cfg 'detforge export --to "
            "darknet' writes for it)",
            path=cfg.weights,
        )
    if got < total / 2:  # a new class count changes only the last class layers
        shown = {k: v for k, v in built.items() if k != "cfg"}  # a cfg is a whole file
        raise DetforgeError(
            f"only {got} of {total} weight tensors of the checkpoint fit a "
            f"{'--cfg network' if cfg.cfg else f'--model {cfg.model} detector'} (it was "
            f"built as {shown}); pass the --model/--backbone or --cfg it was trained with",
            path=cfg.weights,
        )
    log(f"--weights {cfg.weights}: {got} of {total} tensors loaded; starting at epoch 0")


def open_run(cfg: TrainConfig, info: DistInfo) -> tuple[RunPaths, dict[str, Any] | None]:
    """The run folder (created on rank 0) and, for ``--resume``, its ``last.pt`` contents."""
    from detforge.models.checkpoint import load_checkpoint
    from detforge.train.runs import (
        new_run_dir,
        remove_stale_tmp,
        repair_best,
        resume_checkpoint_path,
        run_dir_of,
    )

    ckpt = None
    if cfg.resume:
        path = resume_checkpoint_path(cfg.resume)
        root = run_dir_of(path)
        ckpt = load_checkpoint(path)
        if info.is_main and path == RunPaths(root).last:
            remove_stale_tmp(root)
            repair_best(RunPaths(root), ckpt)
        done = int(ckpt["extra"].get("epochs_done", ckpt["epoch"] + 1))
        if done >= cfg.epochs:
            raise DetforgeError(
                f"this run already finished: {done} of {cfg.epochs} epochs are done "
                f"({root}). To train longer, pass --resume {root} --epochs N with N > "
                f"{done}; to start over from its weights use --weights "
                f"{RunPaths(root).best}"
            )
    else:
        root = broadcast_object(info, new_run_dir(cfg.out, cfg.data, exist_ok=cfg.exist_ok))
    if info.is_main:
        (root / "weights").mkdir(parents=True, exist_ok=True)
        remove_stale_tmp(root)
    return RunPaths(root), ckpt


def backup_paths(cfg: TrainConfig, log: Callable[[str], None]) -> tuple[Path, Path] | None:
    """``(last, best)`` copies in the ``backup=`` folder of a Darknet ``.data``, or ``None``.

    ``backup=`` resolves against the ``.data`` file's folder like its other paths. The names
    are detforge's own, ``<data stem>_last.pt`` and ``<data stem>_best.pt`` (Darknet writes
    ``<cfg stem>_last.weights``), and an existing file of that name that is not a detforge
    checkpoint is never overwritten: the copies are then left out, with a note.
    """
    from detforge.models.checkpoint import load_checkpoint

    if not cfg.data.lower().endswith(".data") or not Path(cfg.data).is_file():
        return None
    from detforge.formats.darknet import read_data_file

    backup = read_data_file(cfg.data, path_map=tuple(cfg.path_map)).backup
    if not backup:
        return None
    stem = Path(cfg.data).stem
    folder = Path(backup)
    pair = (folder / f"{stem}_last.pt", folder / f"{stem}_best.pt")
    for p in pair:
        if p.exists():
            try:
                load_checkpoint(p)
            except DetforgeError:
                log(f"backup= {folder}: {p.name} exists and is not a detforge checkpoint; "
                    "leaving it alone (no copies in backup=)")  # fmt: skip
                return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log(f"backup= {folder}: cannot create it ({exc.strerror}); no copies in backup=")
        return None
    log(f"backup= {folder}: copies of the weights go to {pair[0].name} and {pair[1].name}")
    return pair


def resolve_batch(cfg: TrainConfig, model: Any, device: torch.device, log: Any) -> int:
    """``--batch``, or the largest that fits (``auto``, measured on CUDA)."""
    if cfg.batch != AUTO:
        return int(cfg.batch)
    from detforge.train.autobatch import auto_batch

    batch, reason = auto_batch(model, imgsz=cfg.imgsz, device=device)
    log(reason)
    return batch


def resolve_lr(cfg: TrainConfig, data: Any, batch: int, device: torch.device, log: Any) -> float:
    """``--lr``, or the LR range test's suggestion (``auto``)."""
    if cfg.lr != AUTO:
        return float(cfg.lr)
    from detforge.train.lr_find import find_lr

    res = find_lr(cfg, data, batch=batch, device=device, steps=cfg.lr_find_steps, note=log)
    if not math.isfinite(res.suggestion):
        default = float(TrainConfig.lr)  # type: ignore[arg-type]
        log(f"--lr auto: the range test found no stable LR; using the default {default:g}")
        return default
    log(f"--lr auto: {res.suggestion:.3g} (range test; lowest loss at {res.min_loss_lr:.3g})")
    return res.suggestion


def _load_data(
    cfg: TrainConfig, info: DistInfo, run: RunPaths, dataset: Dataset | None, log: RunLog
) -> TrainingData:
    """Rank 0 checks (and with ``--skip-bad`` writes the clean copy); the others read what
    it chose."""
    from detforge.train.setup import load_training_data

    data = None
    if info.is_main:
        data = load_training_data(
            cfg.data, check=cfg.check, skip_bad=cfg.skip_bad, val_fraction=cfg.val_fraction,
            seed=cfg.seed, path_map=cfg.path_map, note=log, dataset=dataset,
            clean_dir=run.root / "clean-data",
        )  # fmt: skip
    source = broadcast_object(info, data.source if data is not None else "")
    if data is None:
        data = load_training_data(
            source, check=False, val_fraction=cfg.val_fraction, seed=cfg.seed,
            path_map=cfg.path_map, note=log, dataset=dataset,
        )  # fmt: skip
    return data


def build_session(
    cfg: TrainConfig,
    info: DistInfo,
    device: torch.device,
    dataset: Dataset | None,
    say: Callable[[str], None],
    clock: Clock,
) -> Session:
    """Open the run, load the data, build model/loss/optimizer/loaders, restore a resume.
    A new run that fails here leaves no empty folders
    (:func:`~detforge.train.runs.remove_empty_run`)."""
    import torch

    from detforge.train.setup import require_dataset, require_model_files

    if not cfg.resume:  # before the run folder exists: a typo leaves no empty run behind
        require_dataset(cfg.data, dataset)
        require_model_files(weights=cfg.weights, cfg=cfg.cfg)
    torch.manual_seed(cfg.seed)  # same init on every rank (DDP also broadcasts rank 0)
    run, ckpt = open_run(cfg, info)
    try:
        return _setup(cfg, info, device, dataset, say, clock, run, ckpt)
    except BaseException:
        if ckpt is None and info.is_main:  # a refused cfg or dataset: no empty run left
            from detforge.train.runs import remove_empty_run

            remove_empty_run(run.root)
        raise


def _setup(
    cfg: TrainConfig,
    info: DistInfo,
    device: torch.device,
    dataset: Dataset | None,
    say: Callable[[str], None],
    clock: Clock,
    run: RunPaths,
    ckpt: dict[str, Any] | None,
) -> Session:
    """:func:`build_session` once the run folder is open."""
    import torch

    from detforge.train import optim
    from detforge.train.ddp import wrap_model
    from detforge.train.loaders import create_loaders
    from detforge.train.nan_guard import NanGuard
    from detforge.train.reporter import Reporter
    from detforge.train.runs import read_metrics_csv, reconcile_rows, write_metrics_csv
    from detforge.train.state import RunState

    log = RunLog(run.log, say, enabled=info.is_main)
    data = _load_data(cfg, info, run, dataset, log)
    if cfg.cfg and cfg.anchors and not cfg.resume:  # 'auto': from the training boxes
        import dataclasses

        from detforge.train.darknet_model import resolve_anchors

        cfg = dataclasses.replace(cfg, anchors=resolve_anchors(cfg, data.train, log))
    model, loss_fn = build_model_and_loss(cfg, len(data.class_names), world_size=info.world_size)
    if cfg.cfg:
        from detforge.train.darknet_model import prepare_darknet

        prepare_darknet(model, cfg, log)  # .weights / .conv.N / checkpoint, --freeze, notes
    elif cfg.weights:
        load_pretrained(model, cfg, log)
    model.to(device)
    # measured on rank 0 and shared, so every rank steps with the same batch and LR
    batch = broadcast_object(info, resolve_batch(cfg, model, device, log) if info.is_main else 0)
    lr = broadcast_object(info, resolve_lr(cfg, data, batch, device, log) if info.is_main else 0)
    global_batch = batch * cfg.accumulate * info.world_size
    hp = optim.scale_hparams(
        optimizer=cfg.optimizer, lr=lr, weight_decay=cfg.weight_decay,
        batch=global_batch, nominal_batch=cfg.nominal_batch,
    )  # fmt: skip
    opt = optim.create_optimizer(
        model, name=cfg.optimizer, lr=hp.lr, momentum=cfg.momentum, weight_decay=hp.weight_decay
    )
    ema = optim.ModelEMA(model, decay=cfg.ema_decay, tau=cfg.ema_tau) if cfg.ema else None
    use_amp = cfg.amp and device.type == "cuda"
    state, rows = RunState(), []
    if ckpt is not None:
        state = RunState.from_checkpoint(ckpt, model, opt, ema)
        rows = reconcile_rows(ckpt, read_metrics_csv(run.metrics) if info.is_main else [])
        log(f"resuming {run.root} after epoch {state.epoch + 1} of {cfg.epochs}")
    if info.is_main:
        write_config(run.config, cfg, {
            "amp": use_amp, "batch": batch, "lr": lr, "step_lr": hp.lr,
            "step_weight_decay": hp.weight_decay, "global_batch": global_batch,
            "world_size": info.world_size, "device": str(device),
            "train_images": data.train.num_images, "val_images": data.val.num_images,
            "left_out": data.left_out,
        })  # fmt: skip
    loaders = create_loaders(cfg, data, batch=batch, info=info)
    nb = len(loaders.train)
    if nb == 0:
        raise DetforgeError("the training loader yields no batches; add training images")
    steps = max(nb // cfg.accumulate, 1)
    warmup = min(max(round(cfg.warmup_epochs * steps), cfg.warmup_min_iters),
                 max(steps * cfg.epochs // 3, 1))  # fmt: skip
    backup = backup_paths(cfg, log) if info.is_main and dataset is None else None
    rep = Reporter(cfg, run, data, info, log, eval_model=ema.module if ema else model,
                   clock=clock, rows=rows, backup=backup,
                   loss_names=tuple(getattr(loss_fn, "names", ("box", "cls", "dfl"))))  # fmt: skip
    rep.committed = state.epoch + 1
    if ckpt is not None and info.is_main:
        write_metrics_csv(run.metrics, rows)  # rows of epochs after last.pt are dropped
    guard = NanGuard(cfg.nan_skip_limit, cfg.nan_rollbacks, cfg.nan_lr_factor,
                     rollbacks=state.rollbacks)  # fmt: skip
    s = Session(
        cfg=cfg, info=info, device=device, run=run, log=log, data=data, model=model,
        net=wrap_model(model, info, device), loss_fn=loss_fn, opt=opt, ema=ema,
        scaler=torch.amp.GradScaler("cuda", enabled=use_amp), use_amp=use_amp, hp=hp,
        loaders=loaders, state=state, guard=guard, rep=rep, clock=clock,
        steps_per_epoch=steps, warmup=warmup,
        bias_lr0=cfg.warmup_bias_lr if cfg.optimizer == "sgd" and not cfg.cfg else 0.0,
    )  # fmt: skip
    s.good = state.snapshot(model, opt, ema)  # the rollback target until the first epoch ends
    log(_summary(s, batch))
    return s


def _summary(s: Session, batch: int) -> str:
    """The line that opens training in the log."""
    cfg, data = s.cfg, s.data
    name = Path(cfg.cfg).name if cfg.cfg else cfg.model
    return (
        f"training {name} on {data.train.num_images} images ({len(data.class_names)} "
        f"classes), validating on {data.val.num_images}; batch {batch} x {cfg.accumulate} x "
        f"{s.info.world_size} process(es), {s.steps_per_epoch} steps/epoch, warmup {s.warmup} "
        f"steps, lr {s.hp.lr:.3g}, weight decay {s.hp.weight_decay:.3g}, {s.device}; "
        f"run {s.run.root}"
    )
