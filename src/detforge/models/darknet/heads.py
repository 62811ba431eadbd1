"""What a ``[yolo]`` / ``[region]`` head decodes, checked from its cfg section.

:func:`head_spec` reads a head's ``classes``, ``num``, ``anchors`` (positive width,height
pairs), ``mask`` (indices into ``anchors``), ``nms_kind`` ...; the checks that need no shape
come first, so that a cfg rewrite can run them on a head whose input it cannot know (after an
opaque layer, :mod:`detforge.models.darknet.cfg`).
"""

from __future__ import annotations

from dataclasses import dataclass

from detforge.errors import clip
from detforge.models.darknet.budget import Shape
from detforge.models.darknet.cfg import Section

NMS_KINDS = ("default", "greedynms", "diounms")


@dataclass(frozen=True)
class HeadSpec:
    """What one ``[yolo]`` / ``[region]`` layer needs to decode its input.

    ``anchors`` are this head's (w, h) pairs: input pixels for ``[yolo]`` (already picked by
    ``mask``), grid cells for ``[region]``.
    """

    kind: str
    index: int
    classes: int
    anchors: tuple[tuple[float, float], ...]
    scale_x_y: float = 1.0
    new_coords: bool = False
    nms_kind: str = "default"
    beta_nms: float = 0.6
    softmax: bool = False


def head_spec(section: Section, i: int, prev: Shape | None) -> HeadSpec:
    """The :class:`HeadSpec` of head ``section`` (cfg layer ``i``); ``prev``: the shape of
    its input, which must have ``(classes + 5) * anchors`` channels (``None``: not known, that
    check is skipped)."""
    classes = section.get_int("classes", 20)
    num = section.get_int("num", 1)
    anchors = section.get_floats("anchors") or []
    if any(a <= 0 for a in anchors):
        raise section.error(
            f"anchors={clip(section.get_str('anchors', ''))} must be positive", "anchors"
        )
    if len(anchors) % 2:
        raise section.error(
            f"anchors= has {len(anchors)} numbers; they come in width,height pairs", "anchors"
        )
    if num < 1:
        raise section.error(f"num={num} must be positive", "num")
    if classes < 1:
        raise section.error(f"classes={classes} must be positive", "classes")
    pairs = [(anchors[2 * k], anchors[2 * k + 1]) for k in range(len(anchors) // 2)]
    if section.name == "region":
        if section.get_int("coords", 4) != 4:
            raise section.unsupported("only coords=4 is supported", "coords")
        chosen = pairs[:num]
        if len(chosen) < num:
            raise section.error(
                f"anchors= has {len(pairs)} pairs, num={num} needs {num}", "anchors"
            )
        spec = HeadSpec(
            "region", i, classes, tuple(chosen), softmax=section.get_int("softmax", 0) != 0
        )
    else:
        mask = section.get_ints("mask")
        if mask is None and num > len(pairs):
            raise section.error(f"num={num} needs {num} anchors, anchors= has {len(pairs)}", "num")
        mask = list(range(num)) if mask is None else mask
        if any(not 0 <= m < len(pairs) for m in mask):
            raise section.error(
                f"mask={clip(section.get_str('mask', ''))} names anchors beyond the "
                f"{len(pairs)} given",
                "mask",
            )
        nms_kind = section.get_str("nms_kind", "default")
        if nms_kind not in NMS_KINDS:
            raise section.unsupported(
                f"nms_kind={clip(nms_kind)} is not supported ({', '.join(NMS_KINDS)})", "nms_kind"
            )
        spec = HeadSpec(
            "yolo",
            i,
            classes,
            tuple(pairs[m] for m in mask),
            scale_x_y=section.get_float("scale_x_y", 1.0),
            new_coords=section.get_int("new_coords", 0) != 0,
            nms_kind=nms_kind,
            beta_nms=section.get_float("beta_nms", 0.6),
        )
    need = len(spec.anchors) * (classes + 5)
    if prev is not None and prev.c != need:
        raise section.error(
            f"the layer before has filters={prev.c}, but classes={classes} with "
            f"{len(spec.anchors)} anchors needs filters={need}"
        )
    return spec
