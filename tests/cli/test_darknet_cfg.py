"""``detforge darknet-cfg`` in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from detforge.cli.main import main

CFG = "[net]\nmax_batches=500200\nsteps=400000,450000\n[convolutional]\nfilters=255\n" \
      "[yolo]\nmask=0,1,2\nclasses=80\nnum=9\nanchors=1,2, 3,4, 5,6, 7,8, 9,10, 11,12, 13,14, " \
      "15,16, 17,18\n"  # fmt: skip


def test_classes_from_flag_and_from_data_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in.cfg").write_text(CFG)
    out = tmp_path / "out.cfg"
    assert main(["darknet-cfg", str(tmp_path / "in.cfg"), "--classes", "4", "-o", str(out)]) == 0
    text = out.read_text()
    assert "classes=4" in text and "filters=27" in text and "max_batches=8000" in text
    assert "steps=6400,7200" in text
    assert "4 lines changed" in capsys.readouterr().out
    (tmp_path / "obj.names").write_text("a\nb\n")
    (tmp_path / "train.txt").write_text("".join(f"/x/{i}.jpg\n" for i in range(7000)))
    (tmp_path / "obj.data").write_text(
        f"classes=2\ntrain={tmp_path / 'train.txt'}\nnames={tmp_path / 'obj.names'}\n"
    )
    args = ["darknet-cfg", str(tmp_path / "in.cfg"), "--data", str(tmp_path / "obj.data"),
            "-o", str(out), "--exist-ok"]  # fmt: skip
    assert main(args) == 0  # replaces the first output: --exist-ok
    text = out.read_text()
    assert "classes=2" in text and "filters=21" in text and "max_batches=7000" in text
    # classes= that does not count the names: refused at its line, as every reader does
    (tmp_path / "obj.data").write_text(
        f"names={tmp_path / 'obj.names'}\nclasses=3\ntrain={tmp_path / 'train.txt'}\n"
    )
    capsys.readouterr()
    args[-2:] = [str(tmp_path / "mismatch.cfg")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "obj.data:2:" in err and "has 2 names" in err, err
    assert not (tmp_path / "mismatch.cfg").exists()


def test_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "in.cfg").write_text(CFG)
    assert main(["darknet-cfg", str(tmp_path / "in.cfg"), "-o", str(tmp_path / "o.cfg")]) == 2
    assert "--classes N" in capsys.readouterr().err
    assert main(["darknet-cfg", str(tmp_path / "x.cfg"), "--classes", "2", "-o", "o"]) == 2
    assert "cfg file not found" in capsys.readouterr().err


TINY = """[net]
# Testing
batch=1
subdivisions=1
# Training
# batch=64
# subdivisions=2
width=416
height=416
max_batches=500200
steps=400000,450000

[convolutional]
filters=255

