/* detforge report, part 1 of 3: shared helpers and SVG charts (window.DF).
 * Renders from window.DETFORGE_REPORT (assets/data.js). No network, no libraries: plain DOM
 * and inline SVG built from strings. Parts: report-base.js, report-sections.js, report.js. */
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
  // An image that could not be read: a dark box of the image's aspect with the reason.
  function placeholder(img) {
    var w = img.w || 4, h = img.h || 3, why = String(img.error || "no image").split(": ").pop();
    return '<svg class="ph" viewBox="0 0 ' + w + " " + h + '" width="' + w + '" height="' + h + '" aria-hidden="true"></svg>' +
      '<div class="noimg" title="' + esc(img.error || "") + '">' + esc(why) + "</div>";
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
      if (opt.markers) {
        sr.ys.forEach(function (y, i) {
          if (y === null || !isFinite(y)) { return; }
          s += '<circle cx="' + X(sr.xs[i]).toFixed(1) + '" cy="' + Y(y).toFixed(1) + '" r="2.5" fill="' + sr.color + '"><title>' + esc(sr.name) + " " + (+sr.xs[i].toPrecision(4)) + ": " + (+y.toPrecision(4)) + "</title></circle>";
        });
      }
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

  window.DF = {R: R, FP_COLOR: FP_COLOR, FN_COLOR: FN_COLOR, TP_COLOR: TP_COLOR, KIND_LABEL: KIND_LABEL, PAGE: PAGE, $: $, esc: esc, el: el, fmt: fmt, pct: pct, color: color, cname: cname, swatch: swatch, placeholder: placeholder, basename: basename, lineChart: lineChart, legend: legend, histChart: histChart};
})();
