"""Fine-tuning a Darknet network: the trainable model, its class count, weights and freezing.

:class:`DarknetDetector` wraps a :class:`~detforge.models.darknet.network.DarknetNetwork` in
the contract of detforge's own ``Detector`` (``docs/architecture.md``): in training mode
``forward`` returns the raw ``[yolo]`` inputs for :class:`~detforge.train.darknet_loss.
DarknetYoloLoss`; in eval mode ``(B, A, 4 + C)`` boxes xyxy in input pixels and class scores
``objectness x class probability`` (Darknet's score), which ``postprocess``, validation,
previews and ``predict`` use unchanged. Its ``build_args`` hold the cfg text, so a checkpoint
rebuilds the network without the ``.cfg`` file.

* :func:`cfg_for_classes`: the cfg text for N classes (``classes=`` and the ``filters=`` of the
  conv before each head, by :func:`~detforge.formats.darknet.cfg.rewrite_cfg_text`), with
  ``letter_box=1`` in ``[net]`` (detforge trains and predicts on letterboxed images, so the
  exported network must be fed the same way).
* :func:`load_darknet_weights`: a ``.weights`` or partial ``.conv.N`` file read into the
  network it was written for (the cfg as given, or the same cfg with the class count the file's
  length implies), then every conv whose shapes match copied over; the head convs of a new
  class count keep their fresh initialisation.
* :func:`freeze_layers`: ``--freeze N`` keeps cfg layers ``0 .. N-1`` fixed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from detforge.errors import DetforgeError
from detforge.models.darknet.cfg import read_cfg_text
from detforge.models.filekind import is_darknet_weights
from detforge.train.darknet_loss import DarknetYoloLoss, YoloLossSpec, ineffective_keys

if TYPE_CHECKING:
    from detforge.data.dataset import Dataset
    from detforge.models.darknet.network import DarknetNetwork

ARCH = "darknet"
"""``build_args["arch"]`` of a Darknet checkpoint."""

_NET_HEADER = re.compile(r"^[ \t]*\[(net|network)\][ \t]*$", re.IGNORECASE | re.MULTILINE)
_LETTER_BOX = re.compile(r"^[ \t]*letter_box[ \t]*=.*$", re.IGNORECASE | re.MULTILINE)


class DarknetDetector(nn.Module):
    """A Darknet network with detforge's ``Detector`` contract (module docstring)."""

    def __init__(self, cfg_text: str, *, path: str = "<cfg>") -> None:
        super().__init__()
        from detforge.models.darknet.cfg import parse_cfg_text
        from detforge.models.darknet.network import DarknetNetwork

        self.net = DarknetNetwork(parse_cfg_text(cfg_text, path=path))
        self.cfg_text = cfg_text
        self.build_args: dict[str, Any] = {
            "arch": ARCH,
            "cfg": with_letter_box(cfg_text),  # see the module docstring
            "num_classes": self.net.num_classes,
        }
        # channels-last (NHWC) weights: oneDNN trains these convolutions ~1.2x faster on a
        # CPU; inputs are converted in forward(), head outputs handed back contiguous
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    @property
    def num_classes(self) -> int:
        return int(self.net.num_classes)

    def loss_specs(self) -> list[YoloLossSpec]:
        """One :class:`YoloLossSpec` per head; DetforgeError for a ``[region]`` head."""
        specs = []
        for head in self.net.heads:
            section = self.net.cfg.layers[head.index]
            if head.kind != "yolo":
                raise section.error(
                    "fine-tuning supports [yolo] heads only (not yolov2's [region])"
                )
            specs.append(YoloLossSpec.of_section(section))
        return specs

    def ineffective(self) -> list[str]:
        """``[yolo]`` settings of the cfg that do not change training, as in Darknet (for a
        note: :func:`~detforge.models.darknet.loss_spec.ineffective_keys`)."""
        out: list[str] = []
        for head in self.net.heads:
            out += ineffective_keys(self.net.cfg.layers[head.index].options)
        return sorted(set(out))

    def forward(self, x: torch.Tensor) -> Any:
        raw = [r.contiguous() for r in self.net(x.contiguous(memory_format=torch.channels_last))]
        if self.training:
            return raw
        from detforge.models.darknet.decode import decode_all

        h, w = int(x.shape[-2]), int(x.shape[-1])
        rows = decode_all(raw, self.net.heads, w, h)  # (B, N, 5 + C) cxcywh relative
        scale = rows.new_tensor([w, h])
        cxcy, wh = rows[..., 0:2] * scale, rows[..., 2:4] * scale
        boxes = torch.cat([cxcy - wh / 2, cxcy + wh / 2], -1)
        return torch.cat([boxes, rows[..., 5:] * rows[..., 4:5]], -1)

    def fuse(self, channels_last: bool = True) -> DarknetDetector:
        """Kept for the ``Detector`` interface; the Darknet network runs unfused."""
        return self


