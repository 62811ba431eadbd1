"""Training and validation samples: :class:`DetectionDataset` (batched and loaded by
:mod:`detforge.train.dataloader`).

A :class:`DetectionDataset` wraps one split of a detforge :class:`~detforge.data.Dataset`.
Training samples are ``(S, S)`` (``S = imgsz``): a 4-image mosaic (probability
``AugmentConfig.mosaic``, switched off with :meth:`DetectionDataset.set_mosaic` for the last
epochs) or one image, warped by a random affine, optionally mixed up, HSV-jittered and flipped
(:mod:`detforge.train.augment`). Validation samples follow inference's rule
(:class:`detforge.data.letterbox.InputRule`): each image letterboxed on its own into the
``(S, S)`` square, so validation during training, ``val``, ``map`` and ``predict`` see the
same input for the same image.

Randomness is a pure function of ``(seed, epoch, image)``: every sample draws from its own
``numpy.random.Generator``, so results do not depend on the number of workers or processes,
and ``N`` DDP ranks see exactly the batches one process sees with the same global batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray

from detforge.data.boxes import BoxFormat, cxcywh_to_xyxy
from detforge.data.dataset import Dataset
from detforge.data.images import load_image
from detforge.data.letterbox import InputRule, letterbox
from detforge.errors import DetforgeError
from detforge.train import augment as A
from detforge.train.images import ImageCache, cache_bytes, choose_cache


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation hyper-parameters (YOLO-style defaults). Fractions unless noted."""

    hsv_h: float = 0.015
    """Hue shift range, in turns of the colour circle."""
    hsv_s: float = 0.7
    """Saturation gain range (+/-)."""
    hsv_v: float = 0.4
    """Value (brightness) gain range (+/-)."""
    degrees: float = 0.0
    """Rotation range in degrees (+/-)."""
    translate: float = 0.1
    """Translation range as a fraction of the output size (+/-)."""
    scale: float = 0.5
    """Scale gain range (+/-): 0.5 draws scales in [0.5, 1.5]."""
    shear: float = 0.0
    """Shear range in degrees (+/-), per axis."""
    flipud: float = 0.0
    """Probability of an up-down flip."""
    fliplr: float = 0.5
    """Probability of a left-right flip."""
    mosaic: float = 1.0
    """Probability of a 4-image mosaic (while mosaic is on)."""
    mixup: float = 0.0
    """Probability of blending with a second sample (Beta(32, 32) ratio)."""


