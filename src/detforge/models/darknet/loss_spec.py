"""A ``[yolo]`` section's training settings (:class:`YoloLossSpec`), read as Darknet's
``parser.c`` reads them, for :class:`~detforge.train.darknet_loss.DarknetYoloLoss`; also run
by ``darknet-cfg`` on the cfg it writes (:mod:`detforge.formats.darknet.cfg_check`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from detforge.errors import DetforgeError
from detforge.models.box_ops import IOU_KINDS

if TYPE_CHECKING:
    from detforge.models.darknet.cfg import Section


@dataclass(frozen=True)
class YoloLossSpec:
    """One ``[yolo]`` head's training settings (Darknet's defaults). ``anchors`` are *all* the
    cfg's anchors ``(w, h)`` in network-input pixels; ``mask`` the indices this head predicts."""

    classes: int
    anchors: tuple[tuple[float, float], ...]
    mask: tuple[int, ...]
    ignore_thresh: float = 0.5
    iou_thresh: float = 1.0
    iou_thresh_kind: str = "iou"
    iou_normalizer: float = 0.75
    cls_normalizer: float = 1.0
    obj_normalizer: float = 1.0
    iou_loss: str = "mse"
    scale_x_y: float = 1.0
    new_coords: bool = False
    label_smooth_eps: float = 0.0
    objectness_smooth: bool = False
    max_delta: float | None = None
    """Clip of each IoU-loss box gradient; None: no clip (Darknet's ``FLT_MAX``)."""
    focal_loss: bool = False
    truth_thresh: float = 1.0
    class_multipliers: tuple[float, ...] | None = None
    """Darknet's ``classes_multipliers`` from ``counters_per_class`` (:func:`class_multipliers`);
    None without it."""

    @classmethod
    def of_section(cls, section: Section) -> YoloLossSpec:
        """From a parsed ``[yolo]`` section: a bad value is a DetforgeError naming the cfg file
        and the line of its key."""
        try:
            return cls.from_options(section.options, where="")
        except _BadKey as exc:
            raise section.error(exc.message, exc.key) from None

    @classmethod
    def from_options(cls, options: Mapping[str, str], *, where: str = "[yolo]") -> YoloLossSpec:
        """From a ``[yolo]`` section's raw ``key -> value`` strings (errors start with
        ``where``)."""

        def fail(key: str, message: str) -> _BadKey:
            return _BadKey(f"{where}: {message}" if where else message, key)

        def num(key: str, default: float) -> float:
            raw = options.get(key)
            if raw is None:
                return default
            try:
                return float(raw)
            except ValueError:
                raise fail(key, f"{key}={raw} is not a number") from None

        def nums(key: str) -> list[float]:
            raw = options.get(key, "")
            try:
                return [float(v) for v in raw.split(",") if v.strip()]
            except ValueError:
                raise fail(key, f"{key}={raw} is not a list of numbers") from None

        values = nums("anchors")
        anchors = tuple((values[2 * k], values[2 * k + 1]) for k in range(len(values) // 2))
        total = int(num("num", 1))
        mask = tuple(int(m) for m in nums("mask")) or tuple(range(total))
        if not anchors or any(not 0 <= m < len(anchors) for m in mask):
            raise fail("mask", f"mask= names anchors beyond the {len(anchors)} given")
        kind = options.get("iou_loss", "mse").lower()
        max_delta = num("max_delta", 0.0) if "max_delta" in options else None
        if max_delta is not None and not max_delta > 0:
            raise fail("max_delta", f"max_delta={options['max_delta']} must be > 0")
        classes = int(num("classes", 20))
        try:
            multipliers = class_multipliers(
                options.get("counters_per_class"), classes, max_delta, where=""
            )
        except DetforgeError as exc:
            raise fail("counters_per_class", exc.message.removeprefix(": ")) from None
        thresh_kind = options.get("iou_thresh_kind", "iou").lower()
        return cls(
            classes=classes,
            anchors=anchors,
            mask=mask,
            ignore_thresh=num("ignore_thresh", 0.5),
            iou_thresh=num("iou_thresh", 1.0),
            iou_thresh_kind=thresh_kind if thresh_kind in IOU_KINDS else "iou",
            iou_normalizer=num("iou_normalizer", 0.75),
            cls_normalizer=num("cls_normalizer", 1.0),
            obj_normalizer=num("obj_normalizer", 1.0),
            iou_loss=kind if kind in ("mse", *IOU_KINDS) else "iou",  # Darknet: else IOU
            scale_x_y=num("scale_x_y", 1.0),
            new_coords=num("new_coords", 0) != 0,
            label_smooth_eps=num("label_smooth_eps", 0.0),
            objectness_smooth=int(num("objectness_smooth", 0)) != 0,  # Darknet reads an int
            max_delta=max_delta,
            focal_loss=int(num("focal_loss", 0)) != 0,
            truth_thresh=num("truth_thresh", 1.0),
            class_multipliers=multipliers,
        )


class _BadKey(DetforgeError):
    """A bad value of ``key`` (:meth:`YoloLossSpec.of_section` names its line)."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


def ineffective_keys(options: Mapping[str, str]) -> list[str]:
    """``key=value`` settings of a ``[yolo]`` section that do not change training, in Darknet
    and therefore here: ``cls_normalizer`` other than 1 without ``counters_per_class``
    (``delta_yolo_class`` applies it only with the class multipliers)."""
    raw = options.get("cls_normalizer")
    if raw is None or "counters_per_class" in options:
        return []
    try:
        value = float(raw)
    except ValueError:
        return []  # from_options names the bad number
    return (
        []
        if value == 1.0
        else [f"cls_normalizer={raw} (Darknet applies it only with counters_per_class)"]
    )


def class_multipliers(
    counters: str | None, classes: int, max_delta: float | None, *, where: str = "[yolo]"
) -> tuple[float, ...] | None:
    """``counters_per_class=n0,n1,...`` (boxes per class) -> Darknet's per-class multipliers
    ``max(n) / n_c`` (counts below 1 read as 1; each capped at ``max_delta``), or None when
    the key is absent. The list must have one count per class."""
    if counters is None:
        return None
    try:
        values = [max(int(float(v)), 1) for v in counters.split(",")]
    except ValueError:
        raise DetforgeError(
            f"{where}: counters_per_class={counters} is not a list of box counts"
        ) from None
    if len(values) != classes:
        raise DetforgeError(
            f"{where}: counters_per_class has {len(values)} values for classes={classes}; "
            "give one box count per class"
        )
    top = float(max(values))
    cap = float("inf") if max_delta is None else max_delta
    return tuple(min(top / v, cap) for v in values)


__all__ = ["YoloLossSpec", "class_multipliers", "ineffective_keys"]
