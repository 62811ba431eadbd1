/* detforge report: renders the page from window.DETFORGE_REPORT (assets/data.js).
 * No network, no libraries: plain DOM + inline SVG built from strings. */
(function () {
  "use strict";
  var R = window.DETFORGE_REPORT;
  if (!R) { return; }
  var FP_COLOR = "#cc0066", FN_COLOR = "#e69f00", TP_COLOR = "#009e73";
  var KIND_LABEL = {
    tp: "true positive", background: "false positive (background)", wrong_class: "wrong class",
    duplicate: "duplicate", localisation: "localisation", ignored: "ignored (crowd/difficult)"
  };
  var PAGE = 48;

  /* ---------------------------------------------------------------- helpers */
  function $(sel, root) { return (root || document).querySelector(sel); }
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
  function el(tag, attrs, html) {
    var e = document.createElement(tag);
    if (attrs) { for (var k in attrs) { if (attrs[k] !== null && attrs[k] !== undefined) { e.setAttribute(k, attrs[k]); } } }
    if (html !== undefined) { e.innerHTML = html; }
    return e;
  }
  function fmt(x, nd) {
    if (x === null || x === undefined || (typeof x === "number" && isNaN(x))) { return "–"; }
    if (typeof x !== "number") { return esc(x); }
    if (x === -1 && nd === -1) { return '<span class="muted" title="-1: no ground truth in this range">–</span>'; }
    if (Number.isInteger(x)) { return x.toLocaleString("en"); }
    return x.toFixed(nd === undefined ? 3 : nd);
  }
  function pct(x) { return (x === null || x === undefined) ? "–" : (100 * x).toFixed(1); }
  function color(k) { return (R.classes[k] || {color: "#888"}).color; }
  function cname(k) { return k >= 0 && R.classes[k] ? R.classes[k].name : "?"; }
  function swatch(k) {
    return '<svg class="sw" width="11" height="11" aria-hidden="true"><rect width="11" height="11" rx="2" fill="' +
      color(k) + '"/></svg>';
  }
  function basename(p) { var s = String(p).split(/[\\/]/); return s[s.length - 1]; }

  /* ---------------------------------------------------------------- charts */
  // A line chart: series = [{name, color, xs, ys, width}], axes from 0..1 unless given.
  function lineChart(series, opt) {
    var W = opt.width || 420, H = opt.height || 260, L = 44, B = 34, T = 22, Rt = 10;
    var xmin = opt.xmin !== undefined ? opt.xmin : 0, xmax = opt.xmax !== undefined ? opt.xmax : 1;
    var ymin = opt.ymin !== undefined ? opt.ymin : 0, ymax = opt.ymax !== undefined ? opt.ymax : 1;
    if (opt.auto) {
      var lo = Infinity, hi = -Infinity, xl = Infinity, xh = -Infinity;
      series.forEach(function (s) { s.ys.forEach(function (y, i) { if (y !== null && isFinite(y)) { lo = Math.min(lo, y); hi = Math.max(hi, y); xl = Math.min(xl, s.xs[i]); xh = Math.max(xh, s.xs[i]); } }); });
      if (!isFinite(lo)) { lo = 0; hi = 1; xl = 0; xh = 1; }
      if (hi === lo) { hi = lo + 1; }
      if (xh === xl) { xh = xl + 1; }
      ymin = Math.min(0, lo); ymax = hi * 1.05; xmin = xl; xmax = xh;
    }
    function X(x) { return L + (x - xmin) / (xmax - xmin) * (W - L - Rt); }
    function Y(y) { return H - B - (y - ymin) / (ymax - ymin) * (H - B - T); }
    var s = '<svg class="chart" viewBox="0 0 ' + W + " " + H + '" role="img" aria-label="' + esc(opt.title || "") + '">';
    s += '<text class="ct" x="' + L + '" y="14">' + esc(opt.title || "") + "</text>";
    for (var g = 0; g <= 4; g++) {
      var yv = ymin + (ymax - ymin) * g / 4, yy = Y(yv);
      s += '<line class="grid" x1="' + L + '" x2="' + (W - Rt) + '" y1="' + yy + '" y2="' + yy + '"/>';
      s += '<text class="tick" x="' + (L - 5) + '" y="' + (yy + 3) + '" text-anchor="end">' + (+yv.toPrecision(3)) + "</text>";
      var xv = xmin + (xmax - xmin) * g / 4, xx = X(xv);
      s += '<text class="tick" x="' + xx + '" y="' + (H - B + 14) + '" text-anchor="middle">' + (+xv.toPrecision(3)) + "</text>";
    }
    s += '<text class="axis" x="' + ((L + W - Rt) / 2) + '" y="' + (H - 4) + '" text-anchor="middle">' + esc(opt.xlabel || "") + "</text>";
    s += '<text class="axis" transform="translate(11,' + ((T + H - B) / 2) + ') rotate(-90)" text-anchor="middle">' + esc(opt.ylabel || "") + "</text>";
    series.forEach(function (sr) {
      var d = "";
      sr.ys.forEach(function (y, i) {
        if (y === null || !isFinite(y)) { return; }
        d += (d ? "L" : "M") + X(sr.xs[i]).toFixed(1) + " " + Y(y).toFixed(1);
      });
      if (d) { s += '<path d="' + d + '" fill="none" stroke="' + sr.color + '" stroke-width="' + (sr.width || 1.5) + '"><title>' + esc(sr.name) + "</title></path>"; }
    });
    if (opt.vline !== undefined && opt.vline !== null) {
      s += '<line class="vline" x1="' + X(opt.vline) + '" x2="' + X(opt.vline) + '" y1="' + T + '" y2="' + (H - B) + '"/>';
    }
    return '<div class="chartbox">' + s + "</svg>" + legend(series) + "</div>";
  }
  function legend(series) {
    if (series.length < 2) { return ""; }
    return '<div class="legend">' + series.map(function (sr) {
      return '<span><svg class="sw" width="14" height="4" aria-hidden="true"><rect width="14" height="4" fill="' + sr.color + '"/></svg>' + esc(sr.name) + "</span>";
    }).join("") + "</div>";
  }
  function histChart(h, opt) {
    var W = 420, H = 200, L = 44, B = 34, T = 22, Rt = 10;
    if (!h || !h.counts.length) { return '<p class="muted">no boxes</p>'; }
    var n = h.counts.length, max = Math.max.apply(null, h.counts) || 1, bw = (W - L - Rt) / n;
    var s = '<svg class="chart" viewBox="0 0 ' + W + " " + H + '" role="img" aria-label="' + esc(opt.title) + '">';
    s += '<text class="ct" x="' + L + '" y="14">' + esc(opt.title) + "</text>";
    h.counts.forEach(function (c, i) {
      var bh = c / max * (H - B - T);
      s += '<rect class="bar" x="' + (L + i * bw + 0.5).toFixed(1) + '" y="' + (H - B - bh).toFixed(1) + '" width="' + Math.max(bw - 1, 1).toFixed(1) + '" height="' + bh.toFixed(1) + '"><title>' +
        (+h.edges[i].toPrecision(3)) + "–" + (+h.edges[i + 1].toPrecision(3)) + ": " + c + "</title></rect>";
    });
    [0, Math.floor(n / 2), n].forEach(function (i) {
      s += '<text class="tick" x="' + (L + i * bw) + '" y="' + (H - B + 14) + '" text-anchor="middle">' + (+h.edges[i].toPrecision(3)) + "</text>";
    });
    s += '<text class="tick" x="' + (L - 5) + '" y="' + (T + 4) + '" text-anchor="end">' + max + "</text>";
    s += '<text class="axis" x="' + ((L + W) / 2) + '" y="' + (H - 4) + '" text-anchor="middle">' + esc(opt.xlabel) + "</text>";
    return s + "</svg>";
  }

  /* ---------------------------------------------------------------- overview */
  function renderOverview() {
    var box = $("#overview");
    var chips = [[R.models.length ? "images evaluated" : "images", R.images.length], ["classes", R.classes.length]];
    if (R.dataset) { chips.push(["boxes", R.dataset.boxes]); }
    R.models.forEach(function (m) { chips.push([m.name + " AP@[.5:.95]", m.coco.AP === null ? "–" : pct(m.coco.AP) + "%"]); });
    box.innerHTML = '<p class="source">Ground truth: <code>' + esc(R.source) + "</code>" +
      (R.models.length ? " · predictions: " + R.models.map(function (m) { return "<code>" + esc(m.source) + "</code>"; }).join(", ") : "") + "</p>" +
      '<div class="chips">' + chips.map(function (c) { return '<div class="chip"><b>' + fmt(c[1]) + "</b><span>" + esc(c[0]) + "</span></div>"; }).join("") + "</div>" +
      '<div class="classes">' + R.classes.map(function (c, k) { return '<span class="cls">' + swatch(k) + esc(c.name) + "</span>"; }).join("") + "</div>";
    if (!R.dataset) { hide("dataset"); }
    if (!R.models.length) { hide("evaluation"); hide("mistakes"); }
    if (!R.run) { hide("run"); }
  }
  function hide(id) {
    $("#" + id).hidden = true;
    var a = $('#nav a[href="#' + id + '"]');
    if (a) { a.hidden = true; }
  }

  /* ---------------------------------------------------------------- dataset */
  function renderDataset() {
    if (!R.dataset) { return; }
    var body = $("#dataset .body"), D = R.dataset, h = "";
    h += '<table class="num"><thead><tr><th>split</th><th>images</th><th>negatives</th><th>boxes</th><th>boxes/image (max)</th></tr></thead><tbody>';
    D.splits.forEach(function (s) {
      h += "<tr><th>" + esc(s.split) + "</th><td>" + fmt(s.images) + "</td><td>" + fmt(s.negatives) + "</td><td>" + fmt(s.boxes) + "</td><td>" + fmt(s.max_boxes_per_image) + "</td></tr>";
    });
    h += "</tbody></table>";
    h += '<h3>Boxes (images) per class and split</h3><table class="num"><thead><tr><th>class</th>' +
      D.splits.map(function (s) { return "<th>" + esc(s.split) + "</th>"; }).join("") + "</tr></thead><tbody>";
    R.classes.forEach(function (c, k) {
      h += '<tr><th class="l">' + swatch(k) + esc(c.name) + "</th>" + D.splits.map(function (s) {
        return "<td>" + fmt(s.class_counts[k]) + ' <span class="muted">(' + fmt(s.class_images[k]) + ")</span></td>";
      }).join("") + "</tr>";
    });
    h += "</tbody></table>";
    var all = D.splits[D.splits.length - 1];
    h += '<div class="charts">' + histChart(all.size_hist, {title: "box size √(w·h), " + all.split, xlabel: all.units === "px" ? "pixels (log scale)" : "fraction of image (log scale)"}) +
      histChart(all.aspect_hist, {title: "box aspect w/h, " + all.split, xlabel: "w / h (log scale)"}) + "</div>";
    body.innerHTML = h;
    renderFindings(body);
  }
  function renderFindings(body) {
    if (!R.findings) { return; }
    var F = R.findings, wrap = el("div", {"class": "findings"});
    var counts = {error: 0, warning: 0, info: 0};
    F.forEach(function (f) { counts[f.severity] = (counts[f.severity] || 0) + 1; });
    wrap.innerHTML = "<h3>Check findings</h3><p>" + (F.length ? '<span class="sev error">' + counts.error + ' errors</span> <span class="sev warning">' + counts.warning + ' warnings</span> <span class="sev info">' + counts.info + " notes</span>" : "No findings: <code>detforge check</code> found nothing wrong.") + "</p>";
    if (F.length) {
      var t = el("table", {"class": "findings-table"});
      t.innerHTML = "<thead><tr><th>severity</th><th>code</th><th>where</th><th>message</th></tr></thead><tbody></tbody>";
      var shown = 0, tb = t.tBodies[0];
      var more = el("button", {type: "button", "class": "more"});
      var add = function () {
        F.slice(shown, shown + 200).forEach(function (f) {
          var loc = f.path ? esc(f.path) + (f.line ? ":" + f.line : "") : "–";
          if (f.image !== null && f.image !== undefined) { loc = '<a href="#" data-open="' + f.image + '">' + loc + "</a>"; }
          tb.appendChild(el("tr", {"class": f.severity}, '<td><span class="sev ' + f.severity + '">' + f.severity + "</span></td><td><code>" + esc(f.code) + "</code></td><td class=\"path\">" + loc + "</td><td>" + esc(f.message) + "</td>"));
        });
        shown = Math.min(F.length, shown + 200);
        more.textContent = "show more (" + (F.length - shown) + " left)";
        more.hidden = shown >= F.length;
      };
      more.addEventListener("click", add);
      add();
      wrap.appendChild(t);
      wrap.appendChild(more);
    }
    body.appendChild(wrap);
  }

  /* ---------------------------------------------------------------- evaluation */
  var COCO_KEYS = [["AP", "AP @[.50:.95]"], ["AP50", "AP @.50"], ["AP75", "AP @.75"], ["APs", "AP small"], ["APm", "AP medium"], ["APl", "AP large"],
    ["AR1", "AR maxDets 1"], ["AR10", "AR maxDets 10"], ["AR100", "AR maxDets 100"], ["ARs", "AR small"], ["ARm", "AR medium"], ["ARl", "AR large"]];
  function renderEvaluation() {
    if (!R.models.length) { return; }
    var body = $("#evaluation .body"), M = R.models, h = "";
    h += '<p class="muted">Numbers are those of <code>detforge eval</code> on the same files: COCO = pycocotools\' rules, Darknet = <code>detector map</code> (IoU &gt; ' + R.iou + ", conf " + R.conf + ").</p>";
    h += '<table class="num summary"><thead><tr><th>metric</th>' + M.map(function (m) { return "<th>" + esc(m.name) + "</th>"; }).join("") + "</tr></thead><tbody>";
    COCO_KEYS.forEach(function (k) { h += '<tr><th class="l">COCO ' + k[1] + "</th>" + M.map(function (m) { return "<td>" + (m.coco[k[0]] === -1 ? fmt(-1, -1) : fmt(m.coco[k[0]])) + "</td>"; }).join("") + "</tr>"; });
    [["mAP", "Darknet mAP@" + R.iou], ["precision", "precision"], ["recall", "recall"], ["f1", "F1"], ["tp", "TP"], ["fp", "FP"], ["fn", "FN"], ["avg_iou", "average IoU"]].forEach(function (k) {
      h += '<tr><th class="l">' + (k[0] === "mAP" ? "" : "Darknet ") + esc(k[1]) + "</th>" + M.map(function (m) { return "<td>" + fmt(m.darknet[k[0]]) + "</td>"; }).join("") + "</tr>";
    });
    h += '<tr><th class="l">best F1 (confidence)</th>' + M.map(function (m) { return "<td>" + fmt(m.f1.best_f1) + " (" + fmt(m.f1.best_conf, 2) + ")</td>"; }).join("") + "</tr>";
    h += "</tbody></table>";
    h += '<h3>Per class</h3><div class="models">';
    M.forEach(function (m) {
      h += '<div class="model"><h4>' + esc(m.name) + '</h4><table class="num per-class" data-model="' + esc(m.name) + '"><thead><tr><th>class</th><th title="COCO AP@[.50:.95]">AP</th><th title="COCO AP@.50">AP50</th><th title="COCO AP@.75">AP75</th><th title="Darknet AP at the IoU threshold">Darknet AP</th><th>GT</th><th>TP</th><th>FP</th><th>P</th><th>R</th></tr></thead><tbody>';
      m.per_class.forEach(function (r) {
        var ap = (r.AP === null || r.AP === undefined) ? "NaN" : String(r.AP);
        h += '<tr data-class="' + esc(r.name) + '" data-ap="' + ap + '"><th class="l">' + swatch(r["class"]) + esc(r.name) + "</th><td>" + fmt(r.AP) + "</td><td>" + fmt(r.AP50) + "</td><td>" + fmt(r.AP75) + "</td><td>" + fmt(r.darknet_ap) +
          "</td><td>" + fmt(r.gt) + "</td><td>" + fmt(r.tp) + "</td><td>" + fmt(r.fp) + "</td><td>" + fmt(r.precision) + "</td><td>" + fmt(r.recall) + "</td></tr>";
      });
      h += "</tbody></table></div>";
    });
    h += "</div><h3>Curves</h3><div class=\"charts\">";
    var grid = []; for (var i = 0; i <= 100; i++) { grid.push(i / 100); }
    M.forEach(function (m) {
      var pr = m.pr.map(function (ys, k) { return {name: cname(k), color: color(k), xs: grid, ys: ys}; }).filter(function (s) { return s.ys.length; });
      h += lineChart(pr, {title: "precision–recall, " + m.name, xlabel: "recall", ylabel: "precision"});
      var f1 = m.f1.per_class.map(function (ys, k) { return {name: cname(k), color: color(k), xs: grid, ys: ys, width: 1}; });
      f1.push({name: "all classes", color: "#222", xs: grid, ys: m.f1.mean, width: 2.5});
      h += lineChart(f1, {title: "F1–confidence, " + m.name, xlabel: "confidence threshold", ylabel: "F1", vline: m.f1.best_conf});
    });
    h += "</div><h3>Confusion matrices</h3><div class=\"models\">";
    M.forEach(function (m) { h += '<div class="model"><h4>' + esc(m.name) + ' <span class="muted">(conf &gt; ' + R.conf + ", IoU &gt; " + R.iou + ")</span></h4>" + confusion(m.confusion) + "</div>"; });
    body.innerHTML = h + "</div>";
    body.querySelectorAll("table.confusion td[data-v]").forEach(function (td) {
      var v = parseFloat(td.getAttribute("data-v"));
      td.style.background = "rgba(0,114,178," + (0.08 + 0.85 * v).toFixed(3) + ")";
      if (v > 0.55) { td.style.color = "#fff"; }
    });
  }
  function confusion(cm) {
    var labels = R.classes.map(function (c) { return c.name; }).concat(["background"]);
    var colsum = labels.map(function (_, j) { return cm.reduce(function (a, r) { return a + r[j]; }, 0); });
    var h = '<table class="num confusion"><thead><tr><th class="corner">true ↓ / predicted →</th>' + labels.map(function (l) { return "<th>" + esc(l) + "</th>"; }).join("") + "</tr></thead><tbody>";
    cm.forEach(function (row, i) {
      h += '<tr><th class="l">' + esc(labels[i]) + "</th>" + row.map(function (v, j) {
        return v ? '<td data-v="' + (colsum[j] ? v / colsum[j] : 0).toFixed(3) + '">' + v + "</td>" : '<td class="zero">·</td>';
      }).join("") + "</tr>";
    });
    return h + "</tbody></table>";
  }

  /* ---------------------------------------------------------------- boxes as SVG */
  function boxesSvg(i, model, conf, opt) {
    // Sizes in screen pixels, converted to image units for the width the picture is shown at.
    var img = R.images[i], w = img.w || 1, h = img.h || 1, s = "";
    var u = Math.max(w, h) / (opt.big ? 820 : 240), lw = 2 * u, dash = (4 * u).toFixed(2) + " " + (2.5 * u).toFixed(2);
    var rec = model ? model.images[i] : null;
    img.g.forEach(function (b, j) {
      var miss = rec && !b[5] && rec.f[j] < conf;
      var hl = opt.highlightGt === j;
      s += '<rect class="gt' + (miss ? " fn" : "") + '" x="' + b[1] + '" y="' + b[2] + '" width="' + (b[3] - b[1]) + '" height="' + (b[4] - b[2]) +
        '" fill="none" stroke="' + (miss ? FN_COLOR : color(b[0])) + '" stroke-width="' + (lw * (miss || hl ? 1.8 : 1)).toFixed(2) + '" stroke-dasharray="' + dash + '"><title>GT ' + esc(cname(b[0])) + (miss ? " (missed)" : "") + "</title></rect>";
    });
    if (rec) {
      rec.p.forEach(function (b, k) {
        if (b[5] < conf) { return; }
        var kind = R.kinds[b[6]], bad = kind !== "tp" && kind !== "ignored";
        var hl = opt.highlightPred === k, col = bad ? FP_COLOR : color(b[0]);
        s += '<rect class="pred ' + kind + '" x="' + b[1] + '" y="' + b[2] + '" width="' + (b[3] - b[1]) + '" height="' + (b[4] - b[2]) +
          '" fill="none" stroke="' + col + '" stroke-width="' + (lw * (hl ? 2 : 1.2)).toFixed(2) + '"><title>' + esc(cname(b[0])) + " " + b[5].toFixed(2) + " · " + KIND_LABEL[kind] + "</title></rect>";
        if (opt.big) {
          var fs = 12 * u;
          s += '<text class="lbl" x="' + b[1] + '" y="' + Math.max(fs, b[2] - 3 * u).toFixed(1) + '" font-size="' + fs.toFixed(2) + '" stroke-width="' + (2.5 * u).toFixed(2) + '" fill="' + col + '">' + esc(cname(b[0])) + " " + b[5].toFixed(2) + "</text>";
        }
      });
    }
    return '<svg class="boxes" viewBox="0 0 ' + w + " " + h + '" preserveAspectRatio="none" aria-hidden="true">' + s + "</svg>";
  }

  /* ---------------------------------------------------------------- error browser */
  var S = {model: 0, split: "", cls: -1, kind: "", conf: R.conf, page: 0, order: [], focus: 0};
  function curModel() { return R.models[S.model] || null; }
  function counts(i) {
    var m = curModel(); if (!m) { return [0, 0]; }
    var rec = m.images[i], fp = 0, fn = 0;
    rec.p.forEach(function (b) { var k = R.kinds[b[6]]; if (b[5] >= S.conf && k !== "tp" && k !== "ignored") { fp++; } });
    R.images[i].g.forEach(function (b, j) { if (!b[5] && rec.f[j] < S.conf) { fn++; } });
    return [fp, fn];
  }
  function matches(i) {
    var img = R.images[i], m = curModel();
    if (S.split && img.split !== S.split) { return false; }
    var rec = m ? m.images[i] : null;
    if (S.cls >= 0) {
      var has = img.g.some(function (b) { return b[0] === S.cls; }) ||
        (rec && rec.p.some(function (b) { return b[0] === S.cls && b[5] >= S.conf; }));
      if (!has) { return false; }
    }
    if (!S.kind || !rec) { return true; }
    var c = counts(i);
    if (S.kind === "any") { return c[0] + c[1] > 0; }
    if (S.kind === "fn") { return c[1] > 0; }
    if (S.kind === "fp") { return c[0] > 0; }
    return rec.p.some(function (b) { return b[5] >= S.conf && R.kinds[b[6]] === S.kind && (S.cls < 0 || b[0] === S.cls); });
  }
  function recompute() {
    var idx = [], c = {};
    for (var i = 0; i < R.images.length; i++) { if (matches(i)) { idx.push(i); c[i] = counts(i); } }
    if (curModel()) {
      idx.sort(function (a, b) { var ea = c[a][0] + c[a][1], eb = c[b][0] + c[b][1]; return (eb - ea) || (c[b][1] - c[a][1]) || (a - b); });
    }
    S.order = idx;
    S.counts = c;
  }
  function renderErrorsControls() {
    var body = $("#errors .body"), h = '<div class="controls">';
    if (R.models.length > 1) {
      h += '<label>model <select id="f-model">' + R.models.map(function (m, k) { return '<option value="' + k + '">' + esc(m.name) + "</option>"; }).join("") + "</select></label>";
    }
    var splits = []; R.images.forEach(function (im) { if (splits.indexOf(im.split) < 0) { splits.push(im.split); } });
    h += '<label>split <select id="f-split"><option value="">all</option>' + splits.map(function (s) { return '<option value="' + esc(s) + '">' + esc(s || "(none)") + "</option>"; }).join("") + "</select></label>";
    h += '<div class="chipset" id="f-class" role="group" aria-label="class"><button type="button" data-cls="-1" class="on">all classes</button>' +
      R.classes.map(function (c, k) { return '<button type="button" data-cls="' + k + '">' + swatch(k) + esc(c.name) + "</button>"; }).join("") + "</div>";
    if (R.models.length) {
      h += '<div class="chipset" id="f-kind" role="group" aria-label="error kind"><button type="button" data-kind="" class="on">all images</button><button type="button" data-kind="any">any error</button>' +
        '<button type="button" data-kind="fp">FP</button><button type="button" data-kind="fn">FN</button>' +
        ["wrong_class", "duplicate", "localisation", "background"].map(function (k) { return '<button type="button" data-kind="' + k + '">' + KIND_LABEL[k].replace("false positive ", "FP ") + "</button>"; }).join("") + "</div>";
      h += '<label class="slider">score ≥ <input type="range" id="f-conf" min="0" max="1" step="0.01" value="' + R.conf + '"><output id="f-conf-v">' + R.conf.toFixed(2) + "</output></label>";
    }
    h += '</div><p class="legendline"><span><svg class="sw" width="22" height="8"><line x1="0" y1="4" x2="22" y2="4" stroke="#555" stroke-width="2" stroke-dasharray="5 3"/></svg>ground truth (class colour)</span>' +
      (R.models.length ? '<span><svg class="sw" width="22" height="8"><line x1="0" y1="4" x2="22" y2="4" stroke="#555" stroke-width="2.5"/></svg>prediction (class colour)</span><span><svg class="sw" width="22" height="8"><line x1="0" y1="4" x2="22" y2="4" stroke="' + FP_COLOR + '" stroke-width="2.5"/></svg>false positive</span><span><svg class="sw" width="22" height="8"><line x1="0" y1="4" x2="22" y2="4" stroke="' + FN_COLOR + '" stroke-width="3" stroke-dasharray="5 3"/></svg>missed (FN)</span>' : "") +
      '<span class="muted">keys: arrows move, Enter opens, PgUp/PgDn page, Esc closes</span></p>' +
      '<div class="pager" id="pager-top"></div><div class="gallery" id="gallery" tabindex="-1"></div><div class="pager" id="pager-bottom"></div>';
    body.innerHTML = h;
    var ms = $("#f-model"); if (ms) { ms.addEventListener("change", function () { S.model = +ms.value; update(); }); }
    $("#f-split").addEventListener("change", function (e) { S.split = e.target.value; update(); });
    chipset("#f-class", "data-cls", function (v) { S.cls = +v; });
    if (R.models.length) {
      chipset("#f-kind", "data-kind", function (v) { S.kind = v; });
      var sl = $("#f-conf"), out = $("#f-conf-v");
      sl.addEventListener("input", function () { S.conf = +sl.value; out.textContent = S.conf.toFixed(2); update(); });
    }
  }
  function chipset(sel, attr, set) {
    var box = $(sel);
    box.addEventListener("click", function (e) {
      var b = e.target.closest("button"); if (!b) { return; }
      box.querySelectorAll("button").forEach(function (x) { x.classList.toggle("on", x === b); });
      set(b.getAttribute(attr)); update();
    });
  }
  function update() { S.page = 0; S.focus = 0; recompute(); renderGallery(); }
  function renderGallery() {
    var g = $("#gallery"), m = curModel(), n = S.order.length, pages = Math.max(1, Math.ceil(n / PAGE));
    S.page = Math.min(S.page, pages - 1);
    var from = S.page * PAGE, items = S.order.slice(from, from + PAGE), h = "";
    items.forEach(function (i, pos) {
      var img = R.images[i], c = S.counts[i] || [0, 0];
      h += '<figure tabindex="' + (from + pos === S.focus ? 0 : -1) + '" data-idx="' + i + '" data-pos="' + (from + pos) + '" data-image="' + esc(img.path) + '" data-fp="' + c[0] + '" data-fn="' + c[1] + '">' +
        '<div class="pic">' + (img.thumb ? '<img loading="lazy" decoding="async" width="' + (img.w || 4) + '" height="' + (img.h || 3) + '" src="' + esc(img.thumb) + '" alt="">' : '<div class="noimg">' + esc(img.error || "no image") + "</div>") + boxesSvg(i, m, S.conf, {}) + "</div>" +
        "<figcaption><span class=\"name\" title=\"" + esc(img.path) + "\">" + esc(basename(img.path)) + "</span>" +
        (m ? '<span class="badges"><span class="b fp' + (c[0] ? "" : " z") + '">FP ' + c[0] + '</span><span class="b fn' + (c[1] ? "" : " z") + '">FN ' + c[1] + "</span></span>" : '<span class="muted">' + img.g.length + " boxes</span>") + "</figcaption></figure>";
    });
    g.innerHTML = h || '<p class="muted">No image matches these filters.</p>';
    var pager = '<span class="count">' + n.toLocaleString("en") + " images" + (n ? " · " + (from + 1) + "–" + Math.min(n, from + PAGE) : "") + "</span>";
    if (pages > 1) {
      pager += '<button type="button" data-page="' + (S.page - 1) + '"' + (S.page ? "" : " disabled") + ">‹ prev</button>" +
        '<span class="pg">page ' + (S.page + 1) + " / " + pages + "</span>" +
        '<button type="button" data-page="' + (S.page + 1) + '"' + (S.page < pages - 1 ? "" : " disabled") + ">next ›</button>";
    }
    $("#pager-top").innerHTML = pager; $("#pager-bottom").innerHTML = pager;
  }
  function goPage(p) {
    var pages = Math.max(1, Math.ceil(S.order.length / PAGE));
    if (p < 0 || p >= pages) { return; }
    S.page = p; renderGallery();
  }
  function focusFig(pos) {
    var n = S.order.length; if (!n) { return; }
    pos = Math.max(0, Math.min(n - 1, pos));
    var page = Math.floor(pos / PAGE);
    if (page !== S.page) { S.page = page; renderGallery(); }
    S.focus = pos;
    var f = $('#gallery figure[data-pos="' + pos + '"]');
    if (f) {
      document.querySelectorAll("#gallery figure").forEach(function (x) { x.classList.remove("focus"); x.tabIndex = -1; });
      f.classList.add("focus"); f.tabIndex = 0; f.focus({preventScroll: false});
    }
  }
  function columns() {
    var figs = document.querySelectorAll("#gallery figure");
    if (figs.length < 2) { return 1; }
    var top = figs[0].offsetTop, c = 0;
    for (var k = 0; k < figs.length && figs[k].offsetTop === top; k++) { c++; }
    return c;
  }

  /* ---------------------------------------------------------------- viewer */
  var V = {open: false, list: [], pos: 0};
  function openViewer(i, list, opt) {
    V.list = list || [i]; V.pos = Math.max(0, V.list.indexOf(i)); V.opt = opt || {};
    V.open = true; $("#viewer").hidden = false; drawViewer();
    $("#viewer-close").focus();
  }
  function closeViewer() {
    V.open = false; $("#viewer").hidden = true;
    var f = $('#gallery figure[data-pos="' + S.focus + '"]'); if (f) { f.focus(); }
  }
  function drawViewer() {
    var i = V.list[V.pos], img = R.images[i], m = curModel(), rec = m ? m.images[i] : null;
    $("#viewer-title").textContent = img.path;
    $("#viewer-pic").innerHTML = '<div class="pic big">' + (img.view ? '<img width="' + (img.w || 4) + '" height="' + (img.h || 3) + '" src="' + esc(img.view) + '" alt="">' : '<div class="noimg">' + esc(img.error || "no image") + "</div>") +
      boxesSvg(i, m, S.conf, {big: true, highlightGt: V.opt.gt, highlightPred: V.opt.pred}) + "</div>";
    var h = '<p class="muted">' + img.w + "×" + img.h + " px · split " + esc(img.split || "(none)") + (m ? " · model " + esc(m.name) + " · score ≥ " + S.conf.toFixed(2) : "") + "</p>";
    h += '<table class="boxes-table num"><thead><tr><th>#</th><th>box</th><th>class</th><th>score</th><th>status</th><th>x1, y1, x2, y2</th></tr></thead><tbody>';
    img.g.forEach(function (b, j) {
      var st = b[5] ? "ignored" : (rec ? (rec.f[j] >= S.conf ? "found (" + rec.f[j].toFixed(2) + ")" : '<span class="fnt">missed</span>') : "");
      h += "<tr" + (V.opt.gt === j ? ' class="hl"' : "") + "><td>" + (j + 1) + '</td><td class="l">GT</td><td class="l">' + swatch(b[0]) + esc(cname(b[0])) + "</td><td></td><td class=\"l\">" + st + "</td><td>" + b.slice(1, 5).join(", ") + "</td></tr>";
    });
    if (rec) {
      rec.p.forEach(function (b, k) {
        var kind = R.kinds[b[6]], below = b[5] < S.conf;
        var st = KIND_LABEL[kind] + (b[7] >= 0 && kind !== "tp" ? " (GT " + (b[7] + 1) + ")" : kind === "tp" ? " (GT " + (b[7] + 1) + ")" : "");
        h += '<tr class="' + (below ? "below" : "") + (V.opt.pred === k ? " hl" : "") + '"><td>' + (k + 1) + '</td><td class="l">pred</td><td class="l">' + swatch(b[0]) + esc(cname(b[0])) + "</td><td>" + b[5].toFixed(3) + '</td><td class="l ' + (kind === "tp" || kind === "ignored" ? "" : "fpt") + '">' + esc(st) + (below ? " · below threshold" : "") + "</td><td>" + b.slice(1, 5).join(", ") + "</td></tr>";
      });
    }
    $("#viewer-list").innerHTML = h + "</tbody></table>";
    $("#viewer-prev").disabled = V.pos <= 0; $("#viewer-next").disabled = V.pos >= V.list.length - 1;
  }
  function stepViewer(d) { var p = V.pos + d; if (p >= 0 && p < V.list.length) { V.pos = p; V.opt = {}; drawViewer(); if (V.fromGallery) { S.focus = p; } } }

  /* ---------------------------------------------------------------- label mistakes */
  var SUSPECT_TEXT = {
    other_class: function (s) { return "labelled <b>" + esc(cname(s.gt_class)) + "</b>, but a confident <b>" + esc(cname(s.pred_class)) + "</b> prediction sits on it"; },
    not_detected: function () { return "nothing detected here, while every other object of the image is found"; },
    unlabelled: function (s) { return "confident <b>" + esc(cname(s.pred_class)) + "</b> prediction where no label is: a missing label?"; }
  };
  function renderMistakes() {
    if (!R.models.length) { return; }
    var body = $("#mistakes .body");
    body.innerHTML = '<p class="muted">Ground-truth boxes that a confident prediction contradicts, most confident first (score ≥ ' + R.high + "). Label errors cap mAP: look at these first.</p>" +
      (R.models.length > 1 ? '<p><label>model <select id="m-model">' + R.models.map(function (m, k) { return '<option value="' + k + '">' + esc(m.name) + "</option>"; }).join("") + "</select></label></p>" : "") +
      '<div id="m-list"></div>';
    var sel = $("#m-model"), mi = 0;
    var draw = function () {
      var m = R.models[mi], list = m.suspects, box = $("#m-list"), shown = 0;
      if (!list.length) { box.innerHTML = '<p class="muted">None found.</p>'; return; }
      box.innerHTML = '<table class="suspects"><thead><tr><th>#</th><th>image</th><th>what</th><th>score</th></tr></thead><tbody></tbody></table><button type="button" class="more" id="m-more"></button>';
      var tb = box.querySelector("tbody"), more = $("#m-more");
      var add = function () {
        list.slice(shown, shown + 50).forEach(function (s, k) {
          var img = R.images[s.image];
          var tr = el("tr", {"data-suspect": s.kind, "data-open": s.image, "data-gt": s.gt, "data-pred": s.pred, "data-model": mi});
          tr.innerHTML = "<td>" + (shown + k + 1) + '</td><td><div class="pic mini">' + (img.thumb ? '<img loading="lazy" width="' + (img.w || 4) + '" height="' + (img.h || 3) + '" src="' + esc(img.thumb) + '" alt="">' : "") +
            boxesSvg(s.image, m, 0, {highlightGt: s.gt, highlightPred: s.pred}) + '</div><div class="path">' + esc(basename(img.path)) + "</div></td><td>" + SUSPECT_TEXT[s.kind](s) + "</td><td>" + s.score.toFixed(3) + "</td>";
          tb.appendChild(tr);
        });
        shown = Math.min(list.length, shown + 50);
        more.textContent = "show more (" + (list.length - shown) + " left)"; more.hidden = shown >= list.length;
      };
      more.addEventListener("click", add); add();
    };
    if (sel) { sel.addEventListener("change", function () { mi = +sel.value; draw(); }); }
    draw();
  }

  /* ---------------------------------------------------------------- training run */
  function renderRun() {
    if (!R.run) { return; }
    var body = $("#run .body"), run = R.run, h = '<p class="source">Run folder: <code>' + esc(run.dir) + "</code></p>";
    var cols = run.columns, rows = run.rows, ep = cols.indexOf("epoch");
    var xs = rows.map(function (r, k) { return ep >= 0 && typeof r[ep] === "number" ? r[ep] : k + 1; });
    var pal = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#222"];
    function series(test) {
      var out = [];
      cols.forEach(function (c, j) { if (test(c)) { out.push({name: c, color: pal[out.length % pal.length], xs: xs, ys: rows.map(function (r) { return typeof r[j] === "number" ? r[j] : null; })}); } });
      return out;
    }
    var loss = series(function (c) { return /loss|^train\//i.test(c); });
    var met = series(function (c) { return /map|precision|recall|fitness|^val\//i.test(c) && !/loss/i.test(c); });
    h += '<div class="charts">';
    if (loss.length) { h += lineChart(loss, {title: "losses", xlabel: "epoch", ylabel: "loss", auto: true}); }
    if (met.length) { h += lineChart(met, {title: "validation metrics", xlabel: "epoch", ylabel: "value", auto: true}); }
    h += "</div>";
    if (!rows.length) { h += '<p class="muted">No metrics.csv rows in this run.</p>'; }
    if (run.previews.length) {
      h += '<h3>Preview per epoch</h3><p class="muted">predictions (left) next to ground truth (right), as the trainer drew them.</p><label class="slider">epoch <input type="range" id="run-ep" min="0" max="' + (run.previews.length - 1) + '" step="1" value="' + (run.previews.length - 1) + '"><output id="run-ep-v"></output></label><div class="preview"><img id="run-img" alt="epoch preview"></div>';
    }
    if (run.config) { h += "<h3>Configuration</h3><pre class=\"config\">" + esc(run.config) + "</pre>"; }
    body.innerHTML = h;
    var sl = $("#run-ep");
    if (sl) {
      var show = function () { var p = run.previews[+sl.value]; $("#run-img").src = p.path; $("#run-ep-v").textContent = p.epoch; };
      sl.addEventListener("input", show); show();
    }
  }

  /* ---------------------------------------------------------------- events */
  function wire() {
    document.addEventListener("click", function (e) {
      var o = e.target.closest("[data-open]");
      if (o) {
        e.preventDefault();
        var i = +o.getAttribute("data-open");
        if (o.hasAttribute("data-model")) { S.model = +o.getAttribute("data-model"); }
        V.fromGallery = false;
        openViewer(i, [i], {gt: o.hasAttribute("data-gt") ? +o.getAttribute("data-gt") : -1, pred: o.hasAttribute("data-pred") ? +o.getAttribute("data-pred") : -1});
        return;
      }
      var f = e.target.closest("#gallery figure");
      if (f) { S.focus = +f.getAttribute("data-pos"); V.fromGallery = true; openViewer(+f.getAttribute("data-idx"), S.order, {}); return; }
      var p = e.target.closest(".pager button[data-page]");
      if (p) { goPage(+p.getAttribute("data-page")); }
    });
    document.addEventListener("focusin", function (e) {
      var f = e.target.closest && e.target.closest("#gallery figure");
      if (f) { S.focus = +f.getAttribute("data-pos"); }
    });
    $("#viewer-close").addEventListener("click", closeViewer);
    $("#viewer-prev").addEventListener("click", function () { stepViewer(-1); });
    $("#viewer-next").addEventListener("click", function () { stepViewer(1); });
    $("#viewer").addEventListener("click", function (e) { if (e.target === $("#viewer")) { closeViewer(); } });
    document.addEventListener("keydown", function (e) {
      if (V.open) {
        if (e.key === "Escape") { closeViewer(); e.preventDefault(); }
        else if (e.key === "ArrowLeft") { stepViewer(-1); e.preventDefault(); }
        else if (e.key === "ArrowRight") { stepViewer(1); e.preventDefault(); }
        return;
      }
      var t = e.target, inGallery = t && t.closest && t.closest("#gallery");
      if (!inGallery || /INPUT|SELECT|TEXTAREA/.test(t.tagName)) { return; }
      var cols = columns(), k = e.key;
      if (k === "ArrowRight") { focusFig(S.focus + 1); }
      else if (k === "ArrowLeft") { focusFig(S.focus - 1); }
      else if (k === "ArrowDown") { focusFig(S.focus + cols); }
      else if (k === "ArrowUp") { focusFig(S.focus - cols); }
      else if (k === "PageDown") { focusFig((S.page + 1) * PAGE); }
      else if (k === "PageUp") { focusFig((S.page - 1) * PAGE); }
      else if (k === "Home") { focusFig(0); }
      else if (k === "End") { focusFig(S.order.length - 1); }
      else if (k === "Enter" || k === " ") { V.fromGallery = true; openViewer(S.order[S.focus], S.order, {}); }
      else { return; }
      e.preventDefault();
    });
  }

  renderOverview();
  renderDataset();
  renderEvaluation();
  renderErrorsControls();
  recompute();
  renderGallery();
  renderMistakes();
  renderRun();
  wire();
  document.body.setAttribute("data-ready", "1");
})();