class DetectionDataset(torch.utils.data.Dataset[dict[str, Any]]):
    """Samples of one split, as dicts for :func:`collate`.

    Each sample: ``img`` ``(h, w, 3)`` uint8 RGB numpy, ``bboxes`` ``(K, 4)`` float32 xyxy in
    pixels of ``img``, ``cls`` ``(K,)`` int64, ``path`` (str), ``orig_shape`` ``(h0, w0)`` and
    ``ratio_pad`` ``((rw, rh), (padw, padh))`` mapping source pixels to ``img`` (for augmented
    samples: the mapping of the plain letterbox, without the random warp).

    Boxes marked ``crowd`` and boxes of zero area after clipping to the image are not training
    targets; ``num_dropped`` counts them. ``cache`` is ``auto`` (RAM when all ``copies``
    processes' caches take at most half the available memory), ``ram``, ``disk`` (``.npy``
    files under ``cache_dir``) or ``none``.
    """

    def __init__(
        self,
        ds: Dataset,
        *,
        imgsz: int = 640,
        augment: bool = False,
        hyp: AugmentConfig | None = None,
        cache: Literal["auto", "ram", "disk", "none"] | str = "none",
        cache_dir: str | os.PathLike[str] | None = None,
        copies: int = 1,
        seed: int = 0,
        exif_transpose: bool = True,
        show_progress: bool | None = None,
    ) -> None:
        self.paths: list[str] = [str(p) for p in ds.images.path]
        self.class_names = ds.class_names
        self.imgsz, self.augment = imgsz, augment
        self.seed, self.exif_transpose = seed, exif_transpose
        self.rule = InputRule.square(imgsz)
        self.hyp = hyp or AugmentConfig()
        self.errors_as_samples = False
        """Return a :class:`DetforgeError` as an ``{"error": ...}`` sample instead of raising
        it (set by :func:`create_dataloader`, whose loader re-raises it in the main process:
        an error raised inside a worker would reach the user as a multi-line traceback)."""
        n = len(self.paths)
        self.orig_hw = self._sizes(ds)
        self.labels, self.label_cls, self.label_off, self.num_dropped = _labels(ds, self.orig_hw)
        self._state = torch.zeros(2, dtype=torch.int64)  # [epoch, mosaic on]; shared with workers
        self._state[1] = 1
        self._state.share_memory_()  # type: ignore[no-untyped-call]
        hw = self.orig_hw
        mode = choose_cache(cache, cache_bytes(hw[:, 0], hw[:, 1], imgsz), copies=copies)
        self.cache: ImageCache | None = None
        if mode != "none" and n:
            self.cache = ImageCache(
                self.paths,
                imgsz=imgsz,
                mode=mode,
                exif_transpose=exif_transpose,
                cache_dir=cache_dir,
            )
            self.cache.fill(show_progress=show_progress)

    def _sizes(self, ds: Dataset) -> NDArray[np.int64]:
        """``(N, 2)`` full-resolution ``(h, w)``: the dataset's, else read from headers."""
        from detforge.data.imagesize import read_image_header, read_sizes

        hw = np.stack([ds.images.height, ds.images.width], axis=1).astype(np.int64)
        missing = np.flatnonzero((hw <= 0).any(axis=1))
        if not len(missing):
            return hw
        if self.exif_transpose:  # parallel header reads, EXIF orientation applied
            ws, hs, errors = read_sizes([self.paths[i] for i in missing])
            for k, msg in errors.items():
                raise DetforgeError(msg, path=self.paths[missing[k]])
            hw[missing, 0], hw[missing, 1] = hs, ws
        else:
            for i in missing:
                head = read_image_header(self.paths[i])
                hw[i] = (head.raw_height, head.raw_width)
        return hw

    # ------------------------------------------------------------------ state shared with workers
    def set_mosaic(self, on: bool) -> None:
        """Switch mosaic on/off; seen by persistent workers from the next ``iter(loader)``."""
        self._state[1] = int(on)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that, with ``seed`` and the image, seeds each sample's augmentation."""
        self._state[0] = int(epoch)

    @property
    def mosaic(self) -> bool:
        return bool(self._state[1])

    # ------------------------------------------------------------------ loading
    def __len__(self) -> int:
        return len(self.paths)

    def load(self, j: int) -> tuple[A.ImageArray, tuple[int, int]]:
        """Image ``j`` (source order) resized to long side ``imgsz``, and its ``(h0, w0)``."""
        if self.cache is not None:
            return self.cache.get(j)
        return load_image(self.paths[j], fit=self.imgsz, exif_transpose=self.exif_transpose)

    def load_sample(self, j: int) -> A.Sample:
        """``(image, boxes (K, 4) float64 xyxy pixels of image, cls (K,))`` of image ``j``."""
        img, _ = self.load(j)
        h, w = img.shape[:2]
        lo, hi = self.label_off[j], self.label_off[j + 1]
        boxes = self.labels[lo:hi] * np.array([w, h, w, h], dtype=np.float64)
        return img, boxes, self.label_cls[lo:hi]

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not self.errors_as_samples:
            return self._sample(index)
        try:
            return self._sample(index)
        except DetforgeError as exc:  # re-raised cleanly in the main process by the loader
            return {"error": exc.message, "error_path": exc.path, "error_line": exc.line}

    def _sample(self, index: int) -> dict[str, Any]:
        j = int(index)
        img, boxes, cls = self.load_sample(j)
        h0, w0 = (int(v) for v in self.orig_hw[j])
        h, w = img.shape[:2]
        if self.augment:
            epoch, mosaic_on = (int(v) for v in self._state.tolist())
            rng = np.random.default_rng((self.seed, epoch, j))
            img, boxes, cls = self._augmented(j, (img, boxes, cls), bool(mosaic_on), rng)
            s = self.imgsz
            ratio_pad = ((w / w0, h / h0), (float((s - w) // 2), float((s - h) // 2)))
        else:  # the inference rule: letterboxed alone into the (imgsz, imgsz) square
            lb = letterbox(img, boxes, shape=self.rule.shape, fill=self.rule.fill)
            img, boxes = lb.image, A.clip_boxes(lb.boxes, self.rule.shape)
            ratio_pad = lb.ratio_pad((h0, w0))
        return {
            "img": img,
            "bboxes": boxes.astype(np.float32),
            "cls": np.asarray(cls, dtype=np.int64),
            "path": self.paths[j],
            "orig_shape": (h0, w0),
            "ratio_pad": ratio_pad,
        }

    # ------------------------------------------------------------------ augmentation
    def _geometric(
        self, j: int, first: A.Sample | None, mosaic_on: bool, rng: np.random.Generator
    ) -> A.Sample:
        hyp, s = self.hyp, self.imgsz
        warp = A.RandomAffine(
            degrees=hyp.degrees, translate=hyp.translate, scale=hyp.scale, shear=hyp.shear
        )
        sample = first if first is not None else self.load_sample(j)
        if mosaic_on and hyp.mosaic > 0 and rng.random() < hyp.mosaic:
            others = rng.integers(0, len(self.paths), 3)
            tiles = [sample] + [self.load_sample(int(k)) for k in others]
            xc, yc = (int(v) for v in rng.uniform(s / 2, 3 * s / 2, 2))
            m = warp.matrix((2 * s, 2 * s), (s, s), rng)
            box = A.crop_box(m, (s, s))
            if box is not None:  # build only the window of the canvas the crop keeps
                img, b, c = A.mosaic4(tiles, size=s, center=(xc, yc), region=box)
                m = A.crop_matrix((0, 0, box[2] - box[0], box[3] - box[1]), (s, s))
            else:
                img, b, c = A.mosaic4(tiles, size=s, center=(xc, yc))
            return A.random_affine(img, b, c, matrix=m, out_shape=(s, s))
        return warp(sample, (s, s), rng)

    def _augmented(
        self, j: int, sample: A.Sample, mosaic_on: bool, rng: np.random.Generator
    ) -> A.Sample:
        hyp = self.hyp
        out = self._geometric(j, sample, mosaic_on, rng)
        if hyp.mixup > 0 and rng.random() < hyp.mixup:
            k = int(rng.integers(0, len(self.paths)))
            other = self._geometric(k, None, mosaic_on, rng)
            out = A.mixup(out, other, ratio=float(rng.beta(32.0, 32.0)))
        img = A.RandomHSV(hyp.hsv_h, hyp.hsv_s, hyp.hsv_v)(out[0], rng)
        return A.RandomFlip(lr=hyp.fliplr, ud=hyp.flipud)((img, out[1], out[2]), rng)


def _labels(
    ds: Dataset, hw: NDArray[np.int64]
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64], int]:
    """Per-image training targets: ``(M, 4)`` xyxy normalised to ``[0, 1]``, ``(M,)`` classes,
    ``(N+1,)`` offsets into them, and how many boxes were dropped (crowd or zero area)."""
    b = ds.boxes
    if b.format.normalized:
        xyxy = cxcywh_to_xyxy(b.coords)
    else:
        px = ds.coords_as(BoxFormat.XYXY_PIXEL) if len(b) else np.zeros((0, 4))
        ih, iw = hw[b.image, 0].astype(np.float64), hw[b.image, 1].astype(np.float64)
        xyxy = px / np.stack([iw, ih, iw, ih], axis=1)
    xyxy = np.clip(xyxy, 0.0, 1.0)
    ok = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1]) & ~b.crowd
    img = b.image[ok]
    order = np.argsort(img, kind="stable")
    off = np.searchsorted(img[order], np.arange(ds.num_images + 1)).astype(np.int64)
    return xyxy[ok][order], b.cls[ok][order].astype(np.int64), off, int((~ok).sum())
