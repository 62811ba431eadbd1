"""A :class:`~detforge.predict.api.Predictor` for Darknet networks (``.cfg`` + ``.weights``).

It keeps Darknet's inference semantics instead of detforge's: images decoded at full
resolution and stretched to the cfg's ``width x height`` (letterboxed only when the cfg says
``letter_box=1``), boxes decoded per ``[yolo]``/``[region]`` layer, score = objectness x class
probability, per-class NMS with the cfg's ``nms_kind``/``beta_nms`` at ``nms=0.45``, every
(box, class) above the threshold a detection (``darknet detector test``). ``conf`` is
Darknet's ``-thresh`` (objectness and class score), ``iou`` its ``nms``; ``max_det`` keeps the
best ``max_det`` detections of an image (Darknet has no cap; the default 300 rarely binds).
``imgsz`` is ignored: a Darknet network runs at its cfg size.

The predictor needs only a :class:`DarknetModel`: a rows function (the network plus
Darknet's per-head decoding, run by PyTorch or by onnxruntime for an ONNX export) and the
:class:`DarknetSettings` the post-processing reads (input size, ``letter_box``, NMS kind),
which a :class:`~detforge.models.darknet.network.DarknetNetwork` and the metadata of a
Darknet ONNX export both provide.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from detforge.errors import DetforgeError
from detforge.predict.api import Prediction, Predictor, _as_frame, _check_thresholds
from detforge.predict.batching import batched, prefetch
from detforge.predict.sources import Frame
from detforge.utils.cpu import torch_threads

if TYPE_CHECKING:
    import torch

    from detforge.data.dataset import Dataset
    from detforge.models.darknet.heads import HeadSpec
    from detforge.models.darknet.network import DarknetNetwork

# (x (B, 3, net_h, net_w), thresh) -> each image's rows with objectness above thresh
RowsAbove = Callable[["torch.Tensor", float], list["torch.Tensor"]]


@dataclass(frozen=True)
class DarknetSettings:
    """What Darknet's inference needs besides the network's outputs: ``input_size``
    ``(width, height)`` of ``[net]``, ``letter_box``, the NMS kind and ``beta_nms`` that
    decide (the last layer's), ``num_classes`` and each head's :class:`HeadSpec`."""

    input_size: tuple[int, int]
    letter_box: bool
    nms_kind: str
    beta_nms: float
    num_classes: int
    heads: tuple[HeadSpec, ...] = ()

    @classmethod
    def of_network(cls, net: DarknetNetwork) -> DarknetSettings:
        return cls(net.input_size, bool(net.letter_box), net.nms_kind, float(net.beta_nms),
                   int(net.num_classes), tuple(net.heads))  # fmt: skip

    def to_meta(self) -> dict[str, Any]:
        """Plain JSON types (the ``darknet`` entry of an ONNX export's metadata)."""
        return {
            "input_size": list(self.input_size),
            "letter_box": self.letter_box,
            "nms_kind": self.nms_kind,
            "beta_nms": self.beta_nms,
            "classes": self.num_classes,
            "heads": [asdict(h) for h in self.heads],
        }

    @classmethod
    def from_meta(cls, meta: Any, *, path: str | os.PathLike[str] | None = None) -> DarknetSettings:
        """:meth:`to_meta` read back; anything missing or out of range is a DetforgeError."""
        from detforge.models.darknet.heads import NMS_KINDS

        try:
            w, h = (int(v) for v in meta["input_size"])
            heads = tuple(_head_from_meta(d) for d in meta["heads"])
            out = cls((w, h), bool(meta["letter_box"]), str(meta["nms_kind"]),
                      float(meta["beta_nms"]), int(meta["classes"]), heads)  # fmt: skip
            if min(w, h) < 1 or out.num_classes < 1 or out.nms_kind not in NMS_KINDS:
                raise ValueError("input size, classes or nms_kind out of range")
            if any(hd.kind not in ("yolo", "region") or hd.nms_kind not in NMS_KINDS
                   or hd.classes != out.num_classes for hd in heads):  # fmt: skip
                raise ValueError("a head's kind, classes or nms_kind")
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise DetforgeError(
                f"the Darknet metadata of this ONNX file is corrupt ({str(exc)[:80]}); export "
                "the network again with 'detforge export X.weights --to onnx'",
                path=path,
            ) from None
        return out


def _head_from_meta(d: Any) -> HeadSpec:
    """One ``heads`` entry of the metadata (``dataclasses.asdict`` of a HeadSpec) read back."""
    from detforge.models.darknet.heads import HeadSpec

    return HeadSpec(
        kind=str(d["kind"]),
        index=int(d["index"]),
        classes=int(d["classes"]),
        anchors=tuple((float(a), float(b)) for a, b in d["anchors"]),
        scale_x_y=float(d["scale_x_y"]),
        new_coords=bool(d["new_coords"]),
        nms_kind=str(d["nms_kind"]),
        beta_nms=float(d["beta_nms"]),
        softmax=bool(d.get("softmax", False)),
    )


@dataclass(frozen=True)
class DarknetModel:
    """A Darknet network ready to run: ``rows`` maps ``(B, 3, net_h, net_w)`` float RGB in
    [0, 1] on ``device`` to the decoded rows ``(B, N, 5 + C)`` of
    :func:`~detforge.models.darknet.model.forward_rows` (cx, cy, w, h relative to the input,
    objectness, class probabilities); ``settings`` is what the post-processing reads;
    ``backend`` names the runtime (``torch-darknet``, ``onnxruntime-darknet``);
    ``cpu_batch`` the images per ``rows`` call on a CPU (1: a batch's feature maps leave the
    cache; yolov3-tiny at 416, 2 threads: 25.7 images/s at batch 1, 16.5 at batch 8);
    ``above`` maps ``(x, thresh)`` to each image's rows with objectness above ``thresh``
    (:meth:`rows_above`) when the runtime can skip decoding the others (``None``: ``rows``
    filtered); ``one_thread_above`` makes such an ``(x, thresh)`` function for one of several
    concurrent CPU streams (one thread each, safe to call from several threads at once;
    ``None``: no streams); ``network`` the PyTorch network that ``rows`` runs (``None`` for
    an ONNX export)."""

    rows: Callable[[torch.Tensor], torch.Tensor]
    settings: DarknetSettings
    device: Any
    backend: str = "torch-darknet"
    cpu_batch: int = 1
    one_thread_above: Callable[[], RowsAbove] | None = None
    network: DarknetNetwork | None = None
    above: RowsAbove | None = None

    @classmethod
    def of_network(
        cls, net: DarknetNetwork, *, one_thread: Callable[[], DarknetNetwork] | None = None
    ) -> DarknetModel:
        """A PyTorch network (used as given: fuse it first for speed). ``one_thread`` gives
        the network the one-thread CPU streams run (default ``net``): a network packed for
        oneDNN is packed for the thread count it was packed under (yolov3-tiny packed on 2
        threads takes 110 ms a forward pass on 1 thread, packed on 1 thread 51 ms)."""
        from detforge.models.darknet.model import forward_above, forward_rows

        def rows(x: torch.Tensor) -> torch.Tensor:
            return forward_rows(net, x)

        def one_thread_above() -> RowsAbove:
            return above if one_thread is None else partial(forward_above, one_thread())

        above = partial(forward_above, net)
        return cls(rows, DarknetSettings.of_network(net), next(net.parameters()).device,
                   one_thread_above=one_thread_above, network=net, above=above)  # fmt: skip

    def rows_above(self, x: torch.Tensor, thresh: float) -> list[torch.Tensor]:
        """Input (B, 3, net_h, net_w) -> each image's decoded rows with objectness above
        ``thresh`` (K_i, 5 + C), in row order: all that Darknet's detection step reads
        (yolov3-tiny on a photo at 0.25: a handful of its 2,535 rows)."""
        from detforge.models.darknet.decode import rows_above

        return self.above(x, thresh) if self.above else rows_above(self.rows(x), thresh)


class DarknetPredictor(Predictor):
    """Predictor over a :class:`DarknetModel` (a PyTorch network or a Darknet ONNX export)."""

    default_iou = 0.45  # Darknet's nms for every detector command
    default_map_conf = 0.005  # validate_detector_map's thresh
    default_max_det = 1 << 30  # Darknet keeps every detection
    full_resolution = True  # Darknet resizes the decoded image itself

    def __init__(
        self,
        model: DarknetModel,
        class_names: Sequence[str],
        *,
        forward: Callable[[Any], Any] | None = None,
        source: str | None = None,
    ) -> None:
        w, h = model.settings.input_size
        super().__init__(forward or self._no_forward, class_names, backend=model.backend,
                         fixed_shape=(h, w), source=source)  # fmt: skip
        self.model = model
        self.settings = model.settings
        self.device = model.device
        self.clip = True

    def predict_dataset(self, ds: Dataset, **kwargs: Any) -> Dataset:
        """As :meth:`Predictor.predict_dataset`, with boxes not clipped to the image, as
        ``darknet detector map`` scores them."""
        self.clip = False
        try:
            return super().predict_dataset(ds, **kwargs)
        finally:
            self.clip = True

    @staticmethod
    def _no_forward(batch: Any) -> Any:  # pragma: no cover - load() passes the real one
        raise DetforgeError("this Darknet predictor has no batch forward; use predict_frames")

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
        """Lazily predict on ``frames``, ``batch`` images per forward pass (see the module).

        On a CPU a network runs one image per forward pass. When ``batch`` > 1 and torch
        may use several threads, the images of a batch run as that many concurrent streams
        of one thread each (resize, forward, decoding and NMS): several small passes keep
        the cores busier than one pass over every core (yolov3-tiny at 416 on 2 cores:
        37 images/s against 34 in onnxruntime, 31 against 29 in PyTorch, forward alone)."""
        import torch

        nms = self.default_iou if iou is None else iou
        max_det = self.default_max_det if max_det is None else max_det
        _check_thresholds(conf, nms, max_det, batch)
        counter = iter(range(1 << 62))
        gen = (_full_frame(f, next(counter)) for f in frames)
        finish = partial(self._prediction, conf=conf, nms=nms, max_det=max_det)
        cpu = self.device.type == "cpu"
        streams = min(batch, torch.get_num_threads()) if cpu and self.model.cpu_batch == 1 else 1
        if streams > 1 and self.model.one_thread_above is not None:
            yield from self._streams(gen, batch, streams, conf, finish)
            return

        def prepare(group: list[Frame]) -> tuple[list[Frame], torch.Tensor]:
            with torch_threads(self._side_threads):
                parts = [self._input(f) for f in group]
                return group, parts[0] if len(parts) == 1 else torch.cat(parts)

        step = self.model.cpu_batch if cpu else batch
        for group, x in prefetch(prepare(g) for g in batched(gen, batch)):
            with torch_threads(self._side_threads):
                rows = [
                    r
                    for i in range(0, len(x), step)
                    for r in self.model.rows_above(x[i : i + step].to(self.device), conf)
                ]
            for f, r in zip(group, rows, strict=True):
                with torch_threads(self._side_threads):
                    pred = finish(f, r)
                yield f, pred

    def _streams(
        self,
        frames: Iterator[Frame],
        batch: int,
        streams: int,
        conf: float,
        finish: Callable[[Frame, Any], Prediction],
    ) -> Iterator[tuple[Frame, Prediction]]:
        """The CPU path of :meth:`predict_frames` for ``streams`` > 1: each batch's images
        shared out to ``streams`` worker threads (frames decoded one batch ahead); a batch
        of one image runs here, on every thread."""
        from concurrent.futures import ThreadPoolExecutor

        import torch

        assert self.model.one_thread_above is not None
        rows = self.model.one_thread_above()
        budget = torch.get_num_threads()

        def one(f: Frame) -> Prediction:
            with torch_threads(1):
                return finish(f, rows(self._input(f), conf)[0])

        pool: ThreadPoolExecutor | None = None
        try:
            for group in prefetch(batched(frames, batch)):
                if len(group) == 1:
                    yield group[0], self._here(group[0], conf, finish)
                    continue
                if pool is None:
                    pool = ThreadPoolExecutor(streams, thread_name_prefix="detforge-stream")
                yield from zip(group, pool.map(one, group), strict=True)
        finally:
            if pool is not None:
                pool.shutdown()
                # a worker's torch.set_num_threads also sets the count new threads start with
                torch.set_num_threads(budget)

    def _here(
        self, f: Frame, conf: float, finish: Callable[[Frame, Any], Prediction]
    ) -> Prediction:
        """Frame ``f`` predicted on this thread, the network on every thread (torch's work
        around another runtime's forward pass, on :attr:`_side_threads`)."""
        with torch_threads(self._side_threads):
            x = self._input(f)
            return finish(f, self.model.rows_above(x.to(self.device), conf)[0])

    def _input(self, f: Frame) -> torch.Tensor:
        """Frame ``f``'s (1, 3, net_h, net_w) network input, Darknet's resize rule."""
        from detforge.models.darknet.preprocess import darknet_input

        net_w, net_h = self.settings.input_size
        return darknet_input(f.image, net_w, net_h, letter_box=self.settings.letter_box)

    def _prediction(
        self, f: Frame, rows: torch.Tensor, *, conf: float, nms: float, max_det: int
    ) -> Prediction:
        """Frame ``f``'s prediction from its decoded rows (N, 5 + C; all, or those above
        ``conf``): Darknet's thresholds and NMS, boxes mapped to the frame's size."""
        from detforge.models.darknet.nms import darknet_detections

        st = self.settings
        net_w, net_h = st.input_size
        ih, iw = f.image.shape[:2]
        d = darknet_detections(rows, iw, ih, net_w, net_h, letter_box=st.letter_box,
                               thresh=conf, nms=nms, nms_kind=st.nms_kind,
                               beta_nms=st.beta_nms)  # fmt: skip
        h, w = f.shape
        boxes = d.boxes.astype(np.float64) * np.array([w / iw, h / ih] * 2)
        if self.clip:  # Darknet clips what it draws/saves, not what `map` scores
            boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
            boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        k = min(max_det, len(d.scores))
        return Prediction(
            boxes=boxes[:k].astype(np.float32), scores=d.scores[:k], classes=d.classes[:k],
            class_names=self.class_names, shape=(h, w), path=f.path,
        )  # fmt: skip


def find_cfg(weights: Path) -> Path:
    """The same-stem ``.cfg`` beside ``weights`` (DetforgeError saying what to pass if none)."""
    cfg = weights.with_suffix(".cfg")
    if not cfg.is_file():
        raise DetforgeError(
            f"a Darknet .weights file needs its network .cfg: pass --cfg (cfg= in Python) or "
            f"put {cfg.name} beside the weights",
            path=weights,
        )
    return cfg


def resolve_names(names: str | os.PathLike[str] | Sequence[str] | None, count: int,
                  *, dataset_names: Sequence[str] | None = None) -> list[str]:  # fmt: skip
    """Class names: ``names`` (a .names file or a list), else the dataset's (when their count
    fits), else ``class0..class{count-1}``. A count that does not fit ``names`` is an error."""
    from detforge.formats.darknet import read_names

    if names is None:
        if dataset_names is not None and len(dataset_names) == count:
            return list(dataset_names)
        return [f"class{i}" for i in range(count)]
    where: str | None = None
    if isinstance(names, (str, os.PathLike)):
        where = os.fspath(names)
        listed = read_names(names)
    else:
        listed = list(names)
    if len(listed) != count:
        raise DetforgeError(
            f"{len(listed)} class names for a network with classes={count}", path=where
        )
    return listed


def _full_frame(item: Any, index: int) -> Frame:
    """A Frame decoded at full resolution (Darknet resizes the whole image itself)."""
    if isinstance(item, (str, os.PathLike)):
        from detforge.data.images import load_image

        path = os.fspath(item)
        image, _ = load_image(path)
        return Frame(image, Path(path).stem, path, index)
    return _as_frame(item, index, (0, 0))  # Frames, PIL images and arrays are used as given


def load_darknet_network(
    path: Path,
    *,
    cfg: str | os.PathLike[str] | None = None,
    names: str | os.PathLike[str] | Sequence[str] | None = None,
    device: Any = "cpu",
) -> tuple[DarknetNetwork, list[str]]:
    """``path`` a ``.weights`` / ``.conv.N`` (cfg: ``cfg`` or the same-stem file beside it)
    -> the network in eval mode on ``device`` and its class names (:func:`resolve_names`).
    A ``.cfg`` in place of the weights is an error: it would run random weights. (An untrained
    network comes from :func:`detforge.models.darknet.model.load_darknet` with no weights.)"""
    from detforge.models.darknet.model import load_darknet

    if path.suffix.lower() == ".cfg":
        raise DetforgeError(
            "this is a Darknet .cfg (the network), not its weights: give the .weights file "
            f"and this file as --cfg (cfg= in Python), e.g. '{path.stem}.weights --cfg "
            f"{path.name}'",
            path=path,
        )
    cfg_path, weights = (Path(cfg) if cfg is not None else find_cfg(path)), path
    if not cfg_path.is_file():
        raise DetforgeError("cfg file not found", path=cfg_path)
    net = load_darknet(cfg_path, weights, device=device)
    return net, resolve_names(names, net.num_classes)
