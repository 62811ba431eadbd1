/* detforge report, part 2 of 3: the page's sections (overview, dataset, evaluation, likely
 * label mistakes, training run), drawn once. The error browser and viewer are in report.js. */
(function () {
  "use strict";
  var DF = window.DF;
  if (!DF) { return; }
  var R = DF.R, FP_COLOR = DF.FP_COLOR, FN_COLOR = DF.FN_COLOR, TP_COLOR = DF.TP_COLOR, KIND_LABEL = DF.KIND_LABEL, PAGE = DF.PAGE, $ = DF.$, esc = DF.esc, el = DF.el, fmt = DF.fmt, pct = DF.pct, color = DF.color, cname = DF.cname, swatch = DF.swatch, placeholder = DF.placeholder, basename = DF.basename, lineChart = DF.lineChart, legend = DF.legend, histChart = DF.histChart;

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
          if (f.image !== null && f.image !== undefined) { loc = '<a href="#" data-open="' + f.image + '" title="open in the viewer">' + loc + "</a>"; }
          else if (f.href) { loc = '<a href="' + esc(encodeURI(f.href).replace(/#/g, "%23").replace(/\?/g, "%3F")) + '" title="the file itself (needs the data beside the report)">' + loc + "</a>"; }
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
    var cell = function (m, v) { return '<td data-model="' + esc(m.name) + '" data-value="' + (v === null || v === undefined ? "NaN" : String(v)) + '">' + (v === -1 ? fmt(-1, -1) : fmt(v)) + "</td>"; };
    COCO_KEYS.forEach(function (k) { h += '<tr data-metric="coco.' + k[0] + '"><th class="l">COCO ' + k[1] + "</th>" + M.map(function (m) { return cell(m, m.coco[k[0]]); }).join("") + "</tr>"; });
    [["mAP", "Darknet mAP@" + R.iou], ["precision", "precision"], ["recall", "recall"], ["f1", "F1"], ["tp", "TP"], ["fp", "FP"], ["fn", "FN"], ["avg_iou", "average IoU"]].forEach(function (k) {
      h += '<tr data-metric="darknet.' + k[0] + '"><th class="l">' + (k[0] === "mAP" ? "" : "Darknet ") + esc(k[1]) + "</th>" + M.map(function (m) { return cell(m, m.darknet[k[0]]); }).join("") + "</tr>";
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
    M.forEach(function (m) { h += '<div class="model"><h4>' + esc(m.name) + ' <span class="muted">(conf &gt; ' + R.conf + ", IoU &gt; " + R.iou + ")</span></h4>" + confusion(m.confusion) +
      (m.confusion.other ? '<p class="muted">The ' + m.confusion.classes.length + " classes with the most boxes here; the " + m.confusion.other + " others are summed in one row and column.</p>" : "") + "</div>"; });
    body.innerHTML = h + "</div>";
    body.querySelectorAll("table.confusion td[data-v]").forEach(function (td) {
      var v = parseFloat(td.getAttribute("data-v"));
      td.style.background = "rgba(0,114,178," + (0.08 + 0.85 * v).toFixed(3) + ")";
      if (v > 0.55) { td.style.color = "#fff"; }
    });
  }
  // c = {classes: [ids], other: N, matrix}: rows/columns are those classes, then the N other
  // classes summed (when N > 0), then background.
  function confusion(c) {
    var cm = c.matrix, labels = c.classes.map(function (k) { return cname(k); });
    if (c.other) { labels.push(c.other + " other classes"); }
    labels.push("background");
    var colsum = labels.map(function (_, j) { return cm.reduce(function (a, r) { return a + r[j]; }, 0); });
    var h = '<table class="num confusion"><thead><tr><th class="corner">true ↓ / predicted →</th>' + labels.map(function (l) { return "<th>" + esc(l) + "</th>"; }).join("") + "</tr></thead><tbody>";
    cm.forEach(function (row, i) {
      h += '<tr><th class="l">' + esc(labels[i]) + "</th>" + row.map(function (v, j) {
        return v ? '<td data-v="' + (colsum[j] ? v / colsum[j] : 0).toFixed(3) + '">' + v + "</td>" : '<td class="zero">·</td>';
      }).join("") + "</tr>";
    });
    return h + "</tbody></table>";
  }

  /* ---------------------------------------------------------------- label mistakes */
  var SUSPECT_TEXT = {
    other_class: function (s) { return "labelled <b>" + esc(cname(s.gt_class)) + "</b>, but a confident <b>" + esc(cname(s.pred_class)) + "</b> prediction sits on it"; },
    not_detected: function () { return "nothing detected here, while every other object of the image is found"; },
    unlabelled: function (s) { return "confident <b>" + esc(cname(s.pred_class)) + "</b> prediction where no label is: a missing label?"; }
  };
  // The suspect's neighbourhood, zoomed: the thumbnail as an SVG image under a viewBox around
  // the truth (dashed, class colour) and the contradicting prediction (solid, crimson).
  function suspectSvg(s, m) {
    var img = R.images[s.image], W = img.w || 1, H = img.h || 1;
    var g = s.gt >= 0 ? img.g[s.gt] : null, p = s.pred >= 0 ? m.images[s.image].p[s.pred] : null;
    var b = g || p, cx = (b[1] + b[3]) / 2, cy = (b[2] + b[4]) / 2;
    var side = Math.max(Math.max(b[3] - b[1], b[4] - b[2]) * 2.4, Math.max(W, H) * 0.2);
    var w = Math.min(W, side * 4 / 3), h = Math.min(H, side);
    var x = Math.max(0, Math.min(W - w, cx - w / 2)), y = Math.max(0, Math.min(H - h, cy - h / 2));
    var u = w / 180, out = '<svg class="zoom" width="180" height="' + Math.round(180 * h / w) + '" viewBox="' + x.toFixed(1) + " " + y.toFixed(1) + " " + w.toFixed(1) + " " + h.toFixed(1) + '" role="img" aria-label="the box in its image">';
    if (img.thumb) { out += '<image href="' + esc(img.thumb) + '" x="0" y="0" width="' + W + '" height="' + H + '" preserveAspectRatio="none"/>'; }
    if (g) { out += '<rect x="' + g[1] + '" y="' + g[2] + '" width="' + (g[3] - g[1]) + '" height="' + (g[4] - g[2]) + '" fill="none" stroke="' + color(g[0]) + '" stroke-width="' + (2.5 * u).toFixed(2) + '" stroke-dasharray="' + (5 * u).toFixed(2) + " " + (3 * u).toFixed(2) + '"/>'; }
    if (p) { out += '<rect x="' + p[1] + '" y="' + p[2] + '" width="' + (p[3] - p[1]) + '" height="' + (p[4] - p[2]) + '" fill="none" stroke="' + FP_COLOR + '" stroke-width="' + (2 * u).toFixed(2) + '"/>'; }
    return out + "</svg>";
  }
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
          tr.innerHTML = "<td>" + (shown + k + 1) + "</td><td>" + suspectSvg(s, m) + '<div class="path">' + esc(basename(img.path)) + "</div></td><td>" + SUSPECT_TEXT[s.kind](s) + "</td><td>" + s.score.toFixed(3) + "</td>";
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
    if (loss.length) { h += lineChart(loss, {title: "losses", xlabel: "epoch", ylabel: "loss", auto: true, markers: rows.length <= 60}); }
    if (met.length) { h += lineChart(met, {title: "validation metrics", xlabel: "epoch", ylabel: "value", auto: true, markers: rows.length <= 60}); }
    h += "</div>";
    if (!rows.length) { h += '<p class="muted">No metrics.csv rows in this run.</p>'; }
    if (run.previews.length) {
      h += '<h3>Preview per epoch</h3><p class="muted">as the trainer drew it after each validation (see its legend).</p><label class="slider"' + (run.previews.length > 1 ? "" : " hidden") + '>epoch <input type="range" id="run-ep" min="0" max="' + (run.previews.length - 1) + '" step="1" value="' + (run.previews.length - 1) + '"><output id="run-ep-v"></output></label><div class="preview"><img id="run-img" alt="epoch preview"></div>';
    }
    if (run.config) { h += "<h3>Configuration</h3><pre class=\"config\">" + esc(run.config) + "</pre>"; }
    body.innerHTML = h;
    var sl = $("#run-ep");
    if (sl) {
      var show = function () { var p = run.previews[+sl.value]; $("#run-img").src = p.path; $("#run-ep-v").textContent = p.epoch; $("#run-img").alt = "preview after epoch " + p.epoch; };
      sl.addEventListener("input", show); show();
    }
  }

  DF.sections = {renderOverview: renderOverview, hide: hide, renderDataset: renderDataset, renderFindings: renderFindings, renderEvaluation: renderEvaluation, confusion: confusion, renderMistakes: renderMistakes, renderRun: renderRun};
})();