def darknet_loss(model: DarknetDetector) -> DarknetYoloLoss:
    """The ``[yolo]``-head loss of ``model``."""
    return DarknetYoloLoss(model.loss_specs())


def _head_classes(text: str, path: str) -> int:
    from detforge.models.darknet.cfg import parse_cfg_text

    cfg = parse_cfg_text(text, path=path)
    heads = [s for s in cfg.layers if s.name in ("yolo", "region")]
    if not heads:
        raise DetforgeError("the cfg has no [yolo] layer to train", path=path)
    return heads[-1].get_int("classes", 20)


def with_letter_box(text: str) -> str:
    """``text`` with ``letter_box=1`` in its ``[net]`` section (set or added)."""
    net = _NET_HEADER.search(text)
    if net is None:
        return text
    end = re.search(r"^[ \t]*\[", text[net.end() :], re.MULTILINE)
    stop = net.end() + (end.start() if end else len(text) - net.end())
    section = text[net.end() : stop]
    if _LETTER_BOX.search(section):
        section = _LETTER_BOX.sub("letter_box=1", section)
    else:
        section = "\nletter_box=1" + section
    return text[: net.end()] + section + text[stop:]


def cfg_for_classes(text: str, classes: int, *, path: str = "<cfg>") -> tuple[str, bool]:
    """The cfg text for ``classes`` classes; ``changed`` is True when the heads were rebuilt for
    a new class count."""
    from detforge.formats.darknet.cfg import rewrite_cfg_text

    changed = _head_classes(text, path) != classes
    if changed:  # values edited in place: line numbers stay the user's
        text, _ = rewrite_cfg_text(text, classes=classes, path=path)
    return text, changed


@dataclass
class WeightsLoad:
    """What :func:`load_darknet_weights` did: ``loaded`` convs copied of ``convs`` in the model,
    ``fresh`` cfg layer indices left initialised, ``file_classes`` the class count the file was
    written for, ``layers`` cfg layers the file covers."""

    loaded: int
    convs: int
    fresh: list[int]
    file_classes: int
    layers: int

    def message(self, path: str | os.PathLike[str]) -> str:
        fresh = f"; re-initialised: layers {', '.join(map(str, self.fresh))}" if self.fresh else ""
        part = f" (a partial file: layers 0-{self.layers - 1})" if self.layers else ""
        return (
            f"--weights {path}: {self.loaded} of {self.convs} convolutional layers loaded"
            f"{part}, written for {self.file_classes} classes{fresh}"
        )


