"""``detforge report`` rendered in a real headless Chromium: the numbers equal ``detforge
eval``, the gallery is worst first with the counts an independent matcher gives, filters and
the score slider change what is shown, nothing leaves ``file://``, and the page is not blank."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from detforge.cli.main import main
from detforge.data.boxes import BoxFormat
from detforge.data.synthetic import generate_shapes_dataset
from detforge.formats.detect import read_any, read_ground_truth
from detforge.formats.predictions import read_predictions
from detforge.predict.draw import match_boxes
from detforge.train.runs import write_metrics_csv
from tests.report.helpers import browser_page, dump_dom, write_predictions

pytestmark = pytest.mark.slow  # a browser start per test, ~15 s in all


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 60-image shapes dataset, two fake models, a fake run folder, the report of them, the
    ``detforge eval --json`` of each model, and a report of the whole dataset without models."""
    root = tmp_path_factory.mktemp("report")
    data = generate_shapes_dataset(root / "ds", num_images=60, seed=2)
    gt, _ = read_ground_truth(str(data), split=None, images_dir=None, path_map=[])
    preds = {"good": root / "good", "worse": root / "worse"}
    write_predictions(gt, preds["good"], seed=0, miss=0.15, swap=0.1)
    write_predictions(gt, preds["worse"], seed=1, miss=0.35, swap=0.25)
    run = root / "run"
    (run / "preview").mkdir(parents=True)
    rows = [
        {"epoch": e, "train/box": 2.0 / e, "train/cls": 1.5 / e, "train/dfl": 1.0 + 0.5 / e,
         "lr": 0.01, "val/mAP50": 0.2 * e, "val/mAP50-95": 0.1 * e}
        for e in (1, 2, 3)
    ]  # fmt: skip
    write_metrics_csv(run / "metrics.csv", rows)
    for e in (1, 2, 3):
        Image.new("RGB", (320, 160), (40 * e, 90, 200)).save(run / "preview" / f"epoch_{e:03d}.jpg")
    (run / "config.yaml").write_text("epochs: 3\nimgsz: 160\nmodel: n\n")
    out = root / "site"
    argv = ["report", str(data), "--pred", str(preds["good"]), str(preds["worse"]),
            "--name", "good", "--name", "worse", "--run", str(run), "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    evals = {}
    for name, p in preds.items():
        js = root / f"{name}.json"
        assert main(["eval", str(data), str(p), "--json", str(js)]) == 0
        evals[name] = json.loads(js.read_text())
    plain = root / "plain"
    assert main(["report", str(data), "--out", str(plain), "--no-check"]) == 0
    return {"data": data, "gt": gt, "preds": preds, "out": out, "evals": evals, "plain": plain}


def reference_counts(gt: Any, pred_dir: Path, conf: float) -> dict[str, tuple[int, int]]:
    """``{image path: (FP, FN)}`` by ``detforge show``'s matcher (predict/draw.match_boxes) on
    predictions with ``score >= conf``: an implementation independent of the report's."""
    pred = read_predictions(pred_dir, gt)
    g = gt.coords_as(BoxFormat.XYXY_PIXEL)
    p = pred.coords_as(BoxFormat.XYXY_PIXEL)
    out = {}
    for i, path in enumerate(gt.images.path.tolist()):
        gi = gt.boxes.image == i
        pi = (pred.boxes.image == i) & (pred.boxes.score >= conf)
        tp, found = match_boxes(
            g[gi], gt.boxes.cls[gi], p[pi], pred.boxes.cls[pi], pred.boxes.score[pi], iou=0.5
        )
        out[str(path)] = (int((~tp).sum()), int((~found).sum()))
    return out


def set_conf(page: Any, value: float) -> None:
    """Move the score slider to ``value`` as a user dragging it would (an ``input`` event)."""
    page.eval_on_selector(
        "#f-conf", f"e => {{e.value = '{value}'; e.dispatchEvent(new Event('input'))}}"
    )


class _Dom(HTMLParser):
    """Per-class rows (by model table) and gallery figures of a dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.model: str | None = None
        self.rows: dict[str, list[tuple[str, str]]] = {}
        self.figures: list[dict[str, str]] = []
        self.attrs: list[str] = []
        self.metric: str | None = None
        self.values: dict[str, dict[str, str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.attrs += [v for k, v in a.items() if k in ("src", "href", "srcset", "action")]
        if tag == "table" and "data-model" in a:
            self.model = a["data-model"]
            self.rows[self.model] = []
        elif tag == "tr" and "data-class" in a and self.model is not None:
            self.rows[self.model].append((a["data-class"], a["data-ap"]))
        elif tag == "tr" and "data-metric" in a:
            self.metric = a["data-metric"]
        elif tag == "td" and "data-value" in a and self.metric is not None:
            self.values.setdefault(a["data-model"], {})[self.metric] = a["data-value"]
        elif tag == "figure":
            self.figures.append(a)


def test_dom_rows_equal_detforge_eval_and_gallery_worst_first(site: dict[str, Any]) -> None:
    dom = _Dom()
    dom.feed(dump_dom(site["out"] / "index.html"))
    assert set(dom.rows) == {"good", "worse"}
    for name, ev in site["evals"].items():
        want = [(r["name"], r["AP"]) for r in ev["coco"]["per_class"]]
        got = dom.rows[name]
        assert [n for n, _ in got] == [n for n, _ in want] == ["circle", "square", "triangle"]
        for (_, ap_txt), (_, ap) in zip(got, want, strict=True):
            assert float(ap_txt) == ap  # the exact float, not a rounding of it
        for key, want_v in ev["coco"]["stats"].items():  # the 12 COCO numbers
            assert float(dom.values[name][f"coco.{key}"]) == want_v, key
        for key in ("mAP", "tp", "fp", "fn", "avg_iou", "f1"):
            assert float(dom.values[name][f"darknet.{key}"]) == ev["darknet"][key], key
    ref = reference_counts(site["gt"], site["preds"]["good"], 0.25)
    figs = dom.figures
    assert len(figs) == len(ref) == site["gt"].num_images
    counts = [(int(f["data-fp"]), int(f["data-fn"])) for f in figs]
    assert all(ref[f["data-image"]] == c for f, c in zip(figs, counts, strict=True))
    worst = max(a + b for a, b in ref.values())
    assert sum(counts[0]) == worst > 0
    assert [a + b for a, b in counts] == sorted((a + b for a, b in counts), reverse=True)
    assert not [u for u in dom.attrs if re.match(r"\s*(https?:)?//", u)]


def test_offline_filters_slider_viewer_keyboard(site: dict[str, Any], tmp_path: Path) -> None:
    out: Path = site["out"]
    for f in out.rglob("*"):
        if f.suffix in (".html", ".js", ".css"):
            text = f.read_text(encoding="utf-8")
            assert "http://" not in text and "https://" not in text, f
    assert "default-src 'self' file: data:" in (out / "index.html").read_text()
    gt = site["gt"]
    requests: list[str] = []
    with browser_page(out / "index.html", requests) as page:

        def shown() -> list[dict[str, str]]:
            return page.eval_on_selector_all(
                "#gallery figure",
                "els => els.map(e => "
                "({img: e.dataset.image, fp: +e.dataset.fp, fn: +e.dataset.fn}))",
            )

        before = shown()
        page.locator("#gallery figure >> nth=0").scroll_into_view_if_needed()  # lazy loading
        page.wait_for_function(
            "() => { const e = document.querySelector('#gallery figure img');"
            " return e.complete && e.naturalWidth === 160; }"
        )
        # class filter: only images with a triangle (truth, or prediction shown) remain
        page.click('#f-class button[data-cls="2"]')
        tri = shown()
        assert 0 < len(tri) < len(before)
        rows = {str(p): i for i, p in enumerate(gt.images.path.tolist())}
        pred = read_predictions(site["preds"]["good"], gt)
        for f in tri:
            i = rows[f["img"]]
            has = (gt.boxes.cls[gt.boxes.image == i] == 2).any() or (
                (pred.boxes.cls == 2) & (pred.boxes.image == i) & (pred.boxes.score >= 0.25)
            ).any()
            assert has, f["img"]
        page.click('#f-class button[data-cls="-1"]')
        page.click('#f-kind button[data-kind="fn"]')
        assert shown() and all(f["fn"] > 0 for f in shown())
        page.click('#f-kind button[data-kind=""]')
        assert shown() == before
        # the score slider redraws at another threshold, with the reference's counts
        page.eval_on_selector(
            "#f-conf", "e => {e.value = '0.9'; e.dispatchEvent(new Event('input'))}"
        )
        high = shown()
        ref = reference_counts(gt, site["preds"]["good"], 0.9)
        assert high != before and all(ref[f["img"]] == (f["fp"], f["fn"]) for f in high)
        assert sum(f["fn"] for f in high) > sum(f["fn"] for f in before)
        assert page.inner_text("#f-conf-v") == "0.90"
        # a click opens the full image with every box listed (truths + all predictions)
        first = high[0]["img"]
        page.click("#gallery figure >> nth=0")
        assert page.is_visible("#viewer") and page.inner_text("#viewer-title") == first
        i = rows[first]
        n_boxes = int((gt.boxes.image == i).sum()) + int((pred.boxes.image == i).sum())
        assert page.locator("#viewer-list tbody tr").count() == n_boxes
        assert page.locator("#viewer-pic img").evaluate("e => e.complete && e.naturalWidth > 0")
        page.keyboard.press("ArrowRight")
        assert page.inner_text("#viewer-title") == high[1]["img"]
        listed = page.inner_text("#viewer-list")
        page.keyboard.press("m")  # the other model's predictions on the same image
        assert page.eval_on_selector("#viewer-model", "e => e.value") == "1"
        assert page.inner_text("#viewer-title") == high[1]["img"]
        assert page.inner_text("#viewer-list") != listed
        page.keyboard.press("Escape")
        assert not page.is_visible("#viewer")
        # keyboard navigation in the gallery
        page.focus('#gallery figure[data-pos="0"]')
        page.keyboard.press("ArrowRight")
        assert page.evaluate("document.activeElement.dataset.pos") == "1"
        page.keyboard.press("Enter")
        assert page.inner_text("#viewer-title") == high[1]["img"]
        page.keyboard.press("Escape")
        # the other model's gallery, the label-mistake list and the run section are drawn
        page.select_option("#f-model", "1")
        assert shown() != high
        assert page.locator("#mistakes table.suspects tbody tr").count() > 0
        page.click("#mistakes table.suspects tbody tr >> nth=0")  # opens the image, box marked
        assert page.is_visible("#viewer") and page.locator("#viewer-list tr.hl").count() >= 1
        page.keyboard.press("Escape")
        assert page.locator("#run svg.chart").count() == 2
        assert page.locator("#run-img").evaluate("e => e.src.endsWith('run/epoch_003.jpg')")
        assert "imgsz: 160" in page.inner_text("#run pre.config")
        shot = tmp_path / "report.png"
        page.eval_on_selector(
            "#f-conf", "e => {e.value = '0.25'; e.dispatchEvent(new Event('input'))}"
        )
        page.screenshot(path=str(shot), full_page=True)
        attrs = page.evaluate(
            "[...document.querySelectorAll('[src],[href]')]"
            ".map(e => e.getAttribute('src') || e.getAttribute('href'))"
        )
    assert requests and all(u.startswith("file:") for u in requests), requests
    assert any("/view/" in u for u in requests)  # 160 x 128 px: each image is its own thumbnail
    assert not [a for a in attrs if re.match(r"\s*(https?:)?//", a)]
    pix = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    assert pix.shape[0] > 2000 and pix.std() > 20
    assert len(np.unique(pix.reshape(-1, 3)[::50], axis=0)) > 200  # text, charts, photos


def test_without_predictions_pages_through_all_images(site: dict[str, Any]) -> None:
    requests: list[str] = []
    with browser_page(site["plain"] / "index.html", requests) as page:
        assert page.locator("#gallery figure").count() == 48  # first page
        assert page.is_hidden("#evaluation") and page.is_hidden("#run")
        assert "60 images" in page.inner_text("#pager-top")
        page.click("#pager-top button:has-text('next')")
        assert page.locator("#gallery figure").count() == 12
        page.select_option("#f-split", "test")
        figs = page.eval_on_selector_all("#gallery figure", "els => els.map(e => e.dataset.image)")
        full = read_any(site["data"])
        want = sorted(str(p) for p in full.images.path[full.images.split == "test"])
        assert sorted(figs) == want
        # the dataset section: images / negatives / boxes per split, as the dataset has them
        table = page.eval_on_selector_all(
            "#dataset table >> nth=0 >> tbody tr",
            "rs => rs.map(r => [...r.children].map(c => c.textContent))",
        )
        for split in ("train", "valid", "test"):
            sub = full.split(split)
            negatives = int((sub.boxes_per_image() == 0).sum())
            row = [split, str(sub.num_images), str(negatives), str(sub.num_boxes)]
            assert row in [r[:4] for r in table]
        assert page.locator("#dataset .findings").count() == 0  # --no-check
    assert all(u.startswith("file:") for u in requests)


def test_many_classes_confusion_matrix_is_cut_to_the_busiest(tmp_path: Path) -> None:
    """3000 classes made a 3001 x 3001 table that hung the browser for minutes: the page
    shows the 40 classes with the most boxes and sums the others in one row and column."""
    n = 3000
    (tmp_path / "obj.names").write_text("".join(f"c{k}\n" for k in range(n)))
    (tmp_path / "preds").mkdir()
    lines = []
    for i in range(10):
        img = tmp_path / f"im{i}.jpg"
        Image.new("RGB", (64, 48), (20 * i, 0, 0)).save(img)
        lines.append(str(img))
        ks = [7 * i + j for j in range(5)]  # 50 classes with a box, 2950 without
        (tmp_path / f"im{i}.txt").write_text("".join(f"{k} 0.5 0.5 0.3 0.3\n" for k in ks))
        det = "".join(f"{k} 0.5 0.5 0.3 0.3 0.9\n" for k in ks)
        (tmp_path / "preds" / f"im{i}.txt").write_text(det)
    (tmp_path / "list.txt").write_text("".join(s + "\n" for s in lines))
    data = tmp_path / "obj.data"
    data.write_text(f"classes={n}\nvalid=list.txt\nnames=obj.names\n")
    out = tmp_path / "site"
    assert main(["report", str(data), "--pred", str(tmp_path / "preds"), "--out", str(out)]) == 0
    requests: list[str] = []
    with browser_page(out / "index.html", requests) as page:
        heads = page.eval_on_selector_all(
            "table.confusion thead th", "els => els.map(e => e.textContent)"
        )
        assert len(heads) == 1 + 40 + 2 and heads[-2:] == ["2960 other classes", "background"]
        cells = page.eval_on_selector_all("table.confusion td[data-v]", "els => els.length")
        assert cells == 40 + 1  # the diagonal of the 40 shown, and the 10 others summed
