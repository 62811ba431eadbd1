"""Build a PyTorch network from a parsed Darknet cfg.

``DarknetNetwork.forward(images (B, C, H, W) float in [0, 1])`` returns the raw inputs of its
``[yolo]`` / ``[region]`` layers, one (B, n * (5 + classes), H/s, W/s) tensor per head in cfg
order; :mod:`detforge.models.darknet.decode` turns them into boxes. Layer indices are Darknet's
(0-based, ``[net]`` not counted), so ``net.layers[i]`` is cfg layer ``i``.

Building checks the geometry before allocating anything (:func:`walk_cfg`, which a cfg
rewrite runs on its own to check what it writes): ``channels=3`` (detforge feeds RGB images),
references to earlier layers only, heads whose ``mask`` picks given anchors, no negative
padding, no window larger than its padded input, one size for the layers a
``[route]``/``[shortcut]``/``[sam]`` joins, and the network's totals -- parameters, one
image's activations and multiply-adds -- against the limits of
:mod:`detforge.models.darknet.budget` (``MAX_PARAM_BYTES``, ``MAX_ACTIVATION_BYTES``,
``MAX_MACS``), computed layer by layer from the shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import torch
from torch import nn

from detforge.errors import clip
from detforge.models.darknet.budget import Build, Shape
from detforge.models.darknet.cfg import DarknetCfg, Section, Unsupported
from detforge.models.darknet.heads import HeadSpec, head_spec
from detforge.models.darknet.layers import (
    ACTIVATIONS,
    ConvLayer,
    DarknetLayer,
    DropoutLayer,
    HeadLayer,
    MaxPoolLayer,
    RouteLayer,
    SamLayer,
    ScaleChannelsLayer,
    ShortcutLayer,
    UpsampleLayer,
)

LayerMaker = Callable[[], DarknetLayer]
"""Makes one layer's module (allocating its weights)."""
_UNKNOWN = Shape(0, 0, 0)  # in Build.shapes for a layer whose output is not known


@dataclass
class WeightsHeader:
    """The ``.weights`` header: version numbers and ``seen`` (images trained on)."""

    major: int = 0
    minor: int = 2
    revision: int = 5
    seen: int = 0

    @property
    def seen_is_64bit(self) -> bool:
        return self.major * 10 + self.minor >= 2


def _activation(section: Section, default: str) -> str:
    kind = section.get_str("activation", default)
    if kind not in ACTIVATIONS:
        raise section.unsupported(
            f"activation={clip(kind)} is not supported (supported: {', '.join(ACTIVATIONS)})",
            "activation",
        )
    return kind


def _index(section: Section, key: str, raw: int, i: int) -> int:
    index = raw + i if raw < 0 else raw
    if not 0 <= index < i:
        raise section.error(f"{key} refers to layer {raw}, which is not an earlier layer", key)
    return index


def _sources(section: Section, key: str, i: int) -> list[int]:
    values = section.get_ints(key)
    if not values:
        raise section.error(f"{key}= is required", key)
    return [_index(section, key, v, i) for v in values]


def _inputs(section: Section, i: int) -> list[int]:
    """The earlier layers (0-based) a ``[route]``/``[shortcut]``/``[sam]``/
    ``[scale_channels]`` reads besides the previous one; each must exist and come before."""
    if section.name == "route":
        return _sources(section, "layers", i)
    if section.name in ("shortcut", "sam", "scale_channels"):
        return _sources(section, "from", i)
    return []


