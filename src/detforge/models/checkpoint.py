"""Checkpoints: plain tensors and Python types only, so ``torch.load(path, weights_only=True)``
works (no pickled modules or classes), written atomically (temporary file + rename).

A checkpoint is a dict::

    {"format": "detforge-checkpoint", "version": 1,
     "model_args": {"scale", "num_classes", "backbone", "reg_max"},   # create_model kwargs
     "model": state_dict, "ema": state_dict | None, "ema_updates": int | None,
     "optimizer": dict | None, "scheduler": dict | None,
     "epoch": int, "best_fitness": float | None, "class_names": [str, ...],
     "config": dict, "extra": dict, "torch_version": str}

:func:`load_model` builds the detector from ``model_args`` and loads the EMA weights when
present (they are the ones training validates), else the raw model weights.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from detforge.errors import DetforgeError
from detforge.models.yolo import Detector, create_model
from detforge.utils.io import atomic_write_bytes

FORMAT = "detforge-checkpoint"
VERSION = 1
_PLAIN = (str, int, float, bool, type(None), torch.Tensor)


def _check_plain(obj: Any, where: str) -> None:
    """Raise ``TypeError`` when ``obj`` holds anything ``weights_only`` loading would refuse."""
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            if not isinstance(k, str | int | float | bool | type(None)):
                raise TypeError(f"checkpoint {where}: key {k!r} is not a plain type")
            _check_plain(v, f"{where}.{k}")
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
    elif not isinstance(obj, _PLAIN):
        raise TypeError(
            f"checkpoint {where}: {type(obj).__name__} is not a tensor or plain Python type"
        )


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def _ema_state(ema: Any) -> tuple[dict[str, torch.Tensor] | None, int | None]:
    """Accept an EMA ``nn.Module``, an object with ``.ema`` (module) and ``.updates``, or a
    state_dict."""
    if ema is None:
        return None, None
    if isinstance(ema, nn.Module):
        return _cpu_state(ema), None
    inner = getattr(ema, "ema", None) or getattr(ema, "module", None)
    if isinstance(inner, nn.Module):
        updates = getattr(ema, "updates", None)
        return _cpu_state(inner), None if updates is None else int(updates)
    if isinstance(ema, Mapping):
        return {k: v.detach().cpu() for k, v in ema.items()}, None
    raise TypeError(f"cannot save an EMA of type {type(ema).__name__}")


def _unwrap(model: nn.Module) -> nn.Module:
    """The underlying model of a DistributedDataParallel/DataParallel/compiled wrapper."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    model: nn.Module,
    ema: Any = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    epoch: int,
    best_fitness: float | None = None,
    class_names: Sequence[str],
    config: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically. ``model`` may be wrapped (DDP, compiled); it must carry
    ``build_args`` (every :func:`create_model` result does). ``config`` and ``extra`` must hold
    plain types only (str/int/float/bool/None, lists, dicts, tensors); ``TypeError`` otherwise.
    """
    net = _unwrap(model)
    build_args = getattr(net, "build_args", None)
    if not build_args:
        raise TypeError("save_checkpoint needs a model built by create_model (no build_args)")
    ema_state, ema_updates = _ema_state(ema)
    ckpt: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "model_args": dict(build_args),
        "model": _cpu_state(net),
        "ema": ema_state,
        "ema_updates": ema_updates,
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "epoch": int(epoch),
        "best_fitness": None if best_fitness is None else float(best_fitness),
        "class_names": [str(n) for n in class_names],
        "config": dict(config or {}),
        "extra": dict(extra or {}),
        "torch_version": str(torch.__version__),
    }
    _check_plain(ckpt, "checkpoint")
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    atomic_write_bytes(path, buf.getvalue(), fsync=True)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint (``weights_only=True``, on CPU). DetforgeError when the file is
    missing, unreadable or not a detforge checkpoint."""
    p = Path(path)
    if not p.is_file():
        raise DetforgeError("checkpoint not found", path=p)
    from detforge.models.filekind import describe_foreign_model

    foreign = describe_foreign_model(p)
    if foreign is not None:
        raise DetforgeError(foreign, path=p)
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        if "Weights only load failed" in str(exc):
            raise DetforgeError(
                "not a detforge checkpoint: a PyTorch file holding pickled Python objects "
                "(an Ultralytics or other framework's model, which detforge does not load; "
                "a detforge checkpoint comes from 'detforge train')",
                path=p,
            ) from None
        raise DetforgeError(
            f"checkpoint is corrupt or truncated ({first}); use another copy "
            "(best.pt / last.pt) or retrain",
            path=p,
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise DetforgeError(
            "not a detforge checkpoint (no 'format: detforge-checkpoint' entry)", path=p
        )
    if int(ckpt.get("version", 0)) > VERSION:
        raise DetforgeError(
            f"checkpoint version {ckpt['version']} is newer than this detforge understands "
            f"({VERSION}); upgrade detforge",
            path=p,
        )
    for key in ("model_args", "model", "class_names"):
        if key not in ckpt:
            raise DetforgeError(f"checkpoint lacks its {key!r} entry", path=p)
    return ckpt


def build_from_checkpoint(
    ckpt: Mapping[str, Any], *, use_ema: bool = True, path: str | os.PathLike[str] | None = None
) -> Detector:
    """The :class:`Detector` of a loaded checkpoint dict, weights loaded, in eval mode."""
    args = dict(ckpt["model_args"])
    model: nn.Module
    if args.get("arch") == "darknet":  # a fine-tuned Darknet network: its cfg text is inside
        from detforge.train.darknet_model import DarknetDetector

        model = DarknetDetector(str(args.get("cfg", "")), path=f"{path or 'checkpoint'}:cfg")
    else:
        model = _build_detector(args, path)
    state = ckpt["ema"] if use_ema and ckpt.get("ema") is not None else ckpt["model"]
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise DetforgeError(
            "checkpoint weights do not fit the model it describes "
            f"({str(exc).splitlines()[0]}); it was written by an incompatible detforge version",
            path=path,
        ) from None
    return model.eval()  # type: ignore[return-value]


def _build_detector(args: dict[str, Any], path: str | os.PathLike[str] | None) -> Detector:
    """detforge's own detector from its ``create_model`` arguments."""
    try:
        model = create_model(
            str(args.get("scale", "n")),
            int(args["num_classes"]),
            backbone=args.get("backbone"),
            backbone_weights=None,
            reg_max=int(args.get("reg_max", 16)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DetforgeError(
            f"checkpoint has unusable model arguments {args} ({exc})", path=path
        ) from None
    return model


def load_model(
    path: str | os.PathLike[str], device: str | torch.device = "cpu", *, use_ema: bool = True
) -> tuple[Detector, list[str], dict[str, Any]]:
    """Load a checkpoint for inference: ``(model in eval mode on device, class_names, meta)``.

    ``meta`` holds the checkpoint's ``epoch``, ``best_fitness``, ``config``, ``extra`` and
    ``model_args``. The model is not fused (call ``model.fuse()`` for inference only).
    """
    ckpt = load_checkpoint(path)
    model = build_from_checkpoint(ckpt, use_ema=use_ema, path=path)
    names = [str(n) for n in ckpt["class_names"]]
    if len(names) != model.num_classes:
        raise DetforgeError(
            f"checkpoint has {len(names)} class names for {model.num_classes} classes", path=path
        )
    meta = {
        k: ckpt.get(k)
        for k in ("epoch", "best_fitness", "config", "extra", "model_args", "torch_version")
    }
    return model.to(device), names, meta