[yolo]
mask=3,4,5
anchors=10,14,  23,27,  37,58,  81,82,  135,169,  344,319
classes=80
num=6
"""


def test_imgsz_subdivisions_and_anchors_auto(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np
    from PIL import Image

    from detforge.data.anchors import kmeans_anchors

    (tmp_path / "in.cfg").write_text(TINY)
    img = tmp_path / "img"
    img.mkdir()
    rng = np.random.default_rng(1)
    wh = rng.uniform(0.05, 0.8, size=(20, 2)).round(6)
    for i, (w, h) in enumerate(wh):
        Image.new("RGB", (32, 32)).save(img / f"{i:02d}.jpg")
        (img / f"{i:02d}.txt").write_text(f"0 0.5 0.5 {w} {h}\n")
    (tmp_path / "train.txt").write_text("".join(f"img/{i:02d}.jpg\n" for i in range(20)))
    (tmp_path / "obj.data").write_text("classes=1\ntrain=train.txt\n")
    out = tmp_path / "out.cfg"
    args = ["darknet-cfg", str(tmp_path / "in.cfg"), "--data", str(tmp_path / "obj.data"),
            "--imgsz", "832,608", "--anchors", "auto", "--seed", "4", "-o", str(out)]  # fmt: skip
    assert main(args) == 0
    text = out.read_text()
    ref = kmeans_anchors(wh * [832, 608], 6, seed=4)
    assert f"anchors={ref.darknet_text()}\n" in text
    assert "width=832\nheight=608\n" in text
    # the commented training values (64/2) at 416x416, scaled to 832x608: 2 * 2.92 -> 8
    assert "batch=64\nsubdivisions=8\n" in text
    assert "filters=18" in text and "classes=1" in text
    assert f"mean IoU {100 * ref.mean_iou:.2f}%" in capsys.readouterr().out


def test_explicit_anchors_and_subdivisions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in.cfg").write_text(TINY)
    out = tmp_path / "out.cfg"
    good = ["darknet-cfg", str(tmp_path / "in.cfg"), "--classes", "2", "-o", str(out)]
    assert main([*good, "--anchors", "1,2,3,4,5,6,7,8,9,10,11,12.5", "--subdivisions", "4"]) == 0
    text = out.read_text()
    assert "anchors=1,2, 3,4, 5,6, 7,8, 9,10, 11,12.5\n" in text
    assert "batch=64\nsubdivisions=4\n" in text
    capsys.readouterr()
    # each mistake is reported as itself (a new output: no --exist-ok question first)
    base = [*good[:-1], str(tmp_path / "new.cfg")]
    assert main([*base, "--anchors", "1,2"]) == 2
    assert "6 positive w,h pairs" in capsys.readouterr().err
    assert main([*base, "--subdivisions", "5"]) == 2
    assert "must divide batch=64" in capsys.readouterr().err
    assert main([*base, "--imgsz", "500"]) == 2
    assert "multiples of 32" in capsys.readouterr().err
    assert main([*base, "--imgsz", "100000"]) == 2  # a cfg every command would refuse
    assert capsys.readouterr().err == (
        "detforge darknet-cfg: error: --imgsz 100000: width and height must be at most 8192\n"
    )
    assert main([*base, "--anchors", "auto"]) == 2
    assert "needs the dataset" in capsys.readouterr().err
    assert not (tmp_path / "new.cfg").exists() and out.read_text() == text


def test_sensible_subdivisions_rule() -> None:
    from detforge.formats.darknet.cfg import sensible_subdivisions

    assert sensible_subdivisions(64, 8, (608, 608), (608, 608)) == 8  # unchanged size
    assert sensible_subdivisions(64, 8, (608, 608), (416, 416)) == 4  # 8 * 0.468 = 3.7
    assert sensible_subdivisions(64, 1, (416, 416), (832, 832)) == 4
    assert sensible_subdivisions(64, 16, (416, 416), (1664, 1664)) == 64  # capped at batch
    assert sensible_subdivisions(48, 16, (416, 416), (608, 608)) == 48  # 34.2 -> divisor 48


def test_data_may_be_any_dataset_and_letter_box_cfgs_get_letterboxed_anchors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--data takes a dataset folder (here VOC); a cfg with letter_box=1 gets anchors of the
    boxes as a letterboxed input shows them, which 'detforge anchors --letter-box' prints."""
    from PIL import Image

    voc = tmp_path / "voc"
    (voc / "JPEGImages").mkdir(parents=True)
    (voc / "Annotations").mkdir()
    sizes = [(40, 30), (12, 50), (64, 20), (25, 25), (50, 44), (8, 10), (30, 60)]
    for i, (w, h) in enumerate(sizes):
        Image.new("RGB", (200, 100)).save(voc / "JPEGImages" / f"{i}.jpg")
        (voc / "Annotations" / f"{i}.xml").write_text(
            f"<annotation><filename>{i}.jpg</filename><size><width>200</width><height>100"
            f"</height><depth>3</depth></size><object><name>{'ab'[i % 2]}</name><bndbox>"
            f"<xmin>5</xmin><ymin>5</ymin><xmax>{5 + w}</xmax><ymax>{5 + h}</ymax></bndbox>"
            "</object></annotation>"
        )
    (tmp_path / "in.cfg").write_text(TINY.replace("[net]\n", "[net]\nletter_box=1\n", 1))
    out = tmp_path / "out.cfg"
    assert main(["darknet-cfg", str(tmp_path / "in.cfg"), "--data", str(voc), "--anchors",
                 "auto", "-o", str(out)]) == 0  # fmt: skip
    said = capsys.readouterr().out
    assert "letterboxed, as the cfg's letter_box=1" in said and "2 classes" in said
    assert main(["anchors", str(voc), "--num", "6", "--imgsz", "416", "--letter-box"]) == 0
    printed = capsys.readouterr().out
    line = next(x for x in printed.splitlines() if x.startswith("anchors = "))
    assert f"anchors={line.removeprefix('anchors = ')}\n" in out.read_text()
    # letterboxed at 416 a 200x100 image scales by 2.08 in both directions: (40,30) -> 83,62
    assert "letterboxed" in printed and "filters=21" in out.read_text()