def _build_layer(section: Section, i: int, prev: Shape, b: Build) -> tuple[LayerMaker, Shape]:
    """Check layer ``i`` on its input ``prev`` (and ``b.shapes`` of the layers it reads);
    its module's maker and output shape."""
    kind = section.name
    if kind == "convolutional":
        filters = section.get_int("filters", 1)
        size = section.get_int("size", 1)
        stride = section.get_int("stride", 1)
        sy, sx = section.get_int("stride_y", stride), section.get_int("stride_x", stride)
        groups = section.get_int("groups", 1)
        padding = size // 2 if section.get_int("pad", 0) else section.get_int("padding", 0)
        if filters < 1 or size < 1 or sx < 1 or sy < 1 or groups < 1:
            raise section.error("filters, size, stride and groups must be positive")
        if padding < 0:
            raise section.error(f"padding={padding} must not be negative", "padding")
        _window_fits(section, size, prev, 2 * padding)
        if prev.c % groups or filters % groups:
            raise section.error(
                f"groups={groups} does not divide {prev.c} input channels and filters={filters}",
                "groups",
            )
        bn = section.get_int("batch_normalize", 0) != 0
        out = prev.strided(
            filters,
            (prev.h + 2 * padding - size) // sy + 1,
            (prev.w + 2 * padding - size) // sx + 1,
            sx,
            sy,
        )
        # weights, then the conv bias or BatchNorm's scale, bias, mean and variance; checked
        # with the output before torch allocates anything
        weights = filters * (prev.c // groups) * size * size + filters * (4 if bn else 1)
        macs = out.h * out.w * filters * (prev.c // groups) * size * size
        b.charge(section, params=weights, activations=out.c * out.h * out.w, commit=False)
        b.charge(section, params=weights, macs=macs)
        conv = partial(
            ConvLayer,
            prev.c,
            filters,
            size,
            (sy, sx),
            padding,
            groups,
            bn,
            _activation(section, "logistic"),
        )
        return conv, out
    if kind == "maxpool":
        stride = section.get_int("stride", 1)
        sx, sy = section.get_int("stride_x", stride), section.get_int("stride_y", stride)
        size = section.get_int("size", stride)
        padding = section.get_int("padding", size - 1)
        if size < 1 or sx < 1 or sy < 1 or padding < 0:
            raise section.error("size and stride must be positive, padding not negative")
        _window_fits(section, size, prev, padding)
        if padding:  # the forward pass pads a copy of its input with -inf
            b.charge(section, activations=prev.c * (prev.h + padding) * (prev.w + padding))
        pool = MaxPoolLayer(size, (sy, sx), padding)  # no weights
        oh, ow = pool.out_size(prev.h, prev.w)
        b.charge(section, macs=prev.c * oh * ow * size * size)
        return (lambda: pool), prev.strided(prev.c, oh, ow, sx, sy)
    if kind == "route":
        srcs = _sources(section, "layers", i)
        groups, group_id = section.get_int("groups", 1), section.get_int("group_id", 0)
        first = b.shapes[srcs[0]]
        if groups < 1 or not 0 <= group_id < groups:
            raise section.error(f"group_id={group_id} must be in 0..groups-1 (groups={groups})")
        c = 0
        for s in srcs:
            shape = b.shapes[s]
            if (shape.h, shape.w) != (first.h, first.w):
                joined = [b.shapes[k] for k in srcs]
                raise b.size_mismatch(section, "layers", f"layers {clip(str(srcs))}", joined)
            if shape.c % groups:
                raise section.error(
                    f"groups={groups} does not divide layer {s}'s {shape.c} channels"
                )
            c += shape.c // groups
        need = tuple(max(b.shapes[k].need[a] for k in srcs) for a in (0, 1))
        out = Shape(c, first.h, first.w, first.stride, (need[0], need[1]))
        return partial(RouteLayer, srcs, groups, group_id), out
    if kind == "shortcut":
        srcs = _sources(section, "from", i)
        for s in srcs:
            if (b.shapes[s].h, b.shapes[s].w) != (prev.h, prev.w):
                joined = [b.shapes[s], prev]
                raise b.size_mismatch(section, "from", f"layers {s} and {i - 1}", joined)
            if b.shapes[s].c != prev.c:
                raise section.error(
                    f"layer {s}'s output shape differs from the previous layer's", "from"
                )
        return partial(ShortcutLayer, srcs, _activation(section, "linear")), prev
    if kind == "upsample":
        stride = section.get_int("stride", 2)
        if stride < 1:
            raise section.error("only positive upsample strides are supported", "stride")
        layer = partial(UpsampleLayer, stride, section.get_float("scale", 1.0))
        return layer, prev.upsampled(stride)
    if kind in ("sam", "scale_channels"):
        src = _sources(section, "from", i)[0]
        other = b.shapes[src]
        act = _activation(section, "linear")
        if kind == "sam":
            if (other.h, other.w) != (prev.h, prev.w):
                raise b.size_mismatch(section, "from", f"layers {src} and {i - 1}", [other, prev])
            if other.c != prev.c:
                raise section.error(
                    f"layer {src}'s output shape differs from the previous layer's", "from"
                )
            return partial(SamLayer, src, act), prev
        scale_wh = section.get_int("scale_wh", 0) != 0
        want = (1, other.h, other.w) if scale_wh else (other.c, 1, 1)
        if (prev.c, prev.h, prev.w) != want:
            raise section.error(
                f"the previous layer must output {want[0]}x{want[1]}x{want[2]} to scale layer {src}"
            )
        return partial(ScaleChannelsLayer, src, scale_wh, act), other
    if kind == "dropout":
        p = section.get_float("probability", 0.2)
        if not 0 <= p < 1:
            raise section.error("probability must be in [0, 1)", "probability")
        return partial(DropoutLayer, p), prev
    if kind in ("yolo", "region"):
        b.heads.append(head_spec(section, i, prev))
        return partial(HeadLayer, kind), prev
    raise section.error("unsupported layer")  # pragma: no cover - cfg.py rejects it first


def _window_fits(section: Section, size: int, prev: Shape, padding: int) -> None:
    """A ``size`` window must fit the input padded by ``padding`` (both sides together)."""
    if size > min(prev.h, prev.w) + padding:
        raise section.error(
            f"size={size} is larger than its input ({prev.w}x{prev.h}, padded by {padding})",
            "size",
        )


@dataclass
class Walk:
    """A cfg's layers walked once, allocating nothing: ``build`` (each layer's output shape,
    the heads, the totals); ``makers[i]`` makes layer ``i``'s module, ``None`` when the
    layer's output is not known (an opaque layer, or one fed by one); ``unchecked``:
    ``(line, why)`` of each part of the cfg detforge does not run. (``build.shapes[i]`` of a
    layer without a maker is a placeholder.)"""

    build: Build
    makers: list[LayerMaker | None] = field(default_factory=list)
    unchecked: list[tuple[int, str]] = field(default_factory=list)


def walk_cfg(cfg: DarknetCfg) -> Walk:
    """Check ``cfg`` as building its network does, without allocating the network.

    A cfg parsed with ``opaque=True`` may hold what detforge does not run (opaque sections,
    an unsupported activation or ``channels``): each is noted in ``unchecked`` instead of
    raised, its output is unknown, and a layer fed by an unknown output gets only the checks
    that need no shape (which layers it reads, a head's anchors and mask); the rest is
    checked in full. Otherwise the first :class:`DetforgeError` is raised."""
    b = Build(cfg.net, cfg.width, cfg.height)
    walk = Walk(b)
    shape: Shape | None = Shape(cfg.channels, cfg.height, cfg.width)
    assert shape is not None
    if min(shape.c, shape.h, shape.w) < 1:
        raise cfg.net.error("width, height and channels must be positive")
    if cfg.net.opaque:
        walk.unchecked.append((cfg.net.line, f"[net]: {cfg.net.opaque}"))
    if shape.c != 3:
        err = cfg.net.unsupported(
            f"channels={shape.c} is not supported: detforge feeds the network RGB images "
            "(channels=3)",
            "channels",
        )
        if not cfg.opaque:
            raise err
        walk.unchecked.append((err.line or cfg.net.line, err.message))
    b.charge(cfg.net, activations=shape.c * shape.h * shape.w)
    for i, section in enumerate(cfg.layers):
        try:
            shape = _walk_layer(walk, section, i, shape)
        except Unsupported as exc:
            if not cfg.opaque:
                raise
            walk.unchecked.append((exc.line or section.line, exc.message))
            walk.makers.append(None)
            b.shapes.append(_UNKNOWN)
            shape = None
    if not b.heads and not walk.unchecked:
        raise cfg.net.error("the cfg has no [yolo] or [region] layer")
    return walk


def _walk_layer(walk: Walk, section: Section, i: int, prev: Shape | None) -> Shape | None:
    """Check layer ``i`` (input ``prev``, ``None``: not known) and add it to ``walk``; its
    output shape (``None``: not known)."""
    b = walk.build
    if section.opaque:
        if section.name == "gaussian_yolo":  # Darknet reads its mask, anchors... as [yolo]'s
            head_spec(section, i, None)
        raise section.unsupported(section.opaque)
    srcs = _inputs(section, i)
    if any(walk.makers[s] is None for s in srcs) or (prev is None and section.name != "route"):
        if section.name in ("yolo", "region"):
            head_spec(section, i, None)
        if section.has("activation"):
            _activation(section, "linear")
        walk.makers.append(None)
        b.shapes.append(_UNKNOWN)
        return None
    # only a [route] gets here with an unknown ``prev``, and it does not read it
    make, shape = _build_layer(section, i, _UNKNOWN if prev is None else prev, b)
    if min(shape.c, shape.h, shape.w) < 1:
        raise section.error(f"the layer's output would be empty ({shape.c}x{shape.h}x{shape.w})")
    if section.name not in ("yolo", "region"):  # a head passes its input on as it is
        b.charge(section, activations=shape.c * shape.h * shape.w)
    walk.makers.append(make)
    b.shapes.append(shape)
    return shape


class DarknetNetwork(nn.Module):
    """A Darknet network in PyTorch. ``layers[i]`` is cfg layer ``i``; ``heads`` its decoders.

    ``forward(x)``: ``x`` (B, channels, H, W) float RGB in [0, 1] (H, W multiples of the
    network's total stride) -> list of raw head inputs (B, n * (5 + classes), h, w).
    """

    def __init__(self, cfg: DarknetCfg) -> None:
        super().__init__()
        self.cfg = cfg
        self.header = WeightsHeader()
        walk = walk_cfg(cfg)
        if walk.unchecked:  # only a cfg parsed with opaque=True gets here
            line, why = walk.unchecked[0]
            raise Unsupported(why, path=cfg.path, line=line)
        b = walk.build
        layers = [make() for make in walk.makers if make is not None]
        self.layers = nn.ModuleList(layers)
        self.heads: tuple[HeadSpec, ...] = tuple(b.heads)
        self.out_shapes = [(s.c, s.h, s.w) for s in b.shapes]
        needed = {s for layer in layers for s in layer.sources}
        self._keep = frozenset(needed)
        self.is_fused = False

    @property
    def num_classes(self) -> int:
        return self.heads[-1].classes

    @property
    def input_size(self) -> tuple[int, int]:
        """(width, height) from ``[net]``."""
        return self.cfg.width, self.cfg.height

    @property
    def letter_box(self) -> bool:
        return self.cfg.letter_box

    @property
    def nms_kind(self) -> str:
        """The last layer's NMS settings decide, as in ``darknet detector test``/``map``."""
        return (
            self.heads[-1].nms_kind if self.heads[-1].index == len(self.layers) - 1 else "default"
        )

    @property
    def beta_nms(self) -> float:
        return self.heads[-1].beta_nms

    def fused(self) -> DarknetNetwork:
        """An inference copy with every BatchNorm folded into its convolution (about 20%
        faster on a CPU, outputs within ~1e-5). It cannot be trained or written as .weights."""
        import copy

        from torch.nn.utils.fusion import fuse_conv_bn_eval

        out = copy.deepcopy(self).eval()
        for layer in out.layers:
            if isinstance(layer, ConvLayer) and layer.bn is not None:
                layer.conv = fuse_conv_bn_eval(layer.conv, layer.bn)
                layer.bn = None
        out.is_fused = True
        return out

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs: list[torch.Tensor | None] = []
        raw: list[torch.Tensor] = []
        for i, layer in enumerate(self.layers):
            x = layer(x, outputs)
            if isinstance(layer, HeadLayer):
                raw.append(x)
            outputs.append(x if i in self._keep else None)
        return raw
