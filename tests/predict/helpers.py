"""Shared by the predict and CLI tests: a random-but-lively checkpoint and textured scenes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

CLASS_NAMES = ("ant", "bee", "cow")


def random_checkpoint(path: Path, *, num_classes: int = 3, seed: int = 0, imgsz: int = 160) -> Path:
    """An untrained 'n' detector saved with ``save_checkpoint``, randomised so it outputs
    varied, input-dependent boxes and scores in 0.25..1 (an untrained model's class-prior bias
    would give ~0.005 everywhere, and its default init near-constant features)."""
    from detforge.models.checkpoint import save_checkpoint
    from detforge.models.yolo import create_model

    torch.manual_seed(seed)
    model = create_model("n", num_classes)
    box_out = 4 * model.reg_max
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_var.uniform_(0.5, 1.5)
                mod.bias.normal_(0.0, 0.2)
        for mod in model.head.modules():  # the output convolutions of the head
            if isinstance(mod, torch.nn.Conv2d) and mod.bias is not None:
                if mod.out_channels == num_classes:
                    mod.weight.normal_(0.0, 0.3)
                    mod.bias.fill_(-1.0)
                elif mod.out_channels == box_out:
                    mod.weight.normal_(0.0, 0.02)
                    # Distance bins favour 0-3 cells: boxes of varied, mostly modest sizes.
                    bins = torch.arange(box_out, dtype=torch.float32) % model.reg_max
                    mod.bias.copy_(torch.randn(box_out) - 0.8 * bins)
    names = list(CLASS_NAMES) if num_classes == 3 else [f"class{i}" for i in range(num_classes)]
    save_checkpoint(path, model=model, epoch=0, class_names=names, config={"imgsz": imgsz})
    return path


def scenes(n: int, *, seed: int = 0, w: int = 160, h: int = 120) -> list[np.ndarray]:
    """``n`` textured ``(h, w, 3)`` uint8 images with three flat rectangles each."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        im = rng.integers(60, 160, (h, w, 3), dtype=np.uint8)
        for _ in range(3):
            x, y = rng.integers(0, w - 40), rng.integers(0, h - 30)
            im[y : y + 30, x : x + 40] = rng.integers(0, 255, 3)
        out.append(im)
    return out


def assert_same_detections(a: object, b: object, *, rtol: float = 1e-4, atol: float = 1e-3) -> None:
    """Same boxes, classes and scores up to the order of near-equal scores."""
    assert len(a) == len(b)  # type: ignore[arg-type]

    def rows(p: object) -> np.ndarray:
        r = np.column_stack([p.classes, p.scores, p.boxes]).astype(np.float64)  # type: ignore[attr-defined]
        return r[np.lexsort(np.round(r, 2).T[::-1])]

    np.testing.assert_allclose(rows(a), rows(b), rtol=rtol, atol=atol)


def self_labelled_darknet(folder: Path, ckpt: Path, *, n: int = 4, seed: int = 5) -> Path:
    """A Darknet dataset (images, labels, obj.names, valid.txt, obj.data with ``results=``)
    whose labels are the checkpoint's own detections above 0.33, jittered by up to 3 px, so
    a prediction run scores well but not perfectly. Returns the ``.data`` path."""
    from PIL import Image

    import detforge

    folder.mkdir(parents=True, exist_ok=True)
    imgs = scenes(n, seed=seed)
    model = detforge.load(ckpt, device="cpu")
    rng = np.random.default_rng(seed)
    paths = []
    for i, (im, pred) in enumerate(zip(imgs, model.predict(imgs, conf=0.33), strict=True)):
        path = folder / "images" / f"img{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(im).save(path)
        h, w = im.shape[:2]
        b = pred.boxes.astype(np.float64) + rng.uniform(-3, 3, pred.boxes.shape)
        b = np.clip(b, 0, [w, h, w, h])
        lines = [
            f"{c} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} "
            f"{(y2 - y1) / h:.6f}"
            for c, (x1, y1, x2, y2) in zip(pred.classes.tolist(), b.tolist(), strict=True)
        ]
        path.with_suffix(".txt").write_text("\n".join(lines) + "\n")
        paths.append(str(path))
    (folder / "obj.names").write_text("\n".join(model.class_names) + "\n")
    (folder / "valid.txt").write_text("\n".join(paths) + "\n")
    data = folder / "obj.data"
    data.write_text(
        f"classes = {len(model.class_names)}\ntrain = valid.txt\nvalid = valid.txt\n"
        "names = obj.names\nresults = results\n"
    )
    return data
