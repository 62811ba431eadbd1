"""The Python API for notebooks and the engine behind ``detforge predict``/``map``.

>>> import detforge
>>> model = detforge.load("runs/train/obj/weights/best.pt")      # or "model.onnx"
>>> preds = model.predict(["a.jpg", pil_image, rgb_array], conf=0.25)
>>> preds[0].boxes, preds[0].scores, preds[0].classes            # (K, 4) xyxy px, (K,), (K,)

Inference is batched under one preprocessing rule (:class:`detforge.data.letterbox.InputRule`,
the same for ``.pt`` and ``.onnx`` models, every batch size and every command): each image on
its own is resized, aspect kept, to fit the model's input square ``imgsz`` x ``imgsz`` (image
files are decoded straight to that size) and centred on grey (114) padding; the detector runs
once per batch, NMS keeps at most ``max_det`` boxes per image and the boxes are mapped back to
original-image pixels (:func:`detforge.data.letterbox.unletterbox_boxes`). An ONNX export
records its rule in its metadata; a fixed-size export is fed exactly that size.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from detforge.data.images import load_image
from detforge.data.letterbox import InputRule, RatioPad, unletterbox_boxes
from detforge.errors import DetforgeError
from detforge.predict.batching import batched, letterbox_batch, prefetch
from detforge.predict.sources import Frame, open_source
from detforge.utils.cpu import torch_threads

if TYPE_CHECKING:
    import torch

    from detforge.data.dataset import Dataset


@dataclass(frozen=True, eq=False)
class Prediction:
    """Detections on one image, sorted by decreasing score.

    ``boxes`` ``(K, 4)`` float32 xyxy in continuous pixels of the original image, ``scores``
    ``(K,)`` float32 in ``[0, 1]``, ``classes`` ``(K,)`` int64 0-based indices into
    ``class_names``; ``shape`` is the image's ``(height, width)`` and ``path`` its file (if any).
    """

    boxes: NDArray[np.float32]
    scores: NDArray[np.float32]
    classes: NDArray[np.int64]
    class_names: tuple[str, ...]
    shape: tuple[int, int]
    path: str | None = None

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def names(self) -> list[str]:
        """Class name of each box, ``(K,)``."""
        return [self.class_names[int(c)] for c in self.classes]

    def only(self, mask: NDArray[np.bool_]) -> Prediction:
        """The detections selected by a ``(K,)`` boolean mask (or index array)."""
        return replace(self, boxes=self.boxes[mask], scores=self.scores[mask],
                       classes=self.classes[mask])  # fmt: skip

    def draw(self, image: Any = None, *, line_width: int | None = None) -> Any:
        """The boxes drawn on ``image`` (a path, PIL image or RGB array; default: this
        prediction's own image file) as a new Pillow image, e.g. to show in a notebook."""
        from detforge.predict.draw import draw_boxes

        if image is None:
            if self.path is None:
                raise DetforgeError("this prediction has no image file; pass the image")
            image = self.path
        if isinstance(image, (str, os.PathLike)):
            image = load_image(image).image
        return draw_boxes(image, self.boxes, self.classes, scores=self.scores,
                          class_names=self.class_names, line_width=line_width)  # fmt: skip


def _as_frame(item: Any, index: int, fit: tuple[int, int]) -> Frame:
    """A :class:`Frame` from a path, a Pillow image or an ``(H, W, 3)`` uint8 RGB array.
    Paths are decoded straight to the size that fits the input shape ``fit`` (as training
    and validation decode them)."""
    if isinstance(item, Frame):
        return item
    if isinstance(item, (str, os.PathLike)):
        path = os.fspath(item)
        image, orig = load_image(path, fit=fit)
        return Frame(image, Path(path).stem, path, index, orig)
    if hasattr(item, "convert") and hasattr(item, "size"):  # a Pillow image
        arr = np.asarray(item.convert("RGB"), dtype=np.uint8)
        return Frame(arr, f"image{index}", getattr(item, "filename", None) or None, index)
    arr = np.asarray(item)
    if arr.ndim == 2 and arr.dtype == np.uint8:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.dtype != np.uint8:
        raise DetforgeError(
            f"cannot predict on {type(item).__name__} of shape {getattr(arr, 'shape', '?')} "
            f"and dtype {getattr(arr, 'dtype', '?')}: give a path, a PIL image or an "
            "(H, W, 3) uint8 RGB array"
        )
    return Frame(np.ascontiguousarray(arr[:, :, :3]), f"image{index}", None, index)


class Predictor:
    """A loaded detector ready to predict; build one with :func:`load`.

    ``forward`` maps a ``(B, H, W, 3)`` uint8 RGB batch to the detector's eval output
    ``(B, A, 4 + C)`` (xyxy input pixels + class probabilities) as a torch tensor. ``rule``
    is the preprocessing rule (default: the ``imgsz`` square); ``fixed_shape`` is ``(H, W)``
    for models that only accept one input size (static ONNX exports).
    ``default_iou`` / ``default_map_conf`` / ``default_max_det``: what ``iou=None``,
    ``predict_dataset(conf=None)`` and ``max_det=None`` mean for this kind of model;
    ``full_resolution``: images must be decoded at full size (the model resizes them itself).
    A Darknet network uses Darknet's values (:mod:`detforge.predict.darknet`).
    """

    default_iou = 0.7
    default_map_conf = 0.001
    default_max_det = 300
    full_resolution = False

    def __init__(
        self,
        forward: Callable[[NDArray[np.uint8]], torch.Tensor],
        class_names: Sequence[str],
        *,
        backend: str,
        imgsz: int = 640,
        rule: InputRule | None = None,
        fixed_shape: tuple[int, int] | None = None,
        source: str | None = None,
    ) -> None:
        self.forward = forward
        self.class_names = tuple(class_names)
        self.backend = backend
        self.fixed_shape = fixed_shape
        self.rule = rule or (InputRule(*fixed_shape) if fixed_shape else InputRule.square(imgsz))
        self.imgsz = max(self.rule.shape)
        self.source = source

    @property
    def _side_threads(self) -> int | None:
        """Torch threads for the work around the forward pass (resize, decoding, NMS): one
        when another runtime runs the network, so that torch's spinning OpenMP threads
        leave the cores to it (:func:`detforge.utils.cpu.torch_threads`); else unchanged."""
        return None if self.backend.startswith("torch") else 1

    def __repr__(self) -> str:
        return (
            f"Predictor({self.source or ''!r}, backend={self.backend!r}, "
            f"classes={len(self.class_names)}, input={self.rule.height}x{self.rule.width})"
        )

    def input_rule(self, imgsz: int | None = None) -> InputRule:
        """The preprocessing rule for an input size ``imgsz`` (default: the model's own)."""
        if imgsz is None or (imgsz, imgsz) == self.rule.shape:
            return self.rule
        if self.fixed_shape is not None:
            h, w = self.fixed_shape
            raise DetforgeError(
                f"this model takes {h}x{w} inputs only (a fixed-size ONNX export); leave out "
                "--imgsz, or export with --dynamic to choose the size when predicting"
            )
        return replace(self.rule, height=int(imgsz), width=int(imgsz))

    def predict_frames(
        self,
        frames: Iterable[Any],
        *,
        conf: float = 0.25,
        iou: float | None = None,
        max_det: int | None = None,
        imgsz: int | None = None,
        batch: int = 16,
    ) -> Iterator[tuple[Frame, Prediction]]:
        """Lazily predict on ``frames`` (Frames, paths, PIL images or arrays), ``batch`` at a
        time, yielding ``(frame, prediction)`` in input order. Paths are decoded straight to
        the input size, exactly as the training/validation loader decodes them."""
        from detforge.models.postprocess import postprocess

        iou = self.default_iou if iou is None else iou
        max_det = self.default_max_det if max_det is None else max_det
        _check_thresholds(conf, iou, max_det, batch)
        rule = self.input_rule(imgsz)
        counter = iter(range(1 << 62))
        gen = (_as_frame(f, next(counter), rule.shape) for f in frames)
        prepared = ((group, *letterbox_batch(group, rule)) for group in batched(gen, batch))
        for group, arr, maps in prefetch(prepared):
            out = self.forward(arr)
            with torch_threads(self._side_threads):  # one photo a call via onnxruntime: +10-18%
                dets = postprocess(out, conf=conf, iou=iou, max_det=max_det)
                preds = [
                    self._to_prediction(f, b, s, c, ratio_pad)
                    for f, ratio_pad, (b, s, c) in zip(group, maps, dets, strict=True)
                ]
            yield from zip(group, preds, strict=True)

    def _to_prediction(
        self, frame: Frame, boxes: Any, scores: Any, classes: Any, ratio_pad: RatioPad
    ) -> Prediction:
        b = unletterbox_boxes(boxes.float().cpu().numpy(), ratio_pad, frame.shape)
        return Prediction(
            boxes=b.astype(np.float32),
            scores=scores.float().cpu().numpy().astype(np.float32),
            classes=classes.cpu().numpy().astype(np.int64),
            class_names=self.class_names,
            shape=frame.shape,
            path=frame.path,
        )

    def predict(
        self,
        images: Any,
        *,
        conf: float = 0.25,
        iou: float | None = None,
        max_det: int | None = None,
        imgsz: int | None = None,
        batch: int = 16,
    ) -> list[Prediction]:
        """Predict on ``images``: one or a list of paths, PIL images or ``(H, W, 3)`` uint8 RGB
        arrays (mixed is fine). A single path to a folder, image list, ``.data`` file or video
        is expanded as ``detforge predict`` does. Returns one :class:`Prediction` per image.

        ``conf``: minimum class probability; ``iou``: NMS overlap threshold; ``max_det``: most
        boxes kept per image; ``imgsz``: long side of the network input in pixels (default:
        the size the model was trained at); ``batch``: images per forward pass.
        """
        if isinstance(images, (str, os.PathLike)):
            p = Path(images)
            items: Iterable[Any] = open_source(p) if not _is_image_path(p) else [p]
        elif (isinstance(images, np.ndarray) and images.ndim == 3) or hasattr(images, "convert"):
            items = [images]
        else:
            items = list(images)
        return [
            p
            for _, p in self.predict_frames(
                items, conf=conf, iou=iou, max_det=max_det, imgsz=imgsz, batch=batch
            )
        ]

    def predict_dataset(
        self,
        ds: Dataset,
        *,
        conf: float | None = None,
        iou: float | None = None,
        max_det: int | None = None,
        imgsz: int | None = None,
        batch: int = 16,
        progress: bool | None = None,
    ) -> Dataset:
        """Predict on every image of ``ds``; returns a Dataset with the same image table
        (paths, ids, splits; sizes read from the images) and score-carrying ``XYXY_PIXEL``
        boxes, ready for :func:`detforge.eval.evaluate` against ``ds``.

        The default ``conf`` (0.001; 0.005 for a Darknet network, as ``detector map``) keeps
        the low-confidence tail mAP needs.
        """
        conf = self.default_map_conf if conf is None else conf
        from detforge.data.boxes import BoxFormat
        from detforge.data.dataset import make_dataset
        from detforge.utils.progress import progress as bar

        if ds.num_classes != len(self.class_names):
            raise DetforgeError(
                f"the model knows {len(self.class_names)} classes "
                f"({', '.join(self.class_names[:5])}...) but the dataset has {ds.num_classes} "
                f"({', '.join(ds.class_names[:5])}...); use the model trained on this dataset"
            )
        paths = [str(p) for p in ds.images.path]
        widths = np.zeros(len(paths), dtype=np.int64)
        heights = np.zeros(len(paths), dtype=np.int64)
        parts: list[tuple[int, Prediction]] = []
        stream = self.predict_frames(
            paths, conf=conf, iou=iou, max_det=max_det, imgsz=imgsz, batch=batch
        )
        for f, pred in bar(stream, total=len(paths), desc="predict", unit="img", enabled=progress):
            heights[f.index], widths[f.index] = pred.shape
            parts.append((f.index, pred))
        n = [len(p) for _, p in parts]
        return make_dataset(
            ds.class_names,
            paths=paths,
            widths=widths,
            heights=heights,
            splits=list(ds.images.split),
            groups=list(ds.images.group),
            image_ids=ds.images.id,
            box_image=np.repeat([i for i, _ in parts], n).astype(np.int64),
            box_cls=np.concatenate([p.classes for _, p in parts] + [np.zeros(0, np.int64)]),
            box_coords=np.concatenate([p.boxes for _, p in parts] + [np.zeros((0, 4))]),
            box_format=BoxFormat.XYXY_PIXEL,
            score=np.concatenate([p.scores for _, p in parts] + [np.zeros(0)]),
            meta={"source": "predictions", "model": self.source},
        )


def _is_image_path(p: Path) -> bool:
    from detforge.data.imageformats import IMAGE_EXTENSIONS

    return p.suffix.lower() in IMAGE_EXTENSIONS


def _check_thresholds(conf: float, iou: float, max_det: int, batch: int) -> None:
    if not 0.0 <= conf <= 1.0:
        raise DetforgeError(f"conf must be between 0 and 1, got {conf}")
    if not 0.0 < iou <= 1.0:
        raise DetforgeError(f"iou must be above 0 and at most 1, got {iou}")
    if max_det < 1:
        raise DetforgeError(f"max_det must be at least 1, got {max_det}")
    if batch < 1:
        raise DetforgeError(f"batch must be at least 1, got {batch}")


def load(
    weights: str | os.PathLike[str],
    *,
    device: str | None = None,
    imgsz: int | None = None,
    fuse: bool = True,
    half: bool = False,
    cfg: str | os.PathLike[str] | None = None,
    names: str | os.PathLike[str] | Sequence[str] | None = None,
) -> Predictor:
    """Load a detforge checkpoint (``.pt``), an exported ONNX model (``.onnx``) or a Darknet
    network (``.weights`` with ``cfg=`` or the same-stem ``.cfg`` beside it) to predict.

    A Darknet network (also its ONNX export, run by onnxruntime) keeps Darknet's inference
    rules (:mod:`detforge.predict.darknet`; it runs at its cfg's size, ``imgsz`` does not
    apply); ``names`` (a ``.names`` file or a list) names its classes (default ``class0..``).

    ``device``: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ... (:mod:`detforge.utils.device`; default:
    CUDA when available; ONNX models run with onnxruntime on its CPU or CUDA provider).
    ``imgsz``: input size for :meth:`Predictor.predict` (default: the training size stored in
    the checkpoint, or the export's size). ``fuse`` folds batch-norm into convolutions (faster,
    same outputs). ``half`` runs a checkpoint in float16 on a CUDA device (about twice as
    fast; boxes within ~0.5 px).
    """
    path = Path(weights)
    if not path.is_file():
        raise DetforgeError("weights file not found", path=path)
    if imgsz is not None:
        InputRule.square(imgsz)  # a bad size is an error before the model loads
    from detforge.predict.loading import load_model_file

    m = load_model_file(path, device=device, fuse=fuse, half=half, cfg=cfg, names=names)
    if m.darknet is not None:
        from detforge.predict.darknet import DarknetPredictor

        w, h = m.darknet.settings.input_size
        if imgsz is not None and (imgsz, imgsz) != (h, w):
            raise DetforgeError(
                f"a Darknet network runs at its cfg's size ({w}x{h}); to change it, set "
                "width= and height= in the cfg instead of --imgsz", path=path,
            )  # fmt: skip
        return DarknetPredictor(m.darknet, m.class_names, forward=m.forward, source=str(path))
    pred = Predictor(
        m.forward,
        m.class_names,
        backend=m.backend,
        rule=m.rule,
        fixed_shape=m.rule.shape if m.fixed else None,
        source=str(path),
    )
    if imgsz is not None:
        pred.rule = pred.input_rule(imgsz)
        pred.imgsz = max(pred.rule.shape)
    return pred