def test_bom_and_non_utf8_cfgs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A non-UTF-8 cfg was a UnicodeDecodeError traceback; a BOM cfg was edited in part
    (max_batches/steps left) and the output was then refused by predict."""
    latin = tmp_path / "latin.cfg"
    latin.write_bytes(b"[net]\nwidth=128\n\xff\xfe=3\n")
    out = tmp_path / "o.cfg"
    assert main(["darknet-cfg", str(latin), "--classes", "3", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "not a detector cfg" in err and "Traceback" not in err and len(err.splitlines()) == 1
    bom = tmp_path / "bom.cfg"
    bom.write_bytes(b"\xef\xbb\xbf" + CFG.encode())
    assert main(["darknet-cfg", str(bom), "--classes", "4", "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("[net]\n") and "max_batches=8000" in text and "steps=6400,7200" in text


@pytest.mark.parametrize(
    ("option", "words"),
    [
        (["--max-batches", "0"], "expected a whole number >= 1, got '0'"),
        (["--max-batches=-5"], "expected a whole number >= 1, got '-5'"),
        (["--anchors=nan,2,3,4,5,6"], "positive w,h pairs"),
        (["--anchors=inf,2,3,4,5,6"], "positive w,h pairs"),
        (["--anchors=1e400,2,3,4,5,6"], "positive w,h pairs"),
    ],
)
def test_max_batches_and_anchors_must_be_sensible(
    option: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--max-batches 0/-5 and nan/inf anchors were written into the cfg."""
    (tmp_path / "in.cfg").write_text(CFG.replace("num=9", "num=3"))
    out = tmp_path / "o.cfg"
    args = ["darknet-cfg", str(tmp_path / "in.cfg"), "--classes", "2", "-o", str(out), *option]
    if option[0].startswith("--max-batches"):  # an argparse usage error
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 2
    else:
        assert main(args) == 2
    assert words in capsys.readouterr().err and not out.exists()


def test_an_existing_output_is_replaced_only_with_exist_ok_and_never_an_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-o replaced any existing file, as no other command's output does (docs/cli.md): now
    only with --exist-ok, and never a file darknet-cfg reads, --exist-ok or not."""
    cfg = tmp_path / "in.cfg"
    cfg.write_text(CFG)
    out = tmp_path / "out.cfg"
    out.write_text("mine\n")
    base = ["darknet-cfg", str(cfg), "--classes", "2", "-o", str(out)]
    assert main(base) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{out}: --output would replace" in err, err
    assert "--exist-ok" in err and out.read_text() == "mine\n"
    assert main([*base, "--exist-ok"]) == 0
    assert "classes=2" in out.read_text() and f"wrote {out}" in capsys.readouterr().out
    # the inputs: IN.cfg, --names, the .data file, its list and names, a dataset folder's file
    (tmp_path / "obj.names").write_text("a\nb\n")
    (tmp_path / "train.txt").write_text("img/0.jpg\n")
    data = tmp_path / "obj.data"
    data.write_text("classes=2\ntrain=train.txt\nnames=obj.names\n")
    folder = tmp_path / "voc"
    (folder / "Annotations").mkdir(parents=True)
    (folder / "Annotations" / "0.xml").write_text("<annotation/>")
    cases = [
        ([], cfg),
        (["--names", str(tmp_path / "obj.names")], tmp_path / "obj.names"),
        (["--data", str(data)], data),
        (["--data", str(data)], tmp_path / "train.txt"),
        (["--data", str(data)], tmp_path / "obj.names"),
        (["--data", str(folder)], folder / "Annotations" / "0.xml"),
    ]
    for option, target in cases:
        before = target.read_bytes()
        for exist_ok in ([], ["--exist-ok"]):
            argv = ["darknet-cfg", str(cfg), "-o", str(target), *option, *exist_ok]
            if "--data" not in option and "--names" not in option:
                argv += ["--classes", "2"]
            assert main(argv) == 2, argv
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1, err
            assert f"{target}: --output names one of this command's input files" in err, argv
            assert target.read_bytes() == before


def test_an_error_in_the_data_names_is_not_said_to_come_from_the_cfg(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad names file of --data was reported '(reading IN.cfg)': the cfg names no files."""
    (tmp_path / "in.cfg").write_text(CFG)
    (tmp_path / "empty.names").write_text("\n\n")
    (tmp_path / "obj.data").write_text("classes=2\nnames=empty.names\n")
    out = tmp_path / "out.cfg"
    argv = ["darknet-cfg", str(tmp_path / "in.cfg"), "--data", str(tmp_path / "obj.data"),
            "-o", str(out)]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("empty.names: names file is empty; put one class name per line"), err
    assert not out.exists()


