"""Darknet networks exported to ONNX keep Darknet's semantics: `export X.weights --to onnx`,
then `detforge.load` / `predict` / `val` / `map` of the .onnx give the .weights' detections."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

import detforge
from detforge.cli.main import main
from detforge.errors import DetforgeError
from detforge.models.darknet.model import detect, load_darknet
from detforge.models.darknet.weights import write_weights
from detforge.predict.darknet import DarknetPredictor, DarknetSettings
from detforge.predict.export import export_onnx
from tests.models.darknet.conftest import fetch_yolov3_tiny
from tests.models.darknet.helpers import randomize, scenes, self_labelled_dataset, tiny_darknet
from tests.train._darknet_tiny import tiny_cfg_text

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _letterbox_two_heads(folder: Path) -> tuple[Path, Path]:
    """Two [yolo] heads (route between them), scale_x_y=1.05, diounms and letter_box=1."""
    folder.mkdir(parents=True, exist_ok=True)
    text = tiny_cfg_text(2, extra="scale_x_y=1.05\nnms_kind=diounms\nbeta_nms=0.6\n")
    cfg = folder / "lb.cfg"
    cfg.write_text(text.replace("[net]\n", "[net]\nletter_box=1\n", 1))
    net = load_darknet(cfg)
    randomize(net, np.random.default_rng(5).integers(0, 256, (64, 64, 3), dtype=np.uint8), seed=5)
    return cfg, write_weights(net, folder / "lb.weights")


@pytest.fixture(scope="module", params=["yolo-head", "letterbox-two-heads"])
def exported(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path, Path]:
    """(cfg, weights, onnx) written by `detforge export WEIGHTS --cfg CFG --to onnx -o ...`."""
    root = tmp_path_factory.mktemp("dkonnx")
    if request.param == "yolo-head":
        cfg, weights = tiny_darknet(root / "m")
    else:
        cfg, weights = _letterbox_two_heads(root / "m")
    out = root / "out" / "model.onnx"
    argv = ["export", str(weights), "--cfg", str(cfg), "--to", "onnx", "-o", str(out)]
    assert main(argv) == 0
    return cfg, weights, out


def test_onnx_detections_equal_the_weights(exported: tuple[Path, Path, Path]) -> None:
    cfg, weights, out = exported
    ref_model = detforge.load(weights, cfg=cfg, device="cpu")
    onnx_model = detforge.load(out, device="cpu")
    assert isinstance(onnx_model, DarknetPredictor)
    assert onnx_model.backend == "onnxruntime-darknet"
    assert onnx_model.settings == ref_model.settings
    images = scenes(4, seed=7)
    got, ref = onnx_model.predict(images, batch=3), ref_model.predict(images, batch=3)
    net = load_darknet(cfg, weights)
    for image, g, r in zip(images, got, ref, strict=True):
        assert len(g) == len(r) > 0
        np.testing.assert_array_equal(g.classes, r.classes)
        np.testing.assert_allclose(g.scores, r.scores, atol=1e-4, rtol=0)
        np.testing.assert_allclose(g.boxes, r.boxes, atol=1e-3, rtol=0)
        assert len(g) == len(detect(net, image).scores)  # Darknet's own thresholds and NMS
    fewer = onnx_model.predict(images[0], conf=0.5, iou=0.3)[0]
    assert len(fewer) == len(ref_model.predict(images[0], conf=0.5, iou=0.3)[0]) < len(got[0])


def test_metadata_round_trip(exported: tuple[Path, Path, Path]) -> None:
    cfg, weights, out = exported
    proto = onnx.load(str(out))
    keys = [p.key for p in proto.metadata_props]
    assert keys == ["detforge"]  # the one metadata key of every detforge export
    meta = json.loads(proto.metadata_props[0].value)
    net = load_darknet(cfg, weights)
    w, h = net.input_size
    assert meta["arch"] == "darknet"
    assert meta["class_names"] == ["class0", "class1"]
    assert meta["imgsz"] == [h, w] and meta["dynamic"] is False
    assert meta["darknet"]["cfg"] == cfg.read_text()
    assert meta["darknet"]["letter_box"] is net.letter_box
    settings = DarknetSettings.from_meta(meta["darknet"], path=out)
    assert settings == DarknetSettings.of_network(net)
    assert settings.heads == net.heads and len(settings.heads) >= 1
    if net.letter_box:
        assert [hd.scale_x_y for hd in settings.heads] == [1.05, 1.05]
        assert settings.nms_kind == "diounms"
    graph_in = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in graph_in] == [1, 3, h, w]
    graph_out = proto.graph.output[0].type.tensor_type.shape.dim
    assert graph_out[2].dim_value == 5 + 2


def test_val_and_map_give_the_same_numbers(
    exported: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, weights, out = exported
    data = self_labelled_dataset(
        load_darknet(cfg, weights), scenes(3, seed=4), tmp_path / "data", thresh=0.4,
        jitter=lambda boxes: np.full_like(boxes, 1.5),
    )  # fmt: skip
    results = []
    for model, extra in ((weights, ["--cfg", str(cfg)]), (out, [])):
        js = tmp_path / f"{model.suffix[1:]}.json"
        argv = ["val", str(model), str(data), "--protocol", "all", "--json", str(js), *extra]
        assert main(argv) == 0
        results.append(json.loads(js.read_text()))
    a, b = results
    assert a["darknet"]["mAP"] == pytest.approx(b["darknet"]["mAP"], abs=1e-9)
    assert a["darknet"]["mAP"] > 0.2
    assert a["darknet"]["tp"] == b["darknet"]["tp"] and a["darknet"]["fp"] == b["darknet"]["fp"]
    for key, value in a["coco"]["stats"].items():
        assert b["coco"]["stats"][key] == pytest.approx(value, abs=1e-9), key
    maps = []
    for i, argv in enumerate(([str(data), str(cfg), str(weights)], [str(out), str(data)])):
        assert main(["map", *argv, "--out", str(tmp_path / f"m{i}"), "--no-plots"]) == 0
        maps.append(json.loads((tmp_path / f"m{i}" / "metrics.json").read_text()))
    assert maps[0]["darknet"]["mAP"] == pytest.approx(maps[1]["darknet"]["mAP"], abs=1e-9)
    assert maps[1]["darknet"]["mAP"] == pytest.approx(a["darknet"]["mAP"], abs=1e-9)
    assert [c["name"] for c in maps[1]["darknet"]["per_class"]] == ["doe", "stag"]
    capsys.readouterr()


def test_dynamic_batch_runs_three_and_fixed_batch_chunks(tmp_path: Path) -> None:
    import onnxruntime as ort

    _cfg, weights = tiny_darknet(tmp_path / "m")
    dyn = export_onnx(weights, tmp_path / "dyn.onnx", dynamic=True, names=None)
    fixed = export_onnx(weights, tmp_path / "b2.onnx", batch=2)
    sess = ort.InferenceSession(str(dyn), providers=["CPUExecutionProvider"])
    assert isinstance(sess.get_inputs()[0].shape[0], str)
    x = np.random.default_rng(0).random((3, 3, 64, 96)).astype(np.float32)
    rows = sess.run(None, {"images": x})[0]
    assert rows.shape[0] == 3 and rows.shape[2] == 7
    assert json.loads(sess.get_modelmeta().custom_metadata_map["detforge"])["dynamic"] is True
    images = scenes(3, seed=1)
    ref = detforge.load(weights, device="cpu").predict(images, batch=3)
    for path in (dyn, fixed):
        got = detforge.load(path, device="cpu").predict(images, batch=3)
        for g, r in zip(got, ref, strict=True):
            assert len(g) == len(r) > 0
            np.testing.assert_array_equal(g.classes, r.classes)
            np.testing.assert_allclose(g.scores, r.scores, atol=1e-4, rtol=0)
            np.testing.assert_allclose(g.boxes, r.boxes, atol=1e-3, rtol=0)


def _rewrite_meta(src: Path, dst: Path, edit: object) -> Path:
    proto = onnx.load(str(src))
    entry = proto.metadata_props[0]
    entry.value = edit(entry.value) if callable(edit) else str(edit)
    onnx.save(proto, str(dst))
    return dst


def test_corrupt_or_unknown_metadata_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _cfg, weights = tiny_darknet(tmp_path / "m")
    good = export_onnx(weights, tmp_path / "good.onnx", verify=False)
    image = tmp_path / "im.png"
    from PIL import Image

    Image.fromarray(scenes(1)[0]).save(image)

    def drop_heads(text: str) -> str:
        meta = json.loads(text)
        del meta["darknet"]["heads"]
        return json.dumps(meta)

    def bad_kind(text: str) -> str:
        meta = json.loads(text)
        meta["darknet"]["nms_kind"] = "softnms"
        return json.dumps(meta)

    cases = {
        "not-json": ("{not json", "metadata of this ONNX file is corrupt"),
        "no-heads": (drop_heads, "Darknet metadata of this ONNX file is corrupt"),
        "bad-kind": (bad_kind, "Darknet metadata of this ONNX file is corrupt"),
        "unknown-arch": (
            lambda t: t.replace('"arch": "darknet"', '"arch": "transformer"'),
            "names a model kind this detforge does not know",
        ),
    }
    for name, (edit, message) in cases.items():
        bad = _rewrite_meta(good, tmp_path / f"{name}.onnx", edit)
        with pytest.raises(DetforgeError, match=message):
            detforge.load(bad, device="cpu")
        assert main(["predict", str(bad), str(image), "--out", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err and str(bad) in err, name
    argv = ["export", str(good), "--to", "darknet", "--out", str(tmp_path / "back")]
    assert main(argv) == 2
    assert "cannot be exported back to Darknet" in capsys.readouterr().err
    with pytest.raises(DetforgeError, match=r"Darknet network export: load it with detforge\.load"):
        from detforge.predict.onnx_model import OnnxDetector

        OnnxDetector(good)


def test_export_options_that_do_not_apply(tmp_path: Path) -> None:
    cfg, weights = tiny_darknet(tmp_path / "m")
    with pytest.raises(DetforgeError, match=r"runs at its cfg's size \(96x64\)"):
        export_onnx(weights, tmp_path / "a.onnx", imgsz=416)
    with pytest.raises(DetforgeError, match="half precision is not supported"):
        export_onnx(weights, tmp_path / "a.onnx", half=True)
    with pytest.raises(DetforgeError, match="1 class names for a network with classes=2"):
        names = tmp_path / "one.names"
        names.write_text("deer\n")
        export_onnx(weights, tmp_path / "a.onnx", names=names)
    names.write_text("deer\nboar\n")
    out = export_onnx(weights, tmp_path / "named.onnx", names=names, imgsz=(64, 96))
    assert detforge.load(out).class_names == ("deer", "boar")
    assert detforge.load(out, names=["a", "b"]).class_names == ("a", "b")
    with pytest.raises(DetforgeError, match="holds its network: leave out --cfg"):
        detforge.load(out, cfg=cfg)


def test_session_threads_follow_torch_and_do_not_spin() -> None:
    import torch

    from detforge.predict.onnx_model import session_options

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        opts = session_options()
        assert opts.intra_op_num_threads == 1
        assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    finally:
        torch.set_num_threads(before)


def test_torch_work_beside_onnxruntime_runs_on_one_thread(
    exported: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a Darknet ONNX, the torch work around onnxruntime's forward pass (filtering its
    rows, NMS) runs on one torch thread, in one-photo calls and batches alike: after a
    parallel op torch's OpenMP threads spin on the cores onnxruntime needs next (yolov4-tiny,
    one photo a call: 4-5% slower). A PyTorch network keeps every thread."""
    import torch

    import detforge.models.darknet.decode as dec
    import detforge.models.darknet.nms as dnms
    from detforge.utils.cpu import torch_threads

    seen: dict[str, list[int]] = {"rows": [], "nms": []}
    real_rows, real_nms = dec.rows_above, dnms.darknet_detections

    def rows_spy(*args: object, **kwargs: object) -> object:
        seen["rows"].append(torch.get_num_threads())
        return real_rows(*args, **kwargs)  # type: ignore[arg-type]

    def nms_spy(*args: object, **kwargs: object) -> object:
        seen["nms"].append(torch.get_num_threads())
        return real_nms(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(dec, "rows_above", rows_spy)
    monkeypatch.setattr(dnms, "darknet_detections", nms_spy)
    cfg, weights, out = exported
    images = scenes(3, seed=2)
    with torch_threads(2):
        model = detforge.load(out, device="cpu")
        model.predict(images[0], batch=1)
        model.predict(images, batch=1)
        model.predict(images, batch=2)
        assert torch.get_num_threads() == 2
        assert seen["rows"] and set(seen["rows"]) == {1}
        assert len(seen["nms"]) == 7 and set(seen["nms"]) == {1}
        seen["nms"].clear()
        detforge.load(weights, cfg=cfg, device="cpu").predict(images[0], batch=1)
        assert seen["nms"] == [2]


def test_finetuned_darknet_checkpoint_exports_the_darknet_graph(tmp_path: Path) -> None:
    """A detforge checkpoint of a Darknet network (``build_args["arch"] == "darknet"``)
    exports like its .weights: Darknet rows and metadata, the same detections as the .pt."""
    from detforge.models.checkpoint import save_checkpoint
    from detforge.train.darknet_model import DarknetDetector

    cfg, weights = tiny_darknet(tmp_path / "m")
    model = DarknetDetector(cfg.read_text())
    model.net.load_state_dict(load_darknet(cfg, weights).state_dict())
    best = tmp_path / "best.pt"
    save_checkpoint(best, model=model, epoch=0, class_names=["doe", "stag"])
    assert main(["export", str(best)]) == 0
    out = best.with_suffix(".onnx")
    meta = json.loads(onnx.load(str(out)).metadata_props[0].value)
    assert meta["arch"] == "darknet" and meta["class_names"] == ["doe", "stag"]
    images = scenes(2, seed=3)
    got = detforge.load(out).predict(images)
    ref = detforge.load(best).predict(images)
    for g, r in zip(got, ref, strict=True):
        assert len(g) == len(r) > 0 and g.names == r.names
        np.testing.assert_array_equal(g.classes, r.classes)
        np.testing.assert_allclose(g.scores, r.scores, atol=1e-4, rtol=0)
        np.testing.assert_allclose(g.boxes, r.boxes, atol=1e-3, rtol=0)


def test_real_yolov3_tiny_onnx_matches_the_weights(tmp_path: Path) -> None:
    from matplotlib import cbook

    photo = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    folder = fetch_yolov3_tiny()
    weights, names = folder / "yolov3-tiny.weights", folder / "coco.names"
    out = tmp_path / "yolov3-tiny.onnx"
    argv = ["export", str(weights), "--names", str(names), "--to", "onnx", "-o", str(out)]
    assert main(argv) == 0
    got = detforge.load(out).predict(photo)[0]
    ref = detforge.load(weights, names=names).predict(photo)[0]
    assert len(got) == len(ref) > 0 and "tie" in got.names
    np.testing.assert_array_equal(got.classes, ref.classes)
    np.testing.assert_allclose(got.scores, ref.scores, atol=1e-4, rtol=0)
    np.testing.assert_allclose(got.boxes, ref.boxes, atol=1e-3, rtol=0)


def test_maxpool_exports_as_maxpool(tmp_path: Path) -> None:
    """Eager inference takes a max of shifted slices, but the traced graph keeps one MaxPool
    per [maxpool] (onnxruntime's is ~5 ms faster on yolov3-tiny than 2k Slice+Max nodes)."""
    cfg = tmp_path / "pool.cfg"
    cfg.write_text(
        "[net]\nwidth=64\nheight=64\nchannels=3\n"
        "[convolutional]\nfilters=8\nsize=3\nstride=1\npad=1\nactivation=leaky\n"
        "[maxpool]\nsize=2\nstride=2\n"
        "[maxpool]\nsize=2\nstride=1\n"
        "[maxpool]\nsize=3\nstride=1\n"
        "[convolutional]\nfilters=21\nsize=1\nstride=1\npad=1\nactivation=linear\n"
        "[yolo]\nmask=0,1,2\nanchors=10,14, 23,27, 37,58\nclasses=2\nnum=3\n"
    )
    weights = write_weights(load_darknet(cfg), tmp_path / "pool.weights")
    out = tmp_path / "pool.onnx"
    assert main(["export", str(weights), "--cfg", str(cfg), "--to", "onnx", "-o", str(out)]) == 0
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert ops.count("MaxPool") == 3 and "Max" not in ops
