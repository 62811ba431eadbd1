"""What a Darknet network costs, from its cfg's shapes, before torch allocates anything.

The network builder (:mod:`detforge.models.darknet.network`) walks the layers once with a
:class:`Build`: each layer's output :class:`Shape` (channels, height, width and the stride
reached: input pixels per output cell), and the running totals it checks at every layer --
:data:`MAX_PARAM_BYTES` (float32 parameters and BatchNorm statistics),
:data:`MAX_ACTIVATION_BYTES` (one image's float32 activations: every layer's output, as
training keeps them, plus the padded copy a padded ``[maxpool]`` makes) and :data:`MAX_MACS`
(one image's multiply-adds, the time a forward pass takes). A cfg past one is an error at the
layer where the total crosses it, with the estimate. The range of each key on its own is
checked before, when the cfg is parsed (:data:`detforge.models.darknet.cfgkeys.LIMITS`).

Layers that a ``[route]``, ``[shortcut]`` or ``[sam]`` joins must have one size; when they do
not because ``[net]`` width/height are no multiple of the stride the network reached,
:meth:`Build.size_mismatch` says so at that ``[net]`` key, with the nearest sizes that work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from detforge.errors import DetforgeError
from detforge.models.darknet.cfg import Section

if TYPE_CHECKING:
    from detforge.models.darknet.heads import HeadSpec

MAX_PARAM_BYTES = 4 * 2**30
"""The largest network detforge builds, in bytes of float32 parameters (4 GiB; the biggest
stock cfg, yolov4, has about 250 MiB)."""

MAX_ACTIVATION_BYTES = 8 * 2**30
"""The most float32 activation memory one image may need, in bytes (8 GiB: yolov4 at 608x608
needs 0.6 GiB, at 1280x1280 2.9 GiB; yolov3-tiny at 8192x8192 would need 12 GiB)."""

MAX_MACS = 4 * 10**12
"""The most multiply-adds (and max-pool comparisons) one image's forward pass may take (4e12:
yolov4 takes 6.4e10 at 608x608 and 2.8e11 at 1280x1280; a CPU does about 1e11 a second)."""

_FLOAT_BYTES = 4


@dataclass
class Shape:
    """A layer's output: ``c`` channels of ``h`` x ``w`` cells. ``stride``: input pixels per
    cell ``(x, y)``; ``need``: the largest stride on the way from the input, which [net]
    width/height must be multiples of for every size on the way to divide evenly."""

    c: int
    h: int
    w: int
    stride: tuple[int, int] = (1, 1)
    need: tuple[int, int] = (1, 1)

    def strided(self, c: int, h: int, w: int, sx: int, sy: int) -> Shape:
        """The output ``(c, h, w)`` of a layer with strides ``sx``, ``sy`` over this one."""
        st = (self.stride[0] * sx, self.stride[1] * sy)
        return Shape(c, h, w, st, (max(self.need[0], st[0]), max(self.need[1], st[1])))

    def upsampled(self, factor: int) -> Shape:
        """This shape upsampled ``factor`` times."""
        st = (max(1, self.stride[0] // factor), max(1, self.stride[1] // factor))
        return Shape(self.c, self.h * factor, self.w * factor, st, self.need)


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:,.1f} GiB"


@dataclass
class Build:
    """The walk over a cfg's layers: ``shapes[i]`` is layer ``i``'s output, ``heads`` the
    head specs so far, then the running totals (float32 values, multiply-adds) and the largest
    stride reached on each axis."""

    net: Section
    width: int
    height: int
    shapes: list[Shape] = field(default_factory=list)
    heads: list[HeadSpec] = field(default_factory=list)
    params: int = 0
    activations: int = 0
    macs: int = 0

    def charge(
        self,
        section: Section,
        *,
        params: int = 0,
        activations: int = 0,
        macs: int = 0,
        commit: bool = True,
    ) -> None:
        """Add ``params`` parameters and ``activations`` activation values (float32 counts) and
        ``macs`` multiply-adds of ``section``; a total past :data:`MAX_PARAM_BYTES` /
        :data:`MAX_ACTIVATION_BYTES` / :data:`MAX_MACS` is an error at its line.
        ``commit=False`` only checks."""
        total_params = (self.params + params) * _FLOAT_BYTES
        if total_params > MAX_PARAM_BYTES:
            raise section.error(
                f"the network would have about {_gib(total_params)} of parameters, above "
                f"detforge's limit of {_gib(MAX_PARAM_BYTES)}: check filters= and size="
            )
        total = (self.activations + activations) * _FLOAT_BYTES
        if total > MAX_ACTIVATION_BYTES:
            where = "its input" if section.name == "net" else "the layers up to this one"
            raise section.error(
                f"one image would need about {_gib(total)} of activations for {where}, "
                f"above detforge's limit of {_gib(MAX_ACTIVATION_BYTES)}: lower width/height "
                "in [net]" + ("" if section.name == "net" else " or this layer's size/padding")
            )
        if self.macs + macs > MAX_MACS:
            raise section.error(
                f"one image's forward pass would take about {(self.macs + macs) / 1e12:,.1f}e12 "
                f"multiply-adds up to this layer, above detforge's limit of "
                f"{MAX_MACS / 1e12:g}e12: check filters=, size= and width/height in [net]"
            )
        if commit:
            self.params += params
            self.activations += activations
            self.macs += macs

    def size_mismatch(
        self, section: Section, key: str, what: str, joined: list[Shape]
    ) -> DetforgeError:
        """The error for ``what`` (the layers ``section`` joins by ``key``, their shapes
        ``joined``) having different sizes. Layers of one stride differ only when ``[net]``
        width or height is no multiple of a stride on their way: then the error is at that
        key; else (layers of different strides) at ``section``."""
        if len({s.stride for s in joined}) > 1:
            return section.error(f"{what} have different sizes", key)
        need = (max(s.need[0] for s in joined), max(s.need[1] for s in joined))
        for name, size, stride in (
            ("width", self.width, need[0]),
            ("height", self.height, need[1]),
        ):
            if size % stride:
                low = size // stride * stride
                use = f"{low} or {low + stride}" if low else str(stride)
                return self.net.error(
                    f"{name}={size} is not a multiple of {stride}, the stride this network "
                    f"reaches: {what}, joined by [{section.name}] on line {section.line}, come "
                    f"out with different sizes -- use {name}={use}",
                    name,
                )
        return section.error(f"{what} have different sizes", key)