TWO_HEADS = """[net]
width=64
height=64
channels=3
max_batches=500200

[convolutional]
filters=8
size=3
pad=1
activation=leaky

[shortcut]
from=-1

[convolutional]
filters=255
size=1
activation=linear

[yolo]
mask=0,1,2
anchors=10,14, 23,27, 37,58, 81,82, 135,169, 344,319
classes=80
num=6

[route]
layers=-4

[convolutional]
filters=255
size=1
activation=linear

[yolo]
mask=3,4,5
anchors=10,14, 23,27, 37,58, 81,82, 135,169, 344,319
classes=80
num=6
"""


def _refused(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str], *opts: str) -> str:
    """The one-line error ``darknet-cfg in.cfg opts -o refused.cfg`` gives for cfg ``text``,
    without its ``<prog>: error: <in.cfg>:`` prefix; nothing is written."""
    (tmp_path / "in.cfg").write_text(text)
    out = tmp_path / "refused.cfg"
    assert main(["darknet-cfg", str(tmp_path / "in.cfg"), *opts, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    prefix = f"detforge darknet-cfg: error: {tmp_path / 'in.cfg'}:"
    assert err.startswith(prefix) and err.count("\n") == 1, err
    assert not out.exists()
    return err[len(prefix) :].rstrip("\n")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("mask=3,4,5", "mask=3,4,6", "36: [yolo]: mask=3,4,6 names anchors beyond the 6 given"),
        (
            "layers=-4",
            "layers=5",
            "28: [route]: layers refers to layer 5, which is not an earlier layer",
        ),
        (
            "layers=-4",
            "layers=-9",
            "28: [route]: layers refers to layer -9, which is not an earlier layer",
        ),
        (
            "from=-1",
            "from=-3",
            "14: [shortcut]: from refers to layer -3, which is not an earlier layer",
        ),
        (
            "size=3",
            "size=99",
            "9: [convolutional]: size=99 is out of range: detforge accepts 1..31",
        ),
    ],
)
def test_the_cfg_written_is_checked_as_predict_reads_it(
    old: str, new: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mask beyond the anchors, a route or shortcut to a later or missing layer were
    written (exit 0) and refused only by predict/train: now one error at IN.cfg's line."""
    assert _refused(tmp_path, TWO_HEADS.replace(old, new), capsys, "--classes", "3") == message


def test_an_error_the_options_cause_names_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A value the rewrite wrote is not the input's: the error says which option set it."""
    said = _refused(tmp_path, TWO_HEADS, capsys, "--classes", "6000")
    assert said == (
        "17: [convolutional]: filters=18015 is out of range: detforge accepts 1..16384 "
        "(filters=18015 on this line comes from --classes 6000)"
    )
    # stride 64 (a stride-2 conv, 5 max-pools), upsampled (layer 6) and joined with layer 4:
    # 160 is a multiple of 32 that --imgsz accepts, and the joined layers come out 6x6 and 5x5
    pools = "[maxpool]\nsize=2\nstride=2\n\n" * 5
    deep = TWO_HEADS.replace(
        "[shortcut]\nfrom=-1\n", f"{pools}[upsample]\n\n[route]\nlayers=-1,4\n"
    )
    deep = deep.replace("size=3\npad=1\n", "size=3\nstride=2\npad=1\n").replace("-4", "-10")
    said = _refused(tmp_path, deep, capsys, "--classes", "3", "--imgsz", "160")
    assert said == (
        "2: [net]: width=160 is not a multiple of 64, the stride this network reaches: layers "
        "[6, 4], joined by [route] on line 36, come out with different sizes -- use width=128 "
        "or 192 (width=160 on this line comes from --imgsz)"
    )
    assert main(["darknet-cfg", str(tmp_path / "in.cfg"), "--classes", "3", "--imgsz", "192",
                 "-o", str(tmp_path / "out.cfg")]) == 0  # fmt: skip


def test_layers_detforge_does_not_run_are_noted_and_the_rest_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """[Gaussian_yolo] (which the model parser refuses) is kept as an opaque layer: the
    cfg is written with a note, and what does not need its output is still checked."""
    gauss = TWO_HEADS.replace("[yolo]", "[Gaussian_yolo]")
    (tmp_path / "in.cfg").write_text(gauss)
    out = tmp_path / "out.cfg"
    assert main(["darknet-cfg", str(tmp_path / "in.cfg"), "--classes", "3", "-o", str(out)]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0] == (
        f"note: {tmp_path / 'in.cfg'} was checked only in part: [gaussian_yolo]: a layer type "
        "detforge does not run (lines 21, 35); what depends on it was not checked"
    )
    assert out.read_text().count("filters=36\n") == 2  # (3 + 9) * 3
    assert _refused(tmp_path, gauss.replace("layers=-4", "layers=5"), capsys, "--classes", "3") \
        == "28: [route]: layers refers to layer 5, which is not an earlier layer"  # fmt: skip
    bad_mask = gauss.replace("mask=3,4,5", "mask=3,4,9")
    assert _refused(tmp_path, bad_mask, capsys, "--classes", "3") == (
        "36: [gaussian_yolo]: mask=3,4,9 names anchors beyond the 6 given"
    )
    # a [reorg] in place of the shortcut: the layers after it are fed an unknown shape, yet
    # a [yolo] mask beyond the anchors is still an error
    reorg = TWO_HEADS.replace("[shortcut]\nfrom=-1\n", "[reorg]\nstride=2\n")
    said = _refused(tmp_path, reorg.replace("mask=0,1,2", "mask=0,1,7"), capsys, "--classes", "3")
    assert said == "22: [yolo]: mask=0,1,7 names anchors beyond the 6 given"
    (tmp_path / "in.cfg").write_text(reorg)
    assert main(["darknet-cfg", str(tmp_path / "in.cfg"), "--classes", "3", "-o", str(out),
                 "--exist-ok"]) == 0  # fmt: skip
    assert capsys.readouterr().out.splitlines()[0] == (
        f"note: {tmp_path / 'in.cfg'} was checked only in part: [reorg]: a layer type detforge "
        "does not run (line 13); what depends on it was not checked"
    )


@pytest.mark.parametrize(
    ("add", "message"),
    [
        (
            "counters_per_class=100,20\n",
            "26: [yolo]: counters_per_class has 2 values for classes=3; give one box count per "
            "class",
        ),
        ("max_delta=0\n", "26: [yolo]: max_delta=0 must be > 0"),
        ("iou_normalizer=x\n", "26: [yolo]: iou_normalizer=x is not a number"),
    ],
)
def test_the_yolo_loss_keys_train_reads_are_checked_too(
    add: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A counters_per_class that no longer has one count per class after --classes (or a
    bad loss key) was written (exit 0) and refused only when training started."""
    text = TWO_HEADS.replace("classes=80\nnum=6\n", "classes=80\nnum=6\n" + add, 1)
    assert text.splitlines()[25] == add.rstrip("\n")  # line 26 of in.cfg, the first [yolo]
    assert _refused(tmp_path, text, capsys, "--classes", "3") == message
