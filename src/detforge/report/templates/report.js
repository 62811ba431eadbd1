/* detforge report, part 3 of 3: the error browser (filters, score slider, pages, keys), the
 * image viewer, and start-up. Needs report-base.js and report-sections.js loaded first. */
(function () {
  "use strict";
  var DF = window.DF;
  if (!DF) { return; }
  var R = DF.R, FP_COLOR = DF.FP_COLOR, FN_COLOR = DF.FN_COLOR, TP_COLOR = DF.TP_COLOR, KIND_LABEL = DF.KIND_LABEL, PAGE = DF.PAGE, $ = DF.$, esc = DF.esc, el = DF.el, fmt = DF.fmt, pct = DF.pct, color = DF.color, cname = DF.cname, swatch = DF.swatch, placeholder = DF.placeholder, basename = DF.basename, lineChart = DF.lineChart, legend = DF.legend, histChart = DF.histChart;
  var P = DF.sections;

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
      '<span class="muted">keys: arrows move, Enter opens, PgUp/PgDn page, Esc closes' + (R.models.length > 1 ? ", m switches model in the viewer" : "") + "</span></p>" +
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
        '<div class="pic">' + (img.thumb ? '<img loading="lazy" decoding="async" width="' + (img.w || 4) + '" height="' + (img.h || 3) + '" src="' + esc(img.thumb) + '" alt="">' : placeholder(img)) + boxesSvg(i, m, S.conf, {}) + "</div>" +
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
    var i = V.list[V.pos], img = R.images[i];
    var m = V.opt.model !== undefined ? R.models[V.opt.model] : curModel(), rec = m ? m.images[i] : null;
    $("#viewer-title").textContent = img.path;
    $("#viewer-pic").innerHTML = '<div class="pic big">' + (img.view ? '<img width="' + (img.w || 4) + '" height="' + (img.h || 3) + '" src="' + esc(img.view) + '" alt="">' : placeholder(img)) +
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
    var vm = $("#viewer-model");
    if (R.models.length > 1) { vm.hidden = false; vm.value = String(R.models.indexOf(m)); }
  }
  function stepViewer(d) { var p = V.pos + d; if (p >= 0 && p < V.list.length) { V.pos = p; V.opt = {model: V.opt.model}; drawViewer(); if (V.fromGallery) { S.focus = p; } } }

  /* ---------------------------------------------------------------- events */
  function wire() {
    document.addEventListener("click", function (e) {
      var o = e.target.closest("[data-open]");
      if (o) {
        e.preventDefault();
        var i = +o.getAttribute("data-open");
        V.fromGallery = false;
        openViewer(i, [i], {
          gt: o.hasAttribute("data-gt") ? +o.getAttribute("data-gt") : -1,
          pred: o.hasAttribute("data-pred") ? +o.getAttribute("data-pred") : -1,
          model: o.hasAttribute("data-model") ? +o.getAttribute("data-model") : undefined
        });
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
    var vm = $("#viewer-model");
    vm.innerHTML = R.models.map(function (m, k) { return '<option value="' + k + '">' + esc(m.name) + "</option>"; }).join("");
    vm.addEventListener("change", function () { V.opt.model = +vm.value; drawViewer(); });
    $("#viewer-close").addEventListener("click", closeViewer);
    $("#viewer-prev").addEventListener("click", function () { stepViewer(-1); });
    $("#viewer-next").addEventListener("click", function () { stepViewer(1); });
    $("#viewer").addEventListener("click", function (e) { if (e.target === $("#viewer")) { closeViewer(); } });
    document.addEventListener("keydown", function (e) {
      if (V.open) {
        if (e.key === "Escape") { closeViewer(); e.preventDefault(); }
        else if (e.key === "ArrowLeft") { stepViewer(-1); e.preventDefault(); }
        else if (e.key === "ArrowRight") { stepViewer(1); e.preventDefault(); }
        else if (e.key === "m" && R.models.length > 1 && e.target.tagName !== "SELECT") {
          var cur = V.opt.model !== undefined ? V.opt.model : S.model;
          V.opt.model = (cur + 1) % R.models.length; drawViewer(); e.preventDefault();
        }
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

  P.renderOverview();
  P.renderDataset();
  P.renderEvaluation();
  renderErrorsControls();
  recompute();
  renderGallery();
  P.renderMistakes();
  P.renderRun();
  wire();
  document.body.setAttribute("data-ready", "1");
})();