def _source_network(text: str, weights: str, cfg_path: str) -> tuple[DarknetNetwork, int, int]:
    """The network ``weights`` was written for, loaded: the cfg as given, or with the class
    count that the file's length implies. Returns ``(network, layers covered, classes)``."""
    from detforge.models.darknet.cfg import parse_cfg_text
    from detforge.models.darknet.network import DarknetNetwork
    from detforge.models.darknet.weights import read_weights

    given = _head_classes(text, cfg_path)
    net = DarknetNetwork(parse_cfg_text(text, path=cfg_path))
    try:
        return net, read_weights(net, weights, partial=True), given
    except DetforgeError as first:
        try:
            size = Path(weights).stat().st_size
        except OSError:  # missing or unreadable: read_weights' error says so
            raise first from None
        guess = _classes_from_length(text, cfg_path, size, given)
        if guess is None:
            raise first from None
    alt, _ = cfg_for_classes(text, guess, path=cfg_path)
    net = DarknetNetwork(parse_cfg_text(alt, path=cfg_path))
    return net, read_weights(net, weights), guess


def _classes_from_length(text: str, cfg_path: str, size: int, given: int) -> int | None:
    """The class count C for which the cfg's weights take exactly ``size`` bytes (header of
    16 or 20 bytes), or None. The float count is linear in C: ``a + b * C``."""
    from detforge.models.darknet.cfg import parse_cfg_text
    from detforge.models.darknet.network import DarknetNetwork

    def floats(c: int) -> int:
        alt, _ = cfg_for_classes(text, c, path=cfg_path)
        return weights_floats(DarknetNetwork(parse_cfg_text(alt, path=cfg_path)))

    f1, f2 = floats(1), floats(2)
    b = f2 - f1
    if b <= 0:
        return None
    for header in (20, 16):
        payload = size - header
        if payload % 4:
            continue
        c, rest = divmod(payload // 4 - (f1 - b), b)
        if not rest and 1 <= c <= 100_000 and c != given:
            return int(c)
    return None


def weights_floats(net: nn.Module) -> int:
    """How many float32 values a ``.weights`` file of ``net`` holds: per conv, its weights and
    ``filters`` biases, plus BN scales, means and variances (``filters`` each) when present."""
    from detforge.models.darknet.layers import ConvLayer

    total = 0
    for layer in net.modules():
        if isinstance(layer, ConvLayer):
            filters = layer.conv.out_channels
            total += layer.conv.weight.numel() + filters * (4 if layer.bn is not None else 1)
    return total


def load_darknet_weights(
    model: DarknetDetector, weights: str | os.PathLike[str], cfg_text: str, cfg_path: str
) -> WeightsLoad:
    """Copy a ``.weights`` / ``.conv.N`` file into ``model`` (module docstring). ``cfg_text``
    is the cfg as the user gave it (before :func:`cfg_for_classes`)."""
    from detforge.models.darknet.layers import ConvLayer

    src, covered, file_classes = _source_network(cfg_text, os.fspath(weights), cfg_path)
    loaded, convs, fresh = 0, 0, []
    with torch.no_grad():
        for i, layer in enumerate(model.net.layers):
            if not isinstance(layer, ConvLayer):
                continue
            convs += 1
            other = src.layers[i] if i < covered else None
            mine, theirs = layer.state_dict(), other.state_dict() if other is not None else {}
            if other is None or any(
                k not in theirs or theirs[k].shape != v.shape for k, v in mine.items()
            ):
                if other is not None:
                    fresh.append(i)
                continue
            layer.load_state_dict(theirs)
            loaded += 1
    partial = covered if covered < len(src.layers) else 0
    return WeightsLoad(loaded, convs, fresh, file_classes, partial)


OBJ_PRIOR = 0.01
"""Objectness of a freshly initialised head: ``sigmoid(bias) = 0.01`` (a head starting at 0.5
spends its first hundreds of steps only pushing thousands of background predictions down)."""


def init_heads(model: DarknetDetector) -> None:
    """Initialise the conv before each ``[yolo]``: weights N(0, 0.01), biases 0 except the
    objectness biases, at :data:`OBJ_PRIOR`."""
    import math

    from detforge.models.darknet.layers import ConvLayer

    with torch.no_grad():
        for head in model.net.heads:
            layer = model.net.layers[head.index - 1]
            if not isinstance(layer, ConvLayer) or layer.conv.bias is None:
                continue
            layer.conv.weight.normal_(0.0, 0.01)
            bias = layer.conv.bias.view(len(head.anchors), 5 + head.classes)
            bias.zero_()
            bias[:, 4] = math.log(OBJ_PRIOR / (1 - OBJ_PRIOR))


def freeze_layers(model: DarknetDetector, n: int) -> int:
    """Stop gradients into cfg layers ``0 .. n-1``; returns how many parameters froze."""
    if n < 0:
        raise DetforgeError(f"--freeze must be 0 or more, got {n}")
    if n > len(model.net.layers):
        raise DetforgeError(f"--freeze {n}: the network has {len(model.net.layers)} layers")
    weighted = [
        i for i, layer in enumerate(model.net.layers) if next(layer.parameters(), None) is not None
    ]
    if weighted and n > weighted[-1]:  # no gradient would reach any weight: a torch error
        raise DetforgeError(
            f"--freeze {n} fixes every layer with weights (the last is layer {weighted[-1]}), "
            f"so nothing would train; use --freeze {weighted[-1]} or less"
        )
    count = 0
    for layer in list(model.net.layers)[:n]:
        for p in layer.parameters():
            p.requires_grad_(False)
            count += p.numel()
    return count


def build_darknet(cfg: Any, num_classes: int) -> tuple[DarknetDetector, DarknetYoloLoss]:
    """``TrainConfig.cfg``'s network for ``num_classes`` classes (heads rebuilt when the count
    differs), frozen up to ``cfg.freeze``, and its loss. Weights come later
    (:func:`prepare_darknet`)."""
    assert cfg.cfg
    if cfg.resume:  # the network the run trained: the cfg text its checkpoint holds
        from detforge.models.checkpoint import load_checkpoint
        from detforge.train.runs import resume_checkpoint_path

        path = resume_checkpoint_path(cfg.resume)
        args = load_checkpoint(path)["model_args"]
        if args.get("arch") != ARCH:
            raise DetforgeError(
                "--cfg: the run to resume did not train a Darknet network", path=path
            )
        model = DarknetDetector(str(args["cfg"]), path=f"{path}:cfg")
    else:
        text = read_cfg_text(cfg.cfg)
        new, _ = cfg_for_classes(text, num_classes, path=str(cfg.cfg))
        if cfg.anchors:  # a list by now: resolve_anchors ran on the training data
            from detforge.formats.darknet.cfg import set_anchors_text

            new = set_anchors_text(new, cfg.anchors, path=str(cfg.cfg))
        model = DarknetDetector(new, path=str(cfg.cfg))
        init_heads(model)  # loaded weights of the same shape replace it (prepare_darknet)
    if cfg.freeze:
        freeze_layers(model, int(cfg.freeze))
    return model, darknet_loss(model)


def resolve_anchors(cfg: Any, train: Dataset, log: Any) -> str:
    """``--anchors`` as the ``anchors=`` value to train with: ``auto`` -> k-means anchors of
    the training boxes letterboxed at ``imgsz`` (what training feeds the network), logged with
    the mean IoU of the cfg's own anchors on the same boxes; a list -> checked."""
    from detforge.data.anchors import (
        dataset_box_sizes,
        kmeans_anchors,
        mean_best_iou,
        parse_anchor_list,
        usable_sizes,
    )
    from detforge.formats.darknet.cfg import cfg_anchor_count

    text = read_cfg_text(cfg.cfg)
    count = cfg_anchor_count(text, path=str(cfg.cfg))
    if str(cfg.anchors).strip().lower() != "auto":
        return parse_anchor_list(str(cfg.anchors), count)
    from detforge.formats.common import ensure_sizes

    sizes = dataset_box_sizes(ensure_sizes(train), cfg.imgsz, cfg.imgsz, letter_box=True)
    size = float(cfg.imgsz)  # anchors_for_dataset, sized once
    res = kmeans_anchors(sizes, count, seed=cfg.seed, limit=(size, size))
    from detforge.models.darknet.cfg import parse_cfg_text

    heads = [s for s in parse_cfg_text(text, path=str(cfg.cfg)).layers if s.name == "yolo"]
    old = (heads[0].get_floats("anchors") or []) if heads else []
    pairs = [(old[2 * k], old[2 * k + 1]) for k in range(len(old) // 2)]
    used, _ = usable_sizes(sizes, (size, size))  # the sizes the k-means used
    before = f", the cfg's anchors {mean_best_iou(used, pairs):.1%}" if pairs else ""
    log(f"--anchors auto: {res.darknet_text()} (k-means of {res.boxes} training boxes "
        f"letterboxed at {cfg.imgsz}: mean IoU {res.mean_iou:.1%}{before})")  # fmt: skip
    return res.darknet_text()


def prepare_darknet(model: nn.Module, cfg: Any, log: Any) -> None:
    """Load ``cfg.weights`` into a :func:`build_darknet` model (a Darknet file, or a detforge
    checkpoint of the same network) and log what was loaded, rebuilt and frozen."""
    assert isinstance(model, DarknetDetector) and cfg.cfg
    if cfg.resume:  # weights and all come from the run's checkpoint
        return
    text = read_cfg_text(cfg.cfg)
    old = _head_classes(text, str(cfg.cfg))
    if old != model.num_classes:
        log(f"--cfg {cfg.cfg}: classes={old} rebuilt for the dataset's {model.num_classes} "
            "(filters = (classes + 5) x masks before each [yolo])")  # fmt: skip
    if cfg.weights and is_darknet_weights(cfg.weights):
        got = load_darknet_weights(model, cfg.weights, text, str(cfg.cfg))
        log(got.message(cfg.weights))
    elif cfg.weights:
        from detforge.train.session import load_pretrained

        load_pretrained(model, cfg, log)
    else:
        log(f"--cfg {cfg.cfg} without --weights: training from random weights")
    if cfg.freeze:
        log(f"--freeze {cfg.freeze}: cfg layers 0-{cfg.freeze - 1} stay fixed")
    idle = model.ineffective()
    if idle:
        log(f"note: [yolo] settings without effect: {', '.join(idle)}")


def darknet_cli_defaults(cfg_path: str, batch: int | str | None = None) -> dict[str, Any]:
    """``imgsz`` (the cfg's larger side, a multiple of 32), ``lr`` and ``clip_grad`` 0 for
    ``detforge train --cfg`` when the command line does not give them.

    ``lr`` is the cfg's ``learning_rate / batch`` with ``batch`` detforge's own batch (its
    ``--batch``; the cfg's ``batch=`` for ``auto``, ``batch=1`` counting as Darknet's 64): the
    loss is summed over the images of a batch, so each optimizer step moves the weights as
    far as a Darknet step with that learning rate moves them (Darknet averages its batch).
    With detforge's batch of 16 that is the field guide's recipe (learning_rate 0.001 at
    batch 16); fine-tuning yolov3-tiny on BCCD, 4x lower (Darknet's per-image rate at
    batch 64) learned several times slower in a short budget.

    No gradient clipping, as in Darknet: the ``[yolo]`` loss is a sum over every cell and
    image (gradient norms in the thousands), so detforge's default clip of 10 would shrink
    every step a hundredfold and the network would barely move."""
    from detforge.models.darknet.cfg import parse_cfg_text
    from detforge.train.darknet_loss import darknet_step_lr

    parsed = parse_cfg_text(read_cfg_text(cfg_path), path=cfg_path)
    size = max(parsed.width, parsed.height)
    if not isinstance(batch, int) or batch < 1:
        batch = parsed.net.get_int("batch", 64)
        batch = batch if batch > 1 else 64
    lr = parsed.net.get_float("learning_rate", 0.001)
    return {
        "imgsz": max(32, round(size / 32) * 32),
        "lr": darknet_step_lr(lr, batch),
        "clip_grad": 0.0,
    }
